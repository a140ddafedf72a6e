//! The engine's transactions: submit, start a claimed step, complete it, decide an approval,
//! and the run controls (cancel, pause, resume, retry a step, recover). Each opens one
//! [`RunTx`], applies transitions and commits.
//!
//! A transaction that acts through a job checks the job is still leased to this claim by
//! writing through the lease (delete, reschedule or extend with `lease_owner` and `attempts`
//! in the `WHERE`); if that touches no row someone else owns the job now, the transaction is
//! dropped (rolled back) and nothing of this worker's result is kept.

use std::collections::BTreeSet;

use canopy_core::{Error, RunId};
use canopy_store::Store;
use canopy_store::engine::{self as db, ApprovalRow, JobRow, Lease, RunRow};
use serde_json::{Value, json};

use crate::builtin::{ApprovalConfig, OnTimeout, wait_duration};
use crate::executor::{StepError, StepOutput};
use crate::model::{Decision, RunSpec, RunStatus, StepDef, StepStatus};
use crate::state::{Committed, RunTx};
use crate::validate::validate;

/// Takeovers of one attempt (its worker died mid-step) before the step fails as `abandoned`.
pub const MAX_TAKEOVERS: i64 = 5;

/// What a worker does with a claimed job after the start transaction.
pub(crate) enum Begin {
    /// Nothing to execute: the job was stale, or a built-in step moved on by itself.
    Done(Committed),
    /// Run the step's executor.
    Execute(Box<Execution>, Committed),
    /// The lease is no longer ours.
    Lost,
}

pub(crate) struct Execution {
    pub org_id: String,
    pub project_id: String,
    pub step: StepDef,
    pub item: i64,
    pub attempt: u32,
    pub input: Value,
    pub context: Value,
}

pub(crate) async fn submit(
    store: &Store,
    node: &str,
    spec: RunSpec,
    now: i64,
) -> Result<(RunId, Committed), Error> {
    validate(&spec.definition)?;
    let id = RunId::new();
    let row = RunRow {
        id: id.db(),
        org_id: spec.org_id.db(),
        project_id: spec.project_id.db(),
        kind: spec.kind.as_str().to_owned(),
        definition_id: spec.definition_id,
        definition_version: spec.definition_version,
        definition: serde_json::to_string(&spec.definition)?,
        status: RunStatus::Queued.as_str().to_owned(),
        input: spec.input.to_string(),
        output: None,
        error: None,
        last_seq: 0,
        created_at: now,
        started_at: None,
        finished_at: None,
        updated_at: now,
    };
    let mut tx = store.begin().await?;
    db::insert_run(&mut tx, &row).await?;
    let mut rt = RunTx::new(tx, row, now)?;
    rt.event("run.queued", None, None, json!({}));
    rt.start_roots();
    Ok((id, rt.commit(node).await?))
}

/// The start transaction of a claimed job.
pub(crate) async fn begin_step(
    store: &Store,
    node: &str,
    job: &JobRow,
    lease: &Lease,
    lease_until: i64,
    now: i64,
) -> Result<Begin, Error> {
    let Some(mut rt) = RunTx::open(store, &job.run_id, now).await? else {
        return Ok(Begin::Lost);
    };
    let (step, item) = (job.step_id.as_str(), job.item);
    let status = rt.step_status(step, item);
    let def = rt.step_def(step);
    let (Some(s), Some(status)) = (def, status) else {
        return drop_job(rt, lease, node).await;
    };
    // A manual run never has jobs; one that appeared anyway is not the workers' to run.
    if rt.status().is_final() || status.is_final() || rt.is_manual() {
        return drop_job(rt, lease, node).await;
    }
    // Checked here, under the run's lock, and not at the claim: a job claimed (on any node)
    // just before the pause committed is still held back. Timers that fall due meanwhile
    // are held too; they fire at the resume.
    if rt.status() == RunStatus::Paused {
        if !db::park_leased_job(rt.tx(), lease).await? {
            return Ok(Begin::Lost);
        }
        return Ok(Begin::Done(rt.commit(node).await?));
    }
    match (s.kind.as_str(), status) {
        ("wait", StepStatus::Pending) => match wait_duration(&s.config, now) {
            Ok(until) => {
                if !db::reschedule_leased_job(rt.tx(), lease, until).await? {
                    return Ok(Begin::Lost);
                }
                rt.jobs_changed = true;
                rt.mark_running();
                suspend(
                    &mut rt,
                    step,
                    item,
                    json!({"reason": "timer", "until": until}),
                );
                Ok(Begin::Done(rt.commit(node).await?))
            }
            Err(m) => {
                finish_through(
                    rt,
                    lease,
                    node,
                    step,
                    item,
                    Err(StepError::fatal("invalid_config", m)),
                )
                .await
            }
        },
        ("wait", StepStatus::Waiting) => {
            let started = rt.row(step, item).and_then(|r| r.started_at);
            let out = json!({"started_at": started, "fired_at": now});
            finish_through(rt, lease, node, step, item, Ok(out)).await
        }
        ("approval", StepStatus::Pending) => {
            let cfg = match ApprovalConfig::parse(&s.config) {
                Ok(c) => c,
                Err((_, m)) => {
                    let e = StepError::fatal("invalid_config", m);
                    return finish_through(rt, lease, node, step, item, Err(e)).await;
                }
            };
            let expires = cfg.timeout_ms.map(|t| now.saturating_add(t));
            let held = match expires {
                Some(at) => db::reschedule_leased_job(rt.tx(), lease, at).await?,
                None => db::delete_leased_job(rt.tx(), lease).await?,
            };
            if !held {
                return Ok(Begin::Lost);
            }
            rt.jobs_changed = expires.is_some();
            let approval = ApprovalRow {
                run_id: job.run_id.clone(),
                step_id: step.to_owned(),
                item,
                prompt: cfg.prompt.clone(),
                requested_at: now,
                expires_at: expires,
                decision: None,
                comment: None,
                decided_at: None,
            };
            db::upsert_approval(rt.tx(), &approval).await?;
            rt.mark_running();
            let data = json!({"reason": "approval", "prompt": cfg.prompt, "expires_at": expires});
            suspend(&mut rt, step, item, data);
            Ok(Begin::Done(rt.commit(node).await?))
        }
        ("approval", StepStatus::Waiting) => {
            // The decision did not come in time.
            let cfg = ApprovalConfig::parse(&s.config).ok();
            let on_timeout = cfg.map_or(OnTimeout::Reject, |c| c.on_timeout);
            let (decision, result) = match on_timeout {
                OnTimeout::Approve => (
                    "approve",
                    Ok(json!({"decision": "approve", "comment": null, "timed_out": true})),
                ),
                OnTimeout::Reject => (
                    "reject",
                    Err(StepError::fatal(
                        "rejected",
                        "No decision came in time; the approval was rejected.",
                    )),
                ),
                OnTimeout::Fail => (
                    "timeout",
                    Err(StepError::fatal(
                        "approval_timeout",
                        "No decision came in time.",
                    )),
                ),
            };
            record_decision(&mut rt, step, decision, None, now, true).await?;
            finish_through(rt, lease, node, step, item, result).await
        }
        (_, StepStatus::Pending | StepStatus::Running) => {
            let takeover = status == StepStatus::Running;
            // Each claim either starts an attempt or takes one over, so the claims beyond the
            // attempts are takeovers. A step whose worker keeps dying is not tried forever.
            // Attempts before a reset (retry, recover) were made through an earlier job.
            let attempts = rt.row(step, item).map_or(0, |r| r.attempt - r.attempt_base);
            if takeover && job.attempts - attempts > MAX_TAKEOVERS {
                let e = StepError::fatal(
                    "abandoned",
                    format!(
                        "The step's worker stopped mid-step {} times; it is not tried again.",
                        job.attempts - attempts
                    ),
                );
                return finish_through(rt, lease, node, step, item, Err(e)).await;
            }
            if !db::extend_lease_tx(rt.tx(), lease, lease_until).await? {
                return Ok(Begin::Lost);
            }
            let exec = match start_attempt(&mut rt, s, item, takeover, node) {
                Ok(x) => x,
                Err(m) => {
                    let e = StepError::fatal("invalid_input", m);
                    return finish_through(rt, lease, node, step, item, Err(e)).await;
                }
            };
            let c = rt.commit(node).await?;
            Ok(Begin::Execute(Box::new(exec), c))
        }
        (_, _) => drop_job(rt, lease, node).await,
    }
}

/// Starts an attempt of a pending (or taken-over) step run: resolves its input, marks it
/// running and records `step.started`. `Err` (the input does not resolve) changes nothing.
fn start_attempt(
    rt: &mut RunTx,
    s: StepDef,
    item: i64,
    takeover: bool,
    node: &str,
) -> Result<Execution, String> {
    let (context, input) = rt.step_input(&s, item)?;
    let now = rt.now;
    let row = rt.row_mut(&s.id, item);
    if !takeover {
        row.attempt += 1;
    }
    let attempt = row.attempt.max(1);
    row.attempt = attempt;
    row.status = StepStatus::Running.as_str().to_owned();
    row.started_at = Some(now);
    row.error = None;
    if item < 0 {
        row.input = Some(input.to_string());
    }
    let it = (item >= 0).then_some(item);
    rt.mark_running();
    rt.event(
        "step.started",
        Some(&s.id),
        it,
        json!({"attempt": attempt, "takeover": takeover, "node": node}),
    );
    Ok(Execution {
        org_id: rt.run.org_id.clone(),
        project_id: rt.run.project_id.clone(),
        step: s,
        item,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        input,
        context,
    })
}

/// In a completion transaction: claims one step run the completion made due, the way a
/// worker's claim and start transaction would, so the worker runs it next without two more
/// transactions (a linear branch runs step after step on one worker). Only steps a worker
/// executes (not `wait`/`approval`, which the start transaction handles), and only while the
/// run is running; `None` leaves every job to the claims.
fn chain_next(rt: &mut RunTx, owner: &str, node: &str, lease_until: i64) -> Option<Chained> {
    if rt.status() != RunStatus::Running || rt.is_manual() {
        return None;
    }
    for (index, s, item) in rt.due_new_jobs() {
        if matches!(s.kind.as_str(), "wait" | "approval")
            || rt.step_status(&s.id, item) != Some(StepStatus::Pending)
        {
            continue;
        }
        // A step whose input does not resolve is left to the start transaction, which
        // fails it through its job.
        let Ok(exec) = start_attempt(rt, s, item, false, node) else {
            continue;
        };
        let job = rt.lease_new_job(index, owner, lease_until)?;
        return Some(Chained {
            lease: Lease {
                job_id: job.id.clone(),
                owner: owner.to_owned(),
                attempts: job.attempts,
            },
            job,
            exec: Box::new(exec),
        });
    }
    None
}

/// A step run a completion claimed for the same worker (see [`chain_next`]).
pub(crate) struct Chained {
    pub job: JobRow,
    pub lease: Lease,
    pub exec: Box<Execution>,
}

/// A step run goes `waiting` (a timer, an approval).
fn suspend(rt: &mut RunTx, step: &str, item: i64, data: Value) {
    let now = rt.now;
    let row = rt.row_mut(step, item);
    row.status = StepStatus::Waiting.as_str().to_owned();
    row.attempt = row.attempt.max(1);
    row.started_at = Some(now);
    let it = (item >= 0).then_some(item);
    rt.event("step.waiting", Some(step), it, data);
    rt.settle();
}

/// Removes a job that has nothing left to do.
async fn drop_job(mut rt: RunTx, lease: &Lease, node: &str) -> Result<Begin, Error> {
    if !db::delete_leased_job(rt.tx(), lease).await? {
        return Ok(Begin::Lost);
    }
    Ok(Begin::Done(rt.commit(node).await?))
}

/// Deletes the job through its lease and records the step's final result.
async fn finish_through(
    mut rt: RunTx,
    lease: &Lease,
    node: &str,
    step: &str,
    item: i64,
    result: Result<Value, StepError>,
) -> Result<Begin, Error> {
    if !db::delete_leased_job(rt.tx(), lease).await? {
        return Ok(Begin::Lost);
    }
    rt.finish(step, item, result);
    Ok(Begin::Done(rt.commit(node).await?))
}

/// The completion transaction: the attempt's result, a retry, or the step's final state.
/// `None` when the lease was lost (the result is discarded). With `chain` (the worker's
/// owner name and a lease end), a step run the completion made due is claimed for the same
/// worker in the same transaction ([`chain_next`]).
pub(crate) async fn complete_step(
    store: &Store,
    node: &str,
    job: &JobRow,
    lease: &Lease,
    result: Result<StepOutput, StepError>,
    now: i64,
    chain: Option<(&str, i64)>,
) -> Result<Option<(Committed, Option<Chained>)>, Error> {
    let Some(mut rt) = RunTx::open_fenced(store, &job.run_id, now, lease).await? else {
        return Ok(None);
    };
    let (step, item) = (job.step_id.as_str(), job.item);
    let running = rt.step_status(step, item) == Some(StepStatus::Running);
    let Some(s) = rt
        .step_def(step)
        .filter(|_| running && !rt.status().is_final())
    else {
        return match drop_job(rt, lease, node).await? {
            Begin::Done(c) => Ok(Some((c, None))),
            _ => Ok(None),
        };
    };
    let attempt = rt.row(step, item).map_or(1, |r| r.attempt);
    // The budget counts the attempts since the step was last reset (retry, recover).
    let used = attempt - rt.row(step, item).map_or(0, |r| r.attempt_base);
    let max = s.retry.map_or(1, |r| i64::from(r.max_attempts));
    // Usage counts every attempt, failed ones included: the tokens were spent.
    let usage = match &result {
        Ok(o) => o.usage.as_ref(),
        Err(e) => e.usage.as_deref(),
    };
    if let Some(u) = usage {
        rt.add_usage(step, item, u);
    }
    let result = result.map(|o| o.output);
    let mut chained = None;
    match result {
        Err(e) if e.retryable && used < max => {
            let next = u32::try_from(used + 1).unwrap_or(u32::MAX);
            let delay = s.retry.map_or(0, |r| r.backoff(next));
            let at = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
            if !db::reschedule_leased_job(rt.tx(), lease, at).await? {
                return Ok(None);
            }
            rt.jobs_changed = true;
            let row = rt.row_mut(step, item);
            row.status = StepStatus::Pending.as_str().to_owned();
            row.error = Some(e.to_json().to_string());
            let it = (item >= 0).then_some(item);
            rt.event(
                "step.retrying",
                Some(step),
                it,
                json!({"attempt": attempt, "error": e.to_json(), "retry_at": at}),
            );
        }
        result => {
            rt.finish(step, item, result);
            if let Some((owner, lease_until)) = chain {
                chained = chain_next(&mut rt, owner, node, lease_until);
            }
            // The job is deleted through its lease with the commit's other writes.
            return Ok(rt
                .commit_fenced(node, Some(lease))
                .await?
                .map(|c| (c, chained)));
        }
    }
    Ok(Some((rt.commit(node).await?, chained)))
}

async fn record_decision(
    rt: &mut RunTx,
    step: &str,
    decision: &str,
    comment: Option<&str>,
    now: i64,
    timed_out: bool,
) -> Result<(), Error> {
    let run_id = rt.run.id.clone();
    let approvals = db::list_approvals_tx(rt.tx(), &run_id).await?;
    let mut row = approvals
        .into_iter()
        .find(|a| a.step_id == step && a.item == -1)
        .unwrap_or(ApprovalRow {
            run_id,
            step_id: step.to_owned(),
            item: -1,
            prompt: None,
            requested_at: now,
            expires_at: None,
            decision: None,
            comment: None,
            decided_at: None,
        });
    row.decision = Some(decision.to_owned());
    row.comment = comment.map(str::to_owned);
    row.decided_at = Some(now);
    db::upsert_approval(rt.tx(), &row).await?;
    rt.event(
        "approval.decided",
        Some(step),
        None,
        json!({"decision": decision, "comment": comment, "timed_out": timed_out}),
    );
    Ok(())
}

/// Decides a waiting approval step.
pub(crate) async fn decide(
    store: &Store,
    node: &str,
    run: RunId,
    step: &str,
    decision: Decision,
    comment: Option<String>,
    now: i64,
) -> Result<Committed, Error> {
    let Some(mut rt) = RunTx::open(store, &run.db(), now).await? else {
        return Err(Error::not_found("Run"));
    };
    if rt.status().is_final() {
        return Err(Error::conflict(format!(
            "The run is already {}.",
            rt.run.status
        )));
    }
    let Some(s) = rt.step_def(step) else {
        return Err(Error::validation(
            "step_id",
            format!("The run has no step `{step}`."),
        ));
    };
    if s.kind != "approval" {
        return Err(Error::validation(
            "step_id",
            format!("Step `{step}` is not an approval step."),
        ));
    }
    let status = rt.step_status(step, -1);
    if status != Some(StepStatus::Waiting) {
        let shown = status.map_or("unknown", StepStatus::as_str);
        return Err(Error::conflict(format!(
            "Step `{step}` is not waiting for a decision (it is {shown})."
        )));
    }
    let run_id = rt.run.id.clone();
    db::delete_step_job(rt.tx(), &run_id, step, -1).await?;
    record_decision(
        &mut rt,
        step,
        decision.as_str(),
        comment.as_deref(),
        now,
        false,
    )
    .await?;
    rt.mark_running();
    let result = match decision {
        Decision::Approve => Ok(json!({"decision": "approve", "comment": comment})),
        Decision::Reject => Err(StepError::fatal(
            "rejected",
            comment.unwrap_or_else(|| "The approval was rejected.".to_owned()),
        )),
    };
    rt.finish(step, -1, result);
    rt.commit(node).await
}

pub(crate) async fn cancel(
    store: &Store,
    node: &str,
    run: RunId,
    now: i64,
) -> Result<Committed, Error> {
    let Some(mut rt) = RunTx::open(store, &run.db(), now).await? else {
        return Err(Error::not_found("Run"));
    };
    if rt.status().is_final() {
        return Err(Error::conflict(format!(
            "The run is already {}.",
            rt.run.status
        )));
    }
    rt.cancel_run();
    rt.commit(node).await
}

/// Opens a run for a control action; `not_found` when there is none.
async fn open_run(store: &Store, run: RunId, now: i64) -> Result<RunTx, Error> {
    RunTx::open(store, &run.db(), now)
        .await?
        .ok_or_else(|| Error::not_found("Run"))
}

/// Pauses a run in progress: no step starts until [`resume`]; steps executing finish and
/// are recorded. Pausing a paused run changes nothing.
pub(crate) async fn pause(
    store: &Store,
    node: &str,
    run: RunId,
    now: i64,
) -> Result<Committed, Error> {
    let mut rt = open_run(store, run, now).await?;
    let status = rt.status();
    if status.is_final() {
        return Err(Error::conflict(format!(
            "The run is already {}; only a run in progress can be paused.",
            status.as_str()
        )));
    }
    if status == RunStatus::Paused {
        return Ok(Committed::default());
    }
    rt.set_run_status(RunStatus::Paused);
    rt.event("run.paused", None, None, json!({"from": status.as_str()}));
    rt.commit(node).await
}

/// Resumes a paused run: its parked jobs (steps that became ready, timers that fell due,
/// jobs claimed while paused) are due at once.
pub(crate) async fn resume(
    store: &Store,
    node: &str,
    run: RunId,
    now: i64,
) -> Result<Committed, Error> {
    let mut rt = open_run(store, run, now).await?;
    if rt.status() != RunStatus::Paused {
        return Err(Error::conflict(format!(
            "The run is not paused (it is {}).",
            rt.run.status
        )));
    }
    let run_id = rt.run.id.clone();
    let released = db::unpark_run_jobs(rt.tx(), &run_id, now).await?;
    rt.add_due(usize::try_from(released).unwrap_or(usize::MAX));
    // A run paused before its first step started is queued again, so that step's start
    // still records `run.started`.
    let back = if rt.run.started_at.is_some() {
        RunStatus::Running
    } else {
        RunStatus::Queued
    };
    rt.set_run_status(back);
    rt.event(
        "run.resumed",
        None,
        None,
        json!({"from": "paused", "released": released}),
    );
    rt.settle();
    rt.commit(node).await
}

fn require_failed(rt: &RunTx, action: &str) -> Result<(), Error> {
    // Reopening queues jobs for the reset steps; a manual run's steps are not for workers.
    if rt.is_manual() {
        return Err(Error::conflict(format!(
            "A {} run is moved on by its own calls; it cannot {action}.",
            rt.run.kind
        )));
    }
    if rt.status() == RunStatus::Failed {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "Only a failed run can {action}; the run is {}.",
        rt.run.status
    )))
}

/// Retries one failed (or cancelled) step of a failed run with a fresh retry budget; the
/// steps cancelled when the run failed are reset with it, and the run goes on.
pub(crate) async fn retry_step(
    store: &Store,
    node: &str,
    run: RunId,
    step: &str,
    now: i64,
) -> Result<Committed, Error> {
    let mut rt = open_run(store, run, now).await?;
    if rt.step_def(step).is_none() {
        return Err(Error::validation(
            "step_id",
            format!("The run has no step `{step}`."),
        ));
    }
    require_failed(&rt, "have a step retried")?;
    let status = rt.step_status(step, -1);
    if !matches!(status, Some(StepStatus::Failed | StepStatus::Cancelled)) {
        let shown = status.map_or("unknown", StepStatus::as_str);
        return Err(Error::conflict(format!(
            "Step `{step}` is {shown}; only a failed or cancelled step can be retried."
        )));
    }
    let mut reset = rt.steps_in(StepStatus::Cancelled);
    reset.insert(step.to_owned());
    // Another step that failed the run would fail it again at once; it needs its own retry
    // (or a recover, which reruns every failed step).
    if let Some(other) = rt
        .steps_in(StepStatus::Failed)
        .into_iter()
        .find(|id| !reset.contains(id) && rt.step_def(id).is_some_and(|d| !d.continue_on_error))
    {
        return Err(Error::conflict(format!(
            "Step `{other}` failed the run too; retry it instead, or recover the run."
        )));
    }
    let attempt = rt.row(step, -1).map_or(0, |r| r.attempt);
    let others: Vec<&String> = reset.iter().filter(|id| *id != step).collect();
    rt.event(
        "step.retry_requested",
        Some(step),
        None,
        json!({"attempt": attempt, "reset": others}),
    );
    rt.reopen(&reset);
    rt.commit(node).await
}

/// Recovers a failed run: every failed step runs again, and everything downstream of one
/// is recomputed (finished or not); steps that do not depend on a failed one keep their
/// results.
pub(crate) async fn recover(
    store: &Store,
    node: &str,
    run: RunId,
    now: i64,
) -> Result<Committed, Error> {
    let mut rt = open_run(store, run, now).await?;
    require_failed(&rt, "be recovered")?;
    let failed = rt.steps_in(StepStatus::Failed);
    let mut reset: BTreeSet<String> = rt.downstream(&failed);
    reset.extend(failed.iter().cloned());
    reset.extend(rt.steps_in(StepStatus::Cancelled));
    if reset.is_empty() {
        // The run failed after every step finished (its output mapping): nothing to rerun.
        return Err(Error::conflict(
            "The run has no failed or cancelled step to rerun.",
        ));
    }
    rt.event(
        "run.recovering",
        None,
        None,
        json!({"failed": failed, "reset": reset}),
    );
    rt.reopen(&reset);
    rt.commit(node).await
}
