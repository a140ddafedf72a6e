//! The reads of one bootstrap, all inside one read-only transaction
//! ([`crate::Store::begin_read`]) so the snapshot is consistent, plus the per key+agent record
//! of the last bootstrap.

use canopy_core::Error;

use crate::agents::AgentRow;
use crate::context::ContextRow;
use crate::tasks::{TaskNoteRow, TaskRow};
use crate::{Store, Tx, db_error};

const ENTRY_COLS: &str = "e.id, e.org_id, e.project_id, e.type, e.scope, e.title, e.body, e.tags, e.priority, e.created_by, e.created_at, e.updated_at";

/// Agents the project sees (its own and the org's global ones), by name.
pub async fn agents(tx: &mut Tx, org: &str, project: &str) -> Result<Vec<AgentRow>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT * FROM agents WHERE (project_id = $1 OR (org_id = $2 AND scope = 'global')) ORDER BY name, id LIMIT 200",
    )
    .bind(project).bind(org).fetch_all(c).await)
    .map_err(db_error)
}

/// Context entries tagged `tag`, oldest first.
pub async fn entries_tagged(
    tx: &mut Tx,
    project: &str,
    tag: &str,
    limit: i64,
) -> Result<Vec<ContextRow>, Error> {
    let sql = format!(
        "SELECT {ENTRY_COLS} FROM context_entries e JOIN context_tags t ON t.entry_id = e.id \
         WHERE t.project_id = $1 AND t.tag = $2 ORDER BY e.created_at, e.id LIMIT $3"
    );
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project).bind(tag).bind(limit).fetch_all(c).await)
        .map_err(db_error)
}

/// Context entries of one priority, most recently changed first.
pub async fn entries_of_priority(
    tx: &mut Tx,
    project: &str,
    priority: &str,
    limit: i64,
) -> Result<Vec<ContextRow>, Error> {
    let sql = format!(
        "SELECT {ENTRY_COLS} FROM context_entries e WHERE e.project_id = $1 AND e.priority = $2 \
         ORDER BY e.updated_at DESC, e.id DESC LIMIT $3"
    );
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project).bind(priority).bind(limit).fetch_all(c).await)
        .map_err(db_error)
}

/// The latest context entries of one type, newest first.
pub async fn recent_entries(
    tx: &mut Tx,
    project: &str,
    kind: &str,
    limit: i64,
) -> Result<Vec<ContextRow>, Error> {
    let sql = format!(
        "SELECT {ENTRY_COLS} FROM context_entries e WHERE e.project_id = $1 AND e.type = $2 \
         ORDER BY e.created_at DESC, e.id DESC LIMIT $3"
    );
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project).bind(kind).bind(limit).fetch_all(c).await)
        .map_err(db_error)
}

/// `(status, count)` of a project's feedback items.
pub async fn feedback_counts(tx: &mut Tx, project: &str) -> Result<Vec<(String, i64)>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT status, COUNT(*) FROM feedback_items WHERE project_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(project).fetch_all(c).await)
    .map_err(db_error)
}

/// A run as a bootstrap lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunBrief {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub definition_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Runs of `kind` not yet finished, newest first.
pub async fn active_runs(
    tx: &mut Tx,
    project: &str,
    kind: &str,
    limit: i64,
) -> Result<Vec<RunBrief>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT id, kind, status, definition_id, created_at, updated_at FROM runs \
         WHERE project_id = $1 AND kind = $2 AND status IN ('queued', 'running', 'waiting', 'paused') \
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(project).bind(kind).bind(limit).fetch_all(c).await)
    .map_err(db_error)
}

/// An agent's open tasks (not `done`), highest priority first, then oldest.
pub async fn open_tasks_of(
    tx: &mut Tx,
    project: &str,
    agent: &str,
    limit: i64,
) -> Result<Vec<TaskRow>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT * FROM tasks WHERE project_id = $1 AND assignee_type = 'agent' AND assignee_name = $2 \
         AND status <> 'done' ORDER BY priority_rank DESC, created_at, id LIMIT $3",
    )
    .bind(project).bind(agent).bind(limit).fetch_all(c).await)
    .map_err(db_error)
}

/// The latest notes of the team feed, newest first.
pub async fn recent_notes(
    tx: &mut Tx,
    project: &str,
    limit: i64,
) -> Result<Vec<TaskNoteRow>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT * FROM task_notes WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(project).bind(limit).fetch_all(c).await)
    .map_err(db_error)
}

/// Token sections, and `(kind, name)` of components, patterns and voice rules.
pub async fn styleguide(
    tx: &mut Tx,
    project: &str,
) -> Result<(Vec<String>, Vec<(String, String)>), Error> {
    let sections: Vec<String> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT section FROM styleguide_tokens WHERE project_id = $1 ORDER BY section",
    )
    .bind(project).fetch_all(c).await)
    .map_err(db_error)?;
    let items: Vec<(String, String)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT kind, name FROM styleguide_items WHERE project_id = $1 ORDER BY kind, name LIMIT 1000",
    )
    .bind(project).fetch_all(c).await)
    .map_err(db_error)?;
    Ok((sections, items))
}

/// The tables whose rows `changes_since_last_session` reports, by service name.
pub const CHANGE_SOURCES: &[(&str, &str)] = &[
    ("context", "context_entries"),
    ("tasks", "tasks"),
    ("feedback", "feedback_items"),
    ("changelog", "changelog_entries"),
    ("agents", "agents"),
    ("documents", "documents"),
    ("runs", "runs"),
];

/// Rows of a project's `table` changed after `since`: (created after it, changed in all, up
/// to `limit` ids most recent first).
pub async fn changes(
    tx: &mut Tx,
    table: &str,
    project: &str,
    since: i64,
    limit: i64,
) -> Result<(i64, i64, Vec<String>), Error> {
    // `table` comes from CHANGE_SOURCES only.
    let counts = format!(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN created_at > $2 THEN 1 ELSE 0 END), 0) FROM {table} \
         WHERE project_id = $1 AND updated_at > $2"
    );
    let (changed, created): (i64, i64) =
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(counts))
        .bind(project).bind(since).fetch_one(c).await)
        .map_err(db_error)?;
    if changed == 0 {
        return Ok((0, 0, Vec::new()));
    }
    let ids = format!(
        "SELECT id FROM {table} WHERE project_id = $1 AND updated_at > $2 ORDER BY updated_at DESC, id DESC LIMIT $3"
    );
    let ids: Vec<String> = on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(ids))
        .bind(project).bind(since).bind(limit).fetch_all(c).await)
    .map_err(db_error)?;
    Ok((created, changed, ids))
}

/// Team-feed notes written after `since`.
pub async fn notes_since(tx: &mut Tx, project: &str, since: i64) -> Result<i64, Error> {
    on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM task_notes WHERE project_id = $1 AND created_at > $2")
        .bind(project).bind(since).fetch_one(c).await)
    .map_err(db_error)
}

/// When this key and agent last bootstrapped the project.
pub async fn last_session(
    store: &Store,
    key: &str,
    agent: &str,
    project: &str,
) -> Result<Option<i64>, Error> {
    on_db!(store, c => sqlx::query_scalar(
        "SELECT last_at FROM bootstrap_sessions WHERE key_id = $1 AND agent = $2 AND project_id = $3",
    )
    .bind(key).bind(agent).bind(project).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn record_session(
    store: &Store,
    key: &str,
    agent: &str,
    project: &str,
    at: i64,
) -> Result<(), Error> {
    on_write!(store, c => sqlx::query(
        "INSERT INTO bootstrap_sessions (key_id, agent, project_id, last_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_id, agent, project_id) DO UPDATE SET last_at = excluded.last_at",
    )
    .bind(key).bind(agent).bind(project).bind(at).execute(c).await.map(|_| ()))
    .map_err(db_error)
}
