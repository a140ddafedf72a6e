//! What the MCP door needs besides operations: sessions of the handshake-era protocol
//! revisions, the agent's tool selection, and the 30-minute write-without-read window.
//!
//! Sessions and reads live in the database (`canopy_store::mcp`) so that a session started on
//! one node continues on another and a read on one node counts on every node. The small
//! in-memory [`McpTracker`] only saves writes: a session's `last_seen_at` is written at most
//! once a minute, and a read of a service at most once a minute per key and agent. Knows
//! nothing of JSON-RPC or HTTP.

use std::collections::HashMap;
use std::sync::Mutex;

use canopy_core::{Error, KeyId, Principal};
use canopy_store::mcp::{
    SessionRow, end_session, get_session, insert_session, last_read, purge, touch_session,
    upsert_read,
};

use crate::Services;
use crate::op::{Cx, Meta};

/// How long a read of a service counts for the write warning.
pub const READ_WINDOW_MS: i64 = 30 * 60_000;
/// Writes of `last_seen_at` and of reads happen at most this often per session / key+service.
const WRITE_EVERY_MS: i64 = 60_000;
/// Past this many remembered entries the in-memory maps start over (they only save writes).
const MAX_REMEMBERED: usize = 50_000;
/// A session unused this long is forgotten (its client gets 404 and initializes again).
const SESSION_IDLE_MS: i64 = 7 * 86_400_000;
/// An ended session is kept this long (for a look in the database), then forgotten.
const ENDED_KEPT_MS: i64 = 86_400_000;
/// Old sessions and reads are purged at most this often per process, from `start_session`.
const PURGE_EVERY_MS: i64 = 3_600_000;

/// (key, agent, service) → (latest read seen here, when a read was last written to the db).
type Reads = HashMap<ReadKey, (i64, i64)>;
/// Key, acting agent (if any), service.
type ReadKey = (KeyId, Option<String>, &'static str);

/// Per-process memory that spares the database repeated writes. Losing it costs only a write.
#[derive(Default)]
pub struct McpTracker {
    /// Session id → when this process last wrote its `last_seen_at`.
    touched: Mutex<HashMap<String, i64>>,
    reads: Mutex<Reads>,
    /// When this process last purged old sessions and reads.
    purged: Mutex<i64>,
}

/// A live session, as a request needs it.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub protocol_version: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new unguessable session id: 256 random bits, hex.
fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl McpTracker {
    /// Starts a session for the caller at `protocol_version`.
    pub async fn start_session(
        &self,
        svc: &Services,
        who: &Principal,
        protocol_version: &str,
        client_info: &serde_json::Value,
    ) -> Result<Session, Error> {
        let now = canopy_core::time::now_ms();
        let row = SessionRow {
            id: new_session_id(),
            org_id: who.org_id.db(),
            key_id: who.key_id.db(),
            protocol_version: protocol_version.to_owned(),
            client_info: client_info.to_string(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
        };
        insert_session(svc.store(), &row).await?;
        lock(&self.touched).insert(row.id.clone(), now);
        self.purge_if_due(svc, now);
        Ok(Session {
            id: row.id,
            protocol_version: row.protocol_version,
        })
    }

    /// The caller's live session `id`; `None` when it is unknown, ended or another key's (all
    /// answered 404 by the door, so a session id of another key reveals nothing).
    pub async fn session(
        &self,
        svc: &Services,
        who: &Principal,
        id: &str,
    ) -> Result<Option<Session>, Error> {
        let Some(row) = get_session(svc.store(), id).await? else {
            return Ok(None);
        };
        if row.ended_at.is_some() || row.key_id != who.key_id.db() || row.org_id != who.org_id.db()
        {
            return Ok(None);
        }
        let now = canopy_core::time::now_ms();
        if self.touch_due(&row.id, row.last_seen_at, now) {
            // Off the request path: a session's liveness stamp is not worth a wait.
            let store = svc.store().clone();
            let id = row.id.clone();
            tokio::spawn(async move {
                if let Err(e) = touch_session(&store, &id, now).await {
                    tracing::debug!(error = %e, "could not record an MCP session's last_seen_at");
                }
            });
        }
        Ok(Some(Session {
            id: row.id,
            protocol_version: row.protocol_version,
        }))
    }

    /// Every new session may trigger the hourly purge, off the request path.
    fn purge_if_due(&self, svc: &Services, now: i64) {
        {
            let mut last = lock(&self.purged);
            if now - *last < PURGE_EVERY_MS {
                return;
            }
            *last = now;
        }
        let store = svc.store().clone();
        tokio::spawn(async move {
            let r = purge(
                &store,
                now - SESSION_IDLE_MS,
                now - ENDED_KEPT_MS,
                now - READ_WINDOW_MS,
            )
            .await;
            match r {
                Ok((s, r)) => tracing::debug!(sessions = s, reads = r, "purged old MCP state"),
                Err(e) => tracing::warn!(error = %e, "could not purge old MCP sessions"),
            }
        });
    }

    fn touch_due(&self, id: &str, stored: i64, now: i64) -> bool {
        let mut map = lock(&self.touched);
        let last = map.get(id).copied().unwrap_or(stored).max(stored);
        if now - last < WRITE_EVERY_MS {
            return false;
        }
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(id.to_owned(), now);
        true
    }

    /// Ends the caller's session; `false` when it had no such live session.
    pub async fn end(&self, svc: &Services, who: &Principal, id: &str) -> Result<bool, Error> {
        lock(&self.touched).remove(id);
        end_session(
            svc.store(),
            id,
            &who.key_id.db(),
            canopy_core::time::now_ms(),
        )
        .await
    }

    /// Notes that the caller (key and agent) read `service` now.
    pub async fn note_read(
        &self,
        svc: &Services,
        who: &Principal,
        service: &'static str,
    ) -> Result<(), Error> {
        let now = canopy_core::time::now_ms();
        let key = read_key(who, service);
        let due = {
            let mut map = lock(&self.reads);
            let entry = map.get(&key).copied();
            let due = entry.is_none_or(|(_, written)| now - written >= WRITE_EVERY_MS);
            if map.len() >= MAX_REMEMBERED && entry.is_none() {
                map.clear();
            }
            let written = match (due, entry) {
                (false, Some((_, w))) => w,
                _ => now,
            };
            map.insert(key.clone(), (now, written));
            due
        };
        if due {
            // Awaited (once a minute at most): another node must see the read at once.
            let agent = key.1.as_deref().unwrap_or("");
            upsert_read(svc.store(), &key.0.db(), agent, service, now).await?;
        }
        Ok(())
    }

    /// Whether a write to `service` comes without a read of it by this key and agent in the
    /// last 30 minutes (on any node).
    pub async fn unread(
        &self,
        svc: &Services,
        who: &Principal,
        service: &'static str,
    ) -> Result<bool, Error> {
        let now = canopy_core::time::now_ms();
        let key = read_key(who, service);
        if let Some((seen, _)) = lock(&self.reads).get(&key).copied()
            && now - seen < READ_WINDOW_MS
        {
            return Ok(false);
        }
        let agent = key.1.as_deref().unwrap_or("");
        let stored = last_read(svc.store(), &key.0.db(), agent, service).await?;
        Ok(stored.is_none_or(|t| now - t >= READ_WINDOW_MS))
    }
}

fn read_key(who: &Principal, service: &'static str) -> ReadKey {
    (who.key_id, who.agent.clone(), service)
}

/// The named agent's non-empty `tools_allowed`, if it has one. An agent the project does not
/// define is refused as on every other route (422 `unknown_agent`).
pub async fn agent_tools(
    svc: &Services,
    who: &Principal,
    meta: Meta<'_>,
    agent: &str,
) -> Result<Option<Vec<String>>, Error> {
    let cx = Cx {
        svc,
        principal: who,
        request_id: meta.request_id,
        project_hint: meta.project,
        op: "tools/list",
        credits: 0,
    };
    let project = crate::knowledge::current_project(&cx).await?;
    let row =
        canopy_store::agents::find_agent(svc.store(), who.org_id, project, None, agent).await?;
    let Some(row) = row else {
        crate::agents::resolve_agent_header(&cx, agent).await?;
        return Ok(None);
    };
    let spec: crate::agents::AgentSpec = serde_json::from_str(&row.spec).unwrap_or_default();
    Ok(Some(spec.tools_allowed).filter(|t| !t.is_empty()))
}
