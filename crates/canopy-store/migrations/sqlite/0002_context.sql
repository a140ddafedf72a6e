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
    updated_at BIGINT NOT NULL
);
CREATE INDEX context_project_page ON context_entries (project_id, created_at DESC, id DESC);
CREATE INDEX context_project_type ON context_entries (project_id, type, created_at DESC);

CREATE TABLE context_tags (
    entry_id TEXT NOT NULL REFERENCES context_entries(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (entry_id, tag)
);
CREATE INDEX context_tags_by_tag ON context_tags (project_id, tag);

-- Title and body indexed for ranked search; rows are kept in step by the store.
CREATE VIRTUAL TABLE context_fts USING fts5(entry_id UNINDEXED, title, body, tokenize = 'porter unicode61');
