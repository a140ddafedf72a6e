//! Tenancy: orgs, projects (Stackmint clients), API keys, token exchange, and the first-start
//! bootstrap. Operations live in [`clients`], [`keys`] and [`session`]; this module holds what
//! they and the CLI share.

pub mod clients;
pub mod keys;
pub mod session;

use canopy_core::{Error, KeyId, OrgId, ProjectId, Scope, Scopes};
use canopy_store::audit::{AuditRow, insert_audit};
use canopy_store::keys::{KeyRow, insert_key};
use canopy_store::orgs::{OrgRow, get_org_by_slug, insert_org};
use canopy_store::projects::{ProjectRow, insert_project};
use canopy_store::{Store, Tx};

use crate::crypto::{generate_key, hash_key, visible_prefix};

/// The prefix of keys minted by the CLI and at first start.
pub const DEFAULT_KEY_PREFIX: &str = "cnp_";
/// The prefix of keys minted through the StackBilt admin routes.
pub const ACCESS_KEY_PREFIX: &str = "ska_";

/// What to mint.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub org: OrgId,
    pub project: Option<ProjectId>,
    pub name: String,
    pub scopes: Scopes,
    pub prefix: &'static str,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub plan: Option<String>,
    pub mcp_tools: Vec<String>,
    pub rate_limit: Option<u32>,
    pub expires_at: Option<i64>,
    pub created_by: Option<KeyId>,
}

/// Inserts a key and returns its row and the secret (the only time it exists in clear).
pub async fn mint_key(tx: &mut Tx, k: &NewKey) -> Result<(KeyRow, String), Error> {
    let secret = generate_key(k.prefix);
    let row = KeyRow {
        id: KeyId::new().db(),
        org_id: k.org.db(),
        project_id: k.project.map(|p| p.db()),
        name: k.name.clone(),
        prefix: visible_prefix(&secret),
        secret_hash: hash_key(&secret),
        scopes: k.scopes.to_db(),
        user_id: k.user_id.clone(),
        email: k.email.clone(),
        plan: k.plan.clone(),
        mcp_tools: serde_json::to_string(&k.mcp_tools)?,
        rate_limit: k.rate_limit.map(i64::from),
        expires_at: k.expires_at,
        last_used_at: None,
        revoked_at: None,
        replaced_by: None,
        created_by: k.created_by.map(|c| c.db()),
        created_at: canopy_core::time::now_ms(),
    };
    insert_key(tx, &row).await?;
    Ok((row, secret))
}

/// An audit row for actions taken by the server itself (no key): first start, `orgs create`.
pub fn system_audit(
    org: OrgId,
    project: Option<ProjectId>,
    action: &str,
    target: Option<String>,
) -> AuditRow {
    AuditRow {
        id: canopy_core::AuditId::new().db(),
        org_id: org.db(),
        project_id: project.map(|p| p.to_string()),
        key_id: None,
        agent: Some("canopy".to_owned()),
        action: action.to_owned(),
        target,
        request_id: None,
        outcome: "success".to_owned(),
        detail: None,
        created_at: canopy_core::time::now_ms(),
    }
}

/// A new project row with a slug derived from its name when none is given.
pub fn new_project_row(
    org: OrgId,
    name: &str,
    slug: Option<&str>,
    metadata: &serde_json::Value,
) -> Result<ProjectRow, Error> {
    let name = validate_name(name, "name")?;
    let slug = match slug {
        Some(s) => validate_slug(s)?,
        None => slugify(&name),
    };
    let now = canopy_core::time::now_ms();
    Ok(ProjectRow {
        id: ProjectId::new().db(),
        org_id: org.db(),
        slug,
        name,
        metadata: metadata.to_string(),
        rate_limit: None,
        archived_at: None,
        created_at: now,
        updated_at: now,
    })
}

pub fn validate_name(name: &str, field: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::validation(
            field,
            format!("{field} must be 1 to 200 characters."),
        ));
    }
    Ok(name.to_owned())
}

pub fn validate_slug(slug: &str) -> Result<String, Error> {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(Error::validation(
            "slug",
            "slug must be 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'.",
        ))
    }
}

fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(63).collect();
    if out.is_empty() {
        out = "project".to_owned();
    }
    out
}

/// What the first start created.
pub struct Bootstrapped {
    pub org: OrgId,
    pub project: ProjectId,
    pub admin_key: String,
}

/// Inserts an org and an org-wide admin key for it, audited as `action`; returns the secret.
async fn insert_org_with_admin(
    tx: &mut Tx,
    slug: &str,
    name: &str,
    key_name: &str,
    action: &str,
) -> Result<(OrgId, String), Error> {
    let slug = validate_slug(slug)?;
    let name = validate_name(name, "name")?;
    let now = canopy_core::time::now_ms();
    let org = OrgId::new();
    let row = OrgRow {
        id: org.db(),
        slug: slug.clone(),
        name,
        rate_limit: None,
        created_at: now,
        updated_at: now,
    };
    insert_org(tx, &row).await.map_err(|e| {
        if e.code == canopy_core::Code::Conflict {
            Error::conflict(format!("An org with slug '{slug}' exists.")).with_field("slug")
        } else {
            e
        }
    })?;
    let admin = NewKey {
        org,
        project: None,
        name: key_name.into(),
        scopes: Scopes::empty().with(Scope::Admin),
        prefix: DEFAULT_KEY_PREFIX,
        user_id: None,
        email: None,
        plan: None,
        mcp_tools: vec![],
        rate_limit: None,
        expires_at: None,
        created_by: None,
    };
    let (key, secret) = mint_key(tx, &admin).await?;
    let target = KeyId::from_db(&key.id).map(|k| k.to_string());
    insert_audit(tx, &system_audit(org, None, action, target)).await?;
    Ok((org, secret))
}

/// On an empty database: creates org `default`, project `default` and an org-wide admin key.
/// Returns `None` when the database already has an org (later starts create nothing).
pub async fn bootstrap_if_empty(store: &Store) -> Result<Option<Bootstrapped>, Error> {
    if canopy_store::orgs::count_orgs(store).await? > 0 {
        return Ok(None);
    }
    let mut tx = store.begin().await?;
    let (org, admin_key) = insert_org_with_admin(
        &mut tx,
        "default",
        "Default",
        "admin (first start)",
        "bootstrap",
    )
    .await?;
    let project = new_project_row(org, "Default", Some("default"), &serde_json::json!({}))?;
    insert_project(&mut tx, &project).await?;
    let project = ProjectId::from_db(&project.id).ok_or_else(|| Error::internal("project id"))?;
    tx.commit().await?;
    Ok(Some(Bootstrapped {
        org,
        project,
        admin_key,
    }))
}

/// The org named `slug`, for the CLI.
pub async fn org_by_slug(store: &Store, slug: &str) -> Result<OrgId, Error> {
    get_org_by_slug(store, slug)
        .await?
        .map(|o| o.org_id())
        .ok_or_else(|| Error::not_found(&format!("Org '{slug}'")))
}

/// Creates an org with an org-wide admin key (for `canopy orgs create` and tests). Returns the
/// org id and the key's secret, shown once.
pub async fn create_org(store: &Store, slug: &str, name: &str) -> Result<(OrgId, String), Error> {
    let mut tx = store.begin().await?;
    let created = insert_org_with_admin(&mut tx, slug, name, "admin", "create_org").await?;
    tx.commit().await?;
    Ok(created)
}

/// Sets an org's per-minute rate limit shared by all its keys (`None` clears it); for
/// `canopy orgs update`. Audited as the server.
pub async fn set_org_rate_limit(
    store: &Store,
    org: OrgId,
    limit: Option<u32>,
) -> Result<(), Error> {
    if limit == Some(0) {
        return Err(Error::validation(
            "rate_limit",
            "rate_limit must be at least 1 request per minute.",
        ));
    }
    let mut tx = store.begin().await?;
    let now = canopy_core::time::now_ms();
    if !canopy_store::orgs::set_org_rate_limit(&mut tx, org, limit.map(i64::from), now).await? {
        return Err(Error::not_found("Org"));
    }
    insert_audit(
        &mut tx,
        &system_audit(org, None, "update_org", Some(org.to_string())),
    )
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Corp. (EU)"), "acme-corp-eu");
        assert_eq!(slugify("***"), "project");
        assert!(validate_slug("ok-1").is_ok());
        assert!(validate_slug("Bad").is_err());
        assert!(validate_slug("-x").is_err());
    }
}
