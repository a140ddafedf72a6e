//! Feedback items and notes; per-project settings.

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeedbackRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub status: String,
    pub priority: String,
    pub source: String,
    pub tags: String,
    /// JSON: title, body, page_url, user fields, rating.
    pub spec: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: String,
    pub item_id: String,
    pub body: String,
    pub author: Option<String>,
    pub created_at: i64,
}

pub async fn upsert_item(tx: &mut Tx, r: &FeedbackRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO feedback_items (id, org_id, project_id, type, status, priority, source, tags, spec, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET type = excluded.type, status = excluded.status, priority = excluded.priority, \
         tags = excluded.tags, spec = excluded.spec, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.kind).bind(&r.status).bind(&r.priority).bind(&r.source)
    .bind(&r.tags).bind(&r.spec).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_item(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<FeedbackRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM feedback_items WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_item_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<FeedbackRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM feedback_items WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn delete_item(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n =
        on_tx!(tx, c => sqlx::query("DELETE FROM feedback_items WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
        .map_err(db_error)?;
    Ok(n > 0)
}

pub async fn insert_note(tx: &mut Tx, n: &NoteRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query("INSERT INTO feedback_notes (id, item_id, body, author, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&n.id).bind(&n.item_id).bind(&n.body).bind(&n.author).bind(n.created_at).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn notes_of(store: &Store, item: &str) -> Result<Vec<NoteRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM feedback_notes WHERE item_id = $1 ORDER BY created_at, id")
        .bind(item).fetch_all(c).await)
    .map_err(db_error)
}

#[derive(Debug, Default, Clone)]
pub struct FeedbackFilter {
    pub kind: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub source: Option<String>,
    pub tag: Option<String>,
}

pub async fn list_items(
    store: &Store,
    project: ProjectId,
    f: &FeedbackFilter,
    page: &PageRequest,
) -> Result<Vec<FeedbackRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM feedback_items WHERE project_id = {}",
        args.push(project.db())
    );
    for (col, val) in [
        ("type", &f.kind),
        ("status", &f.status),
        ("priority", &f.priority),
        ("source", &f.source),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    if let Some(t) = &f.tag {
        sql.push_str(&format!(
            " AND tags LIKE {}",
            args.push(format!("%\"{}\"%", t.replace(['%', '_', '"'], "")))
        ));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

pub async fn get_project_setting(
    store: &Store,
    project: ProjectId,
    name: &str,
) -> Result<Option<String>, Error> {
    on_db!(store, c => sqlx::query_scalar("SELECT value FROM project_settings WHERE project_id = $1 AND name = $2")
        .bind(project.db()).bind(name).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn put_project_setting(
    tx: &mut Tx,
    project: ProjectId,
    name: &str,
    value: &str,
    now: i64,
) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO project_settings (project_id, name, value, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(project.db()).bind(name).bind(value).bind(now).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}
