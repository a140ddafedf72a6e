//! The audit log: one row per mutation, written in the mutation's own transaction.

use canopy_core::{Error, OrgId, PageRequest};

use crate::args::{Args, insert_rows, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub org_id: String,
    pub project_id: Option<String>,
    pub key_id: Option<String>,
    pub agent: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub created_at: i64,
}

const INSERT: &str = "INSERT INTO audit_log (id, org_id, project_id, key_id, agent, action, target, request_id, \
     outcome, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

macro_rules! bind_audit {
    ($q:expr, $a:expr) => {
        $q.bind(&$a.id)
            .bind(&$a.org_id)
            .bind(&$a.project_id)
            .bind(&$a.key_id)
            .bind(&$a.agent)
            .bind(&$a.action)
            .bind(&$a.target)
            .bind(&$a.request_id)
            .bind(&$a.outcome)
            .bind(&$a.detail)
            .bind($a.created_at)
    };
}

/// Writes an audit row inside the transaction that makes the change.
pub async fn insert_audit(tx: &mut Tx, a: &AuditRow) -> Result<(), Error> {
    on_tx!(tx, c => bind_audit!(sqlx::query(INSERT), a).execute(c).await.map(|r| r.rows_affected())).map_err(db_error)?;
    Ok(())
}

/// Writes many audit rows in a few multi-row statements (a group of changes committed together).
pub async fn insert_audits(tx: &mut Tx, rows: &[AuditRow]) -> Result<(), Error> {
    insert_rows(
        tx,
        rows,
        "INSERT INTO audit_log (id, org_id, project_id, key_id, agent, action, target, request_id, outcome, detail, created_at)",
        "",
        |args, a| {
            vec![
                args.push(a.id.as_str()),
                args.push(a.org_id.as_str()),
                args.push_opt(a.project_id.as_deref()),
                args.push_opt(a.key_id.as_deref()),
                args.push_opt(a.agent.as_deref()),
                args.push(a.action.as_str()),
                args.push_opt(a.target.as_deref()),
                args.push_opt(a.request_id.as_deref()),
                args.push(a.outcome.as_str()),
                args.push_opt(a.detail.as_deref()),
                args.push(a.created_at),
            ]
        },
    )
    .await
}

/// Writes an audit row on its own (for refused or failed mutations, whose change rolled back).
pub async fn insert_audit_alone(store: &Store, a: &AuditRow) -> Result<(), Error> {
    on_write!(store, c => bind_audit!(sqlx::query(INSERT), a).execute(c).await.map(|r| r.rows_affected())).map_err(db_error)?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub project: Option<String>,
    pub key: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
}

pub async fn list_audit(
    store: &Store,
    org: OrgId,
    f: &AuditFilter,
    page: &PageRequest,
) -> Result<Vec<AuditRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM audit_log WHERE org_id = {}",
        args.push(org.db())
    );
    for (col, val) in [
        ("project_id", &f.project),
        ("key_id", &f.key),
        ("action", &f.action),
        ("target", &f.target),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    if let Some(since) = f.since {
        sql.push_str(&format!(" AND created_at >= {}", args.push(since)));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}
