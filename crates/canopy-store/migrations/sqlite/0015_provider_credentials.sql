-- LLM provider credentials, per org (project_id '') or per client (project). The API key is
-- sealed with the master key (AES-256-GCM); nothing here is readable without it.
CREATE TABLE provider_credentials (
    org_id TEXT NOT NULL,
    -- '' for the org-wide credentials every client falls back to.
    project_id TEXT NOT NULL DEFAULT '',
    -- The provider id in routes and bud configs (`openai`, `anthropic`, `groq`, …).
    provider TEXT NOT NULL,
    -- The wire format: `openai` (chat completions) or `anthropic` (Messages).
    kind TEXT NOT NULL,
    api_key_sealed TEXT NOT NULL,
    base_url TEXT,
    organization TEXT,
    default_model TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, project_id, provider)
);
