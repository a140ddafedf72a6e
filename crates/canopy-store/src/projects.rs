//! Projects: Stackmint clients, Minolith projects, Stagent projects.

use canopy_core::{Error, OrgId, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub org_id: String,
    pub slug: String,
    pub name: String,
    pub metadata: String,
    pub rate_limit: Option<i64>,
    pub archived_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_project(tx: &mut Tx, p: &ProjectRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO projects (id, org_id, slug, name, metadata, rate_limit, archived_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&p.id)
    .bind(&p.org_id)
    .bind(&p.slug)
    .bind(&p.name)
    .bind(&p.metadata)
    .bind(p.rate_limit)
    .bind(p.archived_at)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

/// One project of `org`; `None` when it does not exist in that org.
pub async fn get_project(
    store: &Store,
    org: OrgId,
    id: ProjectId,
) -> Result<Option<ProjectRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM projects WHERE id = $1 AND org_id = $2")
        .bind(id.db()).bind(org.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_project_by_slug(
    store: &Store,
    org: OrgId,
    slug: &str,
) -> Result<Option<ProjectRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM projects WHERE org_id = $1 AND slug = $2")
        .bind(org.db()).bind(slug).fetch_optional(c).await)
    .map_err(db_error)
}

/// Same as [`get_project`] inside a write transaction (reads its own writes).
pub async fn get_project_tx(
    tx: &mut Tx,
    org: OrgId,
    id: ProjectId,
) -> Result<Option<ProjectRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM projects WHERE id = $1 AND org_id = $2")
        .bind(id.db()).bind(org.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub struct ProjectFilter {
    pub org: OrgId,
    /// Only this project (a project-scoped caller sees just its own).
    pub only: Option<ProjectId>,
    pub include_archived: bool,
}

pub async fn list_projects(
    store: &Store,
    f: &ProjectFilter,
    page: &PageRequest,
) -> Result<Vec<ProjectRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM projects WHERE org_id = {}",
        args.push(f.org.db())
    );
    if let Some(p) = f.only {
        sql.push_str(&format!(" AND id = {}", args.push(p.db())));
    }
    if !f.include_archived {
        sql.push_str(" AND archived_at IS NULL");
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

pub async fn update_project(tx: &mut Tx, p: &ProjectRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE projects SET name = $1, slug = $2, metadata = $3, rate_limit = $4, archived_at = $5, updated_at = $6 \
         WHERE id = $7 AND org_id = $8",
    )
    .bind(&p.name)
    .bind(&p.slug)
    .bind(&p.metadata)
    .bind(p.rate_limit)
    .bind(p.archived_at)
    .bind(p.updated_at)
    .bind(&p.id)
    .bind(&p.org_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

/// The project a public URL names: by id, or by slug (the oldest active project with that
/// slug across orgs, since public URLs carry no org).
pub async fn find_public_project(store: &Store, raw: &str) -> Result<Option<ProjectRow>, Error> {
    if let Some(id) = ProjectId::parse(raw) {
        return on_db!(store, c => sqlx::query_as("SELECT * FROM projects WHERE id = $1 AND archived_at IS NULL")
            .bind(id.db()).fetch_optional(c).await)
        .map_err(db_error);
    }
    on_db!(store, c => sqlx::query_as("SELECT * FROM projects WHERE slug = $1 AND archived_at IS NULL ORDER BY created_at, id LIMIT 1")
        .bind(raw).fetch_optional(c).await)
    .map_err(db_error)
}

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    ContextEntries,
    Agents,
    ChangelogEntries,
    FeedbackItems,
    Documents,
    /// Styleguide components, patterns, voice rules and assets together.
    StyleguideItems,
    /// Bytes of uploaded files (documents and styleguide assets).
    StorageBytes,
}

impl Counted {
    pub fn name(self) -> &'static str {
        match self {
            Counted::ContextEntries => "context_entries",
            Counted::Agents => "agents",
            Counted::ChangelogEntries => "changelog_entries",
            Counted::FeedbackItems => "feedback_items",
            Counted::Documents => "documents",
            Counted::StyleguideItems => "styleguide_items",
            Counted::StorageBytes => "storage_bytes",
        }
    }
}

/// How many rows of a kind a project has, inside the write's transaction.
pub async fn count_in_project(
    tx: &mut Tx,
    what: Counted,
    project: ProjectId,
) -> Result<i64, Error> {
    let sql = match what {
        Counted::ContextEntries => "SELECT COUNT(*) FROM context_entries WHERE project_id = $1",
        Counted::Agents => "SELECT COUNT(*) FROM agents WHERE project_id = $1",
        Counted::ChangelogEntries => "SELECT COUNT(*) FROM changelog_entries WHERE project_id = $1",
        Counted::FeedbackItems => "SELECT COUNT(*) FROM feedback_items WHERE project_id = $1",
        Counted::Documents => "SELECT COUNT(*) FROM documents WHERE project_id = $1",
        Counted::StyleguideItems => {
            "SELECT (SELECT COUNT(*) FROM styleguide_items WHERE project_id = $1) \
             + (SELECT COUNT(*) FROM styleguide_assets WHERE project_id = $1)"
        }
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both backends answer an i64.
        Counted::StorageBytes => {
            "SELECT CAST(COALESCE((SELECT SUM(size_bytes) FROM documents WHERE project_id = $1), 0) \
             + COALESCE((SELECT SUM(size_bytes) FROM styleguide_assets WHERE project_id = $1), 0) AS BIGINT)"
        }
    };
    on_tx!(tx, c => sqlx::query_scalar(sql).bind(project.db()).fetch_one(c).await).map_err(db_error)
}
