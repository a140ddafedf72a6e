//! Agent definitions. A project sees its own agents and the `global` agents of its org.

use canopy_core::{Error, OrgId, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub name: String,
    pub scope: String,
    pub source: String,
    pub is_main: i64,
    pub tags: String,
    pub spec: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const VISIBLE: &str = "(project_id = $1 OR (org_id = $2 AND scope = 'global'))";

pub async fn insert_agent(tx: &mut Tx, r: &AgentRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO agents (id, org_id, project_id, name, scope, source, is_main, tags, spec, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.name).bind(&r.scope).bind(&r.source).bind(r.is_main)
    .bind(&r.tags).bind(&r.spec).bind(&r.created_by).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn update_agent(tx: &mut Tx, r: &AgentRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE agents SET name = $1, scope = $2, source = $3, is_main = $4, tags = $5, spec = $6, updated_at = $7 WHERE id = $8 AND project_id = $9",
    )
    .bind(&r.name).bind(&r.scope).bind(&r.source).bind(r.is_main).bind(&r.tags).bind(&r.spec).bind(r.updated_at)
    .bind(&r.id).bind(&r.project_id)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn delete_agent(tx: &mut Tx, project: ProjectId, id: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM agents WHERE id = $1 AND project_id = $2")
        .bind(id).bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

/// An agent visible to `project` by id (database form) or name; the project's own first.
pub async fn find_agent(
    store: &Store,
    org: OrgId,
    project: ProjectId,
    id: Option<&str>,
    name: &str,
) -> Result<Option<AgentRow>, Error> {
    let sql = format!(
        "SELECT * FROM agents WHERE {VISIBLE} AND (id = $3 OR name = $4) ORDER BY CASE WHEN project_id = $1 THEN 0 ELSE 1 END LIMIT 1"
    );
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project.db()).bind(org.db()).bind(id.unwrap_or("")).bind(name).fetch_optional(c).await)
        .map_err(db_error)
}

/// Same as [`find_agent`] but only the project's own agents, inside a transaction.
pub async fn find_own_agent_tx(
    tx: &mut Tx,
    project: ProjectId,
    id: Option<&str>,
    name: &str,
) -> Result<Option<AgentRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM agents WHERE project_id = $1 AND (id = $2 OR name = $3)")
        .bind(project.db()).bind(id.unwrap_or("")).bind(name).fetch_optional(c).await)
    .map_err(db_error)
}

/// The project's main agent other than `except`, if any.
pub async fn main_agent_tx(
    tx: &mut Tx,
    project: ProjectId,
    except: &str,
) -> Result<Option<AgentRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM agents WHERE project_id = $1 AND is_main = 1 AND id <> $2")
        .bind(project.db()).bind(except).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn clear_main_tx(tx: &mut Tx, project: ProjectId) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query("UPDATE agents SET is_main = 0 WHERE project_id = $1")
        .bind(project.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn own_agents_tx(tx: &mut Tx, project: ProjectId) -> Result<Vec<AgentRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM agents WHERE project_id = $1 ORDER BY name")
        .bind(project.db()).fetch_all(c).await)
    .map_err(db_error)
}

#[derive(Debug, Default, Clone)]
pub struct AgentFilter {
    pub scope: Option<String>,
    pub source: Option<String>,
    pub tag: Option<String>,
}

pub async fn list_agents(
    store: &Store,
    org: OrgId,
    project: ProjectId,
    f: &AgentFilter,
    page: &PageRequest,
) -> Result<Vec<AgentRow>, Error> {
    let mut args = Args::default();
    args.push(project.db());
    args.push(org.db());
    let mut sql = format!("SELECT * FROM agents WHERE {VISIBLE}");
    for (col, val) in [("scope", &f.scope), ("source", &f.source)] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = {}", args.push(v.clone())));
        }
    }
    if let Some(t) = &f.tag {
        // Tags are a JSON array of strings; match the quoted element.
        sql.push_str(&format!(
            " AND tags LIKE {}",
            args.push(format!("%\"{}\"%", t.replace(['%', '_', '"'], "")))
        ));
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}
