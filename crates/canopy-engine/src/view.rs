//! Rows to the engine's public types.

use canopy_core::{Error, RunId};
use canopy_store::engine::{EventRow, RunRow, StepRunRow};
use serde_json::Value;

use crate::model::{Definition, Event, Run, RunStatus, StepRun, StepStatus};

fn json(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

pub(crate) fn run(row: RunRow, steps: Vec<StepRunRow>) -> Result<Run, Error> {
    let definition = serde_json::from_str(&row.definition)?;
    run_with(row, definition, steps)
}

/// [`run`] with the row's definition already decoded.
pub(crate) fn run_with(
    row: RunRow,
    definition: Definition,
    steps: Vec<StepRunRow>,
) -> Result<Run, Error> {
    let id = RunId::from_db(&row.id)
        .ok_or_else(|| Error::internal(format!("bad run id in the database: {}", row.id)))?;
    let steps: Vec<StepRun> = steps.into_iter().map(step).collect();
    // A for_each step's own row holds no usage; its elements do.
    let usage = crate::usage::total(steps.iter().filter_map(|s| s.usage.as_ref()));
    Ok(Run {
        id,
        definition,
        status: RunStatus::parse(&row.status).unwrap_or(RunStatus::Failed),
        input: serde_json::from_str(&row.input)?,
        output: json(row.output.as_deref()),
        error: json(row.error.as_deref()),
        org_id: row.org_id,
        project_id: row.project_id,
        kind: row.kind,
        definition_id: row.definition_id,
        definition_version: row.definition_version,
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        updated_at: row.updated_at,
        usage,
        steps,
    })
}

/// Brings `run` (read from the same run) up to date with its row and the step runs
/// `changed`, each replacing the step run of the same step and item (or inserted if it had
/// none); the definition and input, which never change, are kept.
pub(crate) fn refresh(run: &mut Run, row: &RunRow, changed: Vec<StepRunRow>) {
    run.status = RunStatus::parse(&row.status).unwrap_or(RunStatus::Failed);
    run.output = json(row.output.as_deref());
    run.error = json(row.error.as_deref());
    run.started_at = row.started_at;
    run.finished_at = row.finished_at;
    run.updated_at = row.updated_at;
    // In the order of a fresh read: by step id, then item (the step's own row first).
    for r in changed {
        let s = step(r);
        let key = (s.step_id.as_str(), s.item);
        let at = run
            .steps
            .partition_point(|o| (o.step_id.as_str(), o.item) < key);
        match run.steps.get_mut(at) {
            Some(o) if o.step_id == s.step_id && o.item == s.item => *o = s,
            _ => run.steps.insert(at, s),
        }
    }
    run.usage = crate::usage::total(run.steps.iter().filter_map(|s| s.usage.as_ref()));
}

fn step(r: StepRunRow) -> StepRun {
    StepRun {
        item: u32::try_from(r.item).ok(),
        status: StepStatus::parse(&r.status).unwrap_or(StepStatus::Failed),
        attempt: u32::try_from(r.attempt).unwrap_or(0),
        input: json(r.input.as_deref()),
        output: json(r.output.as_deref()),
        error: json(r.error.as_deref()),
        usage: json(r.usage.as_deref()),
        started_at: r.started_at,
        finished_at: r.finished_at,
        step_id: r.step_id,
    }
}

pub(crate) fn event(e: EventRow) -> Event {
    Event {
        seq: e.seq,
        data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        kind: e.kind,
        step_id: e.step_id,
        item: e.item,
        at: e.at,
    }
}
