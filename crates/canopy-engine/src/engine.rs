//! The engine handle: start workers, submit and inspect runs, decide approvals, and control
//! runs (cancel, pause, resume, retry a step, recover).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use canopy_core::time::now_ms;
use canopy_core::{Error, RunId};
use canopy_store::Store;
use canopy_store::engine as db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::executor::Executors;
use crate::model::{Decision, Event, Run, RunSpec, RunStatus};
use crate::wake::{self, Wake};
use crate::{ops, view, worker};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker tasks; each runs one step at a time. 0 makes an engine that only submits and
    /// reads (another node executes).
    pub workers: usize,
    /// How long a claim holds a job without a heartbeat. Heartbeats come every third of it;
    /// a crashed worker's job is taken over once it runs out.
    pub lease: Duration,
    /// This node's name in `lease_owner` (unique per process).
    pub node_id: String,
    /// The safety-net poll of idle workers and run waiters.
    pub poll: Duration,
    pub executors: Executors,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 4,
            lease: Duration::from_secs(30),
            node_id: format!("node-{}", uuid::Uuid::new_v4().simple()),
            poll: Duration::from_secs(1),
            executors: Executors::default(),
        }
    }
}

/// What workers share. Holds nothing that owns the workers, so no reference cycle keeps
/// them alive after the last [`Engine`] is gone.
pub(crate) struct Shared {
    pub store: Store,
    pub config: EngineConfig,
    pub wake: Arc<Wake>,
    pub stop: CancellationToken,
}

impl Shared {
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

struct Tasks {
    stop: CancellationToken,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Tasks {
    /// Without [`Engine::shutdown`], the tasks stop like a crash: leases run out and another
    /// engine takes over.
    fn drop(&mut self) {
        self.stop.cancel();
        if let Ok(hs) = self.handles.lock() {
            for h in hs.iter() {
                h.abort();
            }
        }
    }
}

/// See [`Engine::watch_run`].
pub struct RunChanges(crate::wake::RunWatch);

impl RunChanges {
    /// A wake-up for the next change, registered at once: create it before reading, await it
    /// after, and no change in between is missed.
    pub fn next(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut n = Box::pin(self.0.notify.notified());
        n.as_mut().enable();
        n
    }
}

/// A running engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    tasks: Arc<Tasks>,
}

impl Engine {
    /// Starts the workers (and, on PostgreSQL, the listener for other nodes' wake-ups).
    pub async fn start(store: Store, config: EngineConfig) -> Result<Engine, Error> {
        if config.lease < Duration::from_millis(30) {
            return Err(Error::validation(
                "lease",
                "The lease must be at least 30 ms.",
            ));
        }
        if config.poll < Duration::from_millis(10) {
            return Err(Error::validation(
                "poll",
                "The safety poll must be at least 10 ms.",
            ));
        }
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            store: store.clone(),
            config,
            wake: Arc::new(Wake::default()),
            stop: stop.clone(),
        });
        let mut handles = Vec::new();
        // Listening starts before the first claim, so nothing committed after it is missed.
        if let Some(listener) = db::listen(&store).await? {
            handles.push(tokio::spawn(wake::forward(
                store,
                shared.config.node_id.clone(),
                listener,
                shared.wake.clone(),
                stop.clone(),
            )));
        }
        for n in 0..shared.config.workers {
            handles.push(tokio::spawn(worker::run(shared.clone(), n)));
        }
        Ok(Engine {
            shared,
            tasks: Arc::new(Tasks {
                stop,
                handles: Mutex::new(handles),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Validates the graph and queues a run; answers its id at once.
    pub async fn submit(&self, spec: RunSpec) -> Result<RunId, Error> {
        let (id, c) = ops::submit(
            &self.shared.store,
            &self.shared.config.node_id,
            spec,
            now_ms(),
        )
        .await?;
        self.shared.wake.committed(&id.db(), &c, false);
        Ok(id)
    }

    /// Starts a manual run (see [`crate::manual`]): no job is queued; `first` (say, the
    /// first step becoming active) is applied in the same transaction.
    pub async fn submit_manual(
        &self,
        spec: RunSpec,
        first: crate::manual::ManualChange,
    ) -> Result<RunId, Error> {
        let (id, c) = crate::manual::submit(
            &self.shared.store,
            &self.shared.config.node_id,
            spec,
            first,
            now_ms(),
        )
        .await?;
        self.shared.wake.committed(&id.db(), &c, false);
        Ok(id)
    }

    /// Applies one transition to a manual run: `decide` sees the run as it is under its
    /// row lock and answers the change (or refuses, changing nothing); the change, its
    /// events and its audit record commit together. Answers the run after the change.
    pub async fn apply_manual<F>(&self, id: RunId, decide: F) -> Result<Run, Error>
    where
        F: FnOnce(&Run) -> Result<crate::manual::ManualChange, Error> + Send,
    {
        let (run, c) = crate::manual::change(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            decide,
            now_ms(),
        )
        .await?;
        self.shared.wake.committed(&id.db(), &c, false);
        Ok(run)
    }

    /// A run with its step runs.
    pub async fn get(&self, id: RunId) -> Result<Run, Error> {
        let key = id.db();
        let row = db::get_run(&self.shared.store, &key)
            .await?
            .ok_or_else(|| Error::not_found("Run"))?;
        let steps = db::list_step_runs(&self.shared.store, &key).await?;
        view::run(row, steps)
    }

    /// Events with `seq > after_seq`, oldest first, at most `limit` (1..=1000).
    pub async fn events(&self, id: RunId, after_seq: i64, limit: i64) -> Result<Vec<Event>, Error> {
        let key = id.db();
        let rows =
            db::list_events(&self.shared.store, &key, after_seq, limit.clamp(1, 1000)).await?;
        // Nothing new for a run that exists; `not_found` for one that does not.
        if rows.is_empty()
            && db::get_run_status(&self.shared.store, &key)
                .await?
                .is_none()
        {
            return Err(Error::not_found("Run"));
        }
        Ok(rows.into_iter().map(view::event).collect())
    }

    /// Cancels a run: no further step starts, a running step's result is discarded.
    pub async fn cancel(&self, id: RunId) -> Result<Run, Error> {
        let c = ops::cancel(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            now_ms(),
        )
        .await?;
        self.after_control(id, &c).await
    }

    /// After a control transaction: wake whom it concerns, answer the run as it now is.
    async fn after_control(&self, id: RunId, c: &crate::state::Committed) -> Result<Run, Error> {
        self.shared.wake.committed(&id.db(), c, false);
        self.get(id).await
    }

    /// Pauses a run: no new step starts (on any node) until [`Engine::resume`]; steps
    /// executing now finish and are recorded. A final run is a conflict; a paused one is
    /// left as it is.
    pub async fn pause(&self, id: RunId) -> Result<Run, Error> {
        let c = ops::pause(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            now_ms(),
        )
        .await?;
        self.after_control(id, &c).await
    }

    /// Resumes a paused run (anything else is a conflict): what became ready meanwhile starts.
    pub async fn resume(&self, id: RunId) -> Result<Run, Error> {
        let c = ops::resume(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            now_ms(),
        )
        .await?;
        self.after_control(id, &c).await
    }

    /// Retries the failed (or cancelled) step `step` of a failed run with a fresh retry
    /// budget (attempt numbers go on counting); the steps cancelled by the failure are reset
    /// too and the run goes on.
    pub async fn retry_step(&self, id: RunId, step: &str) -> Result<Run, Error> {
        let c = ops::retry_step(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            step,
            now_ms(),
        )
        .await?;
        self.after_control(id, &c).await
    }

    /// Recovers a failed run: reruns every failed step and recomputes everything that
    /// depends on one; other finished steps keep their results.
    pub async fn recover(&self, id: RunId) -> Result<Run, Error> {
        let c = ops::recover(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            now_ms(),
        )
        .await?;
        self.after_control(id, &c).await
    }

    /// Decides the approval step `step` of a run; it must be waiting.
    pub async fn decide_approval(
        &self,
        id: RunId,
        step: &str,
        decision: Decision,
        comment: Option<String>,
    ) -> Result<Run, Error> {
        let c = ops::decide(
            &self.shared.store,
            &self.shared.config.node_id,
            id,
            step,
            decision,
            comment,
            now_ms(),
        )
        .await?;
        self.after_control(id, &c).await
    }

    /// A handle that wakes when this process commits a change to the run (its event log
    /// grew). Commits on other nodes do not wake it: callers also look on a timer.
    pub fn watch_run(&self, id: RunId) -> RunChanges {
        RunChanges(self.shared.wake.watch_changes(&id.db()))
    }

    /// Waits until the run is final or `timeout` passes, then answers it as it is (a sync
    /// run whose time is up simply carries on, asynchronously).
    pub async fn wait_finished(&self, id: RunId, timeout: Duration) -> Result<Run, Error> {
        let key = id.db();
        let watch = self.shared.wake.watch(&key);
        // A timeout too large to add is as good as a day.
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400));
        loop {
            let mut notified = std::pin::pin!(watch.notify.notified());
            notified.as_mut().enable();
            let status = db::get_run_status(&self.shared.store, &key)
                .await?
                .ok_or_else(|| Error::not_found("Run"))?;
            if RunStatus::parse(&status).is_none_or(RunStatus::is_final) {
                break;
            }
            let nap = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(self.shared.config.poll);
            if nap.is_zero() {
                break;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
        drop(watch);
        self.get(id).await
    }

    /// Stops claiming, lets steps in flight finish (each completes or is left to its lease),
    /// and waits for every task.
    pub async fn shutdown(&self) {
        self.tasks.stop.cancel();
        let handles: Vec<JoinHandle<()>> = match self.tasks.handles.lock() {
            Ok(mut hs) => hs.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for h in handles {
            let _ = h.await;
        }
    }

    /// Stops every task at once, mid-step, like a crash: leases held now run out and another
    /// engine takes the jobs over. (For tests and fast exits.)
    pub fn abort(&self) {
        self.tasks.stop.cancel();
        if let Ok(hs) = self.tasks.handles.lock() {
            for h in hs.iter() {
                h.abort();
            }
        }
    }
}
