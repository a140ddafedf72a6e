//! Styleguide token sections and items (components, patterns, voice rules).

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub project_id: String,
    pub section: String,
    pub tokens: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub kind: String,
    pub name: String,
    pub spec: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn put_tokens(tx: &mut Tx, r: &TokenRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO styleguide_tokens (project_id, section, tokens, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id, section) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    )
    .bind(&r.project_id).bind(&r.section).bind(&r.tokens).bind(r.updated_at).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn all_tokens(store: &Store, project: ProjectId) -> Result<Vec<TokenRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM styleguide_tokens WHERE project_id = $1 ORDER BY section")
        .bind(project.db()).fetch_all(c).await)
    .map_err(db_error)
}

pub async fn upsert_item(tx: &mut Tx, r: &ItemRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO styleguide_items (id, org_id, project_id, kind, name, spec, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, spec = excluded.spec, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.kind).bind(&r.name).bind(&r.spec).bind(&r.created_by)
    .bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

/// An item of `kind` by id (database form) or name.
pub async fn find_item_tx(
    tx: &mut Tx,
    project: ProjectId,
    kind: &str,
    id: Option<&str>,
    name: &str,
) -> Result<Option<ItemRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM styleguide_items WHERE project_id = $1 AND kind = $2 AND (id = $3 OR name = $4)")
        .bind(project.db()).bind(kind).bind(id.unwrap_or("")).bind(name).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn find_item(
    store: &Store,
    project: ProjectId,
    kind: &str,
    id: Option<&str>,
    name: &str,
) -> Result<Option<ItemRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM styleguide_items WHERE project_id = $1 AND kind = $2 AND (id = $3 OR name = $4)")
        .bind(project.db()).bind(kind).bind(id.unwrap_or("")).bind(name).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn delete_item(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM styleguide_items WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

pub async fn list_items(
    store: &Store,
    project: ProjectId,
    kind: &str,
    page: &PageRequest,
) -> Result<Vec<ItemRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM styleguide_items WHERE project_id = {} AND kind = {}",
        args.push(project.db()),
        args.push(kind)
    );
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

/// Every item of the project (styleguides are small: for export and search).
pub async fn all_items(store: &Store, project: ProjectId) -> Result<Vec<ItemRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM styleguide_items WHERE project_id = $1 ORDER BY kind, name")
        .bind(project.db()).fetch_all(c).await)
    .map_err(db_error)
}
