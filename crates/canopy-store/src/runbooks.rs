//! Runbook templates, and the reads over the engine's `runs` table that runbook runs need
//! (a runbook run is an engine run of kind `runbook` whose `definition_id` is the runbook).

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::engine::RunRow;
use crate::{Store, Tx, db_error};

/// The engine's run kind of runbook runs.
pub const RUN_KIND: &str = "runbook";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunbookRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    /// JSON list.
    pub tags: String,
    /// JSON list of variables.
    pub variables: String,
    /// JSON list of steps, in order.
    pub steps: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn upsert_runbook(tx: &mut Tx, r: &RunbookRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO runbooks (id, org_id, project_id, name, description, category, tags, variables, steps, \
         created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, \
         category = excluded.category, tags = excluded.tags, variables = excluded.variables, \
         steps = excluded.steps, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.name).bind(&r.description).bind(&r.category)
    .bind(&r.tags).bind(&r.variables).bind(&r.steps).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn get_runbook(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<RunbookRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM runbooks WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

/// The runbook for changing; on PostgreSQL its row stays locked until the transaction ends.
pub async fn get_runbook_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<RunbookRow>, Error> {
    let sql = if tx.backend() == crate::Backend::Postgres {
        "SELECT * FROM runbooks WHERE id = $1 AND project_id = $2 FOR UPDATE"
    } else {
        "SELECT * FROM runbooks WHERE id = $1 AND project_id = $2"
    };
    on_tx!(tx, c => sqlx::query_as(sql).bind(id).bind(project.db()).fetch_optional(c).await)
        .map_err(db_error)
}

pub async fn delete_runbook(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM runbooks WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

/// One page of a project's runbooks, newest first; `category` and one `tag` filter.
pub async fn list_runbooks(
    store: &Store,
    project: ProjectId,
    category: Option<&str>,
    tag: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<RunbookRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM runbooks WHERE project_id = {}",
        args.push(project.db())
    );
    if let Some(c) = category {
        sql.push_str(&format!(" AND category = {}", args.push(c.to_owned())));
    }
    if let Some(t) = tag {
        let pat = format!("%\"{}\"%", t.replace(['%', '_', '"', '\\'], ""));
        sql.push_str(&format!(" AND tags LIKE {}", args.push(pat)));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}

/// What a runbook-run listing filters on.
#[derive(Debug, Default, Clone)]
pub struct RunbookRunFilter {
    /// Engine run statuses, any of them.
    pub statuses: Vec<String>,
    pub runbook_id: Option<String>,
}

/// One page of a project's runbook runs, newest first.
pub async fn list_runbook_runs(
    store: &Store,
    project: ProjectId,
    f: &RunbookRunFilter,
    page: &PageRequest,
) -> Result<Vec<RunRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM runs WHERE project_id = {} AND kind = {}",
        args.push(project.db()),
        args.push(RUN_KIND.to_owned())
    );
    if let Some(id) = &f.runbook_id {
        sql.push_str(&format!(" AND definition_id = {}", args.push(id.clone())));
    }
    if !f.statuses.is_empty() {
        let marks: Vec<String> = f.statuses.iter().map(|s| args.push(s.clone())).collect();
        sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}

/// The ids of a runbook's runs that are not final (running, paused, …).
pub async fn active_runs(
    tx: &mut Tx,
    project: ProjectId,
    runbook: &str,
) -> Result<Vec<String>, Error> {
    on_tx!(tx, c => sqlx::query_scalar(
        "SELECT id FROM runs WHERE project_id = $1 AND kind = $2 AND definition_id = $3 \
         AND status NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY created_at, id",
    )
    .bind(project.db()).bind(RUN_KIND).bind(runbook).fetch_all(c).await)
    .map_err(db_error)
}

/// A run's project and kind (`None` when it does not exist): enough to tell whether a
/// caller may see it, without reading its definition or step runs. Neither ever changes
/// after the run is submitted.
pub async fn run_owner(store: &Store, id: &str) -> Result<Option<(String, String)>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT project_id, kind FROM runs WHERE id = $1")
        .bind(id).fetch_optional(c).await)
    .map_err(db_error)
}
