//! API keys. Only the SHA-256 of a secret is stored; lookups go by that hash.

use canopy_core::{Error, KeyId, OrgId, PageRequest, ProjectId};

use crate::args::{Args, keyset};
use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub org_id: String,
    pub project_id: Option<String>,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub plan: Option<String>,
    pub mcp_tools: String,
    pub rate_limit: Option<i64>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub replaced_by: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// A key joined with what authentication needs of its project and org.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthKeyRow {
    pub id: String,
    pub org_id: String,
    pub project_id: Option<String>,
    pub secret_hash: String,
    pub scopes: String,
    pub rate_limit: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub project_rate_limit: Option<i64>,
    pub project_archived_at: Option<i64>,
    pub org_rate_limit: Option<i64>,
    /// JSON array: the MCP tools to list for this key (empty: all).
    pub mcp_tools: String,
}

const AUTH_SELECT: &str = "SELECT k.id, k.org_id, k.project_id, k.secret_hash, k.scopes, k.rate_limit, \
     k.expires_at, k.revoked_at, k.last_used_at, p.rate_limit AS project_rate_limit, \
     p.archived_at AS project_archived_at, o.rate_limit AS org_rate_limit, k.mcp_tools \
     FROM api_keys k JOIN orgs o ON o.id = k.org_id LEFT JOIN projects p ON p.id = k.project_id";

pub async fn insert_key(tx: &mut Tx, k: &KeyRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO api_keys (id, org_id, project_id, name, prefix, secret_hash, scopes, user_id, email, plan, \
         mcp_tools, rate_limit, expires_at, last_used_at, revoked_at, replaced_by, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&k.id)
    .bind(&k.org_id)
    .bind(&k.project_id)
    .bind(&k.name)
    .bind(&k.prefix)
    .bind(&k.secret_hash)
    .bind(&k.scopes)
    .bind(&k.user_id)
    .bind(&k.email)
    .bind(&k.plan)
    .bind(&k.mcp_tools)
    .bind(k.rate_limit)
    .bind(k.expires_at)
    .bind(k.last_used_at)
    .bind(k.revoked_at)
    .bind(&k.replaced_by)
    .bind(&k.created_by)
    .bind(k.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn auth_by_hash(store: &Store, hash: &str) -> Result<Option<AuthKeyRow>, Error> {
    let sql = format!("{AUTH_SELECT} WHERE k.secret_hash = $1");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(c).await)
        .map_err(db_error)
}

pub async fn auth_by_id(store: &Store, id: KeyId) -> Result<Option<AuthKeyRow>, Error> {
    let sql = format!("{AUTH_SELECT} WHERE k.id = $1");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id.db()).fetch_optional(c).await).map_err(db_error)
}

/// One key of `org`, optionally restricted to a project.
pub async fn get_key(store: &Store, org: OrgId, id: KeyId) -> Result<Option<KeyRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM api_keys WHERE id = $1 AND org_id = $2")
        .bind(id.db()).bind(org.db()).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn get_key_tx(tx: &mut Tx, org: OrgId, id: KeyId) -> Result<Option<KeyRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM api_keys WHERE id = $1 AND org_id = $2")
        .bind(id.db()).bind(org.db()).fetch_optional(c).await)
    .map_err(db_error)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    #[default]
    Any,
    Active,
    Revoked,
    Expired,
}

pub struct KeyFilter {
    pub org: OrgId,
    pub project: Option<ProjectId>,
    pub user_id: Option<String>,
    pub status: KeyStatus,
    pub now: i64,
}

pub async fn list_keys(
    store: &Store,
    f: &KeyFilter,
    page: &PageRequest,
) -> Result<Vec<KeyRow>, Error> {
    let mut args = Args::default();
    let mut sql = format!(
        "SELECT * FROM api_keys WHERE org_id = {}",
        args.push(f.org.db())
    );
    if let Some(p) = f.project {
        sql.push_str(&format!(" AND project_id = {}", args.push(p.db())));
    }
    if let Some(u) = &f.user_id {
        sql.push_str(&format!(" AND user_id = {}", args.push(u.clone())));
    }
    match f.status {
        KeyStatus::Any => {}
        KeyStatus::Active => {
            let now = args.push(f.now);
            sql.push_str(&format!(
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {now})"
            ));
        }
        KeyStatus::Revoked => sql.push_str(" AND revoked_at IS NOT NULL"),
        KeyStatus::Expired => {
            let now = args.push(f.now);
            sql.push_str(&format!(
                " AND revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= {now}"
            ));
        }
    }
    keyset(&mut sql, &mut args, page, "");
    on_db!(store, c => bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args).fetch_all(c).await).map_err(db_error)
}

/// Marks a key revoked (keeps the first revocation time); returns whether a row changed.
pub async fn revoke_key(
    tx: &mut Tx,
    id: &str,
    at: i64,
    replaced_by: Option<&str>,
) -> Result<bool, Error> {
    let r = on_tx!(tx, c => sqlx::query(
        "UPDATE api_keys SET revoked_at = $1, replaced_by = COALESCE($2, replaced_by) WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(replaced_by)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(r > 0)
}

pub async fn touch_last_used(store: &Store, id: &str, at: i64) -> Result<(), Error> {
    on_write!(store, c => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(at).bind(id).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}
