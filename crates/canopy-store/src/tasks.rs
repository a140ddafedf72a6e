//! Tasks, their notes (the team feed) and each project's workflow.

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub category: Option<String>,
    pub status: String,
    pub priority: String,
    pub priority_rank: i64,
    /// JSON list.
    pub tags: String,
    pub assignee_type: Option<String>,
    pub assignee_name: Option<String>,
    pub resolution: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskNoteRow {
    pub id: String,
    pub task_id: String,
    pub project_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub body: String,
    pub author: Option<String>,
    /// JSON `{sha, message, branch, url}`.
    pub commit_info: Option<String>,
    pub created_at: i64,
}

pub async fn upsert_task(tx: &mut Tx, r: &TaskRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO tasks (id, org_id, project_id, title, description, category, status, priority, priority_rank, \
         tags, assignee_type, assignee_name, resolution, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description, \
         category = excluded.category, status = excluded.status, priority = excluded.priority, \
         priority_rank = excluded.priority_rank, tags = excluded.tags, assignee_type = excluded.assignee_type, \
         assignee_name = excluded.assignee_name, resolution = excluded.resolution, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.title).bind(&r.description).bind(&r.category)
    .bind(&r.status).bind(&r.priority).bind(r.priority_rank).bind(&r.tags).bind(&r.assignee_type)
    .bind(&r.assignee_name).bind(&r.resolution).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn get_task(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<TaskRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM tasks WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

/// The task for changing; on PostgreSQL its row stays locked until the transaction ends, so
/// two status changes of one task apply one after the other.
pub async fn get_task_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<TaskRow>, Error> {
    let sql = if tx.backend() == crate::Backend::Postgres {
        "SELECT * FROM tasks WHERE id = $1 AND project_id = $2 FOR UPDATE"
    } else {
        "SELECT * FROM tasks WHERE id = $1 AND project_id = $2"
    };
    on_tx!(tx, c => sqlx::query_as(sql).bind(id).bind(project.db()).fetch_optional(c).await)
        .map_err(db_error)
}

pub async fn delete_task(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM tasks WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

pub async fn insert_note(tx: &mut Tx, n: &TaskNoteRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO task_notes (id, task_id, project_id, type, body, author, commit_info, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&n.id).bind(&n.task_id).bind(&n.project_id).bind(&n.kind).bind(&n.body).bind(&n.author)
    .bind(&n.commit_info).bind(n.created_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn notes_of(store: &Store, task: &str) -> Result<Vec<TaskNoteRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM task_notes WHERE task_id = $1 ORDER BY created_at, id")
        .bind(task).fetch_all(c).await)
    .map_err(db_error)
}

/// What a task listing filters on (all given filters must hold).
#[derive(Debug, Default, Clone)]
pub struct TaskFilter {
    pub status: Option<String>,
    /// Exclude this status (`mine` leaves finished tasks out).
    pub status_not: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub assignee: Option<(String, String)>,
    pub tag: Option<String>,
    /// Words that must appear in the title or description (case-insensitive).
    pub search: Option<String>,
}

fn push_filter(sql: &mut String, args: &mut Args, f: &TaskFilter) {
    for (col, val) in [
        ("status", &f.status),
        ("priority", &f.priority),
        ("category", &f.category),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    if let Some(v) = &f.status_not {
        sql.push_str(&format!(" AND status <> {}", args.push(v.clone())));
    }
    if let Some((t, n)) = &f.assignee {
        sql.push_str(&format!(
            " AND assignee_type = {} AND assignee_name = {}",
            args.push(t.clone()),
            args.push(n.clone())
        ));
    }
    if let Some(t) = &f.tag {
        sql.push_str(&format!(
            " AND tags LIKE {}",
            args.push(format!("%\"{}\"%", t.replace(['%', '_', '"', '\\'], "")))
        ));
    }
    if let Some(q) = &f.search {
        for word in q.split_whitespace().take(8) {
            let pat = format!("%{}%", word.to_lowercase().replace(['%', '_', '\\'], ""));
            let a = args.push(pat.clone());
            let b = args.push(pat);
            sql.push_str(&format!(
                " AND (LOWER(title) LIKE {a} OR LOWER(description) LIKE {b})"
            ));
        }
    }
}

/// One page of a project's tasks, newest first.
pub async fn list_tasks(
    store: &Store,
    project: ProjectId,
    f: &TaskFilter,
    page: &PageRequest,
) -> Result<Vec<TaskRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM tasks WHERE project_id = {}",
        args.push(project.db())
    );
    push_filter(&mut sql, &mut args, f);
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}

/// An assignee's tasks, highest priority first, then oldest first; at most `limit`, after
/// `offset` (the order is not by creation time, so pages go by position).
pub async fn assigned_tasks(
    store: &Store,
    project: ProjectId,
    f: &TaskFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<TaskRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM tasks WHERE project_id = {}",
        args.push(project.db())
    );
    push_filter(&mut sql, &mut args, f);
    sql.push_str(&format!(
        " ORDER BY priority_rank DESC, created_at, id LIMIT {} OFFSET {}",
        args.push(limit),
        args.push(offset)
    ));
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}

/// The team feed: a project's notes after `(since, after_id)` in time order, `limit` of them.
pub async fn feed(
    store: &Store,
    project: ProjectId,
    since: i64,
    after_id: &str,
    limit: i64,
) -> Result<Vec<TaskNoteRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT * FROM task_notes WHERE project_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
         ORDER BY created_at, id LIMIT $4",
    )
    .bind(project.db()).bind(since).bind(after_id).bind(limit).fetch_all(c).await)
    .map_err(db_error)
}

/// Statuses in use by a project's tasks (to refuse a workflow that would strand them).
pub async fn statuses_in_use(tx: &mut Tx, project: ProjectId) -> Result<Vec<String>, Error> {
    on_tx!(tx, c => sqlx::query_scalar("SELECT DISTINCT status FROM tasks WHERE project_id = $1 ORDER BY status")
        .bind(project.db()).fetch_all(c).await)
    .map_err(db_error)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkflowRow {
    pub project_id: String,
    pub id: String,
    /// JSON list.
    pub statuses: String,
    pub updated_at: i64,
}

pub async fn get_workflow(store: &Store, project: ProjectId) -> Result<Option<WorkflowRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM task_workflows WHERE project_id = $1")
        .bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_workflow_tx(
    tx: &mut Tx,
    project: ProjectId,
) -> Result<Option<WorkflowRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM task_workflows WHERE project_id = $1")
        .bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn put_workflow(tx: &mut Tx, w: &WorkflowRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO task_workflows (project_id, id, statuses, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id) DO UPDATE SET statuses = excluded.statuses, updated_at = excluded.updated_at",
    )
    .bind(&w.project_id).bind(&w.id).bind(&w.statuses).bind(w.updated_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}
