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
-- Each search row's rowid is the entry id's last 60 random bits (see `fts_rowid` in
-- src/context.rs), so an update or delete finds it by rowid instead of scanning the index.
INSERT INTO context_fts (rowid, entry_id, project_id, title, body)
    SELECT (instr('0123456789abcdef', lower(substr(h, 1, 1))) - 1) * 72057594037927936 + (instr('0123456789abcdef', lower(substr(h, 2, 1))) - 1) * 4503599627370496 + (instr('0123456789abcdef', lower(substr(h, 3, 1))) - 1) * 281474976710656 + (instr('0123456789abcdef', lower(substr(h, 4, 1))) - 1) * 17592186044416 + (instr('0123456789abcdef', lower(substr(h, 5, 1))) - 1) * 1099511627776 + (instr('0123456789abcdef', lower(substr(h, 6, 1))) - 1) * 68719476736 + (instr('0123456789abcdef', lower(substr(h, 7, 1))) - 1) * 4294967296 + (instr('0123456789abcdef', lower(substr(h, 8, 1))) - 1) * 268435456 + (instr('0123456789abcdef', lower(substr(h, 9, 1))) - 1) * 16777216 + (instr('0123456789abcdef', lower(substr(h, 10, 1))) - 1) * 1048576 + (instr('0123456789abcdef', lower(substr(h, 11, 1))) - 1) * 65536 + (instr('0123456789abcdef', lower(substr(h, 12, 1))) - 1) * 4096 + (instr('0123456789abcdef', lower(substr(h, 13, 1))) - 1) * 256 + (instr('0123456789abcdef', lower(substr(h, 14, 1))) - 1) * 16 + (instr('0123456789abcdef', lower(substr(h, 15, 1))) - 1) * 1, id, project_id, title, body
    FROM (SELECT substr(id, 21, 3) || substr(id, 25, 12) AS h, id, project_id, title, body FROM context_entries);
-- Relevance (FTS5's `rank`): bm25 with a title match worth ten body matches.
INSERT INTO context_fts (context_fts, rank) VALUES ('rank', 'bm25(0.0, 0.0, 10.0, 1.0)');
