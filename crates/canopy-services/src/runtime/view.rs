//! Runs and their events as the client routes show them.

use canopy_core::time::rfc3339;
use canopy_core::{Error, ProjectId, RunId};
use canopy_engine::{Event, Run, StepRun};
use canopy_store::engine::RunRow;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::defs::{KIND_BRANCH, KIND_BUD, show_id};

/// A run: status, input, output, error, per-step states and timings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunView {
    pub id: RunId,
    pub object: String,
    pub client_id: String,
    /// `branch` or `bud`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bud_id: Option<String>,
    /// The version of the bud or branch the run executes (fixed when it started).
    pub version: Option<i64>,
    /// `queued`, `running`, `waiting`, `paused`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub input: Value,
    pub output: Option<Value>,
    /// `{code, message}` of what failed the run (with the failing `step`).
    pub error: Option<Value>,
    /// Per-step states; left out of listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// From start to finish (so far, for a run still going), milliseconds.
    pub duration_ms: Option<i64>,
    /// Tokens and cost over all steps (zeros for a run without model calls); left out of
    /// listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageView>,
}

/// What model calls consumed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageView {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// From the price table (`[prices]` in the configuration); absent when a model used has
    /// no price there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl UsageView {
    fn of(v: &Value) -> UsageView {
        UsageView {
            input_tokens: v["input_tokens"].as_u64().unwrap_or(0),
            output_tokens: v["output_tokens"].as_u64().unwrap_or(0),
            cost_usd: v["cost_usd"].as_f64(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StepView {
    pub step_id: String,
    /// The element index of a `for_each` step's element; absent for the step itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
    /// `pending`, `running`, `waiting`, `succeeded`, `failed`, `skipped` or `cancelled`.
    pub status: String,
    pub attempt: u32,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// Tokens and cost of this step's model calls, every attempt included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageView>,
}

/// One entry of a run's event log.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventView {
    /// Per run, gapless, starting at 1 (the SSE `id`).
    pub seq: i64,
    /// `run.queued`, `run.started`, `step.succeeded`, `approval.decided`, … (docs/engine.md).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<i64>,
    pub data: Value,
    pub at: String,
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    let s = start?;
    Some(
        end.unwrap_or_else(canopy_core::time::now_ms)
            .saturating_sub(s),
    )
}

fn ids(kind: &str, def: Option<&str>) -> (Option<String>, Option<String>) {
    let shown = def.map(|d| show_id(kind, d));
    match kind {
        KIND_BRANCH => (shown, None),
        KIND_BUD => (None, shown),
        _ => (None, None),
    }
}

fn client(project_db: &str) -> String {
    ProjectId::show(project_db)
}

pub fn run(r: Run) -> RunView {
    let (branch_id, bud_id) = ids(&r.kind, r.definition_id.as_deref());
    RunView {
        id: r.id,
        object: "run".into(),
        client_id: client(&r.project_id),
        kind: r.kind,
        branch_id,
        bud_id,
        version: r.definition_version,
        status: r.status.as_str().to_owned(),
        input: r.input,
        output: r.output,
        error: r.error,
        usage: Some(r.usage.as_ref().map(UsageView::of).unwrap_or_default()),
        steps: Some(r.steps.into_iter().map(step).collect()),
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        finished_at: r.finished_at.map(rfc3339),
        duration_ms: duration(r.started_at, r.finished_at),
    }
}

fn step(s: StepRun) -> StepView {
    StepView {
        step_id: s.step_id,
        item: s.item,
        status: s.status.as_str().to_owned(),
        attempt: s.attempt,
        output: s.output,
        error: s.error,
        usage: s.usage.as_ref().map(UsageView::of),
        started_at: s.started_at.map(rfc3339),
        finished_at: s.finished_at.map(rfc3339),
        duration_ms: duration(s.started_at, s.finished_at),
    }
}

fn json(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A listing's run, without its steps.
pub fn summary(r: RunRow) -> Result<RunView, Error> {
    let id = RunId::from_db(&r.id).ok_or_else(|| Error::internal("bad run id"))?;
    let (branch_id, bud_id) = ids(&r.kind, r.definition_id.as_deref());
    Ok(RunView {
        id,
        object: "run".into(),
        client_id: client(&r.project_id),
        branch_id,
        bud_id,
        version: r.definition_version,
        input: serde_json::from_str(&r.input).unwrap_or(Value::Null),
        output: json(r.output.as_deref()),
        error: json(r.error.as_deref()),
        steps: None,
        usage: None,
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        finished_at: r.finished_at.map(rfc3339),
        duration_ms: duration(r.started_at, r.finished_at),
        kind: r.kind,
        status: r.status,
    })
}

pub fn event(e: Event) -> EventView {
    EventView {
        seq: e.seq,
        kind: e.kind,
        step_id: e.step_id,
        item: e.item,
        data: e.data,
        at: rfc3339(e.at),
    }
}
