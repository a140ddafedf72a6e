//! Context entries, their tags and the full-text index (FTS5 on SQLite, a weighted `tsvector`
//! column on PostgreSQL; title matches weigh more than body matches on both).

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, insert_rows, keyset, keyset_on};
use crate::db::Backend;
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContextRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub scope: String,
    pub title: String,
    pub body: String,
    /// JSON array of strings.
    pub tags: String,
    pub priority: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "e.id, e.org_id, e.project_id, e.type, e.scope, e.title, e.body, e.tags, e.priority, e.created_by, e.created_at, e.updated_at";

fn tags_of(row: &ContextRow) -> Vec<String> {
    serde_json::from_str(&row.tags).unwrap_or_default()
}

/// Inserts an entry with its tags and search text.
pub async fn insert_entry(tx: &mut Tx, r: &ContextRow) -> Result<(), Error> {
    insert_entries(tx, std::slice::from_ref(r)).await
}

/// Inserts many entries with their tags and search text in a few multi-row statements (a bulk
/// create, or a group of concurrent creates committed together).
pub async fn insert_entries(tx: &mut Tx, rows: &[ContextRow]) -> Result<(), Error> {
    insert_rows(
        tx,
        rows,
        "INSERT INTO context_entries (id, org_id, project_id, type, scope, title, body, tags, priority, created_by, created_at, updated_at)",
        "",
        |args, r| {
            vec![
                args.push(r.id.as_str()),
                args.push(r.org_id.as_str()),
                args.push(r.project_id.as_str()),
                args.push(r.kind.as_str()),
                args.push(r.scope.as_str()),
                args.push(r.title.as_str()),
                args.push(r.body.as_str()),
                args.push(r.tags.as_str()),
                args.push(r.priority.as_str()),
                args.push_opt(r.created_by.as_deref()),
                args.push(r.created_at),
                args.push(r.updated_at),
            ]
        },
    )
    .await?;
    index_entries(tx, rows).await
}

/// Writes the tag rows and (SQLite) the search rows of entries.
async fn index_entries(tx: &mut Tx, rows: &[ContextRow]) -> Result<(), Error> {
    let tags: Vec<(&ContextRow, String)> = rows
        .iter()
        .flat_map(|r| tags_of(r).into_iter().map(move |t| (r, t)))
        .collect();
    insert_rows(
        tx,
        &tags,
        "INSERT INTO context_tags (entry_id, project_id, tag, created_at)",
        " ON CONFLICT DO NOTHING",
        |args, (r, t)| {
            vec![
                args.push(r.id.as_str()),
                args.push(r.project_id.as_str()),
                args.push(t.as_str()),
                args.push(r.created_at),
            ]
        },
    )
    .await?;
    // SQLite keeps a separate FTS5 table; PostgreSQL's generated column needs nothing.
    if tx.backend() == Backend::Sqlite {
        insert_rows(
            tx,
            rows,
            "INSERT INTO context_fts (rowid, entry_id, project_id, title, body)",
            "",
            |args, r| {
                vec![
                    args.push(fts_rowid(&r.id)),
                    args.push(r.id.as_str()),
                    args.push(r.project_id.as_str()),
                    args.push(r.title.as_str()),
                    args.push(r.body.as_str()),
                ]
            },
        )
        .await?;
    }
    Ok(())
}

/// Replaces an entry's fields, tags and search text.
pub async fn update_entry(tx: &mut Tx, r: &ContextRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE context_entries SET type = $1, scope = $2, title = $3, body = $4, tags = $5, priority = $6, updated_at = $7 \
         WHERE id = $8 AND project_id = $9",
    )
    .bind(&r.kind).bind(&r.scope).bind(&r.title).bind(&r.body).bind(&r.tags).bind(&r.priority).bind(r.updated_at)
    .bind(&r.id).bind(&r.project_id)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    unindex_entry(tx, &r.id).await?;
    index_entries(tx, std::slice::from_ref(r)).await
}

/// Removes an entry's tag rows and search row.
async fn unindex_entry(tx: &mut Tx, id: &str) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query("DELETE FROM context_tags WHERE entry_id = $1").bind(id).execute(c).await.map(|r| r.rows_affected()))
        .map_err(db_error)?;
    if let Tx::Sqlite(t) = tx {
        sqlx::query("DELETE FROM context_fts WHERE rowid = $1")
            .bind(fts_rowid(id))
            .execute(&mut **t)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Deletes an entry of `project`; returns whether it existed.
pub async fn delete_entry(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM context_entries WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    if n > 0
        && let Tx::Sqlite(t) = tx
    {
        sqlx::query("DELETE FROM context_fts WHERE rowid = $1")
            .bind(fts_rowid(id))
            .execute(&mut **t)
            .await
            .map_err(db_error)?;
    }
    Ok(n > 0)
}

pub async fn get_entry(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<ContextRow>, Error> {
    let sql = format!("SELECT {COLS} FROM context_entries e WHERE e.id = $1 AND e.project_id = $2");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(project.db()).fetch_optional(c).await).map_err(db_error)
}

pub async fn get_entry_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<ContextRow>, Error> {
    let sql = format!("SELECT {COLS} FROM context_entries e WHERE e.id = $1 AND e.project_id = $2");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(project.db()).fetch_optional(c).await).map_err(db_error)
}

#[derive(Debug, Default, Clone)]
pub struct ContextFilter {
    pub kind: Option<String>,
    pub scope: Option<String>,
    pub priority: Option<String>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    pub created_by: Option<String>,
    pub since: Option<i64>,
    /// Full-text query; results are then ordered by relevance.
    pub search: Option<String>,
}

/// Newest first, or by relevance when searching (then paged by `offset`).
///
/// Two shapes keep large projects fast: a tag filter walks the first tag's
/// `(project, tag, created_at)` index in page order and checks the others per row; a search
/// with no other filter ranks inside FTS5 (whose rows carry the project) and joins only the
/// page it returns.
pub async fn list_entries(
    store: &Store,
    project: ProjectId,
    f: &ContextFilter,
    page: &PageRequest,
    offset: i64,
) -> Result<Vec<ContextRow>, Error> {
    let mut args = Args::default();
    let backend = store.backend();
    // A search without words matches nothing.
    let Some(search) = search_query(backend, f.search.as_deref()) else {
        return Ok(Vec::new());
    };
    let only_search = f.kind.is_none()
        && f.scope.is_none()
        && f.priority.is_none()
        && f.created_by.is_none()
        && f.since.is_none()
        && f.tags.is_empty();
    if let (Some(q), Backend::Sqlite, true) = (&search, backend, only_search)
        && let Some(rows) = search_globally_ranked(store, project, q, page, offset).await?
    {
        return Ok(rows);
    }
    // With tags and no search, rows come in the first tag's index order.
    let by_tag = search.is_none() && !f.tags.is_empty();
    let mut sql = if by_tag {
        format!(
            "SELECT {COLS} FROM context_tags t JOIN context_entries e ON e.id = t.entry_id \
             WHERE t.project_id = {} AND t.tag = {}",
            args.push(project.db()),
            args.push(f.tags[0].clone())
        )
    } else {
        let mut sql = format!("SELECT {COLS} FROM context_entries e");
        if let (Some(q), Backend::Sqlite) = (&search, backend) {
            sql.push_str(&format!(
                " JOIN context_fts ON context_fts.entry_id = e.id AND context_fts MATCH {}",
                args.push(q.clone())
            ));
        }
        sql.push_str(&format!(
            " WHERE e.project_id = {}",
            args.push(project.db())
        ));
        sql
    };
    for (col, val) in [
        ("e.type", &f.kind),
        ("e.scope", &f.scope),
        ("e.priority", &f.priority),
        ("e.created_by", &f.created_by),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    if let Some(t) = f.since {
        sql.push_str(&format!(" AND e.created_at >= {}", args.push(t)));
    }
    let more_tags = if by_tag { &f.tags[1..] } else { &f.tags[..] };
    for tag in more_tags {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM context_tags x WHERE x.entry_id = e.id AND x.tag = {})",
            args.push(tag.clone())
        ));
    }
    match (&search, backend) {
        (Some(_), Backend::Sqlite) => {
            let lim = args.push(page.fetch());
            let off = args.push(offset);
            // The same order as `search_globally_ranked` (ids are time-ordered UUIDv7).
            sql.push_str(&format!(
                " ORDER BY context_fts.rank, e.id DESC LIMIT {lim} OFFSET {off}"
            ));
        }
        (Some(q), Backend::Postgres) => {
            let q = args.push(q.clone());
            let lim = args.push(page.fetch());
            let off = args.push(offset);
            sql.push_str(&format!(
                " AND e.search @@ websearch_to_tsquery('english', {q}) \
                 ORDER BY ts_rank(e.search, websearch_to_tsquery('english', {q})) DESC, e.created_at DESC, e.id DESC LIMIT {lim} OFFSET {off}"
            ));
        }
        // The tag row's (created_at, entry_id) equal the entry's: page on the index's columns.
        (None, _) if by_tag => keyset_on(&mut sql, &mut args, page, "t.created_at", "t.entry_id"),
        (None, _) => keyset(&mut sql, &mut args, page, "e."),
    }
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

/// A search page (SQLite, no other filter) taken from the best-ranked matches of all projects:
/// ranking inside FTS5 without reading each match's project is several times faster. Exact
/// when this project fills the page from that window (a row of it outside the window ranks
/// below every row inside); otherwise `None` sends the caller to the exact query.
async fn search_globally_ranked(
    store: &Store,
    project: ProjectId,
    q: &str,
    page: &PageRequest,
    offset: i64,
) -> Result<Option<Vec<ContextRow>>, Error> {
    let fetch = page.fetch();
    let window = (2 * (offset + fetch)).max(50);
    let mut args = Args::default();
    let q = args.push(q);
    // `rank` is bm25 weighted title ten to body one (migration 0010); lower is better. FTS5
    // sorts by it without reading each match's stored columns. The window is every match at
    // least as good as the `window`-th best, ties included: cutting a run of equal ranks
    // would pick among them in FTS5's order, not the page order (rank, then id), and pages
    // would then repeat or skip entries.
    let sql = format!(
        "WITH c AS (SELECT rank AS cut FROM context_fts WHERE context_fts MATCH {q}          ORDER BY rank LIMIT 1 OFFSET {}),          f AS MATERIALIZED (SELECT entry_id, rank AS r FROM context_fts WHERE context_fts MATCH {q}          AND rank <= (SELECT cut FROM c))          SELECT {COLS} FROM f          JOIN context_entries e ON e.id = f.entry_id WHERE e.project_id = {}          ORDER BY f.r, e.id DESC LIMIT {} OFFSET {}",
        args.push(window - 1),
        args.push(project.db()),
        args.push(fetch),
        args.push(offset),
    );
    let rows: Vec<ContextRow> = on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)?;
    // Fewer matches than the window: there is no cut, `f` is empty, and the exact query
    // (which has no window) answers instead.
    if rows.len() as i64 == fetch {
        return Ok(Some(rows));
    }
    Ok(None)
}

/// The search row's rowid for a row (context entry, document): the last 60 bits of its UUIDv7
/// (random bits), so the row is found by rowid, not by scanning the index's stored ids.
/// Migrations 0010 and 0013 compute the same number in SQL for rows that existed before them.
pub(crate) fn fts_rowid(entry_db_id: &str) -> i64 {
    let hex: String = entry_db_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    hex.get(17..32)
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// The text a search hands the backend: an FTS5 query of the words on SQLite, the user's text
/// for PostgreSQL's `websearch_to_tsquery`. `Some(None)` is no search; `None` a search without
/// words, which matches nothing.
pub(crate) fn search_query(backend: Backend, raw: Option<&str>) -> Option<Option<String>> {
    match (raw, backend) {
        (None, _) => Some(None),
        (Some(q), Backend::Sqlite) => fts5_query(q).map(Some),
        (Some(q), Backend::Postgres) => Some(Some(q.to_owned())),
    }
}

/// An FTS5 query that matches every word of the user's text (quoted, so operators in the
/// input are just words); `None` when the text has no words.
fn fts5_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Distinct values with counts, most used first: `column` is `tag` or `scope`.
pub async fn value_counts(
    store: &Store,
    project: ProjectId,
    column: ValueColumn,
) -> Result<Vec<(String, i64)>, Error> {
    let sql = match column {
        ValueColumn::Tag => {
            "SELECT tag, COUNT(*) FROM context_tags WHERE project_id = $1 GROUP BY tag ORDER BY COUNT(*) DESC, tag"
        }
        ValueColumn::Scope => {
            "SELECT scope, COUNT(*) FROM context_entries WHERE project_id = $1 GROUP BY scope ORDER BY COUNT(*) DESC, scope"
        }
    };
    on_db!(store, c => sqlx::query_as(sql).bind(project.db()).fetch_all(c).await).map_err(db_error)
}

#[derive(Debug, Clone, Copy)]
pub enum ValueColumn {
    Tag,
    Scope,
}

#[cfg(test)]
mod tests {
    use super::fts5_query;

    #[test]
    fn fts_rowids_take_the_last_sixty_bits() {
        let id = "0193ab12-3456-7def-8abc-0123456789ab";
        assert_eq!(super::fts_rowid(id), 0x0abc_0123_4567_89ab);
        assert!(super::fts_rowid("ffffffff-ffff-7fff-bfff-ffffffffffff") > 0);
    }

    #[test]
    fn fts_queries_quote_words() {
        assert_eq!(
            fts5_query("Deploy AND \"prod\" -x").as_deref(),
            Some("\"deploy\" \"and\" \"prod\" \"x\"")
        );
        assert_eq!(fts5_query("  *** "), None);
    }
}
