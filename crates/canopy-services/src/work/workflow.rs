//! A project's task workflow: the ordered statuses its tasks move through. Default
//! `open → review → done`; a custom list has 2–10 statuses, starts with `open` and ends with
//! `done`. Tasks may move to any status of the list, forward or back.

use canopy_core::{Code, Error, ProjectId, Scope, WorkflowId};
use canopy_store::tasks::{
    WorkflowRow, get_workflow, get_workflow_tx, put_workflow, statuses_in_use,
};
use canopy_store::{Store, Tx};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::knowledge::current_project;
use crate::op::{Cx, Hints, Operation};

pub const DEFAULT: &[&str] = &["open", "review", "done"];
pub const FIRST: &str = "open";
pub const LAST: &str = "done";
const MAX_STATUSES: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Workflow {
    /// `wfl_…` (absent while the project uses the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub object: String,
    /// In order: `open` first, `done` last.
    pub statuses: Vec<String>,
    /// True when the project never set its own.
    pub is_default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

fn view(row: Option<WorkflowRow>) -> Workflow {
    match row {
        Some(r) => Workflow {
            id: Some(WorkflowId::show(&r.id)),
            object: "workflow".into(),
            statuses: serde_json::from_str(&r.statuses).unwrap_or_else(|_| default_list()),
            is_default: false,
            updated_at: Some(canopy_core::time::rfc3339(r.updated_at)),
        },
        None => Workflow {
            id: None,
            object: "workflow".into(),
            statuses: default_list(),
            is_default: true,
            updated_at: None,
        },
    }
}

fn default_list() -> Vec<String> {
    DEFAULT.iter().map(|s| (*s).to_owned()).collect()
}

/// The statuses of a project's workflow.
pub async fn statuses(store: &Store, project: ProjectId) -> Result<Vec<String>, Error> {
    Ok(view(get_workflow(store, project).await?).statuses)
}

pub async fn statuses_tx(tx: &mut Tx, project: ProjectId) -> Result<Vec<String>, Error> {
    Ok(view(get_workflow_tx(tx, project).await?).statuses)
}

/// `status` if the workflow has it, else 422 `invalid_type` naming the accepted ones and the
/// closest as a suggestion.
pub fn check_status(status: &str, statuses: &[String]) -> Result<String, Error> {
    if statuses.iter().any(|s| s == status) {
        return Ok(status.to_owned());
    }
    let names: Vec<&str> = statuses.iter().map(String::as_str).collect();
    let mut e = Error::new(
        Code::InvalidType,
        format!(
            "'{status}' is not a status of this project's workflow. Accepted values are: {}.",
            names.join(", ")
        ),
    )
    .with_field("status");
    if let Some(best) = canopy_core::suggest::closest(status, &names) {
        e = e.with_suggestion(format!("Did you mean '{best}'?"));
    }
    Err(e)
}

/// Every reason a proposed list is not a workflow, or the normalised list.
pub fn validate(list: &[String]) -> Result<Vec<String>, Error> {
    let norm: Vec<String> = list.iter().map(|s| s.trim().to_lowercase()).collect();
    let mut reasons = Vec::new();
    if norm.len() < 2 || norm.len() > MAX_STATUSES {
        reasons.push(format!(
            "a workflow has 2 to {MAX_STATUSES} statuses (got {})",
            norm.len()
        ));
    }
    if norm.first().map(String::as_str) != Some(FIRST) {
        reasons.push(format!("the first status must be `{FIRST}`"));
    }
    if norm.last().map(String::as_str) != Some(LAST) {
        reasons.push(format!("the last status must be `{LAST}`"));
    }
    for s in &norm {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            reasons.push(format!(
                "`{s}` is not a status name (1–32 lowercase letters, digits, `_` or `-`)"
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &norm {
        if !seen.insert(s) {
            reasons.push(format!("`{s}` appears twice"));
        }
    }
    if reasons.is_empty() {
        Ok(norm)
    } else {
        Err(Error::validation(
            "statuses",
            format!("This is not a valid workflow: {}.", reasons.join("; ")),
        ))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoInput {}

pub struct GetWorkflow;
impl Operation for GetWorkflow {
    const NAME: &'static str = "get_workflow";
    const SUMMARY: &'static str = "The project's task statuses, in order.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = NoInput;
    type Output = canopy_core::Data<Workflow>;

    async fn call(cx: &Cx<'_>, _i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = get_workflow(cx.svc.store(), project).await?;
        Ok(canopy_core::Data { data: view(row) })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PutWorkflowInput {
    /// 2–10 statuses, `open` first and `done` last, e.g. `["open", "in_progress", "review", "done"]`.
    pub statuses: Vec<String>,
}

pub struct PutWorkflow;
impl Operation for PutWorkflow {
    const NAME: &'static str = "set_workflow";
    const SUMMARY: &'static str =
        "Replace the project's task workflow (tasks in a status it drops must move first).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = PutWorkflowInput;
    type Output = canopy_core::Data<Workflow>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let statuses = validate(&i.statuses)?;
        let mut tx = cx.svc.store().begin().await?;
        // Refuse to strand tasks in a status that would no longer exist.
        let stranded: Vec<String> = statuses_in_use(&mut tx, project)
            .await?
            .into_iter()
            .filter(|s| !statuses.contains(s))
            .collect();
        if !stranded.is_empty() {
            return Err(Error::new(
                Code::Conflict,
                format!(
                    "Tasks are in statuses the new workflow drops ({}); move them first.",
                    stranded.join(", ")
                ),
            )
            .with_field("statuses"));
        }
        let id = get_workflow_tx(&mut tx, project)
            .await?
            .map_or_else(|| WorkflowId::new().db(), |w| w.id);
        let row = WorkflowRow {
            project_id: project.db(),
            id,
            statuses: serde_json::to_string(&statuses)?,
            updated_at: canopy_core::time::now_ms(),
        };
        put_workflow(&mut tx, &row).await?;
        let out = view(Some(row));
        cx.commit(tx, Some(project), out.id.clone(), None).await?;
        Ok(canopy_core::Data { data: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn workflows_are_checked_with_every_reason() {
        assert!(validate(&v(&["open", "doing", "done"])).is_ok());
        let e = validate(&v(&["todo", "done", "done"])).unwrap_err();
        assert!(e.message.contains("first status"), "{}", e.message);
        assert!(e.message.contains("twice"), "{}", e.message);
        let many: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
        assert!(validate(&many).unwrap_err().message.contains("2 to 10"));
        assert!(validate(&v(&["open", "In Review", "done"])).is_err());
    }

    #[test]
    fn unknown_status_suggests_the_closest() {
        let e = check_status("reveiw", &v(DEFAULT)).unwrap_err();
        assert_eq!(e.code, Code::InvalidType);
        assert!(
            e.suggestion
                .as_deref()
                .unwrap_or_default()
                .contains("review")
        );
    }
}
