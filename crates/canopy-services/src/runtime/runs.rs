//! The client routes (seed 000 §4–§6): what a client may run, running it (sync or async),
//! and its runs: read, list, cancel, approve, events (pause, resume, retry and recover are in
//! [`super::control`]).

use std::collections::HashSet;
use std::time::Duration;

use canopy_core::{Code, Data, Error, PageRequest, Paged, ProjectId, RunId, Scope};
use canopy_engine::{Decision, Definition, RunKind, RunSpec};
use canopy_store::audit::insert_audit_alone;
use canopy_store::projects::ProjectRow;
use canopy_store::runtime::{self as db, DefRow, RunFilter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::authoring::{Branch, Bud, branch_not_found, bud_not_found, buds_of};
use super::defs::{
    BranchSpec, BudSpec, KIND_BRANCH, KIND_BUD, branch_definition, bud_definition, referenced_buds,
};
use super::view::{self, EventView, RunView};
use crate::op::{Cx, Hints, Operation};
use crate::tenancy::clients::visible_client;

/// How long a sync run waits by default, and at most, before answering 202.
pub const SYNC_TIMEOUT_MS: u64 = 30_000;
pub const MAX_SYNC_TIMEOUT_MS: u64 = 120_000;

pub fn run_not_found() -> Error {
    Error::new(Code::RunNotFound, "Run not found.")
}

fn project_id(p: &ProjectRow) -> Result<ProjectId, Error> {
    ProjectId::from_db(&p.id).ok_or_else(|| Error::internal("bad project id"))
}

/// The branches assigned to a client.
pub(crate) async fn client_branches(cx: &Cx<'_>, p: &ProjectRow) -> Result<Vec<DefRow>, Error> {
    db::assigned_defs(cx.svc.store(), &p.id, KIND_BRANCH).await
}

/// The buds a client may run: assigned directly, or used by an assigned branch.
pub(crate) async fn client_buds(cx: &Cx<'_>, p: &ProjectRow) -> Result<Vec<DefRow>, Error> {
    let mut buds = db::assigned_defs(cx.svc.store(), &p.id, KIND_BUD).await?;
    let mut seen: HashSet<String> = buds.iter().map(|b| b.id.clone()).collect();
    let mut used = Vec::new();
    for b in client_branches(cx, p).await? {
        let spec: BranchSpec = serde_json::from_str(&b.spec)?;
        for (_, id) in referenced_buds(&spec).unwrap_or_default() {
            if seen.insert(id.clone()) {
                used.push(id);
            }
        }
    }
    let mut more = db::get_defs(cx.svc.store(), &cx.org().db(), &used).await?;
    more.retain(|r| r.kind == KIND_BUD);
    buds.extend(more);
    buds.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(buds)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientInput {
    pub client_id: String,
}

pub struct ListClientBranches;
impl Operation for ListClientBranches {
    const NAME: &'static str = "list_client_branches";
    const SUMMARY: &'static str = "List the branches assigned to a client.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ClientInput;
    type Output = Data<Vec<Branch>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let rows = client_branches(cx, &p).await?;
        let data = rows
            .iter()
            .map(Branch::from_row)
            .collect::<Result<_, _>>()?;
        Ok(Data { data })
    }
}

pub struct ListClientBuds;
impl Operation for ListClientBuds {
    const NAME: &'static str = "list_client_buds";
    const SUMMARY: &'static str =
        "List the buds a client can run (assigned directly or used by an assigned branch).";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ClientInput;
    type Output = Data<Vec<Bud>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let rows = client_buds(cx, &p).await?;
        let data = rows.iter().map(Bud::from_row).collect::<Result<_, _>>()?;
        Ok(Data { data })
    }
}

/// `sync` waits for the run (up to `timeout_ms`); `async` answers at once.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Sync,
    Async,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunBranchInput {
    pub client_id: String,
    pub branch_id: String,
    /// The run's input (any JSON; `{}` when absent).
    #[serde(default)]
    pub input: Option<Value>,
    /// `sync` (default) or `async`.
    #[serde(default)]
    pub mode: Mode,
    /// How long a sync run may take before the answer turns into 202 with the run still
    /// going; default 30 000, at most 120 000.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunBudInput {
    pub client_id: String,
    pub bud_id: String,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub mode: Mode,
    pub timeout_ms: Option<u64>,
}

/// The answer of a run request: `{run}`. REST answers 200 when a sync run finished in time,
/// 202 otherwise (async, or a sync run still going); `accepted` carries that choice to the
/// door and is not serialised.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunAnswer {
    pub run: RunView,
    #[serde(skip)]
    pub accepted: bool,
}

/// A run's input against the bud's or branch's `input_schema`: a mismatch is a 422 on the
/// request (nothing runs), not a failed run.
fn check_input(schema: Option<&Value>, input: &Option<Value>) -> Result<(), Error> {
    let Some(schema) = schema else { return Ok(()) };
    let empty = Value::Object(Default::default());
    super::schema::check(schema, input.as_ref().unwrap_or(&empty)).map_err(|m| {
        Error::validation(
            "input",
            format!("The input does not match the input_schema: {m}"),
        )
    })
}

/// How a run is asked for: its input, the mode, and a sync run's timeout.
pub(crate) type RunRequest = (Option<Value>, Mode, Option<u64>);

/// Runs an assigned branch (the caller found `def` among the client's branches): checks the
/// input against its `input_schema`, resolves its buds, then [`start`]s it.
pub(crate) async fn start_branch(
    cx: &Cx<'_>,
    p: &ProjectRow,
    def: &DefRow,
    request: RunRequest,
) -> Result<RunAnswer, Error> {
    let spec: BranchSpec = serde_json::from_str(&def.spec)?;
    check_input(spec.input_schema.as_ref(), &request.0)?;
    let buds = buds_of(cx.svc.store(), &cx.org().db(), &spec).await?;
    let definition = branch_definition(&spec, &buds)?;
    start(cx, p, RunKind::Branch, def, definition, request).await
}

/// Runs a bud the client can run (the caller found `def` among them): checks the input, then
/// [`start`]s its one-step graph.
pub(crate) async fn start_bud(
    cx: &Cx<'_>,
    p: &ProjectRow,
    def: &DefRow,
    request: RunRequest,
) -> Result<RunAnswer, Error> {
    let spec: BudSpec = serde_json::from_str(&def.spec)?;
    check_input(spec.input_schema.as_ref(), &request.0)?;
    start(cx, p, RunKind::Bud, def, bud_definition(&spec), request).await
}

/// Submits a run, audits it, and waits for it when asked.
async fn start(
    cx: &Cx<'_>,
    p: &ProjectRow,
    kind: RunKind,
    def: &DefRow,
    definition: Definition,
    (input, mode, timeout_ms): RunRequest,
) -> Result<RunAnswer, Error> {
    let engine = cx.svc.engine()?;
    let project = project_id(p)?;
    let id = engine
        .submit(RunSpec {
            org_id: cx.org(),
            project_id: project,
            kind,
            definition_id: Some(def.id.clone()),
            definition_version: Some(def.version),
            definition,
            input: input.unwrap_or_else(|| Value::Object(Default::default())),
        })
        .await?;
    let row = cx.success_audit(Some(project), Some(id.to_string()));
    if let Err(e) = insert_audit_alone(cx.svc.store(), &row).await {
        tracing::warn!(error = %e, "could not audit a run submission");
    }
    let run = match mode {
        Mode::Async => engine.get(id).await?,
        Mode::Sync => {
            let ms = timeout_ms
                .unwrap_or(SYNC_TIMEOUT_MS)
                .min(MAX_SYNC_TIMEOUT_MS);
            engine.wait_finished(id, Duration::from_millis(ms)).await?
        }
    };
    let accepted = mode == Mode::Async || !run.status.is_final();
    Ok(RunAnswer {
        run: view::run(run),
        accepted,
    })
}

pub struct RunBranch;
impl Operation for RunBranch {
    const NAME: &'static str = "run_branch";
    const SUMMARY: &'static str =
        "Run a branch assigned to the client, sync (wait up to timeout_ms) or async.";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::WRITE;
    type Input = RunBranchInput;
    type Output = RunAnswer;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let id = canopy_core::BranchId::parse(&input.branch_id).ok_or_else(branch_not_found)?;
        let def = db::get_def(cx.svc.store(), &cx.org().db(), KIND_BRANCH, &id.db())
            .await?
            .ok_or_else(branch_not_found)?;
        if !db::is_assigned(cx.svc.store(), &p.id, &def.id).await? {
            return Err(branch_not_found());
        }
        start_branch(cx, &p, &def, (input.input, input.mode, input.timeout_ms)).await
    }
}

pub struct RunBud;
impl Operation for RunBud {
    const NAME: &'static str = "run_bud";
    const SUMMARY: &'static str =
        "Run one bud the client can run, sync (wait up to timeout_ms) or async.";
    const SCOPE: Option<Scope> = Some(Scope::BudRun);
    const HINTS: Hints = Hints::WRITE;
    type Input = RunBudInput;
    type Output = RunAnswer;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let id = canopy_core::BudId::parse(&input.bud_id).ok_or_else(bud_not_found)?;
        let def = client_buds(cx, &p)
            .await?
            .into_iter()
            .find(|b| b.id == id.db())
            .ok_or_else(bud_not_found)?;
        start_bud(cx, &p, &def, (input.input, input.mode, input.timeout_ms)).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunIdInput {
    pub client_id: String,
    /// The run's id (`run_…`).
    pub run_id: String,
}

/// A run of this client, or `run_not_found` (unknown, malformed, another client's or org's).
pub(crate) async fn visible_run(cx: &Cx<'_>, client: &str, raw: &str) -> Result<RunId, Error> {
    Ok(visible_run_status(cx, client, raw).await?.0)
}

/// [`visible_run`] with the run's status as it was read.
async fn visible_run_status(
    cx: &Cx<'_>,
    client: &str,
    raw: &str,
) -> Result<(RunId, String), Error> {
    let p = visible_client(cx, client).await?;
    let id = RunId::parse(raw).ok_or_else(run_not_found)?;
    let row = canopy_store::engine::get_run(cx.svc.store(), &id.db())
        .await?
        .ok_or_else(run_not_found)?;
    // Runbook runs live in the same table but are not the client's bud or branch runs.
    let stackmint = row.kind == super::defs::KIND_BUD || row.kind == super::defs::KIND_BRANCH;
    if row.project_id != p.id || row.org_id != cx.org().db() || !stackmint {
        return Err(run_not_found());
    }
    Ok((id, row.status))
}

pub(crate) fn engine_not_found(e: Error) -> Error {
    if e.code == Code::NotFound {
        run_not_found()
    } else {
        e
    }
}

pub struct GetRun;
impl Operation for GetRun {
    const NAME: &'static str = "get_client_run";
    const SUMMARY: &'static str =
        "Get a run: status, input, output, error, per-step states and timings.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = RunIdInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let id = visible_run(cx, &input.client_id, &input.run_id).await?;
        let run = cx.svc.engine()?.get(id).await.map_err(engine_not_found)?;
        Ok(view::run(run))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListRunsInput {
    pub client_id: String,
    /// Only runs in this status.
    pub status: Option<String>,
    /// Only runs of this branch.
    pub branch_id: Option<String>,
    /// Only runs of this bud (run on its own).
    pub bud_id: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListRuns;
impl Operation for ListRuns {
    const NAME: &'static str = "list_client_runs";
    const SUMMARY: &'static str = "List a client's runs (newest first), by status, branch or bud.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListRunsInput;
    type Output = Paged<RunView>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = visible_client(cx, &input.client_id).await?;
        let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        if let Some(s) = &input.status
            && canopy_engine::RunStatus::parse(s).is_none()
        {
            return Err(Error::new(
                Code::InvalidType,
                format!(
                    "The status '{s}' is not valid. Accepted values are: queued, running, waiting, paused, succeeded, failed, cancelled."
                ),
            )
            .with_field("status"));
        }
        // An id that names nothing matches no run (rather than every run).
        let nothing = "-".to_owned();
        let definition = match (&input.branch_id, &input.bud_id) {
            (Some(_), Some(_)) => {
                return Err(Error::validation(
                    "bud_id",
                    "Filter by branch_id or bud_id, not both.",
                ));
            }
            (Some(b), None) => Some((
                KIND_BRANCH.to_owned(),
                canopy_core::BranchId::parse(b).map_or(nothing, |i| i.db()),
            )),
            (None, Some(b)) => Some((
                KIND_BUD.to_owned(),
                canopy_core::BudId::parse(b).map_or(nothing, |i| i.db()),
            )),
            (None, None) => None,
        };
        let filter = RunFilter {
            status: input.status,
            definition,
        };
        let rows = db::list_runs(cx.svc.store(), &p.id, &filter, &page).await?;
        Paged::try_from_rows(rows, &page, |r| (r.created_at, &r.id), view::summary)
    }
}

pub struct CancelRun;
impl Operation for CancelRun {
    const NAME: &'static str = "cancel_client_run";
    const SUMMARY: &'static str =
        "Cancel a run: no further step starts, a running step's result is discarded.";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::DESTROY;
    type Input = RunIdInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &input.client_id, &input.run_id, |e, id| async move {
            e.cancel(id).await
        })
        .await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ApproveRunInput {
    pub client_id: String,
    pub run_id: String,
    /// The waiting approval step.
    pub step_id: String,
    pub decision: DecisionInput,
    pub comment: Option<String>,
}

/// `approve` or `reject`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionInput {
    Approve,
    Reject,
}

pub struct ApproveRun;
impl Operation for ApproveRun {
    const NAME: &'static str = "approve_client_run";
    const SUMMARY: &'static str =
        "Decide a run's waiting approval step: approve (it succeeds) or reject (it fails).";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::WRITE;
    type Input = ApproveRunInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let id = visible_run(cx, &input.client_id, &input.run_id).await?;
        let run = cx
            .svc
            .engine()?
            .decide_approval(
                id,
                &input.step_id,
                match input.decision {
                    DecisionInput::Approve => Decision::Approve,
                    DecisionInput::Reject => Decision::Reject,
                },
                input.comment,
            )
            .await
            .map_err(engine_not_found)?;
        audit_alone(cx, &input.client_id, id).await;
        Ok(view::run(run))
    }
}

/// A control action on a client's run: the run must be the caller's, `act` is the engine's
/// transaction, and the success is audited; answers the run as it now is.
pub(crate) async fn control<F, Fut>(
    cx: &Cx<'_>,
    client: &str,
    run: &str,
    act: F,
) -> Result<RunView, Error>
where
    F: FnOnce(canopy_engine::Engine, RunId) -> Fut,
    Fut: std::future::Future<Output = Result<canopy_engine::Run, Error>>,
{
    let id = visible_run(cx, client, run).await?;
    let engine = cx.svc.engine()?.clone();
    let run = act(engine, id).await.map_err(engine_not_found)?;
    audit_alone(cx, client, id).await;
    Ok(view::run(run))
}

/// The success record of an engine transaction (which the engine commits on its own).
pub(crate) async fn audit_alone(cx: &Cx<'_>, client: &str, run: RunId) {
    let project = ProjectId::parse(client);
    let row = cx.success_audit(project, Some(run.to_string()));
    if let Err(e) = insert_audit_alone(cx.svc.store(), &row).await {
        tracing::warn!(error = %e, op = cx.op, "could not audit a run change");
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListRunEventsInput {
    pub client_id: String,
    pub run_id: String,
    /// Events after this sequence number (default 0: from the start).
    pub after_seq: Option<i64>,
    /// At most this many, 1–1000 (default 100).
    pub limit: Option<i64>,
}

pub struct ListRunEvents;
impl Operation for ListRunEvents {
    const NAME: &'static str = "list_client_run_events";
    const SUMMARY: &'static str = "Read a run's event log (state changes of the run and each step), oldest first, after a sequence number.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListRunEventsInput;
    type Output = EventsPage;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        // The status is read before the events: a run final then has its final event
        // among them (both commit in one transaction).
        let (id, status) = visible_run_status(cx, &input.client_id, &input.run_id).await?;
        let events = cx
            .svc
            .engine()?
            .events(
                id,
                input.after_seq.unwrap_or(0).max(0),
                input.limit.unwrap_or(100),
            )
            .await
            .map_err(engine_not_found)?;
        Ok(EventsPage {
            data: events.into_iter().map(view::event).collect(),
            run_status: status,
        })
    }
}

/// A page of a run's events, and the run's status when it was read.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventsPage {
    pub data: Vec<EventView>,
    /// Final (`succeeded`, `failed`, `cancelled`) means no event will follow the last one.
    pub run_status: String,
}

impl EventsPage {
    /// Nothing can follow: the page ends the log of a finished run.
    pub fn is_last(&self) -> bool {
        self.data.iter().any(|e| is_final_event(&e.kind))
            || (self.data.is_empty()
                && canopy_engine::RunStatus::parse(&self.run_status)
                    .is_some_and(canopy_engine::RunStatus::is_final))
    }
}

/// Whether an event type ends a run's log.
pub fn is_final_event(kind: &str) -> bool {
    matches!(kind, "run.succeeded" | "run.failed" | "run.cancelled")
}
