-- Faster context reads at scale: a tag row knows its entry's created_at, so a tag filter walks
-- one index in page order (newest first) and stops after a page, however common or rare the tag.
ALTER TABLE context_tags ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE context_tags t SET created_at = e.created_at FROM context_entries e WHERE e.id = t.entry_id;
CREATE INDEX context_tags_page ON context_tags (project_id, tag, created_at DESC, entry_id DESC);
DROP INDEX context_tags_by_tag;
