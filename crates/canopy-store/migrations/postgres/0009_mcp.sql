-- MCP: sessions of the handshake-era protocol revisions (kept in the database so any node
-- can continue a session another node started) and, per key and agent, when each service
-- was last read through MCP (for the write-without-read warning).
CREATE TABLE mcp_sessions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    client_info TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX mcp_sessions_key ON mcp_sessions (key_id);

CREATE TABLE mcp_reads (
    key_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    service TEXT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, agent, service)
);
