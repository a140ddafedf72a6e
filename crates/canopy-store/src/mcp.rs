//! MCP sessions (handshake-era protocol revisions) and the per key-and-agent record of which
//! services were last read through MCP.

use canopy_core::Error;

use crate::{Store, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub org_id: String,
    pub key_id: String,
    pub protocol_version: String,
    /// JSON object: the client's `clientInfo`.
    pub client_info: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ended_at: Option<i64>,
}

pub async fn insert_session(store: &Store, s: &SessionRow) -> Result<(), Error> {
    on_write!(store, c => sqlx::query(
        "INSERT INTO mcp_sessions (id, org_id, key_id, protocol_version, client_info, created_at, last_seen_at, ended_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&s.id).bind(&s.org_id).bind(&s.key_id).bind(&s.protocol_version).bind(&s.client_info)
    .bind(s.created_at).bind(s.last_seen_at).bind(s.ended_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_session(store: &Store, id: &str) -> Result<Option<SessionRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT id, org_id, key_id, protocol_version, client_info, created_at, last_seen_at, ended_at \
         FROM mcp_sessions WHERE id = $1",
    )
    .bind(id).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn touch_session(store: &Store, id: &str, now: i64) -> Result<(), Error> {
    on_write!(store, c => sqlx::query("UPDATE mcp_sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
        .bind(now).bind(id).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

/// Ends a live session of `key_id`; `false` when there was none to end.
pub async fn end_session(store: &Store, id: &str, key_id: &str, now: i64) -> Result<bool, Error> {
    let n = on_write!(store, c => sqlx::query(
        "UPDATE mcp_sessions SET ended_at = $1 WHERE id = $2 AND key_id = $3 AND ended_at IS NULL",
    )
    .bind(now).bind(id).bind(key_id).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n == 1)
}

/// Records a read of `service` at `now` (keeping the latest time).
pub async fn upsert_read(
    store: &Store,
    key_id: &str,
    agent: &str,
    service: &str,
    now: i64,
) -> Result<(), Error> {
    on_write!(store, c => sqlx::query(
        "INSERT INTO mcp_reads (key_id, agent, service, read_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_id, agent, service) DO UPDATE SET read_at = excluded.read_at \
         WHERE mcp_reads.read_at < excluded.read_at",
    )
    .bind(key_id).bind(agent).bind(service).bind(now)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

/// When `service` was last read by this key and agent, if ever.
pub async fn last_read(
    store: &Store,
    key_id: &str,
    agent: &str,
    service: &str,
) -> Result<Option<i64>, Error> {
    on_db!(store, c => sqlx::query_scalar(
        "SELECT read_at FROM mcp_reads WHERE key_id = $1 AND agent = $2 AND service = $3",
    )
    .bind(key_id).bind(agent).bind(service).fetch_optional(c).await)
    .map_err(db_error)
}

/// Forgets sessions idle since `idle_before` or ended before `ended_before`, and reads older
/// than `reads_before`. Returns (sessions, reads) removed.
pub async fn purge(
    store: &Store,
    idle_before: i64,
    ended_before: i64,
    reads_before: i64,
) -> Result<(u64, u64), Error> {
    let sessions = on_write!(store, c => sqlx::query(
        "DELETE FROM mcp_sessions WHERE last_seen_at < $1 OR ended_at < $2",
    )
    .bind(idle_before).bind(ended_before).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    let reads = on_write!(store, c => sqlx::query("DELETE FROM mcp_reads WHERE read_at < $1")
        .bind(reads_before).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok((sessions, reads))
}
