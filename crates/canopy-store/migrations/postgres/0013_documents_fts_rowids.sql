-- Nothing to do on PostgreSQL: its document search index is a generated column (see the SQLite
-- migration of the same number).
SELECT 1;
