//! Stackmint authoring: versioned buds and branches (`runtime_defs`, `runtime_def_versions`),
//! their assignment to clients (`runtime_assignments`), and the run listing of a client
//! (the `runs` table belongs to [`crate::engine`]; this module only reads it).

use canopy_core::{Error, PageRequest};

use crate::args::{Args, keyset};
use crate::engine::RunRow;
use crate::{Store, Tx, db_error};

/// A bud or a branch, at its current version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DefRow {
    pub id: String,
    pub org_id: String,
    /// `bud` or `branch`.
    pub kind: String,
    pub name: String,
    pub version: i64,
    /// JSON: the definition as authored.
    pub spec: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts a definition (version 1) or overwrites its current version, and records the
/// version in the history.
pub async fn save_def(tx: &mut Tx, r: &DefRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO runtime_defs (id, org_id, kind, name, version, spec, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, \
         spec = excluded.spec, updated_at = excluded.updated_at",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.kind).bind(&r.name).bind(r.version).bind(&r.spec)
    .bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO runtime_def_versions (def_id, version, spec, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&r.id).bind(r.version).bind(&r.spec).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_def(
    store: &Store,
    org: &str,
    kind: &str,
    id: &str,
) -> Result<Option<DefRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT * FROM runtime_defs WHERE id = $1 AND org_id = $2 AND kind = $3",
    )
    .bind(id).bind(org).bind(kind).fetch_optional(c).await)
    .map_err(db_error)
}

/// The current version, read inside a transaction (for an update that bumps it).
pub async fn get_def_tx(
    tx: &mut Tx,
    org: &str,
    kind: &str,
    id: &str,
) -> Result<Option<DefRow>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT * FROM runtime_defs WHERE id = $1 AND org_id = $2 AND kind = $3",
    )
    .bind(id).bind(org).bind(kind).fetch_optional(c).await)
    .map_err(db_error)
}

/// Several definitions of one org by id (missing ids are simply absent).
pub async fn get_defs(store: &Store, org: &str, ids: &[String]) -> Result<Vec<DefRow>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = Args::default();
    let org_p = args.push(org);
    let list: Vec<String> = ids.iter().map(|i| args.push(i.clone())).collect();
    let sql = format!(
        "SELECT * FROM runtime_defs WHERE org_id = {org_p} AND id IN ({})",
        list.join(", ")
    );
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}

/// One page of an org's buds or branches, newest first.
pub async fn list_defs(
    store: &Store,
    org: &str,
    kind: &str,
    page: &PageRequest,
) -> Result<Vec<DefRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM runtime_defs WHERE org_id = {} AND kind = {}",
        args.push(org),
        args.push(kind)
    );
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}

/// Deletes a definition with its history and assignments.
pub async fn delete_def(tx: &mut Tx, org: &str, kind: &str, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "DELETE FROM runtime_defs WHERE id = $1 AND org_id = $2 AND kind = $3",
    )
    .bind(id).bind(org).bind(kind).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

/// Assigns a definition to a client; assigning twice is a no-op. Answers whether a row was
/// added.
pub async fn assign(
    tx: &mut Tx,
    project: &str,
    def_id: &str,
    kind: &str,
    now: i64,
) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "INSERT INTO runtime_assignments (project_id, def_id, kind, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id, def_id) DO NOTHING",
    )
    .bind(project).bind(def_id).bind(kind).bind(now)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

pub async fn unassign(tx: &mut Tx, project: &str, def_id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "DELETE FROM runtime_assignments WHERE project_id = $1 AND def_id = $2",
    )
    .bind(project).bind(def_id).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

pub async fn is_assigned(store: &Store, project: &str, def_id: &str) -> Result<bool, Error> {
    let n: i64 = on_db!(store, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM runtime_assignments WHERE project_id = $1 AND def_id = $2",
    )
    .bind(project).bind(def_id).fetch_one(c).await)
    .map_err(db_error)?;
    Ok(n > 0)
}

/// The definitions of `kind` assigned to a client, by name.
pub async fn assigned_defs(store: &Store, project: &str, kind: &str) -> Result<Vec<DefRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT d.* FROM runtime_defs d JOIN runtime_assignments a ON a.def_id = d.id \
         WHERE a.project_id = $1 AND d.kind = $2 ORDER BY d.name, d.id",
    )
    .bind(project).bind(kind).fetch_all(c).await)
    .map_err(db_error)
}

/// What a client's run listing filters on.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub status: Option<String>,
    /// `bud` or `branch`, with the definition's id.
    pub definition: Option<(String, String)>,
}

/// One page of a client's runs, newest first.
pub async fn list_runs(
    store: &Store,
    project: &str,
    f: &RunFilter,
    page: &PageRequest,
) -> Result<Vec<RunRow>, Error> {
    let mut args = Args::default();
    // Bud and branch runs only: runbook runs (manual runs of the same engine) have their own
    // routes.
    let mut sql = format!(
        "SELECT * FROM runs WHERE project_id = {} AND kind IN ('bud', 'branch')",
        args.push(project)
    );
    if let Some(s) = &f.status {
        sql.push_str(&format!(" AND status = {}", args.push(s.clone())));
    }
    if let Some((kind, id)) = &f.definition {
        sql.push_str(&format!(
            " AND kind = {} AND definition_id = {}",
            args.push(kind.clone()),
            args.push(id.clone())
        ));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await)
        .map_err(db_error)
}
