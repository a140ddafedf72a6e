//! A worker: claim the job due first, start it, run its executor under a heartbeat and a
//! timeout, complete it; sleep until woken when nothing is due.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use canopy_core::RunId;
use canopy_core::time::now_ms;
use canopy_store::engine::{self as db, JobRow, Lease};
use tokio_util::task::AbortOnDropHandle;

use crate::engine::Shared;
use crate::executor::{StepCall, StepError, StepOutput};
use crate::ops::{self, Begin, Chained, Execution};

/// Shortest sleep when a job is due but another worker holds it locked for a moment.
const MIN_NAP_MS: i64 = 2;

pub(crate) async fn run(shared: Arc<Shared>, n: usize) {
    let owner = format!("{}/{n}", shared.config.node_id);
    let poll_ms = i64::try_from(shared.config.poll.as_millis()).unwrap_or(1000);
    loop {
        if shared.stop.is_cancelled() {
            return;
        }
        // Registered before looking, so a wake-up between the look and the sleep is kept.
        let mut notified = pin!(shared.wake.jobs.notified());
        notified.as_mut().enable();
        let now = now_ms();
        match db::claim_job(&shared.store, &owner, now, now + shared.lease_ms()).await {
            Ok(Some(job)) => {
                handle(&shared, &owner, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "engine claim failed"),
        }
        let nap = match db::next_due(&shared.store).await {
            Ok(Some(t)) => (t - now_ms()).clamp(MIN_NAP_MS, poll_ms),
            _ => poll_ms,
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(nap.unsigned_abs())) => {}
            _ = shared.stop.cancelled() => return,
        }
    }
}

async fn handle(shared: &Arc<Shared>, owner: &str, job: JobRow) {
    let lease = Lease {
        job_id: job.id.clone(),
        owner: owner.to_owned(),
        attempts: job.attempts,
    };
    let now = now_ms();
    let begin = ops::begin_step(
        &shared.store,
        &shared.config.node_id,
        &job,
        &lease,
        now + shared.lease_ms(),
        now,
    )
    .await;
    let exec = match begin {
        Ok(Begin::Done(c)) => {
            shared.wake.committed(&job.run_id, &c, true);
            return;
        }
        Ok(Begin::Lost) => return,
        Ok(Begin::Execute(x, c)) => {
            shared.wake.committed(&job.run_id, &c, true);
            x
        }
        Err(e) => {
            // The lease runs out and the job is claimed again.
            tracing::warn!(error = %e, run = %job.run_id, step = %job.step_id, "engine could not start a step");
            return;
        }
    };
    let mut next = Some(Chained { job, lease, exec });
    // Each completion may hand this worker the next step of the same run (already claimed
    // and started in the completion's transaction), so a branch runs without a claim and a
    // start transaction between its steps.
    while let Some(Chained { job, lease, exec }) = next.take() {
        let Some(result) = execute(shared, &job, &lease, *exec).await else {
            tracing::debug!(run = %job.run_id, step = %job.step_id, "lease lost; result discarded");
            return;
        };
        let now = now_ms();
        // A stopping engine takes on nothing new.
        let chain = (!shared.stop.is_cancelled()).then(|| (owner, now + shared.lease_ms()));
        match ops::complete_step(
            &shared.store,
            &shared.config.node_id,
            &job,
            &lease,
            result,
            now,
            chain,
        )
        .await
        {
            Ok(Some((c, chained))) => {
                shared.wake.committed(&job.run_id, &c, true);
                next = chained;
            }
            Ok(None) => {
                tracing::debug!(run = %job.run_id, step = %job.step_id, "lease lost before completion; result discarded")
            }
            Err(e) => {
                tracing::warn!(error = %e, run = %job.run_id, step = %job.step_id, "engine could not complete a step")
            }
        }
    }
}

/// Runs the step's executor; `None` when the lease was lost meanwhile (the run was
/// cancelled, or another worker took the job over), in which case the execution is dropped.
async fn execute(
    shared: &Arc<Shared>,
    job: &JobRow,
    lease: &Lease,
    x: Execution,
) -> Option<Result<StepOutput, StepError>> {
    let kind = x.step.kind.clone();
    let Some(executor) = shared.config.executors.get(&kind) else {
        return Some(Err(StepError::fatal(
            "unknown_kind",
            format!("No executor is registered for step kind `{kind}`."),
        )));
    };
    let run_id = RunId::from_db(&job.run_id).unwrap_or_else(RunId::nil);
    let call = StepCall {
        idempotency_key: format!("{}:{}:{}:{}", run_id, x.step.id, x.item, x.attempt),
        run_id,
        org_id: x.org_id,
        project_id: x.project_id,
        step_id: x.step.id.clone(),
        item: u32::try_from(x.item).ok(),
        attempt: x.attempt,
        kind,
        config: x.step.config.clone(),
        input: x.input,
        context: x.context,
    };
    let timeout = x.step.timeout_ms.map(Duration::from_millis);
    // A task of its own: a panicking executor fails its attempt instead of the worker, and
    // dropping the handle (lease lost, engine aborted) stops it.
    let task = AbortOnDropHandle::new(tokio::spawn(async move {
        match timeout {
            Some(t) => tokio::time::timeout(t, executor.execute(call))
                .await
                .unwrap_or_else(|_| {
                    Err(StepError::retryable(
                        "timeout",
                        format!("The step took longer than {} ms.", t.as_millis()),
                    ))
                }),
            None => executor.execute(call).await,
        }
    }));
    let joined = with_heartbeat(shared, lease, task).await?;
    Some(joined.unwrap_or_else(|e| {
        Err(StepError::fatal(
            "executor_panicked",
            format!("The step's executor failed unexpectedly: {e}"),
        ))
    }))
}

/// Awaits `fut` while extending the lease every third of its length; `None` (and `fut`
/// dropped) as soon as an extension finds the lease gone.
async fn with_heartbeat<F: Future>(
    shared: &Arc<Shared>,
    lease: &Lease,
    fut: F,
) -> Option<F::Output> {
    let every = shared.config.lease / 3;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fut = pin!(fut);
    loop {
        tokio::select! {
            r = &mut fut => return Some(r),
            _ = tick.tick() => {
                match db::heartbeat(&shared.store, lease, now_ms() + shared.lease_ms()).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => tracing::warn!(error = %e, "engine heartbeat failed"),
                }
            }
        }
    }
}
