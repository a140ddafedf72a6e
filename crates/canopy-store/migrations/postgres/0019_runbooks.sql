-- Minolith runbook templates. A run of one is a run of the engine (`runs.kind = 'runbook'`,
-- `definition_id` = the runbook's id) with a frozen copy of the steps, so runs need no table
-- of their own.
CREATE TABLE runbooks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    category TEXT,
    -- JSON list, lowercase.
    tags TEXT NOT NULL DEFAULT '[]',
    -- JSON list of `{name, required, default, description}`.
    variables TEXT NOT NULL DEFAULT '[]',
    -- JSON list of steps in order: `{id, key, title, instructions, type, on_pass, on_fail, routes}`.
    steps TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX runbooks_page ON runbooks (project_id, created_at DESC, id DESC);
-- A project's runbook runs, filtered by runbook (the engine's own indexes cover the rest).
CREATE INDEX runs_runbook_page ON runs (project_id, kind, definition_id, created_at DESC, id DESC);
