//! LLM provider credentials per org or client. The store keeps the sealed key as given; it
//! never sees the secret in the clear (services seal and open it).

use canopy_core::Error;

use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub org_id: String,
    /// `''` for org-wide credentials.
    pub project_id: String,
    pub provider: String,
    pub kind: String,
    pub api_key_sealed: String,
    pub base_url: Option<String>,
    pub organization: Option<String>,
    pub default_model: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Creates or replaces the credentials of one provider (creation time kept on replace).
pub async fn upsert(tx: &mut Tx, r: &CredentialRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO provider_credentials (org_id, project_id, provider, kind, api_key_sealed, base_url, \
         organization, default_model, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (org_id, project_id, provider) DO UPDATE SET kind = excluded.kind, \
         api_key_sealed = excluded.api_key_sealed, base_url = excluded.base_url, \
         organization = excluded.organization, default_model = excluded.default_model, \
         updated_at = excluded.updated_at",
    )
    .bind(&r.org_id).bind(&r.project_id).bind(&r.provider).bind(&r.kind).bind(&r.api_key_sealed)
    .bind(&r.base_url).bind(&r.organization).bind(&r.default_model).bind(r.created_at).bind(r.updated_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn get(
    tx: &mut Tx,
    org: &str,
    project: &str,
    provider: &str,
) -> Result<Option<CredentialRow>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT * FROM provider_credentials WHERE org_id = $1 AND project_id = $2 AND provider = $3",
    )
    .bind(org).bind(project).bind(provider).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn delete(tx: &mut Tx, org: &str, project: &str, provider: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "DELETE FROM provider_credentials WHERE org_id = $1 AND project_id = $2 AND provider = $3",
    )
    .bind(org).bind(project).bind(provider).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

/// Credentials set directly on `project` (`''` for the org's own), by provider.
pub async fn list(store: &Store, org: &str, project: &str) -> Result<Vec<CredentialRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT * FROM provider_credentials WHERE org_id = $1 AND project_id = $2 ORDER BY provider",
    )
    .bind(org).bind(project).fetch_all(c).await)
    .map_err(db_error)
}

/// The credentials a step of `project` uses for `provider`: the client's own, else the org's.
pub async fn resolve(
    store: &Store,
    org: &str,
    project: &str,
    provider: &str,
) -> Result<Option<CredentialRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT * FROM provider_credentials WHERE org_id = $1 AND provider = $2 \
         AND project_id IN ($3, '') ORDER BY project_id DESC LIMIT 1",
    )
    .bind(org).bind(provider).bind(project).fetch_optional(c).await)
    .map_err(db_error)
}
