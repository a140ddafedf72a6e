//! Runbook templates: create (5 credits), list, read, update (new runs only), delete.

use crate::work::fields;
use canopy_core::{Data, Deleted, Error, PageRequest, Paged, ProjectId, RunbookId, Scope};
use canopy_store::runbooks::{
    RunbookRow, active_runs, delete_runbook, get_runbook, get_runbook_tx, list_runbooks,
    upsert_runbook,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{Step, StepInput, Variable, check_steps, check_variables};
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Runbook {
    /// `rnb_…`
    pub id: String,
    pub object: String,
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub variables: Vec<Variable>,
    /// In order; a run follows a frozen copy taken at its start.
    pub steps: Vec<Step>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Runbook {
    pub fn from_row(r: &RunbookRow) -> Result<Runbook, Error> {
        Ok(Runbook {
            id: RunbookId::show(&r.id),
            object: "runbook".into(),
            name: r.name.clone(),
            description: r.description.clone(),
            category: r.category.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            variables: serde_json::from_str(&r.variables)?,
            steps: serde_json::from_str(&r.steps)?,
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        })
    }
}

pub fn not_found() -> Error {
    Error::not_found("Runbook")
}

pub fn runbook_db(raw: &str) -> Result<String, Error> {
    RunbookId::parse(raw).map(|i| i.db()).ok_or_else(not_found)
}

/// The runbook `raw` of the project.
pub async fn find(cx: &Cx<'_>, project: ProjectId, raw: &str) -> Result<RunbookRow, Error> {
    get_runbook(cx.svc.store(), project, &runbook_db(raw)?)
        .await?
        .ok_or_else(not_found)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateRunbookInput {
    pub name: String,
    /// Markdown.
    #[serde(default)]
    pub description: String,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub variables: Vec<Variable>,
    pub steps: Vec<StepInput>,
}

pub struct CreateRunbook;
impl Operation for CreateRunbook {
    const NAME: &'static str = "create_runbook";
    const SUMMARY: &'static str = "Create a runbook: ordered steps (action, check, gate, branch) with routes and {variables}.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    const CREDITS: u32 = 5;
    type Input = CreateRunbookInput;
    type Output = Data<Runbook>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let now = canopy_core::time::now_ms();
        let row = RunbookRow {
            id: RunbookId::new().db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            name: fields::required_text("name", &i.name, 200)?,
            description: fields::description(&i.description)?,
            category: fields::category(i.category)?,
            tags: fields::tags_json(i.tags.as_deref().unwrap_or_default())?,
            variables: serde_json::to_string(&check_variables(&i.variables)?)?,
            steps: serde_json::to_string(&check_steps(&i.steps, &[])?)?,
            created_by: Some(author(cx)),
            created_at: now,
            updated_at: now,
        };
        let mut tx = cx.svc.store().begin().await?;
        upsert_runbook(&mut tx, &row).await?;
        let rb = Runbook::from_row(&row)?;
        cx.commit(tx, Some(project), rb.id.clone(), None).await?;
        Ok(Data { data: rb })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListRunbooksInput {
    pub category: Option<String>,
    /// One tag.
    pub tag: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListRunbooks;
impl Operation for ListRunbooks {
    const NAME: &'static str = "list_runbooks";
    const SUMMARY: &'static str = "List runbooks, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListRunbooksInput;
    type Output = Paged<Runbook>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let category = i.category.map(|c| c.trim().to_lowercase());
        let tag = i
            .tag
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty());
        let rows = list_runbooks(
            cx.svc.store(),
            project,
            category.as_deref(),
            tag.as_deref(),
            &page,
        )
        .await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Runbook::from_row(&r),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunbookIdInput {
    /// `rnb_…`
    pub id: String,
}

pub struct GetRunbook;
impl Operation for GetRunbook {
    const NAME: &'static str = "get_runbook";
    const SUMMARY: &'static str = "Read a runbook with its variables and steps.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = RunbookIdInput;
    type Output = Data<Runbook>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = find(cx, project, &i.id).await?;
        Ok(Data {
            data: Runbook::from_row(&row)?,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateRunbookInput {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Replaces the whole list.
    pub variables: Option<Vec<Variable>>,
    /// Replaces the whole list; a key kept keeps its `rbs_…` id.
    pub steps: Option<Vec<StepInput>>,
}

pub struct UpdateRunbook;
impl Operation for UpdateRunbook {
    const NAME: &'static str = "update_runbook";
    const SUMMARY: &'static str =
        "Change a runbook; runs already started keep the steps they started with.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateRunbookInput;
    type Output = Data<Runbook>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_runbook_tx(&mut tx, project, &runbook_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        if let Some(n) = &i.name {
            row.name = fields::required_text("name", n, 200)?;
        }
        if let Some(d) = &i.description {
            row.description = fields::description(d)?;
        }
        if i.category.is_some() {
            row.category = fields::category(i.category)?;
        }
        if let Some(t) = &i.tags {
            row.tags = fields::tags_json(t)?;
        }
        if let Some(v) = &i.variables {
            row.variables = serde_json::to_string(&check_variables(v)?)?;
        }
        if let Some(s) = &i.steps {
            let previous: Vec<Step> = serde_json::from_str(&row.steps)?;
            row.steps = serde_json::to_string(&check_steps(s, &previous)?)?;
        }
        row.updated_at = canopy_core::time::now_ms();
        upsert_runbook(&mut tx, &row).await?;
        let rb = Runbook::from_row(&row)?;
        cx.commit(tx, Some(project), rb.id.clone(), None).await?;
        Ok(Data { data: rb })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteRunbookInput {
    pub id: String,
    /// Delete even while runs of it are active (they go on with their frozen steps).
    #[serde(default)]
    pub force: bool,
}

pub struct DeleteRunbook;
impl Operation for DeleteRunbook {
    const NAME: &'static str = "delete_runbook";
    const SUMMARY: &'static str =
        "Delete a runbook; refused while runs of it are active unless force is true.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = DeleteRunbookInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = runbook_db(&i.id)?;
        let mut tx = cx.svc.store().begin().await?;
        // Locked (on PostgreSQL), so no run starts from it while the active ones are counted.
        if get_runbook_tx(&mut tx, project, &id).await?.is_none() {
            return Err(not_found());
        }
        let active = active_runs(&mut tx, project, &id).await?;
        if !active.is_empty() && !i.force {
            let n = active.len();
            let runs: Vec<String> = active.iter().map(|r| canopy_core::RunId::show(r)).collect();
            return Err(Error::conflict(format!(
                "{n} run(s) of this runbook are still active; finish or cancel them, or delete with force=true."
            ))
            .with_extra("active_runs", serde_json::json!(runs)));
        }
        if !delete_runbook(&mut tx, project, &id).await? {
            return Err(not_found());
        }
        cx.commit_deleted(tx, project, RunbookId::show(&id)).await
    }
}
