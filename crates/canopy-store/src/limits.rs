//! Shared rate-limit counters (for several nodes on one PostgreSQL) and per-key daily usage.

use canopy_core::Error;

use crate::{Store, Tx, db_error};

/// Adds one to `bucket`'s counter for the window and returns the new count, atomically.
pub async fn incr_counter(store: &Store, bucket: &str, window_start: i64) -> Result<i64, Error> {
    on_write!(store, c => sqlx::query_scalar(
        "INSERT INTO rate_counters (bucket, window_start, count) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING count",
    )
    .bind(bucket).bind(window_start).fetch_one(c).await)
    .map_err(db_error)
}

/// Deletes counters of windows that started before `before` (Unix seconds).
pub async fn purge_counters(store: &Store, before: i64) -> Result<u64, Error> {
    on_write!(store, c => sqlx::query("DELETE FROM rate_counters WHERE window_start < $1")
        .bind(before).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    pub key_id: String,
    pub day: String,
    pub route_group: String,
    pub requests: i64,
    pub rate_limited: i64,
}

/// Adds counts to the daily usage rows (one transaction for a whole flush).
pub async fn add_usage(tx: &mut Tx, rows: &[UsageRow]) -> Result<(), Error> {
    for r in rows {
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO key_usage_daily (key_id, day, route_group, requests, rate_limited) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key_id, day, route_group) DO UPDATE SET \
             requests = key_usage_daily.requests + excluded.requests, \
             rate_limited = key_usage_daily.rate_limited + excluded.rate_limited",
        )
        .bind(&r.key_id).bind(&r.day).bind(&r.route_group).bind(r.requests).bind(r.rate_limited)
        .execute(c).await.map(|r| r.rows_affected()))
        .map_err(db_error)?;
    }
    Ok(())
}

pub async fn list_usage(
    store: &Store,
    key_id: &str,
    since_day: &str,
) -> Result<Vec<UsageRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT * FROM key_usage_daily WHERE key_id = $1 AND day >= $2 ORDER BY day, route_group",
    )
    .bind(key_id).bind(since_day).fetch_all(c).await)
    .map_err(db_error)
}
