//! Manual runs (Minolith runbooks): runs whose steps wait for a person or an agent, not for
//! a worker. The engine stores them like every run (a `runs` row, `step_runs`, the event
//! log) but never queues a job for them; the service that owns them decides each
//! transition and the engine applies it as a [`ManualChange`] in one transaction on the
//! run's locked row, like the other controls. Pause, resume and cancel are the engine's own.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use canopy_core::{Error, RunId};
use canopy_store::Store;
use canopy_store::audit::{AuditRow, insert_audit};
use canopy_store::engine::{self as db, RunRow};
use serde_json::{Value, json};

use crate::model::{Definition, Run, RunKind, RunSpec, RunStatus, StepStatus};
use crate::state::{Committed, RunTx};
use crate::validate::validate;

/// One step run's new state.
#[derive(Debug, Clone)]
pub struct ManualStep {
    pub step_id: String,
    /// `running` makes the step the active one (started now, attempt + 1: a step visited
    /// again by a loop counts its visits); a final status finishes it now; `pending`
    /// clears its times.
    pub status: StepStatus,
    /// Replaces the step run's output (`None` clears it).
    pub output: Option<Value>,
    /// Replaces the step run's error (`None` clears it).
    pub error: Option<Value>,
}

/// An event to append to the run's log.
#[derive(Debug, Clone)]
pub struct ManualEvent {
    pub kind: String,
    pub step_id: Option<String>,
    pub data: Value,
}

/// How a change ends the run (appending `run.succeeded` / `run.failed` like any run).
#[derive(Debug, Clone)]
pub enum ManualEnd {
    Succeeded { output: Value },
    Failed { error: Value },
}

/// A transition of a manual run, decided by its owner and applied atomically.
#[derive(Debug, Clone, Default)]
pub struct ManualChange {
    pub steps: Vec<ManualStep>,
    /// Appended in order, before the run's end event (if any).
    pub events: Vec<ManualEvent>,
    pub end: Option<ManualEnd>,
    /// The caller's success audit record, written in the same transaction.
    pub audit: Option<AuditRow>,
}

impl ManualChange {
    pub fn step(mut self, id: &str, status: StepStatus, output: Option<Value>) -> Self {
        self.steps.push(ManualStep {
            step_id: id.to_owned(),
            status,
            output,
            error: None,
        });
        self
    }

    pub fn event(mut self, kind: &str, step: Option<&str>, data: Value) -> Self {
        self.events.push(ManualEvent {
            kind: kind.to_owned(),
            step_id: step.map(str::to_owned),
            data,
        });
        self
    }
}

fn apply(rt: &mut RunTx, change: ManualChange) -> Result<(), Error> {
    let now = rt.now;
    for st in change.steps {
        if !rt.def.steps.iter().any(|s| s.id == st.step_id) {
            return Err(Error::internal(format!(
                "a manual change names `{}`, which is not a step of the run",
                st.step_id
            )));
        }
        let row = rt.row_mut(&st.step_id, -1);
        row.status = st.status.as_str().to_owned();
        match st.status {
            StepStatus::Running | StepStatus::Waiting => {
                row.attempt += 1;
                row.started_at = Some(now);
                row.finished_at = None;
            }
            StepStatus::Pending => {
                row.started_at = None;
                row.finished_at = None;
            }
            _ => row.finished_at = Some(now),
        }
        row.output = st.output.map(|v| v.to_string());
        row.error = st.error.map(|v| v.to_string());
    }
    for e in change.events {
        rt.event(&e.kind, e.step_id.as_deref(), None, e.data);
    }
    match change.end {
        Some(ManualEnd::Succeeded { output }) => {
            rt.run.output = Some(output.to_string());
            rt.end_run(RunStatus::Succeeded, json!({}));
        }
        Some(ManualEnd::Failed { error }) => {
            rt.run.error = Some(error.to_string());
            rt.end_run(RunStatus::Failed, error);
        }
        None => {}
    }
    Ok(())
}

/// Inserts a manual run, already `running` (its steps pending), and applies its first
/// change (typically: the first step becomes active) in the same transaction.
pub(crate) async fn submit(
    store: &Store,
    node: &str,
    spec: RunSpec,
    first: ManualChange,
    now: i64,
) -> Result<(RunId, Committed), Error> {
    if !RunKind::is_manual(spec.kind.as_str()) {
        return Err(Error::internal("submit_manual needs a manual run kind"));
    }
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
    for s in rt.def.steps.clone() {
        rt.row_mut(&s.id, -1);
    }
    // No job: the run is under way as soon as it exists, waiting for its first signal.
    rt.mark_running();
    let audit = first.audit.clone();
    apply(&mut rt, first)?;
    if let Some(a) = audit {
        insert_audit(rt.tx(), &a).await?;
    }
    Ok((id, rt.commit(node).await?))
}

/// Locks the run, lets `decide` choose a change from its current state, applies it and
/// commits. `decide` refusing (an `Err`) changes nothing.
pub(crate) async fn change<F>(
    store: &Store,
    node: &str,
    run: RunId,
    decide: F,
    now: i64,
) -> Result<(Run, Committed), Error>
where
    F: FnOnce(&Run) -> Result<ManualChange, Error> + Send,
{
    let Some(mut rt) = RunTx::open_manual(store, &run.db(), now, lend_definition).await? else {
        return Err(Error::not_found("Run"));
    };
    if !rt.is_manual() {
        return Err(Error::conflict(format!(
            "The run is a {} run; only manual runs take manual changes.",
            rt.run.kind
        )));
    }
    // The run as `decide` sees it, from the rows this transaction read and its definition
    // (moved, not decoded or copied again); afterwards the same value, brought up to date
    // with what the change touched, is the answer.
    let def = std::mem::take(&mut rt.def);
    // (The row's definition text is set aside, not copied: the view has it decoded.)
    let text = std::mem::take(&mut rt.run.definition);
    let view = crate::view::run_with(rt.run.clone(), def, rt.step_rows());
    rt.run.definition = text;
    let mut run = view?;
    let decided = decide(&run);
    rt.def = std::mem::take(&mut run.definition);
    let change = decided?;
    if let Some(a) = &change.audit {
        insert_audit(rt.tx(), a).await?;
    }
    let touched: Vec<String> = change.steps.iter().map(|s| s.step_id.clone()).collect();
    apply(&mut rt, change)?;
    rt.run.updated_at = now;
    let rows = touched
        .iter()
        .filter_map(|id| rt.row(id, -1).cloned())
        .collect();
    crate::view::refresh(&mut run, &rt.run, rows);
    run.definition = std::mem::take(&mut rt.def);
    let c = rt.commit(node).await?;
    Ok((run, c))
}

/// What the kept definitions may weigh together (their JSON text's length), in bytes. A
/// definition heavier than an eighth of it is not kept.
pub const KEPT_DEFINITION_BYTES: usize = 8 << 20;

/// A run (its id and definition version).
type KeptKey = (String, Option<i64>);

/// Decoded definitions of manual runs, lent to a change and given back by the run's owner
/// ([`keep_definition`]) once it is done with the answer. Decoding a long definition (a
/// runbook of 200 steps: ≈ 50 KB of JSON) is most of a change's work, and a run's
/// definition is written once, at submit, and never changed, so the next change of the run
/// takes the kept one instead. An entry is moved out and back, never copied; a change that
/// finds it lent out (another change of the same run) decodes its own. The oldest runs leave
/// first once the entries weigh more than [`KEPT_DEFINITION_BYTES`].
#[derive(Default)]
struct Kept {
    /// The definition (`None` while lent out) and its weight.
    map: HashMap<KeptKey, (Option<Definition>, usize)>,
    order: VecDeque<KeptKey>,
    bytes: usize,
}

static KEPT: LazyLock<Mutex<Kept>> = LazyLock::new(Mutex::default);

/// The definition of the run `row` for a change: the kept one, else decoded from the row
/// (and a place kept for it, to be filled by [`keep_definition`]).
fn lend_definition(row: &RunRow) -> Result<Definition, Error> {
    let key = (row.id.clone(), row.definition_version);
    let weight = row.definition.len();
    let mut evicted = Vec::new();
    if let Ok(mut k) = KEPT.lock() {
        match k.map.get_mut(&key) {
            Some((slot, _)) => {
                if let Some(def) = slot.take() {
                    return Ok(def);
                }
            }
            None if weight <= KEPT_DEFINITION_BYTES / 8 => {
                k.map.insert(key.clone(), (None, weight));
                k.order.push_back(key);
                k.bytes += weight;
                while k.bytes > KEPT_DEFINITION_BYTES {
                    let Some(old) = k.order.pop_front() else {
                        break;
                    };
                    if let Some((def, w)) = k.map.remove(&old) {
                        k.bytes -= w;
                        evicted.push(def);
                    }
                }
            }
            None => {}
        }
    }
    // Freed outside the lock.
    drop(evicted);
    Ok(serde_json::from_str(&row.definition)?)
}

/// Gives back the definition of `run`, a manual run answered by
/// [`crate::Engine::apply_manual`], once the caller is done with it: the run's next change
/// takes it instead of decoding it again. Anything else is dropped (a run no change lent a
/// definition for, or whose place is taken or gone).
pub fn keep_definition(run: Run) {
    if !RunKind::is_manual(&run.kind) {
        return;
    }
    let key = (run.id.db(), run.definition_version);
    let def = run.definition;
    if let Ok(mut k) = KEPT.lock()
        && let Some((slot @ None, _)) = k.map.get_mut(&key)
    {
        *slot = Some(def);
        return;
    }
    drop(def);
}
