//! Moving a runbook run: advance, skip, fail, decide a gate (each one manual change of the
//! engine run, decided by [`super::routing`] on the run as it is under its row lock), and
//! pause, resume, cancel (the engine's own controls; no job exists to park or release).

use canopy_core::{Data, Error, Scope};
use canopy_engine::{ManualChange, ManualEnd, Run, RunStatus, StepStatus};
use canopy_store::audit::{AuditRow, insert_audit_alone};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::Step;
use super::routing::{self, Action, Ended, Next};
use super::runs::{RunIdInput, visible_run, visible_run_id};
use super::view::{self, RunbookRun};
use crate::knowledge::current_project;
use crate::op::{Cx, Hints, Operation};

/// What the caller records on the step it ends.
struct Record {
    notes: Option<String>,
    output: Option<Value>,
    /// The step the caller means to end: a second identical call (a retry, two agents at
    /// once) then finds another step active and is refused instead of ending that one.
    expected: Option<String>,
}

fn check_notes(n: Option<String>) -> Result<Option<String>, Error> {
    match n {
        Some(t) if t.chars().count() > 50_000 => Err(Error::validation(
            "notes",
            "notes must be at most 50,000 characters.",
        )),
        other => Ok(other),
    }
}

/// Only a running run moves; a paused one waits for its resume.
fn require_running(run: &Run) -> Result<(), Error> {
    match run.status {
        RunStatus::Queued | RunStatus::Running | RunStatus::Waiting => Ok(()),
        RunStatus::Paused => Err(Error::conflict(
            "The run is paused; resume it before moving it on.",
        )),
        s => Err(Error::conflict(format!(
            "The run is already {}.",
            view::status(s)
        ))),
    }
}

/// The change `action` makes to the run, as routing decides it.
fn plan(run: &Run, action: &Action, rec: Record, audit: AuditRow) -> Result<ManualChange, Error> {
    require_running(run)?;
    let frozen = view::frozen(run)?;
    let cur = view::current(run, &frozen)
        .ok_or_else(|| Error::conflict("The run has no active step."))?;
    let frozen = &frozen.steps;
    let steps: Vec<&Step> = frozen.iter().map(|f| &f.step).collect();
    if let Some(want) = rec.expected.as_deref().filter(|w| *w != steps[cur].key) {
        return Err(Error::conflict(format!(
            "The active step is `{}`, not `{want}`.",
            steps[cur].key
        ))
        .with_extra("current_step", steps[cur].key.clone()));
    }
    let mv = routing::route(&steps, cur, action)?;
    let key = steps[cur].key.as_str();
    let next_key = match mv.next {
        Next::Step(i) => Some(steps[i].key.clone()),
        _ => None,
    };
    let (status, kind) = match (action, mv.ended) {
        (Action::Gate { .. }, Ended::Completed) => (StepStatus::Succeeded, "runbook.gate_decided"),
        (Action::Gate { .. }, _) => (StepStatus::Failed, "runbook.gate_decided"),
        (_, Ended::Completed) => (StepStatus::Succeeded, "runbook.step_completed"),
        (_, Ended::Skipped) => (StepStatus::Skipped, "runbook.step_skipped"),
        (_, Ended::Failed) => (StepStatus::Failed, "runbook.step_failed"),
    };
    let recorded = json!({"outcome": mv.outcome, "notes": rec.notes, "output": rec.output});
    let mut change = ManualChange {
        audit: Some(audit),
        ..ManualChange::default()
    }
    .step(key, status, Some(recorded))
    .event(
        kind,
        Some(key),
        json!({"outcome": mv.outcome, "notes": rec.notes, "next": next_key}),
    );
    match mv.next {
        Next::Step(i) => {
            let f = &frozen[i];
            change = change.step(&f.step.key, StepStatus::Running, None).event(
                "runbook.step_activated",
                Some(&f.step.key),
                json!({"run_step_id": f.run_step_id, "position": i, "from": key}),
            );
        }
        Next::Complete => {
            change.end = Some(ManualEnd::Succeeded {
                output: json!({"last_step": key}),
            });
        }
        Next::FailRun => {
            let why = match (&mv.outcome, &rec.notes) {
                (Some(o), Some(n)) if o == "rejected" => format!("Gate `{key}` was rejected: {n}"),
                (Some(o), None) if o == "rejected" => format!("Gate `{key}` was rejected."),
                (_, Some(n)) => format!("Step `{key}` failed: {n}"),
                (_, None) => format!("Step `{key}` failed."),
            };
            let code = if mv.outcome.as_deref() == Some("rejected") {
                "gate_rejected"
            } else {
                "step_failed"
            };
            change.end = Some(ManualEnd::Failed {
                error: json!({"code": code, "message": why, "step": key}),
            });
        }
    }
    Ok(change)
}

/// Applies `action` to the run `raw` in one engine transaction (with its audit record).
async fn act(
    cx: &Cx<'_>,
    raw: &str,
    action: Action,
    rec: Record,
) -> Result<Data<RunbookRun>, Error> {
    let project = current_project(cx).await?;
    // Whose the run is, from a read of two columns; the run itself is read once, under its
    // lock, by the engine's transaction (and the answer is the run as that left it).
    let id = visible_run_id(cx, project, raw).await?;
    let audit = cx.success_audit(Some(project), Some(id.to_string()));
    let after = cx
        .svc
        .engine()?
        .apply_manual(id, move |now| plan(now, &action, rec, audit))
        .await?;
    let data = view::run(&after)?;
    // The run's next move takes its decoded definition back instead of decoding it again.
    canopy_engine::manual::keep_definition(after);
    Ok(Data { data })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AdvanceInput {
    pub run_id: String,
    /// Key of the step this ends; 409 if another is active.
    pub step: Option<String>,
    /// pass (default) or fail; a branch: one of its routes.
    pub outcome: Option<String>,
    pub notes: Option<String>,
    pub output: Option<Value>,
}

pub struct AdvanceStep;
impl Operation for AdvanceStep {
    const NAME: &'static str = "advance_step";
    const SUMMARY: &'static str = "Complete the run's active step with an outcome (pass/fail, or a branch route) and move on.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = AdvanceInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let rec = Record {
            notes: check_notes(i.notes)?,
            output: i.output,
            expected: i.step,
        };
        let outcome = i.outcome.map(|o| o.trim().to_owned());
        act(cx, &i.run_id, Action::Advance { outcome }, rec).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StepNoteInput {
    pub run_id: String,
    /// Key of the step this ends; 409 if another is active.
    pub step: Option<String>,
    pub notes: Option<String>,
}

pub struct SkipStep;
impl Operation for SkipStep {
    const NAME: &'static str = "skip_step";
    const SUMMARY: &'static str = "Skip the run's active step; the run goes to the next one.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = StepNoteInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let rec = Record {
            notes: check_notes(i.notes)?,
            output: None,
            expected: i.step,
        };
        act(cx, &i.run_id, Action::Skip, rec).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FailInput {
    pub run_id: String,
    /// Key of the step this ends; 409 if another is active.
    pub step: Option<String>,
    pub notes: Option<String>,
    pub output: Option<Value>,
}

pub struct FailStep;
impl Operation for FailStep {
    const NAME: &'static str = "fail_step";
    const SUMMARY: &'static str =
        "Fail the run's active step: the run goes to its on_fail, or fails.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = FailInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let rec = Record {
            notes: check_notes(i.notes)?,
            output: i.output,
            expected: i.step,
        };
        act(cx, &i.run_id, Action::Fail, rec).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GateInput {
    pub run_id: String,
    /// Key of the step this ends; 409 if another is active.
    pub step: Option<String>,
    /// `approved` or `rejected`.
    pub decision: String,
    pub notes: Option<String>,
}

pub struct DecideGate;
impl Operation for DecideGate {
    const NAME: &'static str = "decide_gate";
    const SUMMARY: &'static str = "Decide the active gate: approved goes to on_pass (or next), rejected to on_fail (or the run fails).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = GateInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let d =
            canopy_core::suggest::parse_enum(&i.decision, "decision", &["approved", "rejected"])?;
        let rec = Record {
            notes: check_notes(i.notes)?,
            output: None,
            expected: i.step,
        };
        act(
            cx,
            &i.run_id,
            Action::Gate {
                approved: d == "approved",
            },
            rec,
        )
        .await
    }
}

/// The success record of an engine control (which commits on its own).
async fn audit_alone(cx: &Cx<'_>, run: &Run) {
    let project = canopy_core::ProjectId::from_db(&run.project_id);
    let row = cx.success_audit(project, Some(run.id.to_string()));
    if let Err(e) = insert_audit_alone(cx.svc.store(), &row).await {
        tracing::warn!(error = %e, op = cx.op, "could not audit a runbook run change");
    }
}

#[derive(Clone, Copy)]
enum Control {
    Pause,
    Resume,
    Cancel,
}

async fn control(cx: &Cx<'_>, raw: &str, c: Control) -> Result<Data<RunbookRun>, Error> {
    let project = current_project(cx).await?;
    let run = visible_run(cx, project, raw).await?;
    let engine = cx.svc.engine()?;
    let after = match c {
        Control::Pause => engine.pause(run.id).await?,
        Control::Resume => engine.resume(run.id).await?,
        Control::Cancel => engine.cancel(run.id).await?,
    };
    audit_alone(cx, &after).await;
    Ok(Data {
        data: view::run(&after)?,
    })
}

pub struct PauseRun;
impl Operation for PauseRun {
    const NAME: &'static str = "pause_run";
    const SUMMARY: &'static str = "Pause a runbook run: it cannot move on until resumed.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = RunIdInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &i.run_id, Control::Pause).await
    }
}

pub struct ResumeRun;
impl Operation for ResumeRun {
    const NAME: &'static str = "resume_run";
    const SUMMARY: &'static str = "Resume a paused runbook run at the step where it stopped.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = RunIdInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &i.run_id, Control::Resume).await
    }
}

pub struct CancelRun;
impl Operation for CancelRun {
    const NAME: &'static str = "cancel_run";
    const SUMMARY: &'static str = "Cancel a runbook run; its unfinished steps are left.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = RunIdInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &i.run_id, Control::Cancel).await
    }
}
