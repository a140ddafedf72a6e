//! Changelog entries and versions.

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub version_id: Option<String>,
    pub title: String,
    pub body: String,
    pub category: String,
    pub status: String,
    pub published_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub released_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn upsert_entry(tx: &mut Tx, r: &EntryRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO changelog_entries (id, org_id, project_id, version_id, title, body, category, status, published_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET version_id = excluded.version_id, title = excluded.title, body = excluded.body, \
         category = excluded.category, status = excluded.status, published_at = excluded.published_at, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.version_id).bind(&r.title).bind(&r.body).bind(&r.category)
    .bind(&r.status).bind(r.published_at).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn upsert_version(tx: &mut Tx, r: &VersionRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO changelog_versions (id, org_id, project_id, name, description, status, released_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, status = excluded.status, \
         released_at = excluded.released_at, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.name).bind(&r.description).bind(&r.status).bind(r.released_at)
    .bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_entry_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<EntryRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM changelog_entries WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_entry(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<EntryRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM changelog_entries WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_version_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<VersionRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM changelog_versions WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_version(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<VersionRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM changelog_versions WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn delete_entry(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM changelog_entries WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

/// Deletes a version; its entries stay, detached.
pub async fn delete_version(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    on_tx!(tx, c => sqlx::query("UPDATE changelog_entries SET version_id = NULL WHERE version_id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM changelog_versions WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

/// Entries of a version, newest first.
pub async fn version_entries(
    store: &Store,
    project: ProjectId,
    version: &str,
) -> Result<Vec<EntryRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM changelog_entries WHERE project_id = $1 AND version_id = $2 ORDER BY created_at DESC, id DESC")
        .bind(project.db()).bind(version).fetch_all(c).await)
    .map_err(db_error)
}

/// Publishes every draft entry of a version at `at`.
pub async fn publish_version_entries(
    tx: &mut Tx,
    project: ProjectId,
    version: &str,
    at: i64,
) -> Result<u64, Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE changelog_entries SET status = 'published', published_at = $1, updated_at = $1 WHERE project_id = $2 AND version_id = $3 AND status <> 'published'",
    )
    .bind(at).bind(project.db()).bind(version).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)
}

#[derive(Debug, Default, Clone)]
pub struct EntryFilter {
    pub status: Option<String>,
    pub category: Option<String>,
    pub version_id: Option<String>,
}

pub async fn list_entries(
    store: &Store,
    project: ProjectId,
    f: &EntryFilter,
    page: &PageRequest,
) -> Result<Vec<EntryRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM changelog_entries WHERE project_id = {}",
        args.push(project.db())
    );
    for (col, val) in [
        ("status", &f.status),
        ("category", &f.category),
        ("version_id", &f.version_id),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

pub async fn list_versions(
    store: &Store,
    project: ProjectId,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<VersionRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM changelog_versions WHERE project_id = {}",
        args.push(project.db())
    );
    if let Some(s) = status {
        sql.push_str(&format!(" AND status = {}", args.push(s)));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

/// Published entries for the public page and feed, newest first.
pub async fn published_entries(
    store: &Store,
    project: ProjectId,
    limit: i64,
) -> Result<Vec<EntryRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT * FROM changelog_entries WHERE project_id = $1 AND status = 'published' ORDER BY published_at DESC, id DESC LIMIT $2",
    )
    .bind(project.db()).bind(limit).fetch_all(c).await)
    .map_err(db_error)
}

pub async fn published_versions(
    store: &Store,
    project: ProjectId,
) -> Result<Vec<VersionRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM changelog_versions WHERE project_id = $1 AND status = 'published'")
        .bind(project.db()).fetch_all(c).await)
    .map_err(db_error)
}
