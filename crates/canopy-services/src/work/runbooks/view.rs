//! A runbook run as the engine stores it, and as clients see it.
//!
//! The engine run's definition holds the frozen steps (each engine step's `config` is the
//! runbook step plus its `rrs_…` id), its input holds `{variables, started_by}`, and each
//! step run's output holds what was recorded on the step (`{outcome, notes, output}`).

use std::collections::BTreeMap;

use canopy_core::{Error, RunId, RunbookId};
use canopy_engine::{Event, Run, RunStatus, StepDef, StepStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{Step, substitute};

/// Engine step kinds of runbook steps are `runbook.<type>`.
pub const KIND_PREFIX: &str = "runbook.";

/// A step frozen into a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frozen {
    /// `rrs_…`
    pub run_step_id: String,
    #[serde(flatten)]
    pub step: Step,
}

impl Frozen {
    pub fn to_engine(&self) -> Result<StepDef, Error> {
        Ok(StepDef {
            id: self.step.key.clone(),
            kind: format!("{KIND_PREFIX}{}", self.step.kind),
            config: serde_json::to_value(self)?,
            ..StepDef::default()
        })
    }
}

/// The frozen steps of a run, in order.
pub fn frozen(run: &Run) -> Result<Vec<Frozen>, Error> {
    run.definition
        .steps
        .iter()
        .map(|s| Ok(serde_json::from_value(s.config.clone())?))
        .collect()
}

/// The position of the active step, if any.
pub fn current(run: &Run, steps: &[Frozen]) -> Option<usize> {
    steps.iter().position(|f| {
        run.step(&f.step.key)
            .is_some_and(|s| matches!(s.status, StepStatus::Running | StepStatus::Waiting))
    })
}

/// The run's variables (`input.variables`).
pub fn variables(run: &Run) -> BTreeMap<String, String> {
    run.input
        .get("variables")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// `running|paused|completed|failed|cancelled` from the engine's statuses.
pub fn status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Queued | RunStatus::Running | RunStatus::Waiting => "running",
        RunStatus::Paused => "paused",
        RunStatus::Succeeded => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// The engine statuses one runbook status covers (for filtering).
pub fn engine_statuses(s: &str) -> Vec<String> {
    let list: &[RunStatus] = match s {
        "running" => &[RunStatus::Queued, RunStatus::Running, RunStatus::Waiting],
        "paused" => &[RunStatus::Paused],
        "completed" => &[RunStatus::Succeeded],
        "failed" => &[RunStatus::Failed],
        _ => &[RunStatus::Cancelled],
    };
    list.iter().map(|s| s.as_str().to_owned()).collect()
}

pub const RUN_STATUSES: &[&str] = &["running", "paused", "completed", "failed", "cancelled"];

/// `pending|active|completed|skipped|failed`. A step the engine cancelled (the run was
/// cancelled) shows `skipped` if it had started, else `pending` (never reached).
fn state(s: StepStatus, started: bool) -> &'static str {
    match s {
        StepStatus::Pending => "pending",
        StepStatus::Running | StepStatus::Waiting => "active",
        StepStatus::Succeeded => "completed",
        StepStatus::Skipped => "skipped",
        StepStatus::Failed => "failed",
        StepStatus::Cancelled if started => "skipped",
        StepStatus::Cancelled => "pending",
    }
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(canopy_core::time::rfc3339)
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunStep {
    /// `rrs_…`
    pub id: String,
    /// The template step's `rbs_…`.
    pub step_id: String,
    pub key: String,
    pub position: usize,
    pub title: String,
    pub instructions: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub on_pass: Option<String>,
    pub on_fail: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub routes: BTreeMap<String, String>,
    /// `pending`, `active`, `completed`, `skipped` or `failed`.
    pub state: String,
    /// `pass`, `fail`, a branch route, `approved` or `rejected`.
    pub outcome: Option<String>,
    pub notes: Option<String>,
    pub output: Option<Value>,
    /// How many times the run reached this step (a route back counts again).
    pub visits: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunbookRun {
    /// `run_…` (a run of the engine).
    pub id: String,
    pub object: String,
    pub runbook_id: Option<String>,
    pub runbook_name: Option<String>,
    /// `running`, `paused`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The key of the active step; null once the run is over.
    pub current_step: Option<String>,
    pub variables: BTreeMap<String, String>,
    pub started_by: Option<String>,
    /// Why the run failed: `{code, message, step}`.
    pub error: Option<Value>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub updated_at: String,
    pub steps: Vec<RunStep>,
}

/// One step as it stands in the run; `vars` substitutes its title and instructions.
pub fn run_step(
    run: &Run,
    position: usize,
    f: &Frozen,
    vars: Option<&BTreeMap<String, String>>,
) -> RunStep {
    let sr = run.step(&f.step.key);
    let rec = sr.and_then(|s| s.output.clone()).unwrap_or(Value::Null);
    let text = |s: &str| vars.map_or_else(|| s.to_owned(), |v| substitute(s, v));
    let status = sr.map_or(StepStatus::Pending, |s| s.status);
    RunStep {
        id: f.run_step_id.clone(),
        step_id: f.step.id.clone(),
        key: f.step.key.clone(),
        position,
        title: text(&f.step.title),
        instructions: text(&f.step.instructions),
        kind: f.step.kind.clone(),
        on_pass: f.step.on_pass.clone(),
        on_fail: f.step.on_fail.clone(),
        routes: f.step.routes.clone(),
        state: state(status, sr.is_some_and(|s| s.started_at.is_some())).to_owned(),
        outcome: rec
            .get("outcome")
            .and_then(Value::as_str)
            .map(str::to_owned),
        notes: rec.get("notes").and_then(Value::as_str).map(str::to_owned),
        output: rec.get("output").filter(|v| !v.is_null()).cloned(),
        visits: sr.map_or(0, |s| s.attempt),
        started_at: time(sr.and_then(|s| s.started_at)),
        finished_at: time(sr.and_then(|s| s.finished_at)),
    }
}

pub fn run(r: &Run) -> Result<RunbookRun, Error> {
    let steps = frozen(r)?;
    let cur = current(r, &steps);
    Ok(RunbookRun {
        id: r.id.to_string(),
        object: "runbook_run".into(),
        runbook_id: r.definition_id.as_deref().map(RunbookId::show),
        runbook_name: r
            .input
            .get("runbook_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        status: status(r.status).to_owned(),
        current_step: cur.map(|i| steps[i].step.key.clone()),
        variables: variables(r),
        started_by: r
            .input
            .get("started_by")
            .and_then(Value::as_str)
            .map(str::to_owned),
        error: r.error.clone(),
        created_at: canopy_core::time::rfc3339(r.created_at),
        started_at: time(r.started_at),
        finished_at: time(r.finished_at),
        updated_at: canopy_core::time::rfc3339(r.updated_at),
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, f)| run_step(r, i, f, None))
            .collect(),
    })
}

/// One entry of the run's engine event log.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunEvent {
    pub seq: i64,
    /// `run.started`, `runbook.step_completed`, `run.paused`, … (docs/runbooks.md).
    #[serde(rename = "type")]
    pub kind: String,
    /// The step key the event concerns.
    pub step: Option<String>,
    pub data: Value,
    pub at: String,
}

pub fn event(e: Event) -> RunEvent {
    RunEvent {
        seq: e.seq,
        kind: e.kind,
        step: e.step_id,
        data: e.data,
        at: canopy_core::time::rfc3339(e.at),
    }
}

/// The engine input of a run.
pub fn input(vars: &BTreeMap<String, String>, started_by: &str, name: &str) -> Value {
    json!({"variables": vars, "started_by": started_by, "runbook_name": name})
}

/// A run id from a client (`run_…` or a plain UUID).
pub fn run_id(raw: &str) -> Result<RunId, Error> {
    RunId::parse(raw).ok_or_else(|| Error::not_found("Run"))
}
