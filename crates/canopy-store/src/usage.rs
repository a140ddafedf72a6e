//! Credits: charging an action against monthly totals and caps, in the caller's transaction.
//!
//! A subject is `org:<id>` or `prj:<id>`. The charge is one conditional increment of the
//! subject's monthly total (`used + cost <= cap`): PostgreSQL locks that row, so concurrent
//! writers queue on it and re-check; SQLite has one writer. Either way a cap is never passed.

use canopy_core::Error;

use crate::{Store, Tx, db_error};

/// Adds `cost` to the subject's month unless it would pass `cap`. Returns `Ok(None)` when
/// charged, or `Ok(Some(used))` with the current total when the cap refuses it.
pub async fn try_charge(
    tx: &mut Tx,
    subject: &str,
    month: &str,
    cost: i64,
    cap: Option<i64>,
) -> Result<Option<i64>, Error> {
    on_tx!(tx, c => sqlx::query("INSERT INTO usage_totals (subject, month, used) VALUES ($1, $2, 0) ON CONFLICT (subject, month) DO NOTHING")
        .bind(subject).bind(month).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    let limit = cap.unwrap_or(i64::MAX / 2);
    let charged: Option<i64> = on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE usage_totals SET used = used + $3 WHERE subject = $1 AND month = $2 AND used + $3 <= $4 RETURNING used",
    )
    .bind(subject).bind(month).bind(cost).bind(limit).fetch_optional(c).await)
    .map_err(db_error)?;
    if charged.is_some() {
        return Ok(None);
    }
    let used: i64 = on_tx!(tx, c => sqlx::query_scalar("SELECT used FROM usage_totals WHERE subject = $1 AND month = $2")
        .bind(subject).bind(month).fetch_one(c).await)
    .map_err(db_error)?;
    Ok(Some(used))
}

#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub id: String,
    pub org_id: String,
    pub project_id: Option<String>,
    pub month: String,
    pub action: String,
    pub credits: i64,
    pub key_id: Option<String>,
    pub created_at: i64,
}

pub async fn insert_ledger(tx: &mut Tx, r: &LedgerRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO usage_ledger (id, org_id, project_id, month, action, credits, key_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.month).bind(&r.action).bind(r.credits).bind(&r.key_id).bind(r.created_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_cap_tx(tx: &mut Tx, subject: &str) -> Result<Option<i64>, Error> {
    on_tx!(tx, c => sqlx::query_scalar("SELECT cap FROM spending_caps WHERE subject = $1").bind(subject).fetch_optional(c).await).map_err(db_error)
}

pub async fn get_cap(store: &Store, subject: &str) -> Result<Option<i64>, Error> {
    on_db!(store, c => sqlx::query_scalar("SELECT cap FROM spending_caps WHERE subject = $1").bind(subject).fetch_optional(c).await).map_err(db_error)
}

/// Sets a cap, or removes it with `None`.
pub async fn set_cap(tx: &mut Tx, subject: &str, cap: Option<i64>, now: i64) -> Result<(), Error> {
    match cap {
        Some(cap) => on_tx!(tx, c => sqlx::query(
            "INSERT INTO spending_caps (subject, cap, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (subject) DO UPDATE SET cap = excluded.cap, updated_at = excluded.updated_at",
        )
        .bind(subject).bind(cap).bind(now).execute(c).await.map(|r| r.rows_affected())),
        None => on_tx!(tx, c => sqlx::query("DELETE FROM spending_caps WHERE subject = $1").bind(subject).execute(c).await.map(|r| r.rows_affected())),
    }
    .map_err(db_error)?;
    Ok(())
}

pub async fn month_used(store: &Store, subject: &str, month: &str) -> Result<i64, Error> {
    let v: Option<i64> = on_db!(store, c => sqlx::query_scalar("SELECT used FROM usage_totals WHERE subject = $1 AND month = $2")
        .bind(subject).bind(month).fetch_optional(c).await)
    .map_err(db_error)?;
    Ok(v.unwrap_or(0))
}

/// (action, count, credits) for a project (or the whole org with `project = None`) in a month.
pub async fn by_action(
    store: &Store,
    org: &str,
    project: Option<&str>,
    month: &str,
) -> Result<Vec<(String, i64, i64)>, Error> {
    let rows: Vec<(String, i64, i64)> = match project {
        Some(p) => on_db!(store, c => sqlx::query_as(
            "SELECT action, COUNT(*), CAST(SUM(credits) AS BIGINT) FROM usage_ledger WHERE org_id = $1 AND project_id = $2 AND month = $3 GROUP BY action ORDER BY action",
        ).bind(org).bind(p).bind(month).fetch_all(c).await),
        None => on_db!(store, c => sqlx::query_as(
            "SELECT action, COUNT(*), CAST(SUM(credits) AS BIGINT) FROM usage_ledger WHERE org_id = $1 AND month = $2 GROUP BY action ORDER BY action",
        ).bind(org).bind(month).fetch_all(c).await),
    }
    .map_err(db_error)?;
    Ok(rows)
}
