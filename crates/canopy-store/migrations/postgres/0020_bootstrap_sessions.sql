-- When each key (and agent) last bootstrapped a project: the base of
-- `changes_since_last_session`.
CREATE TABLE bootstrap_sessions (
    key_id TEXT NOT NULL,
    -- '' when the call named no agent.
    agent TEXT NOT NULL,
    project_id TEXT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, agent, project_id)
);
