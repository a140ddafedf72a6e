-- The run engine: runs (each with a snapshot of the graph it executes, so later edits of a
-- bud or branch never change a running run), step runs, the append-only event log, the hot
-- job queue and approval requests.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    definition_id TEXT,
    definition_version BIGINT,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    -- The last event sequence number written; bumped under the run's row lock.
    last_seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX runs_project_page ON runs (project_id, created_at DESC, id DESC);
CREATE INDEX runs_status ON runs (status, updated_at);

-- One row per step, and one per element of a `for_each` step (item >= 0; the step's own row
-- has item -1 and collects the outputs in order).
CREATE TABLE step_runs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    item BIGINT NOT NULL DEFAULT -1,
    status TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    input TEXT,
    output TEXT,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, step_id, item)
);

CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    step_id TEXT,
    item BIGINT,
    data TEXT NOT NULL DEFAULT '{}',
    at BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The hot queue: a row exists only while its step has work to do (due, leased, or a timer);
-- finished jobs are deleted. A lease sets `run_at` to the lease expiry, so "due" is the one
-- condition `run_at <= now` for new, retried, timed and abandoned jobs alike.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    item BIGINT NOT NULL DEFAULT -1,
    run_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    -- Times claimed; with the owner it fences a stale worker out of every later write.
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (run_id, step_id, item)
);
CREATE INDEX jobs_due ON jobs (run_at);

CREATE TABLE run_approvals (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    item BIGINT NOT NULL DEFAULT -1,
    prompt TEXT,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT,
    decision TEXT,
    comment TEXT,
    decided_at BIGINT,
    PRIMARY KEY (run_id, step_id, item)
);
