-- Styleguide: token sections (one JSON map per section) and named items (components,
-- patterns, voice rules) whose details live in `spec`.
CREATE TABLE styleguide_tokens (
    project_id TEXT NOT NULL REFERENCES projects(id),
    section TEXT NOT NULL,
    tokens TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, section)
);

CREATE TABLE styleguide_items (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, kind, name)
);
CREATE INDEX styleguide_items_page ON styleguide_items (project_id, kind, created_at DESC, id DESC);
