-- Changelog entries and versions.
CREATE TABLE changelog_versions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    released_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX changelog_versions_page ON changelog_versions (project_id, created_at DESC, id DESC);

CREATE TABLE changelog_entries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects(id),
    version_id TEXT REFERENCES changelog_versions(id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    published_at BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX changelog_entries_page ON changelog_entries (project_id, created_at DESC, id DESC);
CREATE INDEX changelog_entries_published ON changelog_entries (project_id, status, published_at DESC);
