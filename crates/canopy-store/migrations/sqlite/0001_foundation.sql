-- Foundation: tenancy, keys, audit, idempotency, limits, settings.
-- Ids are TEXT (hyphenated UUID v7), times BIGINT Unix milliseconds, JSON TEXT.

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    rate_limit BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    rate_limit BIGINT,
    archived_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);
CREATE INDEX projects_org_page ON projects (org_id, created_at DESC, id DESC);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    project_id TEXT REFERENCES projects(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    user_id TEXT,
    email TEXT,
    plan TEXT,
    mcp_tools TEXT NOT NULL DEFAULT '[]',
    rate_limit BIGINT,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT,
    replaced_by TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_org_page ON api_keys (org_id, created_at DESC, id DESC);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT,
    key_id TEXT,
    agent TEXT,
    action TEXT NOT NULL,
    target TEXT,
    request_id TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_org_page ON audit_log (org_id, created_at DESC, id DESC);

CREATE TABLE idempotency_keys (
    key_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT,
    content_type TEXT,
    body BLOB,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_age ON idempotency_keys (created_at);

CREATE TABLE rate_counters (
    bucket TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

CREATE TABLE key_usage_daily (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    route_group TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    rate_limited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day, route_group)
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
