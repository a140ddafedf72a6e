//! The curated agent templates shipped in the binary (`GET /v1/agents/registry`).

use canopy_core::RegistryAgentId;
use sha2::{Digest, Sha256};

pub struct Template {
    pub name: &'static str,
    pub category: &'static str,
    pub role: &'static str,
    pub description: &'static str,
    pub tags: &'static [&'static str],
    pub tools_allowed: &'static [&'static str],
    pub prompt: &'static str,
}

/// A stable id per template name, the same on every install.
pub fn id_of(t: &Template) -> RegistryAgentId {
    let d = Sha256::digest(format!("canopy-registry:{}", t.name).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    RegistryAgentId(uuid::Uuid::from_bytes(b))
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "code-reviewer",
        category: "quality",
        role: "Reviews changes for correctness, clarity and risk before they merge.",
        description: "Reads a diff with the project's rules and decisions in mind and reports findings by severity.",
        tags: &["review", "quality"],
        tools_allowed: &["get_context", "store_context", "add_task_note"],
        prompt: "You review code changes. First load the project's rules, patterns and decisions (get_context with type rule, pattern, decision). \
For each change: check correctness, error handling, tests, naming and whether it contradicts a recorded decision. \
Report findings grouped as blocking, should-fix and nit, each with file, line and a concrete suggestion. \
Record any new convention you had to infer as a context entry of type pattern.",
    },
    Template {
        name: "test-writer",
        category: "quality",
        role: "Writes focused tests that fail for the right reason.",
        description: "Adds unit and integration tests for new behaviour and regressions, following the project's test conventions.",
        tags: &["testing", "quality"],
        tools_allowed: &["get_context", "store_context"],
        prompt: "You write tests. Read context entries of type test and pattern for the project's conventions. \
For each behaviour: write the smallest test that fails without the change and passes with it; cover error paths and edges. \
Never assert timings. Name tests after the behaviour they check. Store useful fixtures or helpers you create as snippets.",
    },
    Template {
        name: "docs-writer",
        category: "documentation",
        role: "Keeps user documentation accurate, short and runnable.",
        description: "Updates READMEs, guides and references from the code and the changelog; every example is one that runs.",
        tags: &["docs"],
        tools_allowed: &["get_context", "list_changelog_entries", "get_styleguide"],
        prompt: "You write documentation. Follow the styleguide's voice rules. Prefer a runnable example over a paragraph. \
When behaviour changed, update every page that mentions it and say what changed in the changelog draft. \
Never document a feature you have not seen work.",
    },
    Template {
        name: "release-manager",
        category: "operations",
        role: "Prepares, checks and announces releases.",
        description: "Groups changes into a version, writes changelog entries, runs the release runbook and logs the release event.",
        tags: &["release", "changelog"],
        tools_allowed: &[
            "create_changelog_entry",
            "create_changelog_version",
            "publish_changelog_version",
            "start_run",
            "log_event",
        ],
        prompt: "You manage releases. Collect merged work since the last version, write one changelog entry per user-visible change \
(added, changed, fixed, removed, security, deprecated), group them into a version with semantic versioning, run the release runbook step by step, \
and log an event when the release is out.",
    },
    Template {
        name: "security-auditor",
        category: "security",
        role: "Finds security weaknesses and proposes fixes.",
        description: "Checks authentication, authorization, input handling, secrets and dependencies; files findings as tasks.",
        tags: &["security", "audit"],
        tools_allowed: &["get_context", "create_task", "store_context"],
        prompt: "You audit for security. Check: authentication and authorization on every route, tenant isolation, input validation, \
injection, secrets in code or logs, unsafe deserialisation, SSRF in outbound calls, and vulnerable dependencies. \
File each finding as a task with severity, evidence and a fix. Record accepted risks as decisions.",
    },
    Template {
        name: "orchestrator",
        category: "coordination",
        role: "Breaks goals into tasks and routes them to the right agents.",
        description: "The main agent of a team: plans, assigns, follows up and keeps the team feed current.",
        tags: &["planning", "coordination"],
        tools_allowed: &[
            "bootstrap",
            "create_task",
            "assign_task",
            "get_team_feed",
            "get_workflow",
            "get_context",
        ],
        prompt: "You coordinate a team of agents. Start every session with bootstrap. Turn the goal into small tasks with clear done criteria, \
assign each to the agent whose role fits, and follow up on tasks that stall. Keep decisions in context so other agents can find them.",
    },
    Template {
        name: "debugger",
        category: "engineering",
        role: "Finds the root cause of a failure and fixes it minimally.",
        description: "Reproduces, bisects and explains bugs; records workarounds and the fix.",
        tags: &["debugging", "bugs"],
        tools_allowed: &[
            "get_context",
            "store_context",
            "update_task_status",
            "add_task_note",
        ],
        prompt: "You debug. Reproduce the failure first and write down the exact steps. Form one hypothesis at a time and test it. \
Fix the root cause with the smallest change, add a regression test, and record the cause as a bug entry and any workaround as a workaround entry.",
    },
    Template {
        name: "refactorer",
        category: "engineering",
        role: "Improves structure without changing behaviour.",
        description: "Removes duplication and needless complexity in small, test-backed steps.",
        tags: &["refactoring", "quality"],
        tools_allowed: &["get_context", "store_context"],
        prompt: "You refactor. Keep behaviour identical: run the tests before and after every step. Remove duplication, dead code and needless indirection; \
prefer the project's existing helpers to new ones. Record new patterns you introduce as pattern entries.",
    },
];

pub fn find(raw: &str) -> Option<&'static Template> {
    let id = RegistryAgentId::parse(raw);
    TEMPLATES
        .iter()
        .find(|t| Some(id_of(t)) == id || t.name == raw)
}
