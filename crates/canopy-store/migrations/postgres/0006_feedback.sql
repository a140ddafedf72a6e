-- Feedback items, their notes, and per-project settings (such as the feedback widget switch).
CREATE TABLE feedback_items (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id),
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    source TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    spec TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX feedback_page ON feedback_items (project_id, created_at DESC, id DESC);

CREATE TABLE feedback_notes (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES feedback_items(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    author TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX feedback_notes_item ON feedback_notes (item_id, created_at);

CREATE TABLE project_settings (
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);
