-- Faster context reads at scale.
-- 1. A tag row knows its entry's created_at, so a tag filter walks one index in page order
--    (newest first) and stops after a page, however common or rare the tag.
ALTER TABLE context_tags ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE context_tags SET created_at = (SELECT e.created_at FROM context_entries e WHERE e.id = context_tags.entry_id);
CREATE INDEX context_tags_page ON context_tags (project_id, tag, created_at DESC, entry_id DESC);
DROP INDEX context_tags_by_tag;

-- 2. The search index carries the project, so a search ranks only its project's matches.
DROP TABLE context_fts;
CREATE VIRTUAL TABLE context_fts USING fts5(entry_id UNINDEXED, project_id UNINDEXED, title, body, tokenize = 'porter unicode61');
INSERT INTO context_fts (entry_id, project_id, title, body) SELECT id, project_id, title, body FROM context_entries;
-- Relevance (FTS5's `rank`): bm25 with a title match worth ten body matches.
INSERT INTO context_fts (context_fts, rank) VALUES ('rank', 'bm25(0.0, 0.0, 10.0, 1.0)');
