//! Context entries, their tags and the full-text index (FTS5 on SQLite, a weighted `tsvector`
//! column on PostgreSQL; title matches weigh more than body matches on both).

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, keyset};
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
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO context_entries (id, org_id, project_id, type, scope, title, body, tags, priority, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.kind).bind(&r.scope).bind(&r.title).bind(&r.body)
    .bind(&r.tags).bind(&r.priority).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    write_tags(tx, r).await?;
    write_fts(tx, r, false).await
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
    on_tx!(tx, c => sqlx::query("DELETE FROM context_tags WHERE entry_id = $1").bind(&r.id).execute(c).await.map(|r| r.rows_affected()))
        .map_err(db_error)?;
    write_tags(tx, r).await?;
    write_fts(tx, r, true).await
}

async fn write_tags(tx: &mut Tx, r: &ContextRow) -> Result<(), Error> {
    for tag in tags_of(r) {
        on_tx!(tx, c => sqlx::query("INSERT INTO context_tags (entry_id, project_id, tag) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&r.id).bind(&r.project_id).bind(tag).execute(c).await.map(|r| r.rows_affected()))
        .map_err(db_error)?;
    }
    Ok(())
}

/// SQLite keeps a separate FTS5 table; PostgreSQL's generated column needs nothing.
async fn write_fts(tx: &mut Tx, r: &ContextRow, replace: bool) -> Result<(), Error> {
    if let Tx::Sqlite(t) = tx {
        if replace {
            sqlx::query("DELETE FROM context_fts WHERE entry_id = $1")
                .bind(&r.id)
                .execute(&mut **t)
                .await
                .map_err(db_error)?;
        }
        sqlx::query("INSERT INTO context_fts (entry_id, title, body) VALUES ($1, $2, $3)")
            .bind(&r.id)
            .bind(&r.title)
            .bind(&r.body)
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
    if let Tx::Sqlite(t) = tx {
        sqlx::query("DELETE FROM context_fts WHERE entry_id = $1")
            .bind(id)
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
pub async fn list_entries(
    store: &Store,
    project: ProjectId,
    f: &ContextFilter,
    page: &PageRequest,
    offset: i64,
) -> Result<Vec<ContextRow>, Error> {
    let mut args = Args::default();
    let backend = store.backend();
    let search = match &f.search {
        Some(q) => match backend {
            Backend::Sqlite => match fts5_query(q) {
                Some(m) => Some(m),
                None => return Ok(Vec::new()),
            },
            Backend::Postgres => Some(q.clone()),
        },
        None => None,
    };
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
    if !f.tags.is_empty() {
        let p = args.push(project.db());
        let list: Vec<String> = f.tags.iter().map(|t| args.push(t.clone())).collect();
        let n = args.push(f.tags.len() as i64);
        sql.push_str(&format!(
            " AND e.id IN (SELECT entry_id FROM context_tags WHERE project_id = {p} AND tag IN ({}) GROUP BY entry_id HAVING COUNT(*) = {n})",
            list.join(", ")
        ));
    }
    match (&search, backend) {
        (Some(_), Backend::Sqlite) => {
            // bm25: lower is better; title counts ten times the body.
            let lim = args.push(page.fetch());
            let off = args.push(offset);
            sql.push_str(&format!(" ORDER BY bm25(context_fts, 0.0, 10.0, 1.0), e.created_at DESC, e.id DESC LIMIT {lim} OFFSET {off}"));
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
        (None, _) => keyset(&mut sql, &mut args, page, "e."),
    }
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

/// An FTS5 query that matches every word of the user's text (quoted, so operators in the
/// input are just words); `None` when the text has no words.
pub(crate) fn fts5_query(q: &str) -> Option<String> {
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
    fn fts_queries_quote_words() {
        assert_eq!(
            fts5_query("Deploy AND \"prod\" -x").as_deref(),
            Some("\"deploy\" \"and\" \"prod\" \"x\"")
        );
        assert_eq!(fts5_query("  *** "), None);
    }
}
