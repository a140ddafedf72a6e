//! What the engine runs (a [`Definition`] of [`StepDef`]s) and what it reports ([`Run`],
//! [`StepRun`], [`Event`]).

use canopy_core::{OrgId, ProjectId, RunId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The graph a run executes. A bud run is a definition with one step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Definition {
    pub steps: Vec<StepDef>,
    /// The run's output: a mapping over the final context (see [`crate::expr::resolve`]).
    /// Without one, the output of the only step nothing depends on, or an object of the
    /// outputs of every such step keyed by step id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// One step of a graph.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepDef {
    pub id: String,
    /// `transform`, `wait`, `approval` are built in; other kinds need a registered executor.
    pub kind: String,
    #[serde(default)]
    pub config: Value,
    /// A mapping resolved over the context before the step runs; the run input when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// A jq expression over the context; false or null → the step is `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A jq expression yielding a list; the step runs once per element and its output is the
    /// list of their outputs, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    #[serde(default)]
    pub backoff_ms: u64,
}

impl RetryPolicy {
    /// The delay before attempt `next` (2, 3, …), capped at an hour.
    pub fn backoff(&self, next: u32) -> u64 {
        let exp = next.saturating_sub(2).min(20);
        self.backoff_ms.saturating_mul(1u64 << exp).min(3_600_000)
    }
}

/// What a run executes: a bud (one step) or a branch (a graph).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Bud,
    Branch,
    /// A Minolith runbook run: manual steps that a service moves on through
    /// [`crate::Engine::apply_manual`]; workers never execute them.
    Runbook,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Bud => "bud",
            RunKind::Branch => "branch",
            RunKind::Runbook => "runbook",
        }
    }

    /// Whether runs of this kind are manual: no job is ever queued for them, and only
    /// [`crate::Engine::apply_manual`], pause, resume and cancel change them.
    pub fn is_manual(kind: &str) -> bool {
        kind == RunKind::Runbook.as_str()
    }
}

/// A request to run something.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub kind: RunKind,
    /// The bud or branch this came from, and its version (absent for ad hoc graphs).
    pub definition_id: Option<String>,
    pub definition_version: Option<i64>,
    pub definition: Definition,
    pub input: Value,
}

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($v,)* }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }
    };
}

status_enum! {
    /// `queued → running → (waiting) → succeeded | failed | cancelled`; `paused` (by
    /// [`crate::Engine::pause`]) until resumed. A failed run goes back to `running` when a
    /// step is retried or the run recovered.
    RunStatus {
        Queued => "queued",
        Running => "running",
        Waiting => "waiting",
        Paused => "paused",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
}

impl RunStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

status_enum! {
    StepStatus {
        Pending => "pending",
        Running => "running",
        Waiting => "waiting",
        Succeeded => "succeeded",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
}

impl StepStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::Skipped
                | StepStatus::Cancelled
        )
    }
}

/// A run as the engine reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: RunId,
    pub org_id: String,
    pub project_id: String,
    pub kind: String,
    pub definition_id: Option<String>,
    pub definition_version: Option<i64>,
    pub definition: Definition,
    pub status: RunStatus,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    /// The sum of the steps' usage; `None` when no step reported any.
    pub usage: Option<Value>,
    pub steps: Vec<StepRun>,
}

impl Run {
    /// The step run of `step` (its own row, not a `for_each` element's).
    pub fn step(&self, step: &str) -> Option<&StepRun> {
        self.steps
            .iter()
            .find(|s| s.step_id == step && s.item.is_none())
    }
}

/// One step's (or one `for_each` element's) execution.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub step_id: String,
    /// The element index of a `for_each` step; `None` for the step itself.
    pub item: Option<u32>,
    pub status: StepStatus,
    /// Attempts started (retries add one; a takeover after a crash keeps the attempt).
    pub attempt: u32,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<Value>,
    /// Tokens and cost over every attempt, when the step's kind reports them.
    pub usage: Option<Value>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// One entry of a run's append-only log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub step_id: Option<String>,
    pub item: Option<i64>,
    pub data: Value,
    pub at: i64,
}

/// A decision on an approval step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}
