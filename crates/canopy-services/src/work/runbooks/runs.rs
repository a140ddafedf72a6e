//! Starting and reading runbook runs. A run is a run of the shared engine (kind `runbook`)
//! with the template's steps frozen into its definition; nothing executes it but the calls
//! in [`super::control`].

use std::collections::BTreeMap;

use canopy_core::{Data, Error, PageRequest, Paged, ProjectId, RunId, RunbookId, Scope};
use canopy_engine::{Definition, ManualChange, Run, RunKind, RunSpec, StepStatus};
use canopy_store::runbooks::{RunbookRunFilter, list_runbook_runs, run_owner};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{Step, Variable};
use super::templates::{find, runbook_db};
use super::view::{self, Frozen, RunEvent, RunStep, RunbookRun};
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

/// The run `raw` if it is a runbook run of the project (anything else is not found).
pub async fn visible_run(cx: &Cx<'_>, project: ProjectId, raw: &str) -> Result<Run, Error> {
    let id = view::run_id(raw)?;
    let run = cx.svc.engine()?.get(id).await?;
    if run.project_id != project.db() || !RunKind::is_manual(&run.kind) {
        return Err(Error::not_found("Run"));
    }
    Ok(run)
}

/// The id of the run `raw` if it is a runbook run of the project (anything else is not
/// found), without reading the run: for calls that read it in their own transaction.
pub async fn visible_run_id(cx: &Cx<'_>, project: ProjectId, raw: &str) -> Result<RunId, Error> {
    let id = view::run_id(raw)?;
    match run_owner(cx.svc.store(), &id.db()).await? {
        Some((p, kind)) if p == project.db() && RunKind::is_manual(&kind) => Ok(id),
        _ => Err(Error::not_found("Run")),
    }
}

/// The values a run starts with: given ones, else defaults. Every missing required
/// variable is named at once; names the runbook does not declare are refused (a typo would
/// otherwise leave its placeholder unfilled).
pub fn resolve_variables(
    declared: &[Variable],
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, String>, Error> {
    if let Some(unknown) = given
        .keys()
        .find(|k| !declared.iter().any(|d| &d.name == *k))
    {
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        return Err(Error::validation(
            &format!("variables.{unknown}"),
            format!(
                "The runbook declares no variable `{unknown}` (it has: {}).",
                names.join(", ")
            ),
        ));
    }
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for d in declared {
        let value = match given.get(&d.name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => d.default.clone(),
            Some(other) => Some(other.to_string()),
        };
        match value {
            Some(v) => {
                out.insert(d.name.clone(), v);
            }
            None if d.required => missing.push(d.name.clone()),
            None => {}
        }
    }
    if !missing.is_empty() {
        return Err(Error::validation(
            "variables",
            format!("Required variables are missing: {}.", missing.join(", ")),
        )
        .with_extra("missing", json!(missing)));
    }
    Ok(out)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StartRunInput {
    /// The runbook.
    pub id: String,
    /// `{name: value}`; defaults fill the rest.
    #[serde(default)]
    pub variables: BTreeMap<String, Value>,
}

pub struct StartRun;
impl Operation for StartRun {
    const NAME: &'static str = "start_run";
    const SUMMARY: &'static str =
        "Start a run of a runbook with its variables; the run follows a frozen copy of the steps.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = StartRunInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = find(cx, project, &i.id).await?;
        let declared: Vec<Variable> = serde_json::from_str(&row.variables)?;
        let vars = resolve_variables(&declared, &i.variables)?;
        let steps: Vec<Step> = serde_json::from_str(&row.steps)?;
        let frozen: Vec<Frozen> = steps
            .into_iter()
            .map(|step| Frozen {
                run_step_id: canopy_core::RunStepId::new().to_string(),
                step,
            })
            .collect();
        let first = frozen
            .first()
            .ok_or_else(|| Error::internal("a stored runbook has no steps"))?;
        let definition = Definition {
            steps: frozen
                .iter()
                .map(Frozen::to_engine)
                .collect::<Result<_, _>>()?,
            output: None,
        };
        // The run's id is the engine's to make; the record names the runbook it ran.
        let change = ManualChange {
            audit: Some(cx.success_audit(Some(project), Some(RunbookId::show(&row.id)))),
            ..ManualChange::default()
        }
        .step(&first.step.key, StepStatus::Running, None)
        .event(
            "runbook.step_activated",
            Some(&first.step.key),
            json!({"run_step_id": first.run_step_id, "position": 0}),
        );
        let engine = cx.svc.engine()?;
        let id = engine
            .submit_manual(
                RunSpec {
                    org_id: cx.org(),
                    project_id: project,
                    kind: RunKind::Runbook,
                    definition_id: Some(row.id.clone()),
                    definition_version: Some(row.updated_at),
                    definition,
                    input: view::input(&vars, &author(cx), &row.name),
                },
                change,
            )
            .await?;
        let run = engine.get(id).await?;
        Ok(Data {
            data: view::run(&run)?,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListRunsInput {
    /// running, paused, completed, failed, cancelled.
    pub status: Option<String>,
    pub runbook_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListRuns;
impl Operation for ListRuns {
    const NAME: &'static str = "list_runs";
    const SUMMARY: &'static str =
        "List runbook runs, newest first; filter by status and runbook_id.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListRunsInput;
    type Output = Paged<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let statuses = match &i.status {
            Some(s) => {
                let s = canopy_core::suggest::parse_enum(s, "status", view::RUN_STATUSES)?;
                view::engine_statuses(s)
            }
            None => Vec::new(),
        };
        let runbook_id = i.runbook_id.as_deref().map(runbook_db).transpose()?;
        let f = RunbookRunFilter {
            statuses,
            runbook_id,
        };
        let rows = list_runbook_runs(cx.svc.store(), project, &f, &page).await?;
        let paged = Paged::from_rows(rows, &page, |r| canopy_core::Cursor {
            t: r.created_at,
            id: r.id.clone(),
        });
        let engine = cx.svc.engine()?;
        let mut data = Vec::with_capacity(paged.data.len());
        for r in &paged.data {
            let id = RunId::from_db(&r.id)
                .ok_or_else(|| Error::internal(format!("bad run id in the database: {}", r.id)))?;
            data.push(view::run(&engine.get(id).await?)?);
        }
        Ok(Paged {
            data,
            pagination: paged.pagination,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunIdInput {
    /// `run_…`
    pub run_id: String,
}

pub struct GetRun;
impl Operation for GetRun {
    const NAME: &'static str = "get_run";
    const SUMMARY: &'static str = "Read a runbook run with all its steps.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = RunIdInput;
    type Output = Data<RunbookRun>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let run = visible_run(cx, project, &i.run_id).await?;
        Ok(Data {
            data: view::run(&run)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CurrentStep {
    pub run_id: String,
    /// The run's status.
    pub status: String,
    /// The active step, its title and instructions with the run's variables substituted;
    /// null when the run is over.
    pub step: Option<RunStep>,
    /// Steps in the runbook.
    pub total_steps: usize,
}

pub struct GetCurrentStep;
impl Operation for GetCurrentStep {
    const NAME: &'static str = "get_current_step";
    const SUMMARY: &'static str =
        "The run's active step, with its instructions' {variables} filled in.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = RunIdInput;
    type Output = Data<CurrentStep>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let run = visible_run(cx, project, &i.run_id).await?;
        let steps = view::frozen(&run)?;
        let vars = view::variables(&run);
        let step = view::current(&run, &steps).map(|p| {
            let f = &steps.steps[p];
            view::run_step(run.step(&f.step.key), p, f, Some(&vars))
        });
        Ok(Data {
            data: CurrentStep {
                run_id: run.id.to_string(),
                status: view::status(run.status).to_owned(),
                step,
                total_steps: steps.steps.len(),
            },
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListRunEventsInput {
    pub run_id: String,
    /// Events after this seq (default 0).
    pub after_seq: Option<i64>,
    /// ≤ 1000 (default).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RunEvents {
    pub data: Vec<RunEvent>,
}

pub struct ListRunEvents;
impl Operation for ListRunEvents {
    const NAME: &'static str = "list_run_events";
    const SUMMARY: &'static str =
        "Read a runbook run's event log from the engine (every transition, oldest first).";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListRunEventsInput;
    type Output = RunEvents;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let run = visible_run(cx, project, &i.run_id).await?;
        let events = cx
            .svc
            .engine()?
            .events(
                run.id,
                i.after_seq.unwrap_or(0).max(0),
                i.limit.unwrap_or(1000),
            )
            .await?;
        Ok(RunEvents {
            data: events.into_iter().map(view::event).collect(),
        })
    }
}
