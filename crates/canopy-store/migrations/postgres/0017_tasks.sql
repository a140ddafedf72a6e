-- Minolith tasks: work items for agents and team members, their notes (the team feed) and
-- each project's workflow of statuses.
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT,
    status TEXT NOT NULL,
    -- `low|medium|high|urgent`, and its rank (1–4) for "highest first".
    priority TEXT NOT NULL,
    priority_rank BIGINT NOT NULL,
    -- JSON list, lowercase.
    tags TEXT NOT NULL DEFAULT '[]',
    -- `agent` or `member` with a name; both NULL when unassigned.
    assignee_type TEXT,
    assignee_name TEXT,
    resolution TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_page ON tasks (project_id, created_at DESC, id DESC);
-- `mine`: an assignee's tasks, highest priority first, oldest first within one priority.
CREATE INDEX tasks_assignee ON tasks (project_id, assignee_type, assignee_name, priority_rank DESC, created_at, id);

CREATE TABLE task_notes (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    -- `comment`, `status_change`, `assignment` or `commit`.
    type TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    author TEXT,
    -- JSON `{sha, message, branch, url}` for `commit` notes.
    commit_info TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX task_notes_task ON task_notes (task_id, created_at, id);
-- The team feed: every note of a project in time order.
CREATE INDEX task_notes_feed ON task_notes (project_id, created_at, id);

CREATE TABLE task_workflows (
    project_id TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    -- JSON list of statuses, `open` first and `done` last.
    statuses TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
