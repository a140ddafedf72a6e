//! Notes on tasks and the calls that write them: status changes, assignments, comments and
//! commits; and the team feed (every note of the project in time order).

use canopy_core::{Cursor, Data, Error, PageRequest, Paged, Pagination, Scope, TaskNoteId};
use canopy_store::Tx;
use canopy_store::tasks::{TaskNoteRow, TaskRow, get_task_tx, insert_note, upsert_task};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tasks::{Assignee, Task, check_assignee, not_found, task_db};
use super::workflow;
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Comment,
    StatusChange,
    Assignment,
    Commit,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Comment => "comment",
            NoteKind::StatusChange => "status_change",
            NoteKind::Assignment => "assignment",
            NoteKind::Commit => "commit",
        }
    }
}

/// A commit a note records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommitInfo {
    pub sha: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    /// `tsn_…`
    pub id: String,
    pub task_id: String,
    /// `comment`, `status_change`, `assignment` or `commit`.
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitInfo>,
    pub created_at: String,
}

impl Note {
    pub fn from_row(r: &TaskNoteRow) -> Note {
        Note {
            id: TaskNoteId::show(&r.id),
            task_id: canopy_core::TaskId::show(&r.task_id),
            kind: r.kind.clone(),
            body: r.body.clone(),
            author: r.author.clone(),
            commit: r
                .commit_info
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            created_at: canopy_core::time::rfc3339(r.created_at),
        }
    }
}

pub fn note_row(
    cx: &Cx<'_>,
    task: &TaskRow,
    kind: NoteKind,
    body: String,
    commit: Option<&CommitInfo>,
    now: i64,
) -> TaskNoteRow {
    TaskNoteRow {
        id: TaskNoteId::new().db(),
        task_id: task.id.clone(),
        project_id: task.project_id.clone(),
        kind: kind.as_str().to_owned(),
        body,
        author: Some(author(cx)),
        commit_info: commit.and_then(|c| serde_json::to_string(c).ok()),
        created_at: now,
    }
}

pub async fn write_note(tx: &mut Tx, n: TaskNoteRow) -> Result<TaskNoteRow, Error> {
    insert_note(tx, &n).await?;
    Ok(n)
}

fn check_body(body: &str, required: bool) -> Result<String, Error> {
    let b = body.trim();
    if (required && b.is_empty()) || b.chars().count() > 20_000 {
        let what = if required {
            "1 to 20,000"
        } else {
            "at most 20,000"
        };
        return Err(Error::validation(
            "body",
            format!("A note is {what} characters."),
        ));
    }
    Ok(b.to_owned())
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StatusInput {
    pub id: String,
    /// A workflow status (see `get_workflow`).
    pub status: String,
    /// Required for `done`.
    pub resolution: Option<String>,
    /// Added to the status-change note.
    pub note: Option<String>,
}

pub struct UpdateTaskStatus;
impl Operation for UpdateTaskStatus {
    const NAME: &'static str = "update_task_status";
    const SUMMARY: &'static str = "Move a task to another workflow status (forward or back).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = StatusInput;
    type Output = Data<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_task_tx(&mut tx, project, &task_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        let statuses = workflow::statuses_tx(&mut tx, project).await?;
        let status = workflow::check_status(i.status.trim(), &statuses)?;
        let resolution = i
            .resolution
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if status == workflow::LAST && resolution.is_none() {
            return Err(Error::validation(
                "resolution",
                "Moving a task to `done` needs a resolution: say how it was resolved.",
            ));
        }
        if resolution
            .as_deref()
            .is_some_and(|r| r.chars().count() > 5_000)
        {
            return Err(Error::validation(
                "resolution",
                "resolution is at most 5,000 characters.",
            ));
        }
        let extra = check_body(i.note.as_deref().unwrap_or_default(), false)?;
        let now = canopy_core::time::now_ms();
        let from = std::mem::replace(&mut row.status, status.clone());
        // A task leaving `done` is open work again: its old resolution no longer holds.
        row.resolution = if status == workflow::LAST {
            resolution
        } else {
            None
        };
        row.updated_at = now;
        upsert_task(&mut tx, &row).await?;
        let mut body = format!("Status: {from} → {status}.");
        if let Some(r) = &row.resolution {
            body.push_str(&format!(" Resolution: {r}"));
        }
        if !extra.is_empty() {
            body.push_str(&format!("\n\n{extra}"));
        }
        write_note(
            &mut tx,
            note_row(cx, &row, NoteKind::StatusChange, body, None, now),
        )
        .await?;
        let task = Task::from_row(&row);
        cx.commit(tx, Some(project), task.id.clone(), None).await?;
        Ok(Data { data: task })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssignInput {
    pub id: String,
    /// Absent or null unassigns.
    pub assignee: Option<Assignee>,
}

pub struct AssignTask;
impl Operation for AssignTask {
    const NAME: &'static str = "assign_task";
    const SUMMARY: &'static str = "Assign a task to an agent or a team member by name.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = AssignInput;
    type Output = Data<Task>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let assignee = match &i.assignee {
            Some(a) => Some(check_assignee(cx, project, a).await?),
            None => None,
        };
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_task_tx(&mut tx, project, &task_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        let now = canopy_core::time::now_ms();
        row.assignee_type = assignee.as_ref().map(|a| a.kind.clone());
        row.assignee_name = assignee.as_ref().map(|a| a.name.clone());
        row.updated_at = now;
        upsert_task(&mut tx, &row).await?;
        let body = match &assignee {
            Some(a) => format!("Assigned to {} {}.", a.kind, a.name),
            None => "Unassigned.".to_owned(),
        };
        write_note(
            &mut tx,
            note_row(cx, &row, NoteKind::Assignment, body, None, now),
        )
        .await?;
        let task = Task::from_row(&row);
        cx.commit(tx, Some(project), task.id.clone(), None).await?;
        Ok(Data { data: task })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddNoteInput {
    pub id: String,
    /// `comment` (default) or `commit`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The comment (optional for a commit).
    #[serde(default)]
    pub body: String,
    /// For type `commit`.
    pub commit: Option<CommitInfo>,
}

pub struct AddTaskNote;
impl Operation for AddTaskNote {
    const NAME: &'static str = "add_task_note";
    const SUMMARY: &'static str = "Add a comment or a commit record to a task.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = AddNoteInput;
    type Output = Data<Note>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let kind = match canopy_core::suggest::parse_enum(
            i.kind.as_deref().unwrap_or("comment"),
            "type",
            &["comment", "commit"],
        )? {
            "commit" => NoteKind::Commit,
            _ => NoteKind::Comment,
        };
        let commit = match (kind, i.commit) {
            (NoteKind::Commit, Some(c)) => {
                let sha = c.sha.trim();
                if sha.is_empty() || sha.len() > 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::validation(
                        "commit.sha",
                        "commit.sha is a hex commit id (up to 64 digits).",
                    ));
                }
                Some(CommitInfo {
                    sha: sha.to_lowercase(),
                    ..c
                })
            }
            (NoteKind::Commit, None) => {
                return Err(Error::validation(
                    "commit",
                    "A commit note needs commit: {sha, message?, branch?, url?}.",
                ));
            }
            _ => None,
        };
        let body = check_body(&i.body, kind == NoteKind::Comment)?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_task_tx(&mut tx, project, &task_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        let now = canopy_core::time::now_ms();
        row.updated_at = now;
        upsert_task(&mut tx, &row).await?;
        let n = write_note(
            &mut tx,
            note_row(cx, &row, kind, body, commit.as_ref(), now),
        )
        .await?;
        let note = Note::from_row(&n);
        cx.commit(tx, Some(project), note.id.clone(), None).await?;
        Ok(Data { data: note })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FeedInput {
    /// RFC 3339.
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct GetTeamFeed;
impl Operation for GetTeamFeed {
    const NAME: &'static str = "get_team_feed";
    const SUMMARY: &'static str =
        "The project's task notes (status changes, assignments, comments, commits) in time order.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = FeedInput;
    type Output = Paged<Note>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let (since, after) = match (&page.after, &i.since) {
            (Some(c), _) => (c.t, c.id.clone()),
            (None, Some(s)) => (
                canopy_core::time::parse_rfc3339(s).ok_or_else(|| {
                    Error::validation(
                        "since",
                        "since is an RFC 3339 time, e.g. 2026-11-23T10:00:00Z.",
                    )
                })?,
                // Strictly after `since`: ids sort after "" but a note at exactly `since` counts
                // as seen.
                "\u{10FFFF}".to_owned(),
            ),
            (None, None) => (i64::MIN, String::new()),
        };
        let rows = canopy_store::tasks::feed(
            cx.svc.store(),
            project,
            since,
            &after,
            i64::from(page.limit) + 1,
        )
        .await?;
        let has_more = rows.len() > page.limit as usize;
        let data: Vec<Note> = rows
            .iter()
            .take(page.limit as usize)
            .map(Note::from_row)
            .collect();
        let next_cursor = if has_more {
            rows.get(page.limit as usize - 1).map(|r| {
                Cursor {
                    t: r.created_at,
                    id: r.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Paged {
            data,
            pagination: Pagination {
                has_more,
                next_cursor,
                limit: page.limit,
            },
        })
    }
}
