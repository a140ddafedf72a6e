-- Stackmint authoring: buds (one step) and branches (graphs of buds), versioned. The current
-- version lives in `runtime_defs`; every version, the first included, in
-- `runtime_def_versions`. Runs never read these at execution time: the engine snapshots the
-- resolved graph into `runs.definition` at submit.
CREATE TABLE runtime_defs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    -- `bud` or `branch`.
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- JSON: the bud or branch as authored (current version).
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX runtime_defs_page ON runtime_defs (org_id, kind, created_at DESC, id DESC);

CREATE TABLE runtime_def_versions (
    def_id TEXT NOT NULL REFERENCES runtime_defs(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (def_id, version)
);

-- Which buds and branches a client (project) may run.
CREATE TABLE runtime_assignments (
    project_id TEXT NOT NULL,
    def_id TEXT NOT NULL REFERENCES runtime_defs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, def_id)
);
CREATE INDEX runtime_assignments_def ON runtime_assignments (def_id);
