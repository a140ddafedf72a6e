-- Context entries (Minolith context service) with tags and full-text search.
CREATE TABLE context_entries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id),
    type TEXT NOT NULL,
    scope TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    priority TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) STORED
);
CREATE INDEX context_project_page ON context_entries (project_id, created_at DESC, id DESC);
CREATE INDEX context_project_type ON context_entries (project_id, type, created_at DESC);
CREATE INDEX context_search ON context_entries USING GIN (search);

CREATE TABLE context_tags (
    entry_id TEXT NOT NULL REFERENCES context_entries(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (entry_id, tag)
);
CREATE INDEX context_tags_by_tag ON context_tags (project_id, tag);
