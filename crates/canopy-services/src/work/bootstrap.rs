//! `GET /v1/bootstrap` (the `bootstrap` tool): everything an agent needs to start a session,
//! read in one read-only transaction so the parts agree with each other, plus what changed
//! since this key (and agent) last bootstrapped the project and short follow-up suggestions.

use std::collections::BTreeMap;

use canopy_core::{Data, Error, Scope};
use canopy_store::bootstrap as db;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::notes::Note;
use super::tasks::Task;
use super::workflow;
use crate::agents::Agent;
use crate::knowledge::context::ContextEntry;
use crate::knowledge::current_project;
use crate::op::{Cx, Hints, Operation};

/// How many of each list a bootstrap carries (it is a start, not an export).
const PROMPT_LIMIT: i64 = 50;
const CONTEXT_LIMIT: i64 = 50;
const RECENT_LIMIT: i64 = 10;
const TASKS_LIMIT: i64 = 20;
const CHANGED_IDS: i64 = 20;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Subagent {
    pub name: String,
    pub role: String,
    /// `project` or `global`.
    pub scope: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub id: String,
    /// `queued`, `running`, `waiting` or `paused`.
    pub status: String,
    /// The runbook it follows (`rnb_…`).
    pub definition_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ActiveState {
    /// Runbook runs not finished yet.
    pub runbook_runs: Vec<RunSummary>,
    /// Feedback items by status.
    pub feedback: BTreeMap<String, i64>,
    /// The latest context events (`log_event`), newest first.
    pub recent_events: Vec<ContextEntry>,
    /// Open tasks assigned to the calling agent, highest priority first (empty without an agent).
    pub my_tasks: Vec<Task>,
    /// The latest team-feed notes, newest first.
    pub team_feed: Vec<Note>,
    /// The task workflow's statuses.
    pub workflow: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StyleguideSummary {
    /// Token sections defined.
    pub token_sections: Vec<String>,
    /// Names by kind (`component`, `pattern`, `voice`).
    pub items: BTreeMap<String, Vec<String>>,
    /// Items by kind.
    pub counts: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ServiceChanges {
    pub created: i64,
    /// Created or changed (created ones included).
    pub changed: i64,
    /// The most recently changed ids (at most 20).
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Changes {
    /// When this key and agent last bootstrapped the project; null the first time.
    pub since: Option<String>,
    pub first_session: bool,
    /// Only services where something changed.
    pub services: BTreeMap<String, ServiceChanges>,
    /// Team-feed notes written since.
    pub new_notes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Bootstrap {
    /// The header's agent, else the project's main agent; null when neither exists.
    pub agent: Option<Agent>,
    /// Context entries tagged `bootstrap`, oldest first: the project's standing instructions.
    pub prompt: Vec<ContextEntry>,
    /// `priority: high` context entries.
    pub context: Vec<ContextEntry>,
    /// The other agents the project sees.
    pub subagents: Vec<Subagent>,
    pub active_state: ActiveState,
    pub styleguide: StyleguideSummary,
    pub changes_since_last_session: Changes,
    /// Short suggestions derived from the state above.
    pub follow_up: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BootstrapInput {}

pub struct GetBootstrap;
impl Operation for GetBootstrap {
    const NAME: &'static str = "bootstrap";
    const SUMMARY: &'static str = "Load the project's whole working state in one call: agent, standing prompt, key context, active runs, your tasks, changes since your last session, follow-ups.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = BootstrapInput;
    type Output = Data<Bootstrap>;

    async fn call(cx: &Cx<'_>, _i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let (org, p) = (cx.org().db(), project.db());
        let key = cx.principal.key_id.db();
        let agent_name = cx.principal.agent.clone().unwrap_or_default();
        let store = cx.svc.store();
        let last = db::last_session(store, &key, &agent_name, &p).await?;
        let now = canopy_core::time::now_ms();
        let mut tx = store.begin_read().await?;

        let agents = db::agents(&mut tx, &org, &p).await?;
        let chosen = agents.iter().find(|a| {
            if agent_name.is_empty() {
                a.is_main != 0 && a.project_id == p
            } else {
                a.name == agent_name
            }
        });
        let agent = chosen.map(Agent::from_row).transpose()?;
        let subagents = agents
            .iter()
            .filter(|a| chosen.is_none_or(|c| c.id != a.id))
            .map(|a| Subagent {
                name: a.name.clone(),
                role: serde_json::from_str::<Value>(&a.spec)
                    .ok()
                    .and_then(|s| s["role"].as_str().map(str::to_owned))
                    .unwrap_or_default(),
                scope: a.scope.clone(),
            })
            .collect();
        let entries = |rows: Vec<canopy_store::context::ContextRow>| {
            rows.iter().map(ContextEntry::from_row).collect::<Vec<_>>()
        };
        let prompt = entries(db::entries_tagged(&mut tx, &p, "bootstrap", PROMPT_LIMIT).await?);
        let context = entries(db::entries_of_priority(&mut tx, &p, "high", CONTEXT_LIMIT).await?);
        let recent_events = entries(db::recent_entries(&mut tx, &p, "event", RECENT_LIMIT).await?);
        let runbook_runs: Vec<RunSummary> = db::active_runs(&mut tx, &p, "runbook", 50)
            .await?
            .into_iter()
            .map(|r| RunSummary {
                id: canopy_core::RunId::show(&r.id),
                status: r.status,
                definition_id: r.definition_id.map(|d| canopy_core::RunbookId::show(&d)),
                created_at: canopy_core::time::rfc3339(r.created_at),
                updated_at: canopy_core::time::rfc3339(r.updated_at),
            })
            .collect();
        let feedback: BTreeMap<String, i64> = db::feedback_counts(&mut tx, &p)
            .await?
            .into_iter()
            .collect();
        let my_tasks = if agent_name.is_empty() {
            Vec::new()
        } else {
            db::open_tasks_of(&mut tx, &p, &agent_name, TASKS_LIMIT)
                .await?
                .iter()
                .map(Task::from_row)
                .collect()
        };
        let team_feed = db::recent_notes(&mut tx, &p, RECENT_LIMIT)
            .await?
            .iter()
            .map(Note::from_row)
            .collect();
        let workflow = workflow::statuses_tx(&mut tx, project).await?;
        let (token_sections, items) = db::styleguide(&mut tx, &p).await?;
        let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (kind, name) in items {
            by_kind.entry(kind).or_default().push(name);
        }
        let counts = by_kind.iter().map(|(k, v)| (k.clone(), v.len())).collect();

        let mut services = BTreeMap::new();
        let mut new_notes = 0;
        if let Some(since) = last {
            for (service, table) in db::CHANGE_SOURCES {
                let (created, changed, ids) =
                    db::changes(&mut tx, table, &p, since, CHANGED_IDS).await?;
                if changed > 0 {
                    let ids = ids.iter().map(|id| show_id(service, id)).collect();
                    services.insert(
                        (*service).to_owned(),
                        ServiceChanges {
                            created,
                            changed,
                            ids,
                        },
                    );
                }
            }
            new_notes = db::notes_since(&mut tx, &p, since).await?;
        }
        // A read-only snapshot: nothing to commit.
        drop(tx);
        db::record_session(store, &key, &agent_name, &p, now).await?;

        let active_state = ActiveState {
            runbook_runs,
            feedback,
            recent_events,
            my_tasks,
            team_feed,
            workflow,
        };
        let changes = Changes {
            since: last.map(canopy_core::time::rfc3339),
            first_session: last.is_none(),
            services,
            new_notes,
        };
        let follow_up = follow_up(
            agent.as_ref(),
            agent_name.as_str(),
            &prompt,
            &active_state,
            &changes,
        );
        Ok(Data {
            data: Bootstrap {
                agent,
                prompt,
                context,
                subagents,
                active_state,
                styleguide: StyleguideSummary {
                    token_sections,
                    items: by_kind,
                    counts,
                },
                changes_since_last_session: changes,
                follow_up,
            },
        })
    }
}

/// Shows a database id with the prefix of its service's resource.
fn show_id(service: &str, id: &str) -> String {
    use canopy_core::*;
    match service {
        "context" => ContextId::show(id),
        "tasks" => TaskId::show(id),
        "feedback" => FeedbackId::show(id),
        "changelog" => ChangelogEntryId::show(id),
        "agents" => AgentId::show(id),
        "documents" => DocumentId::show(id),
        "runs" => RunId::show(id),
        _ => id.to_owned(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Suggestions an agent can act on, most pressing first.
fn follow_up(
    agent: Option<&Agent>,
    agent_name: &str,
    prompt: &[ContextEntry],
    s: &ActiveState,
    changes: &Changes,
) -> Vec<String> {
    let mut out = Vec::new();
    let paused = s
        .runbook_runs
        .iter()
        .filter(|r| r.status == "paused")
        .count();
    if paused > 0 {
        out.push(format!(
            "{} paused: resume or cancel them.",
            plural(paused, "runbook run is", "runbook runs are")
        ));
    }
    let running = s.runbook_runs.len() - paused;
    if running > 0 {
        out.push(format!(
            "{} in progress: get_current_step to continue.",
            plural(running, "runbook run is", "runbook runs are")
        ));
    }
    let urgent = s.my_tasks.iter().filter(|t| t.priority == "urgent").count();
    if !s.my_tasks.is_empty() {
        let mut line = format!(
            "{} assigned to you",
            plural(s.my_tasks.len(), "open task is", "open tasks are")
        );
        if urgent > 0 {
            line.push_str(&format!(" ({urgent} urgent)"));
        }
        line.push_str(": get_my_tasks.");
        out.push(line);
    }
    let open_feedback = s.feedback.get("open").copied().unwrap_or(0);
    if open_feedback > 0 {
        out.push(format!(
            "{} open: triage with list_feedback.",
            plural(
                open_feedback as usize,
                "feedback item is",
                "feedback items are"
            )
        ));
    }
    let changed: i64 = changes.services.values().map(|c| c.changed).sum();
    if changed > 0 {
        out.push(format!(
            "{} changed since your last session.",
            plural(changed as usize, "item", "items")
        ));
    }
    if agent.is_none() && agent_name.is_empty() {
        out.push(
            "No main agent is defined: create one with create_agent (is_main: true).".to_owned(),
        );
    }
    if prompt.is_empty() {
        out.push("No standing instructions: tag context entries `bootstrap` to load them at every start.".to_owned());
    }
    out
}
