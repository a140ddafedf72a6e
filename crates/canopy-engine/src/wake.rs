//! Wake-ups: who is told when jobs become due or a run finishes.
//!
//! In one process a [`Notify`] wakes idle workers and callers waiting for a run the moment
//! a transaction commits. Across nodes, the same commits send PostgreSQL `NOTIFY`s (written
//! by the store inside the transaction, so they are delivered only if it commits), and one
//! `LISTEN` connection per engine turns them into the same in-process wake-ups. Workers also
//! poll slowly (every `EngineConfig::poll`) as a safety net for a notification lost while
//! the listener reconnected; that poll is never the main path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canopy_store::Store;
use canopy_store::engine::{self as db, Listener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::state::Committed;

#[derive(Default)]
pub(crate) struct Wake {
    /// Jobs were added or moved.
    pub jobs: Notify,
    /// Per run someone waits on: notified when it finishes. A std mutex: it is never held
    /// across an await.
    runs: Mutex<HashMap<String, Arc<Notify>>>,
    /// Per run someone tails (event streams): notified on every commit of this process that
    /// touched it. Other nodes' commits are not seen here; tails also read on a slow timer.
    changes: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wake {
    /// Tells local waiters what a commit changed. A worker that committed goes on to claim
    /// again itself, so it wakes one idle worker fewer than there are new due jobs: a linear
    /// branch then runs on one worker without the others racing it for every step (on SQLite
    /// each of those claims would queue on the single writer).
    pub fn committed(&self, run_id: &str, c: &Committed, by_worker: bool) {
        if c.jobs_changed {
            let wake = if by_worker {
                c.due_now.saturating_sub(1)
            } else {
                c.due_now.max(1)
            };
            for _ in 0..wake {
                self.jobs.notify_one();
            }
        }
        if c.finished {
            self.run_finished(run_id);
        }
        self.run_changed(run_id);
    }

    pub fn run_changed(&self, run_id: &str) {
        if let Ok(map) = self.changes.lock()
            && let Some(n) = map.get(run_id)
        {
            n.notify_waiters();
        }
    }

    pub fn run_finished(&self, run_id: &str) {
        if let Ok(map) = self.runs.lock()
            && let Some(n) = map.get(run_id)
        {
            n.notify_waiters();
        }
    }

    fn all_runs(&self) {
        for map in [&self.runs, &self.changes] {
            if let Ok(map) = map.lock() {
                for n in map.values() {
                    n.notify_waiters();
                }
            }
        }
    }

    /// A handle notified when `run_id` finishes; removes itself when the last one drops.
    pub fn watch(self: &Arc<Self>, run_id: &str) -> RunWatch {
        let notify = match self.runs.lock() {
            Ok(mut map) => map.entry(run_id.to_owned()).or_default().clone(),
            Err(_) => Arc::new(Notify::new()),
        };
        RunWatch {
            wake: self.clone(),
            run_id: run_id.to_owned(),
            notify,
            changes: false,
        }
    }

    /// A handle notified on every local commit that touches `run_id`.
    pub fn watch_changes(self: &Arc<Self>, run_id: &str) -> RunWatch {
        let notify = match self.changes.lock() {
            Ok(mut map) => map.entry(run_id.to_owned()).or_default().clone(),
            Err(_) => Arc::new(Notify::new()),
        };
        RunWatch {
            wake: self.clone(),
            run_id: run_id.to_owned(),
            notify,
            changes: true,
        }
    }
}

pub(crate) struct RunWatch {
    wake: Arc<Wake>,
    run_id: String,
    pub notify: Arc<Notify>,
    /// Watching every change rather than the finish only.
    changes: bool,
}

impl Drop for RunWatch {
    fn drop(&mut self) {
        let map = if self.changes {
            &self.wake.changes
        } else {
            &self.wake.runs
        };
        if let Ok(mut map) = map.lock()
            && map
                .get(&self.run_id)
                .is_some_and(|n| Arc::strong_count(n) <= 2)
        {
            map.remove(&self.run_id);
        }
    }
}

/// Forwards PostgreSQL notifications to local wake-ups until `stop`; reconnects on errors.
pub(crate) async fn forward(
    store: Store,
    node: String,
    mut listener: Listener,
    wake: Arc<Wake>,
    stop: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            n = listener.recv() => n,
        };
        match next {
            // Our own commits have woken our workers already.
            Ok(Some(n)) if n.channel == db::CHANNEL_JOBS && n.payload == node => {}
            Ok(Some(n)) if n.channel == db::CHANNEL_JOBS => wake.jobs.notify_waiters(),
            Ok(Some(n)) => wake.run_finished(&n.payload),
            Ok(None) => {
                // Reconnected: whatever was sent meanwhile is lost, so everyone looks again.
                wake.jobs.notify_waiters();
                wake.all_runs();
            }
            Err(e) => {
                tracing::warn!(error = %e, "engine listener failed; reconnecting");
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match db::listen(&store).await {
                        Ok(Some(l)) => {
                            listener = l;
                            break;
                        }
                        Ok(None) => return,
                        Err(e) => tracing::warn!(error = %e, "engine listener reconnect failed"),
                    }
                }
                wake.jobs.notify_waiters();
                wake.all_runs();
            }
        }
    }
}
