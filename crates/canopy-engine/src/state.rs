//! The state machine of one run, applied inside one write transaction.
//!
//! [`RunTx`] holds a run's row (locked), its graph and its step runs; transitions change them
//! in memory and append events, and [`RunTx::commit`] writes everything at once with the job
//! changes. So a step's result, the state changes it causes, the events, the next jobs and
//! the removal of the finished job commit together or not at all.
//!
//! Graph rules (see docs/engine.md):
//! - a step is ready when every dependency is final (succeeded, skipped, or failed with
//!   `continue_on_error`); ready steps run in parallel;
//! - `when` is evaluated when the step becomes ready; false/null → `skipped`. A skipped step
//!   does **not** skip its dependents: they run and see `steps.<id>.status == "skipped"` and a
//!   null output, so a join after an if/else branch runs whichever side was taken;
//! - a failed step (after its retries) fails the run unless `continue_on_error`; the run's
//!   other unfinished steps are then cancelled and their jobs removed.
//!
//! Run control (see docs/engine.md): a `paused` run keeps recording what finishes, but the
//! jobs it enqueues are parked ([`db::PARKED_AT`]) until it is resumed; a failed run is
//! reopened by [`RunTx::reopen`] (retry a step, recover), which resets step runs to pending
//! and readies them again.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use canopy_core::{Code, Error, JobId};
use canopy_store::engine::{self as db, EventRow, NewJob, RunRow, StepRunRow};
use canopy_store::{Store, Tx};
use serde_json::{Map, Value, json};

use crate::executor::StepError;
use crate::expr;
use crate::model::{Definition, RunStatus, StepDef, StepStatus};

/// Most elements one `for_each` may fan out to.
pub const MAX_ITEMS: usize = 1000;

/// The step run of a step (item -1) or of one `for_each` element (item ≥ 0).
type Key = (String, i64);

pub(crate) struct RunTx {
    tx: Tx,
    pub run: RunRow,
    pub def: Definition,
    input: Value,
    rows: BTreeMap<Key, StepRunRow>,
    dirty: BTreeSet<Key>,
    /// Step runs to delete (elements a re-evaluated `for_each` no longer has).
    removed: Vec<Key>,
    /// Steps made ready in this transaction (a step two finished dependencies free in the same
    /// cascade is queued once).
    activated: HashSet<String>,
    events: Vec<EventRow>,
    jobs: Vec<NewJob>,
    delete_all_jobs: bool,
    run_dirty: bool,
    /// The run reached a final state in this transaction.
    ended: bool,
    /// A job was added or moved: workers (here and on other nodes) should look again.
    pub jobs_changed: bool,
    /// Jobs added that are due at once.
    due_now: usize,
    pub now: i64,
}

/// What a commit changed that others wait for.
#[derive(Debug, Default, Clone)]
pub(crate) struct Committed {
    pub jobs_changed: bool,
    /// Jobs made due at once (each may keep one idle worker busy).
    pub due_now: usize,
    /// The run reached a final state.
    pub finished: bool,
}

fn parse(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

impl RunTx {
    /// Opens a transaction on an existing run and locks it; `None` when it does not exist.
    pub async fn open(store: &Store, run_id: &str, now: i64) -> Result<Option<RunTx>, Error> {
        RunTx::open_with(store.begin().await?, run_id, now, None).await
    }

    /// [`RunTx::open`] for a worker holding `lease`: on SQLite an inline transaction (see
    /// `Store::begin_inline`) that checks the lease as it begins; `None` when the run is
    /// gone or (SQLite) the lease is lost.
    pub async fn open_fenced(
        store: &Store,
        run_id: &str,
        now: i64,
        lease: &db::Lease,
    ) -> Result<Option<RunTx>, Error> {
        RunTx::open_with(store.begin_inline().await?, run_id, now, Some(lease)).await
    }

    async fn open_with(
        mut tx: Tx,
        run_id: &str,
        now: i64,
        fence: Option<&db::Lease>,
    ) -> Result<Option<RunTx>, Error> {
        let Some((run, rows)) = db::lock_run_with_steps(&mut tx, run_id, fence).await? else {
            return Ok(None);
        };
        let mut rt = RunTx::new(tx, run, now)?;
        rt.rows = rows
            .into_iter()
            .map(|r| ((r.step_id.clone(), r.item), r))
            .collect();
        Ok(Some(rt))
    }

    /// A transaction on a run inserted by this same transaction.
    pub fn new(tx: Tx, run: RunRow, now: i64) -> Result<RunTx, Error> {
        let def: Definition = serde_json::from_str(&run.definition)?;
        let input = serde_json::from_str(&run.input)?;
        Ok(RunTx {
            tx,
            run,
            def,
            input,
            rows: BTreeMap::new(),
            dirty: BTreeSet::new(),
            removed: Vec::new(),
            activated: HashSet::new(),
            events: Vec::new(),
            jobs: Vec::new(),
            delete_all_jobs: false,
            run_dirty: false,
            ended: false,
            jobs_changed: false,
            due_now: 0,
            now,
        })
    }

    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    pub fn status(&self) -> RunStatus {
        RunStatus::parse(&self.run.status).unwrap_or(RunStatus::Failed)
    }

    pub fn step_def(&self, id: &str) -> Option<StepDef> {
        self.def.steps.iter().find(|s| s.id == id).cloned()
    }

    pub fn row(&self, step: &str, item: i64) -> Option<&StepRunRow> {
        self.rows.get(&(step.to_owned(), item))
    }

    pub fn step_status(&self, step: &str, item: i64) -> Option<StepStatus> {
        self.row(step, item)
            .and_then(|r| StepStatus::parse(&r.status))
    }

    /// The row of a step run for changing (created pending if missing); marks it for writing.
    pub fn row_mut(&mut self, step: &str, item: i64) -> &mut StepRunRow {
        let key = (step.to_owned(), item);
        self.dirty.insert(key.clone());
        let run_id = self.run.id.clone();
        self.rows.entry(key).or_insert_with(|| StepRunRow {
            run_id,
            step_id: step.to_owned(),
            item,
            status: StepStatus::Pending.as_str().to_owned(),
            attempt: 0,
            input: None,
            output: None,
            error: None,
            usage: None,
            started_at: None,
            finished_at: None,
            attempt_base: 0,
        })
    }

    /// Adds an attempt's usage to its step run's (numbers add up; other fields are replaced).
    pub fn add_usage(&mut self, step: &str, item: i64, usage: &Value) {
        let row = self.row_mut(step, item);
        let mut total = row
            .usage
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null);
        crate::usage::add(&mut total, usage);
        row.usage = Some(total.to_string());
    }

    pub fn set_run_status(&mut self, s: RunStatus) {
        self.run.status = s.as_str().to_owned();
        self.run_dirty = true;
    }

    /// Appends an event (numbered after the run's last one; the run's lock keeps it ordered).
    pub fn event(&mut self, kind: &str, step: Option<&str>, item: Option<i64>, data: Value) {
        self.run.last_seq += 1;
        self.run_dirty = true;
        self.events.push(EventRow {
            run_id: self.run.id.clone(),
            seq: self.run.last_seq,
            kind: kind.to_owned(),
            step_id: step.map(str::to_owned),
            item,
            data: data.to_string(),
            at: self.now,
        });
    }

    /// Jobs made due by someone else in this transaction (parked jobs a resume released).
    pub fn add_due(&mut self, n: usize) {
        if n > 0 {
            self.jobs_changed = true;
            self.due_now += n;
        }
    }

    fn enqueue(&mut self, step: &str, item: i64, run_at: i64) {
        // A paused run starts nothing new: its job waits, parked, for the resume (which
        // makes it due); no worker needs waking for it.
        if self.status() == RunStatus::Paused {
            self.jobs.push(NewJob {
                id: JobId::new().db(),
                run_id: self.run.id.clone(),
                step_id: step.to_owned(),
                item,
                run_at: db::PARKED_AT,
                lease: None,
            });
            return;
        }
        self.jobs.push(NewJob {
            id: JobId::new().db(),
            run_id: self.run.id.clone(),
            step_id: step.to_owned(),
            item,
            run_at,
            lease: None,
        });
        self.jobs_changed = true;
        if run_at <= self.now {
            self.due_now += 1;
        }
    }

    /// Jobs this transaction enqueues due at once and free, with their step's definition, in
    /// the order they were queued.
    pub fn due_new_jobs(&self) -> Vec<(usize, StepDef, i64)> {
        self.jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.lease.is_none() && j.run_at <= self.now)
            .filter_map(|(i, j)| self.step_def(&j.step_id).map(|s| (i, s, j.item)))
            .collect()
    }

    /// Enqueues job `index` of [`RunTx::due_new_jobs`] claimed by `owner` until
    /// `lease_until`; returns the job as a claim would have.
    pub fn lease_new_job(
        &mut self,
        index: usize,
        owner: &str,
        lease_until: i64,
    ) -> Option<db::JobRow> {
        let j = self.jobs.get_mut(index)?;
        j.lease = Some((owner.to_owned(), lease_until));
        Some(db::JobRow {
            id: j.id.clone(),
            run_id: j.run_id.clone(),
            step_id: j.step_id.clone(),
            item: j.item,
            run_at: lease_until,
            lease_owner: Some(owner.to_owned()),
            lease_until: Some(lease_until),
            attempts: 1,
        })
    }

    /// `{input, steps: {<id>: {status, output, error}}}`, plus `item` and `index` for an
    /// element of a `for_each`.
    pub fn context(&self, element: Option<(i64, Value)>) -> Value {
        let mut steps = Map::new();
        for ((id, item), r) in &self.rows {
            if *item == -1 {
                steps.insert(
                    id.clone(),
                    json!({"status": r.status, "output": parse(&r.output), "error": parse(&r.error)}),
                );
            }
        }
        let mut ctx = json!({"input": self.input, "steps": steps});
        if let (Some((i, el)), Value::Object(o)) = (element, &mut ctx) {
            o.insert("item".to_owned(), el);
            o.insert("index".to_owned(), json!(i));
        }
        ctx
    }

    /// The context and resolved input of one step run.
    pub fn step_input(&self, s: &StepDef, item: i64) -> Result<(Value, Value), String> {
        let element =
            (item >= 0).then(|| parse(&self.row(&s.id, item).and_then(|r| r.input.clone())));
        let ctx = self.context(element.clone().map(|e| (item, e)));
        let input = match &s.input {
            Some(m) => expr::resolve(m, &ctx)?,
            None => element.unwrap_or_else(|| self.input.clone()),
        };
        Ok((ctx, input))
    }

    // ---- the run ----

    /// A step started: the run is running (first start, or back from waiting).
    pub fn mark_running(&mut self) {
        match self.status() {
            RunStatus::Queued => {
                self.set_run_status(RunStatus::Running);
                self.run.started_at = Some(self.now);
                self.event("run.started", None, None, json!({}));
            }
            RunStatus::Waiting => {
                self.set_run_status(RunStatus::Running);
                self.event("run.resumed", None, None, json!({"from": "waiting"}));
            }
            _ => {}
        }
    }

    /// Queues the steps without dependencies (at submit).
    pub fn start_roots(&mut self) {
        for s in self.def.steps.clone() {
            self.row_mut(&s.id, -1);
        }
        self.start_ready();
    }

    /// Readies every pending step whose dependencies are final (at submit: the roots; after
    /// a reopen: the reset steps nothing unfinished holds back). Only for a run with no step
    /// in flight, so none of them has a job yet.
    fn start_ready(&mut self) {
        let ready: Vec<String> = self
            .def
            .steps
            .iter()
            .filter(|s| self.step_status(&s.id, -1) == Some(StepStatus::Pending))
            .filter(|s| self.deps_final(&s.id))
            .map(|s| s.id.clone())
            .collect();
        let mut done = VecDeque::new();
        for r in ready {
            if self.activate(&r) {
                if self.fails_run(&r) {
                    return;
                }
                done.push_back(r);
            }
        }
        self.propagate(done);
        self.settle();
    }

    /// Whether the (final) step `id` failed in a way that fails the run; if so, fails it.
    fn fails_run(&mut self, id: &str) -> bool {
        let failed = self.step_status(id, -1) == Some(StepStatus::Failed);
        let tolerated = self.step_def(id).is_some_and(|s| s.continue_on_error);
        if failed && !tolerated {
            let error = parse(&self.row(id, -1).and_then(|r| r.error.clone()));
            self.fail_run(id, error);
            return true;
        }
        false
    }

    /// Makes a step whose dependencies are final ready: evaluates `when` and `for_each` and
    /// queues its job(s). `true` when the step became final at once (skipped, failed, or a
    /// `for_each` over nothing).
    fn activate(&mut self, id: &str) -> bool {
        let instant = self.activate_once(id);
        // A reset `for_each` step that does not fan out again keeps no elements of before.
        if instant {
            self.remove_items_from(id, 0);
        }
        instant
    }

    fn activate_once(&mut self, id: &str) -> bool {
        if !self.activated.insert(id.to_owned()) {
            return false;
        }
        let Some(s) = self.step_def(id) else {
            return false;
        };
        let ctx = self.context(None);
        if let Some(w) = &s.when {
            match expr::eval_one(w, &ctx) {
                Err(m) => {
                    self.record(id, -1, Err(StepError::fatal("expression_error", m)));
                    return true;
                }
                Ok(v) if !expr::truthy(&v) => {
                    let now = self.now;
                    let row = self.row_mut(id, -1);
                    row.status = StepStatus::Skipped.as_str().to_owned();
                    row.finished_at = Some(now);
                    self.event("step.skipped", Some(id), None, json!({"when": w}));
                    return true;
                }
                Ok(_) => {}
            }
        }
        let Some(fe) = &s.for_each else {
            let now = self.now;
            self.enqueue(id, -1, now);
            return false;
        };
        let items = match expr::eval_one(fe, &ctx) {
            Ok(Value::Array(items)) if items.len() <= MAX_ITEMS => items,
            Ok(Value::Array(items)) => {
                let m = format!(
                    "for_each yielded {} elements; the limit is {MAX_ITEMS}",
                    items.len()
                );
                self.record(id, -1, Err(StepError::fatal("too_many_items", m)));
                return true;
            }
            Ok(other) => {
                let m = format!("for_each must yield a list, not {}", type_name(&other));
                self.record(id, -1, Err(StepError::fatal("expression_error", m)));
                return true;
            }
            Err(m) => {
                self.record(id, -1, Err(StepError::fatal("expression_error", m)));
                return true;
            }
        };
        if items.is_empty() {
            self.record(id, -1, Ok(json!([])));
            return true;
        }
        let now = self.now;
        let n = items.len();
        let row = self.row_mut(id, -1);
        row.status = StepStatus::Running.as_str().to_owned();
        row.started_at = Some(now);
        self.event("step.fanned_out", Some(id), None, json!({"items": n}));
        for (i, el) in items.into_iter().enumerate() {
            let i = i as i64;
            self.row_mut(id, i).input = Some(el.to_string());
            self.enqueue(id, i, now);
        }
        self.remove_items_from(id, n as i64);
        false
    }

    /// Drops the element rows of `id` from index `from` on: left from an earlier fan-out of
    /// a step that was reset and now yields fewer elements.
    fn remove_items_from(&mut self, id: &str, from: i64) {
        let stale: Vec<Key> = self
            .rows
            .range((id.to_owned(), from)..=(id.to_owned(), i64::MAX))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.rows.remove(&k);
            self.dirty.remove(&k);
            self.removed.push(k);
        }
    }

    /// Writes a final result on a step run (no moving on; see [`RunTx::finish`]).
    fn record(&mut self, id: &str, item: i64, result: Result<Value, StepError>) {
        let now = self.now;
        let row = self.row_mut(id, item);
        let attempt = row.attempt;
        row.finished_at = Some(now);
        let it = (item >= 0).then_some(item);
        match result {
            Ok(out) => {
                row.status = StepStatus::Succeeded.as_str().to_owned();
                row.output = Some(out.to_string());
                row.error = None;
                self.event("step.succeeded", Some(id), it, json!({"attempt": attempt}));
            }
            Err(e) => {
                row.status = StepStatus::Failed.as_str().to_owned();
                row.error = Some(e.to_json().to_string());
                self.event(
                    "step.failed",
                    Some(id),
                    it,
                    json!({"attempt": attempt, "error": e.to_json()}),
                );
            }
        }
    }

    /// A step run finished (its final attempt): record it and move the run on.
    pub fn finish(&mut self, id: &str, item: i64, result: Result<Value, StepError>) {
        let failed = result.is_err();
        self.record(id, item, result);
        if item >= 0 {
            let Some(s) = self.step_def(id) else { return };
            if failed && !s.continue_on_error {
                let e = StepError::fatal("item_failed", format!("element {item} of `{id}` failed"));
                self.record(id, -1, Err(e));
                self.fails_run(id);
                return;
            }
            if !self.finish_fan_in(id) {
                return;
            }
        }
        if self.fails_run(id) {
            return;
        }
        self.propagate(VecDeque::from([id.to_owned()]));
        self.settle();
    }

    /// When every element of a `for_each` is final, settles the step: its output is the list
    /// of their outputs in order (null for a failed one). `true` once settled.
    fn finish_fan_in(&mut self, id: &str) -> bool {
        let items: Vec<&StepRunRow> = self
            .rows
            .range((id.to_owned(), 0)..(id.to_owned(), i64::MAX))
            .map(|(_, r)| r)
            .collect();
        let all_final = items
            .iter()
            .all(|r| StepStatus::parse(&r.status).is_some_and(StepStatus::is_final));
        if !all_final {
            return false;
        }
        let failed: Vec<i64> = items
            .iter()
            .filter(|r| r.status == StepStatus::Failed.as_str())
            .map(|r| r.item)
            .collect();
        let outputs: Vec<Value> = items.iter().map(|r| parse(&r.output)).collect();
        if failed.is_empty() {
            self.record(id, -1, Ok(Value::Array(outputs)));
        } else {
            let e = StepError::fatal(
                "item_failed",
                format!("elements {failed:?} of `{id}` failed"),
            );
            self.record(id, -1, Err(e));
            self.row_mut(id, -1).output = Some(Value::Array(outputs).to_string());
        }
        true
    }

    /// Readies what the newly final steps free, following skips and instant failures.
    fn propagate(&mut self, mut work: VecDeque<String>) {
        while let Some(done) = work.pop_front() {
            let ready: Vec<String> = self
                .def
                .steps
                .iter()
                .filter(|s| s.depends_on.contains(&done))
                .filter(|s| self.step_status(&s.id, -1) == Some(StepStatus::Pending))
                .filter(|s| {
                    s.depends_on
                        .iter()
                        .all(|d| self.step_status(d, -1).is_some_and(StepStatus::is_final))
                })
                .map(|s| s.id.clone())
                .collect();
            for r in ready {
                if self.activate(&r) {
                    if self.fails_run(&r) {
                        return;
                    }
                    work.push_back(r);
                }
            }
        }
    }

    /// After a change: finishes the run when every step is final, else marks it waiting
    /// when nothing is left to do but wait.
    pub fn settle(&mut self) {
        if self.status().is_final() {
            return;
        }
        let all_final = self.def.steps.iter().all(|s| {
            self.step_status(&s.id, -1)
                .is_some_and(StepStatus::is_final)
        });
        if all_final {
            match self.run_output() {
                Ok(out) => {
                    self.run.output = Some(out.to_string());
                    self.end_run(RunStatus::Succeeded, json!({}));
                }
                Err(m) => {
                    let e = json!({"code": "output_error", "message": m});
                    self.run.error = Some(e.to_string());
                    self.end_run(RunStatus::Failed, e);
                }
            }
            return;
        }
        let busy = self
            .rows
            .values()
            .any(|r| match StepStatus::parse(&r.status) {
                Some(StepStatus::Running) => r.item >= 0 || !self.is_fanned_out(&r.step_id),
                Some(StepStatus::Pending) => r.item >= 0 || self.deps_final(&r.step_id),
                _ => false,
            });
        // A paused run stays paused until resumed, whatever its steps do meanwhile.
        if self.status() == RunStatus::Paused {
            return;
        }
        let waiting = self
            .rows
            .values()
            .any(|r| r.status == StepStatus::Waiting.as_str());
        if waiting && !busy && self.status() != RunStatus::Waiting {
            self.set_run_status(RunStatus::Waiting);
            self.event("run.waiting", None, None, json!({}));
        }
    }

    fn is_fanned_out(&self, id: &str) -> bool {
        self.rows.contains_key(&(id.to_owned(), 0))
    }

    fn deps_final(&self, id: &str) -> bool {
        self.step_def(id).is_some_and(|s| {
            s.depends_on
                .iter()
                .all(|d| self.step_status(d, -1).is_some_and(StepStatus::is_final))
        })
    }

    /// The run's output: the definition's mapping, else the output of the only step nothing
    /// depends on, else an object of the outputs of all such steps.
    fn run_output(&self) -> Result<Value, String> {
        let ctx = self.context(None);
        if let Some(m) = &self.def.output {
            return expr::resolve(m, &ctx);
        }
        let sinks: Vec<&StepDef> = self
            .def
            .steps
            .iter()
            .filter(|s| !self.def.steps.iter().any(|o| o.depends_on.contains(&s.id)))
            .collect();
        let out = |id: &str| parse(&self.row(id, -1).and_then(|r| r.output.clone()));
        Ok(match sinks.as_slice() {
            [one] => out(&one.id),
            many => Value::Object(many.iter().map(|s| (s.id.clone(), out(&s.id))).collect()),
        })
    }

    /// Fails the run because of step `step`: its other unfinished steps are cancelled.
    /// The run's error is the step's (`{code, message, retryable}`) with the step's id added,
    /// so a client reads `error.code` whatever failed.
    pub fn fail_run(&mut self, step: &str, error: Value) {
        let e = match error {
            Value::Object(mut o) => {
                o.insert("step".to_owned(), Value::String(step.to_owned()));
                Value::Object(o)
            }
            other => json!({"step": step, "code": "step_failed", "message": other.to_string()}),
        };
        self.run.error = Some(e.to_string());
        self.stop_steps();
        self.end_run(RunStatus::Failed, e);
    }

    /// Cancels the run: unfinished steps are cancelled and their jobs removed; a worker still
    /// running one loses its lease and its result is discarded.
    pub fn cancel_run(&mut self) {
        self.stop_steps();
        self.end_run(RunStatus::Cancelled, json!({}));
    }

    fn stop_steps(&mut self) {
        let open: Vec<Key> = self
            .rows
            .iter()
            .filter(|(_, r)| !StepStatus::parse(&r.status).is_some_and(StepStatus::is_final))
            .map(|(k, _)| k.clone())
            .collect();
        let now = self.now;
        for (id, item) in open {
            let row = self.row_mut(&id, item);
            row.status = StepStatus::Cancelled.as_str().to_owned();
            row.finished_at = Some(now);
            let it = (item >= 0).then_some(item);
            self.event("step.cancelled", Some(&id), it, json!({}));
        }
        self.delete_all_jobs = true;
        self.jobs.clear();
    }

    /// Reopens a failed run: the step runs of `steps` (and their `for_each` elements) go
    /// back to pending with a fresh retry budget — attempt numbers keep counting up, so
    /// idempotency keys stay unique — the run goes back to running (queued if it never
    /// started), and whatever of them is ready is queued again.
    pub fn reopen(&mut self, steps: &BTreeSet<String>) {
        let keys: Vec<Key> = self
            .rows
            .keys()
            .filter(|(id, _)| steps.contains(id))
            .cloned()
            .collect();
        for (id, item) in keys {
            let row = self.row_mut(&id, item);
            row.status = StepStatus::Pending.as_str().to_owned();
            row.attempt_base = row.attempt;
            row.output = None;
            row.error = None;
            row.started_at = None;
            row.finished_at = None;
            // An element keeps its input until the fan-out is evaluated again.
            if item < 0 {
                row.input = None;
            }
        }
        self.run.error = None;
        self.run.output = None;
        self.run.finished_at = None;
        let status = if self.run.started_at.is_some() {
            RunStatus::Running
        } else {
            RunStatus::Queued
        };
        self.set_run_status(status);
        self.start_ready();
        self.settle();
    }

    /// The steps that depend on any of `roots`, directly or not (`roots` excluded).
    pub fn downstream(&self, roots: &BTreeSet<String>) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut work: VecDeque<String> = roots.iter().cloned().collect();
        while let Some(id) = work.pop_front() {
            for s in &self.def.steps {
                if s.depends_on.contains(&id)
                    && !roots.contains(&s.id)
                    && found.insert(s.id.clone())
                {
                    work.push_back(s.id.clone());
                }
            }
        }
        found
    }

    /// The ids of steps (their own rows) in `status`.
    pub fn steps_in(&self, status: StepStatus) -> BTreeSet<String> {
        self.rows
            .iter()
            .filter(|((_, item), r)| *item == -1 && r.status == status.as_str())
            .map(|((id, _), _)| id.clone())
            .collect()
    }

    /// Whether this is a manual run (see [`crate::model::RunKind::is_manual`]).
    pub fn is_manual(&self) -> bool {
        crate::model::RunKind::is_manual(&self.run.kind)
    }

    /// [`RunTx::open`] for a manual change: the same run and step runs, the step runs read
    /// as one packed row (a runbook run has one per step, up to 200), the definition the
    /// one `def` gives for the run's row (say, kept decoded from an earlier change).
    pub async fn open_manual<F>(
        store: &Store,
        run_id: &str,
        now: i64,
        def: F,
    ) -> Result<Option<RunTx>, Error>
    where
        F: FnOnce(&RunRow) -> Result<Definition, Error>,
    {
        let mut tx = store.begin().await?;
        let Some((mut run, rows)) = db::lock_run_with_steps(&mut tx, run_id, None).await? else {
            return Ok(None);
        };
        let def = def(&run)?;
        // `new` decodes the row's definition; this one has it already.
        let text = std::mem::replace(&mut run.definition, r#"{"steps":[]}"#.to_owned());
        let mut rt = RunTx::new(tx, run, now)?;
        rt.run.definition = text;
        rt.def = def;
        rt.rows = rows
            .into_iter()
            .map(|r| ((r.step_id.clone(), r.item), r))
            .collect();
        Ok(Some(rt))
    }

    /// Every step run as it stands in this transaction (for answering the run).
    pub fn step_rows(&self) -> Vec<StepRunRow> {
        self.rows.values().cloned().collect()
    }

    pub(crate) fn end_run(&mut self, status: RunStatus, data: Value) {
        self.set_run_status(status);
        self.ended = true;
        self.run.finished_at = Some(self.now);
        self.delete_all_jobs = true;
        self.jobs.clear();
        self.event(&format!("run.{}", status.as_str()), None, None, data);
    }

    /// Writes every change and commits. `node` names this engine in the jobs notification,
    /// so its own listener can ignore what it already knows.
    pub async fn commit(self, node: &str) -> Result<Committed, Error> {
        match self.commit_fenced(node, None).await? {
            Some(c) => Ok(c),
            // Without a fence nothing can be lost.
            None => Err(Error::new(
                Code::Internal,
                "An unfenced engine commit was refused.",
            )),
        }
    }

    /// Commits, deleting the job of `fence` through its lease with the other writes (one
    /// round trip on SQLite); `None`, and nothing written, when the lease is no longer ours.
    pub async fn commit_fenced(
        mut self,
        node: &str,
        fence: Option<&db::Lease>,
    ) -> Result<Option<Committed>, Error> {
        let dirty: Vec<StepRunRow> = self
            .dirty
            .iter()
            .filter_map(|k| self.rows.get(k).cloned())
            .collect();
        let finished = self.ended;
        if self.run_dirty {
            self.run.updated_at = self.now;
        }
        let writes = db::RunWrites {
            fence,
            removed: &self.removed,
            delete_all_jobs: self.delete_all_jobs,
            jobs: &self.jobs,
            step_runs: &dirty,
            events: &self.events,
            run: self.run_dirty.then_some(&self.run),
            now: self.now,
            notify: [
                self.jobs_changed.then_some((db::CHANNEL_JOBS, node)),
                finished.then_some((db::CHANNEL_RUNS, self.run.id.as_str())),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        if !db::write_run(&mut self.tx, &self.run.id, writes).await? {
            return Ok(None);
        }
        self.tx.commit().await?;
        Ok(Some(Committed {
            jobs_changed: self.jobs_changed,
            due_now: if self.delete_all_jobs {
                0
            } else {
                self.due_now
            },
            finished,
        }))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
