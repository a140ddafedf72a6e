//! Organisations.

use canopy_core::{Error, OrgId};

use crate::{Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub rate_limit: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrgRow {
    pub fn org_id(&self) -> OrgId {
        OrgId::from_db(&self.id).unwrap_or_else(|| OrgId(Default::default()))
    }
}

pub async fn insert_org(tx: &mut Tx, org: &OrgRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO orgs (id, slug, name, rate_limit, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&org.id)
    .bind(&org.slug)
    .bind(&org.name)
    .bind(org.rate_limit)
    .bind(org.created_at)
    .bind(org.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(())
}

pub async fn get_org(store: &Store, id: OrgId) -> Result<Option<OrgRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM orgs WHERE id = $1").bind(id.db()).fetch_optional(c).await)
        .map_err(db_error)
}

pub async fn get_org_by_slug(store: &Store, slug: &str) -> Result<Option<OrgRow>, Error> {
    on_db!(store, c => sqlx::query_as("SELECT * FROM orgs WHERE slug = $1").bind(slug).fetch_optional(c).await)
        .map_err(db_error)
}

pub async fn count_orgs(store: &Store) -> Result<i64, Error> {
    on_db!(store, c => sqlx::query_scalar("SELECT COUNT(*) FROM orgs").fetch_one(c).await)
        .map_err(db_error)
}

/// Sets (or clears, with `None`) an org's shared rate limit; returns whether the org exists.
pub async fn set_org_rate_limit(
    tx: &mut Tx,
    id: OrgId,
    limit: Option<i64>,
    now: i64,
) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE orgs SET rate_limit = $1, updated_at = $2 WHERE id = $3")
        .bind(limit).bind(now).bind(id.db()).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}
