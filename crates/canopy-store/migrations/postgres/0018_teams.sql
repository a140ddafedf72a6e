-- Team members: people of an org with a role per project; invitations by one-time token
-- (stored as a hash, like keys).
CREATE TABLE team_members (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, email)
);
CREATE INDEX team_members_name ON team_members (org_id, name);

CREATE TABLE team_roles (
    member_id TEXT NOT NULL REFERENCES team_members(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    -- `owner`, `admin`, `member` or `viewer`.
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (member_id, project_id)
);
CREATE INDEX team_roles_project ON team_roles (project_id);

CREATE TABLE team_invites (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    member_id TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
