//! A runbook run as the engine stores it, and as clients see it.
//!
//! The engine run's definition holds the frozen steps (each engine step's `config` is the
//! runbook step plus its `rrs_…` id), its input holds `{variables, started_by}`, and each
//! step run's output holds what was recorded on the step (`{outcome, notes, output}`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use canopy_core::{Error, RunId, RunbookId};
use canopy_engine::{Event, Run, RunStatus, StepDef, StepRun, StepStatus};
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

/// A run's frozen steps, in order, with their positions by key.
#[derive(Debug)]
pub struct FrozenSteps {
    pub steps: Vec<Frozen>,
    positions: HashMap<String, usize>,
}

impl FrozenSteps {
    fn decode(run: &Run) -> Result<FrozenSteps, Error> {
        let steps = run
            .definition
            .steps
            .iter()
            .map(|s| Ok(Frozen::deserialize(&s.config)?))
            .collect::<Result<Vec<Frozen>, Error>>()?;
        let positions = steps
            .iter()
            .enumerate()
            .map(|(i, f)| (f.step.key.clone(), i))
            .collect();
        Ok(FrozenSteps { steps, positions })
    }

    /// The position of the step `key`.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.positions.get(key).copied()
    }

    /// Roughly what the decoded steps hold, in bytes (the cache's measure).
    fn weight(&self) -> usize {
        self.steps
            .iter()
            .map(|f| {
                let s = &f.step;
                256 + 2 * s.key.len()
                    + s.title.len()
                    + s.instructions.len()
                    + s.routes
                        .iter()
                        .map(|(a, b)| a.len() + b.len() + 64)
                        .sum::<usize>()
            })
            .sum()
    }
}

/// Decoded frozen steps of recent runs, by run id and definition version. A run's
/// definition is written once, at start, and never changed (editing the runbook changes
/// only later runs), so an entry never goes stale; the oldest entries leave first once the
/// entries together weigh more than [`FROZEN_CACHE_BYTES`].
struct FrozenCache {
    map: HashMap<(RunId, Option<i64>), Arc<FrozenSteps>>,
    order: VecDeque<((RunId, Option<i64>), usize)>,
    bytes: usize,
}

/// What the cache of decoded frozen steps may hold, roughly, in bytes. A run heavier than
/// an eighth of it is decoded on each call instead.
pub const FROZEN_CACHE_BYTES: usize = 8 << 20;

static FROZEN: LazyLock<Mutex<FrozenCache>> = LazyLock::new(|| {
    Mutex::new(FrozenCache {
        map: HashMap::new(),
        order: VecDeque::new(),
        bytes: 0,
    })
});

impl FrozenCache {
    fn get(&self, key: &(RunId, Option<i64>)) -> Option<Arc<FrozenSteps>> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: (RunId, Option<i64>), steps: Arc<FrozenSteps>, weight: usize) {
        if self.map.insert(key, steps).is_some() {
            return;
        }
        self.order.push_back((key, weight));
        self.bytes += weight;
        while self.bytes > FROZEN_CACHE_BYTES {
            let Some((old, w)) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
            self.bytes -= w;
        }
    }
}

/// The frozen steps of a run, decoded from its definition once and then shared.
pub fn frozen(run: &Run) -> Result<Arc<FrozenSteps>, Error> {
    let key = (run.id, run.definition_version);
    if let Some(hit) = FROZEN.lock().ok().and_then(|c| c.get(&key)) {
        return Ok(hit);
    }
    let steps = Arc::new(FrozenSteps::decode(run)?);
    let weight = steps.weight();
    if weight <= FROZEN_CACHE_BYTES / 8
        && let Ok(mut c) = FROZEN.lock()
    {
        c.put(key, steps.clone(), weight);
    }
    Ok(steps)
}

/// Each frozen step's own step run, by position (`None`: the run has no row for it).
pub fn step_runs<'a>(run: &'a Run, steps: &FrozenSteps) -> Vec<Option<&'a StepRun>> {
    let mut out = vec![None; steps.steps.len()];
    for sr in run.steps.iter().filter(|s| s.item.is_none()) {
        if let Some(i) = steps.position(&sr.step_id) {
            out[i] = Some(sr);
        }
    }
    out
}

/// The position of the active step, if any (the first by position, were there several).
pub fn current(run: &Run, steps: &FrozenSteps) -> Option<usize> {
    run.steps
        .iter()
        .filter(|s| {
            s.item.is_none() && matches!(s.status, StepStatus::Running | StepStatus::Waiting)
        })
        .filter_map(|s| steps.position(&s.step_id))
        .min()
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

/// One step as it stands in the run (`sr`: its step run); `vars` substitutes its title and
/// instructions.
pub fn run_step(
    sr: Option<&StepRun>,
    position: usize,
    f: &Frozen,
    vars: Option<&BTreeMap<String, String>>,
) -> RunStep {
    let rec = sr.and_then(|s| s.output.as_ref());
    let field = |k: &str| rec.and_then(|r| r.get(k));
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
        outcome: field("outcome").and_then(Value::as_str).map(str::to_owned),
        notes: field("notes").and_then(Value::as_str).map(str::to_owned),
        output: field("output").filter(|v| !v.is_null()).cloned(),
        visits: sr.map_or(0, |s| s.attempt),
        started_at: time(sr.and_then(|s| s.started_at)),
        finished_at: time(sr.and_then(|s| s.finished_at)),
    }
}

pub fn run(r: &Run) -> Result<RunbookRun, Error> {
    let frozen = frozen(r)?;
    let srs = step_runs(r, &frozen);
    let cur = current(r, &frozen);
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
        current_step: cur.map(|i| frozen.steps[i].step.key.clone()),
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
        steps: frozen
            .steps
            .iter()
            .zip(srs)
            .enumerate()
            .map(|(i, (f, sr))| run_step(sr, i, f, None))
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
