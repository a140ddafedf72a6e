//! Stored first responses for `Idempotency-Key` replays (kept 24 hours).

use canopy_core::Error;

use crate::{Store, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdemRow {
    pub request_hash: String,
    /// `None` while the first request is still being handled.
    pub status: Option<i64>,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
    pub created_at: i64,
}

/// Claims `(key, idem_key)` for a new request. Returns `None` when this call claimed it, or
/// the row that was already there.
pub async fn claim(
    store: &Store,
    key_id: &str,
    idem_key: &str,
    hash: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<Option<IdemRow>, Error> {
    // An expired row is dead: remove it so the key can be used afresh.
    on_write!(store, c => sqlx::query("DELETE FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2 AND created_at < $3")
        .bind(key_id).bind(idem_key).bind(now - ttl_ms).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    let inserted = on_write!(store, c => sqlx::query(
        "INSERT INTO idempotency_keys (key_id, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_id, idem_key) DO NOTHING",
    )
    .bind(key_id).bind(idem_key).bind(hash).bind(now).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    if inserted == 1 {
        return Ok(None);
    }
    on_write!(store, c => sqlx::query_as(
        "SELECT request_hash, status, content_type, body, created_at FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2",
    )
    .bind(key_id).bind(idem_key).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn complete(
    store: &Store,
    key_id: &str,
    idem_key: &str,
    status: i64,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), Error> {
    on_write!(store, c => sqlx::query(
        "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 WHERE key_id = $4 AND idem_key = $5",
    )
    .bind(status).bind(content_type).bind(body).bind(key_id).bind(idem_key).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

/// Forgets a claim whose request failed in a way that must not be replayed (5xx).
pub async fn release(store: &Store, key_id: &str, idem_key: &str) -> Result<(), Error> {
    on_write!(store, c => sqlx::query("DELETE FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2")
        .bind(key_id).bind(idem_key).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn purge_older_than(store: &Store, cutoff: i64) -> Result<u64, Error> {
    on_write!(store, c => sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)
}
