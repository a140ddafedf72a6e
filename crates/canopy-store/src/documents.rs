//! Documents (metadata, tags and extracted text, searchable like context) and styleguide
//! assets. The files themselves live in the blob store ([`crate::blobs`]); a row names its
//! blob by `blob_key`.

use canopy_core::{Error, PageRequest, ProjectId};

use crate::args::{Args, insert_rows, keyset};
use crate::context::{fts_rowid, search_query};
use crate::db::Backend;
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub priority: String,
    pub scope: String,
    /// JSON array of strings.
    pub tags: String,
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub blob_key: String,
    /// Extracted text (capped); empty for images and archives.
    pub text: String,
    /// `extracted`, `none` (the kind has no text) or `truncated`.
    pub text_status: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "d.id, d.org_id, d.project_id, d.title, d.description, d.priority, d.scope, d.tags, d.filename, \
     d.mime_type, d.size_bytes, d.sha256, d.blob_key, d.text, d.text_status, d.created_by, d.created_at, d.updated_at";

fn tags_of(r: &DocumentRow) -> Vec<String> {
    serde_json::from_str(&r.tags).unwrap_or_default()
}

pub async fn insert_document(tx: &mut Tx, r: &DocumentRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO documents (id, org_id, project_id, title, description, priority, scope, tags, filename, mime_type, \
         size_bytes, sha256, blob_key, text, text_status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.title).bind(&r.description).bind(&r.priority)
    .bind(&r.scope).bind(&r.tags).bind(&r.filename).bind(&r.mime_type).bind(r.size_bytes).bind(&r.sha256)
    .bind(&r.blob_key).bind(&r.text).bind(&r.text_status).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    write_tags(tx, r).await?;
    write_fts(tx, r, false).await
}

/// Replaces a document's metadata (the file and its text never change).
pub async fn update_document(tx: &mut Tx, r: &DocumentRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE documents SET title = $1, description = $2, priority = $3, scope = $4, tags = $5, updated_at = $6 \
         WHERE id = $7 AND project_id = $8",
    )
    .bind(&r.title).bind(&r.description).bind(&r.priority).bind(&r.scope).bind(&r.tags).bind(r.updated_at)
    .bind(&r.id).bind(&r.project_id)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    on_tx!(tx, c => sqlx::query("DELETE FROM document_tags WHERE document_id = $1").bind(&r.id).execute(c).await.map(|r| r.rows_affected()))
        .map_err(db_error)?;
    write_tags(tx, r).await?;
    write_fts(tx, r, true).await
}

async fn write_tags(tx: &mut Tx, r: &DocumentRow) -> Result<(), Error> {
    insert_rows(
        tx,
        &tags_of(r),
        "INSERT INTO document_tags (document_id, project_id, tag)",
        " ON CONFLICT DO NOTHING",
        |args, t| {
            vec![
                args.push(r.id.as_str()),
                args.push(r.project_id.as_str()),
                args.push(t.as_str()),
            ]
        },
    )
    .await
}

/// SQLite keeps a separate FTS5 table; PostgreSQL's generated column needs nothing.
async fn write_fts(tx: &mut Tx, r: &DocumentRow, replace: bool) -> Result<(), Error> {
    if let Tx::Sqlite(t) = tx {
        if replace {
            sqlx::query("DELETE FROM documents_fts WHERE rowid = $1")
                .bind(fts_rowid(&r.id))
                .execute(&mut **t)
                .await
                .map_err(db_error)?;
        }
        sqlx::query(
            "INSERT INTO documents_fts (rowid, document_id, title, description, text) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(fts_rowid(&r.id))
        .bind(&r.id)
        .bind(&r.title)
        .bind(&r.description)
        .bind(&r.text)
        .execute(&mut **t)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// Deletes a document row of `project`, returning it (its blob is the caller's to remove).
pub async fn delete_document(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<DocumentRow>, Error> {
    let Some(row) = get_document_tx(tx, project, id).await? else {
        return Ok(None);
    };
    on_tx!(tx, c => sqlx::query("DELETE FROM documents WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    if let Tx::Sqlite(t) = tx {
        sqlx::query("DELETE FROM documents_fts WHERE rowid = $1")
            .bind(fts_rowid(id))
            .execute(&mut **t)
            .await
            .map_err(db_error)?;
    }
    Ok(Some(row))
}

pub async fn get_document(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<DocumentRow>, Error> {
    let sql = format!("SELECT {COLS} FROM documents d WHERE d.id = $1 AND d.project_id = $2");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(project.db()).fetch_optional(c).await).map_err(db_error)
}

pub async fn get_document_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<DocumentRow>, Error> {
    let sql = format!("SELECT {COLS} FROM documents d WHERE d.id = $1 AND d.project_id = $2");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(project.db()).fetch_optional(c).await).map_err(db_error)
}

#[derive(Debug, Default, Clone)]
pub struct DocumentFilter {
    pub scope: Option<String>,
    pub priority: Option<String>,
    pub mime_type: Option<String>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// Full-text query over title, description and extracted text; results by relevance.
    pub search: Option<String>,
}

/// Newest first, or by relevance when searching (then paged by `offset`).
pub async fn list_documents(
    store: &Store,
    project: ProjectId,
    f: &DocumentFilter,
    page: &PageRequest,
    offset: i64,
) -> Result<Vec<DocumentRow>, Error> {
    let mut args = Args::default();
    let backend = store.backend();
    // A search without words matches nothing.
    let Some(search) = search_query(backend, f.search.as_deref()) else {
        return Ok(Vec::new());
    };
    let mut sql = format!("SELECT {COLS} FROM documents d");
    if let (Some(q), Backend::Sqlite) = (&search, backend) {
        sql.push_str(&format!(
            " JOIN documents_fts ON documents_fts.document_id = d.id AND documents_fts MATCH {}",
            args.push(q.clone())
        ));
    }
    sql.push_str(&format!(
        " WHERE d.project_id = {}",
        args.push(project.db())
    ));
    for (col, val) in [
        ("d.scope", &f.scope),
        ("d.priority", &f.priority),
        ("d.mime_type", &f.mime_type),
    ] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    if !f.tags.is_empty() {
        let p = args.push(project.db());
        let list: Vec<String> = f.tags.iter().map(|t| args.push(t.clone())).collect();
        let n = args.push(f.tags.len() as i64);
        sql.push_str(&format!(
            " AND d.id IN (SELECT document_id FROM document_tags WHERE project_id = {p} AND tag IN ({}) GROUP BY document_id HAVING COUNT(*) = {n})",
            list.join(", ")
        ));
    }
    match (&search, backend) {
        (Some(_), Backend::Sqlite) => {
            // bm25: lower is better; title ten times, description three times the text.
            let lim = args.push(page.fetch());
            let off = args.push(offset);
            sql.push_str(&format!(" ORDER BY bm25(documents_fts, 0.0, 10.0, 3.0, 1.0), d.created_at DESC, d.id DESC LIMIT {lim} OFFSET {off}"));
        }
        (Some(q), Backend::Postgres) => {
            let q = args.push(q.clone());
            let lim = args.push(page.fetch());
            let off = args.push(offset);
            sql.push_str(&format!(
                " AND d.search @@ websearch_to_tsquery('english', {q}) \
                 ORDER BY ts_rank(d.search, websearch_to_tsquery('english', {q})) DESC, d.created_at DESC, d.id DESC LIMIT {lim} OFFSET {off}"
            ));
        }
        (None, _) => keyset(&mut sql, &mut args, page, "d."),
    }
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssetRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    /// JSON array of strings.
    pub tags: String,
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub blob_key: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_asset(tx: &mut Tx, r: &AssetRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO styleguide_assets (id, org_id, project_id, name, description, tags, filename, mime_type, size_bytes, \
         sha256, blob_key, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.name).bind(&r.description).bind(&r.tags)
    .bind(&r.filename).bind(&r.mime_type).bind(r.size_bytes).bind(&r.sha256).bind(&r.blob_key)
    .bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn update_asset(tx: &mut Tx, r: &AssetRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE styleguide_assets SET name = $1, description = $2, tags = $3, updated_at = $4 WHERE id = $5 AND project_id = $6",
    )
    .bind(&r.name).bind(&r.description).bind(&r.tags).bind(r.updated_at).bind(&r.id).bind(&r.project_id)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_asset(
    store: &Store,
    project: ProjectId,
    id: &str,
) -> Result<Option<AssetRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM styleguide_assets WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_asset_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<AssetRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM styleguide_assets WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).fetch_optional(c).await)
    .map_err(db_error)
}

/// Deletes an asset row, returning it (its blob is the caller's to remove).
pub async fn delete_asset(
    tx: &mut Tx,
    project: ProjectId,
    id: &str,
) -> Result<Option<AssetRow>, Error> {
    let Some(row) = get_asset_tx(tx, project, id).await? else {
        return Ok(None);
    };
    on_tx!(tx, c => sqlx::query("DELETE FROM styleguide_assets WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(Some(row))
}

/// Newest first; `name` filters by a case-insensitive substring.
pub async fn list_assets(
    store: &Store,
    project: ProjectId,
    name: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<AssetRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM styleguide_assets WHERE project_id = {}",
        args.push(project.db())
    );
    if let Some(n) = name {
        sql.push_str(&format!(
            " AND LOWER(name) LIKE {} ESCAPE '\\'",
            args.push(format!("%{}%", like_escape(&n.to_lowercase())))
        ));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

/// `s` with LIKE's wildcards taken literally (escape character `\`).
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
