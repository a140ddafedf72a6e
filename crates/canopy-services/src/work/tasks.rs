//! Tasks: work items for agents and team members (seed 003 Tasks). Creating one costs 2
//! credits; status changes, assignments, notes and reads are free. Status changes and
//! assignments write their notes themselves, so the team feed tells the whole story.

use canopy_core::suggest::parse_enum;
use canopy_core::{Code, Data, Deleted, Error, PageRequest, Paged, ProjectId, Scope, TaskId};
use canopy_store::tasks::{
    TaskFilter, TaskRow, delete_task, get_task, list_tasks, notes_of, upsert_task,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fields;
use super::notes::{Note, NoteKind, note_row, write_note};
use super::workflow;
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

pub const PRIORITIES: &[&str] = &["low", "medium", "high", "urgent"];
pub const ASSIGNEE_TYPES: &[&str] = &["agent", "member"];

pub fn priority_rank(p: &str) -> i64 {
    match p {
        "urgent" => 4,
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

// Who a task is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Assignee {
    /// `agent` or `member`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    /// `tsk_…`
    pub id: String,
    pub object: String,
    pub title: String,
    pub description: String,
    pub category: Option<String>,
    /// A status of the project workflow.
    pub status: String,
    /// `low`, `medium`, `high` or `urgent`.
    pub priority: String,
    pub tags: Vec<String>,
    pub assignee: Option<Assignee>,
    /// Set when the task moved to `done`.
    pub resolution: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// On a single read: every note, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<Note>>,
}

impl Task {
    pub fn from_row(r: &TaskRow) -> Task {
        Task {
            id: TaskId::show(&r.id),
            object: "task".into(),
            title: r.title.clone(),
            description: r.description.clone(),
            category: r.category.clone(),
            status: r.status.clone(),
            priority: r.priority.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            assignee: match (&r.assignee_type, &r.assignee_name) {
                (Some(t), Some(n)) => Some(Assignee {
                    kind: t.clone(),
                    name: n.clone(),
                }),
                _ => None,
            },
            resolution: r.resolution.clone(),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
            notes: None,
        }
    }
}

pub fn not_found() -> Error {
    Error::not_found("Task")
}

pub fn task_db(raw: &str) -> Result<String, Error> {
    TaskId::parse(raw).map(|i| i.db()).ok_or_else(not_found)
}

/// Checks an assignee: an agent must be defined in the project, a member must be on its team.
pub async fn check_assignee(
    cx: &Cx<'_>,
    project: ProjectId,
    a: &Assignee,
) -> Result<Assignee, Error> {
    let kind = parse_enum(&a.kind, "assignee.type", ASSIGNEE_TYPES)?;
    let name = a.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::validation(
            "assignee.name",
            "assignee.name must be 1 to 200 characters.",
        ));
    }
    let known = if kind == "agent" {
        canopy_store::agents::find_agent(cx.svc.store(), cx.org(), project, None, name)
            .await?
            .is_some()
    } else {
        super::teams::member_in_project(cx.svc.store(), cx.org(), project, name).await?
    };
    if !known {
        let what = if kind == "agent" {
            "No agent with this name is defined in the project (POST /v1/agents)."
        } else {
            "No team member with this name has a role in the project (POST /v1/team/invites)."
        };
        return Err(Error::validation("assignee.name", what));
    }
    Ok(Assignee {
        kind: kind.to_owned(),
        name: name.to_owned(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateTaskInput {
    /// 1–300 chars.
    pub title: String,
    /// Markdown, up to 50,000 chars.
    #[serde(default)]
    pub description: String,
    pub category: Option<String>,
    /// low, medium (default), high or urgent.
    pub priority: Option<String>,
    pub tags: Option<Vec<String>>,
    pub assignee: Option<Assignee>,
    /// Workflow status; default `open`.
    pub status: Option<String>,
}

pub struct CreateTask;
impl Operation for CreateTask {
    const NAME: &'static str = "create_task";
    const SUMMARY: &'static str = "Create a task, optionally assigned.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    const CREDITS: u32 = 2;
    type Input = CreateTaskInput;
    type Output = Data<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let priority = parse_enum(
            i.priority.as_deref().unwrap_or("medium"),
            "priority",
            PRIORITIES,
        )?;
        let assignee = match &i.assignee {
            Some(a) => Some(check_assignee(cx, project, a).await?),
            None => None,
        };
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        let statuses = workflow::statuses_tx(&mut tx, project).await?;
        let status =
            workflow::check_status(i.status.as_deref().unwrap_or(workflow::FIRST), &statuses)?;
        if status == workflow::LAST {
            return Err(Error::validation(
                "status",
                "A task cannot start `done`: create it, then move it with a resolution.",
            ));
        }
        let row = TaskRow {
            id: TaskId::new().db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            title: fields::required_text("title", &i.title, 300)?,
            description: fields::description(&i.description)?,
            category: fields::category(i.category)?,
            status,
            priority: priority.to_owned(),
            priority_rank: priority_rank(priority),
            tags: fields::tags_json(i.tags.as_deref().unwrap_or_default())?,
            assignee_type: assignee.as_ref().map(|a| a.kind.clone()),
            assignee_name: assignee.as_ref().map(|a| a.name.clone()),
            resolution: None,
            created_by: Some(author(cx)),
            created_at: now,
            updated_at: now,
        };
        upsert_task(&mut tx, &row).await?;
        if let Some(a) = &assignee {
            let body = format!("Assigned to {} {}.", a.kind, a.name);
            write_note(
                &mut tx,
                note_row(cx, &row, NoteKind::Assignment, body, None, now),
            )
            .await?;
        }
        let task = Task::from_row(&row);
        cx.commit(tx, Some(project), task.id.clone(), None).await?;
        Ok(Data { data: task })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListTasksInput {
    pub status: Option<String>,
    /// An assignee's name; with `assignee_type` (default `agent`).
    pub assignee: Option<String>,
    pub assignee_type: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    /// One tag (the first of a comma-separated list).
    pub tags: Option<String>,
    /// Words that must all appear in the title or description.
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListTasks;
impl Operation for ListTasks {
    const NAME: &'static str = "list_tasks";
    const SUMMARY: &'static str =
        "List tasks, newest first; filter by status, assignee, priority, category, tag, search.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListTasksInput;
    type Output = Paged<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let status = match &i.status {
            Some(s) => {
                let statuses = workflow::statuses(cx.svc.store(), project).await?;
                Some(workflow::check_status(s, &statuses)?)
            }
            None => None,
        };
        let f = TaskFilter {
            status,
            priority: i
                .priority
                .as_deref()
                .map(|p| parse_enum(p, "priority", PRIORITIES).map(str::to_owned))
                .transpose()?,
            category: i.category.map(|c| c.trim().to_lowercase()),
            assignee: match i.assignee {
                Some(n) => Some((
                    parse_enum(
                        i.assignee_type.as_deref().unwrap_or("agent"),
                        "assignee_type",
                        ASSIGNEE_TYPES,
                    )?
                    .to_owned(),
                    n.trim().to_owned(),
                )),
                None => None,
            },
            tag: i
                .tags
                .and_then(|t| t.split(',').next().map(|x| x.trim().to_lowercase()))
                .filter(|t| !t.is_empty()),
            search: i.search.filter(|s| !s.trim().is_empty()),
            ..Default::default()
        };
        let rows = list_tasks(cx.svc.store(), project, &f, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Ok::<_, Error>(Task::from_row(&r)),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MyTasksInput {
    /// Default: every status but `done`.
    pub status: Option<String>,
    /// With no status, include `done` too.
    #[serde(default)]
    pub include_done: bool,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct GetMyTasks;
impl Operation for GetMyTasks {
    const NAME: &'static str = "get_my_tasks";
    const SUMMARY: &'static str =
        "Tasks assigned to the calling agent (X-Minolith-Agent), highest priority first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = MyTasksInput;
    type Output = Paged<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let agent = cx.principal.agent.clone().ok_or_else(|| {
            Error::new(
                Code::AgentHeaderRequired,
                "Tell who is asking: send the X-Minolith-Agent header with an agent's name.",
            )
            .with_field("X-Minolith-Agent")
        })?;
        let project = current_project(cx).await?;
        let mut page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        // Ordered by priority, not time: pages go by position.
        let offset = crate::knowledge::search_offset(true, &mut page)?;
        let status = match &i.status {
            Some(s) => {
                let statuses = workflow::statuses(cx.svc.store(), project).await?;
                Some(workflow::check_status(s, &statuses)?)
            }
            None => None,
        };
        let f = TaskFilter {
            status_not: (status.is_none() && !i.include_done).then(|| workflow::LAST.to_owned()),
            status,
            assignee: Some(("agent".into(), agent)),
            ..Default::default()
        };
        let rows = canopy_store::tasks::assigned_tasks(
            cx.svc.store(),
            project,
            &f,
            i64::from(page.limit) + 1,
            offset,
        )
        .await?;
        let mut paged = Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Ok::<_, Error>(Task::from_row(&r)),
        )?;
        crate::knowledge::set_search_cursor(&mut paged, offset, &page);
        Ok(paged)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskIdInput {
    pub id: String,
}

pub struct GetTask;
impl Operation for GetTask {
    const NAME: &'static str = "get_task";
    const SUMMARY: &'static str = "Read a task with its notes.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = TaskIdInput;
    type Output = Data<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = get_task(cx.svc.store(), project, &task_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        let mut task = Task::from_row(&row);
        task.notes = Some(
            notes_of(cx.svc.store(), &row.id)
                .await?
                .iter()
                .map(Note::from_row)
                .collect(),
        );
        Ok(Data { data: task })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateTaskInput {
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub priority: Option<String>,
    pub tags: Option<Vec<String>>,
}

pub struct UpdateTask;
impl Operation for UpdateTask {
    const NAME: &'static str = "update_task";
    const SUMMARY: &'static str = "Change a task's title, description, category, priority or tags (status and assignee have their own calls).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateTaskInput;
    type Output = Data<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = canopy_store::tasks::get_task_tx(&mut tx, project, &task_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        if let Some(t) = &i.title {
            row.title = fields::required_text("title", t, 300)?;
        }
        if let Some(d) = &i.description {
            row.description = fields::description(d)?;
        }
        if i.category.is_some() {
            row.category = fields::category(i.category)?;
        }
        if let Some(p) = &i.priority {
            let p = parse_enum(p, "priority", PRIORITIES)?;
            row.priority = p.to_owned();
            row.priority_rank = priority_rank(p);
        }
        if let Some(t) = &i.tags {
            row.tags = fields::tags_json(t)?;
        }
        row.updated_at = canopy_core::time::now_ms();
        upsert_task(&mut tx, &row).await?;
        let task = Task::from_row(&row);
        cx.commit(tx, Some(project), task.id.clone(), None).await?;
        Ok(Data { data: task })
    }
}

pub struct DeleteTask;
impl Operation for DeleteTask {
    const NAME: &'static str = "delete_task";
    const SUMMARY: &'static str = "Delete a task and its notes.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = TaskIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = task_db(&i.id)?;
        let mut tx = cx.svc.store().begin().await?;
        if !delete_task(&mut tx, project, &id).await? {
            return Err(not_found());
        }
        cx.commit_deleted(tx, project, TaskId::show(&id)).await
    }
}
