//! API keys as the StackBilt admin routes show them (`/api/admin/access-keys…`), and per-key
//! usage. Secrets appear once, in the create and rotate answers; lists show only a preview.

use std::collections::BTreeMap;

use canopy_core::{Error, KeyId, PageRequest, Paged, ProjectId, Scope, Scopes};
use canopy_store::keys::{
    KeyFilter, KeyRow, KeyStatus, get_key, get_key_tx, list_keys, revoke_key,
};
use canopy_store::limits::list_usage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::op::{Cx, Hints, Operation};
use crate::tenancy::{ACCESS_KEY_PREFIX, NewKey, mint_key, validate_name};

/// Scopes granted when a create request names none.
pub const DEFAULT_SCOPES: &[Scope] = &[Scope::Read, Scope::Write, Scope::AiInvoke, Scope::Mcp];

/// A key as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AccessKey {
    pub id: KeyId,
    pub name: String,
    /// The kind prefix, e.g. `ska_`.
    pub prefix: String,
    /// The first 12 characters of the key, to tell keys apart.
    pub key_preview: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub scopes: Vec<String>,
    /// `null` for an org-wide key.
    pub project_id: Option<ProjectId>,
    pub plan: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    pub mcp_tools: Vec<String>,
    pub rate_limit: Option<u32>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl AccessKey {
    pub fn from_row(r: &KeyRow, now: i64) -> Result<AccessKey, Error> {
        Ok(AccessKey {
            id: KeyId::from_db(&r.id).ok_or_else(|| Error::internal("bad key id"))?,
            name: r.name.clone(),
            prefix: r
                .prefix
                .split_inclusive('_')
                .next()
                .unwrap_or_default()
                .to_owned(),
            key_preview: r.prefix.clone(),
            user_id: r.user_id.clone(),
            email: r.email.clone(),
            scopes: Scopes::from_db(&r.scopes)
                .names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            project_id: r.project_id.as_deref().and_then(ProjectId::from_db),
            plan: r.plan.clone(),
            status: status_of(r, now).into(),
            mcp_tools: serde_json::from_str(&r.mcp_tools).unwrap_or_default(),
            rate_limit: r.rate_limit.and_then(|n| u32::try_from(n).ok()),
            created_at: canopy_core::time::rfc3339(r.created_at),
            expires_at: r.expires_at.map(canopy_core::time::rfc3339),
            revoked_at: r.revoked_at.map(canopy_core::time::rfc3339),
            last_used_at: r.last_used_at.map(canopy_core::time::rfc3339),
        })
    }
}

fn status_of(r: &KeyRow, now: i64) -> &'static str {
    if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// A key of the caller's org (and project, for a project-scoped caller); else 404.
async fn visible_key(cx: &Cx<'_>, raw: &str) -> Result<KeyRow, Error> {
    let id = KeyId::parse(raw).ok_or_else(key_not_found)?;
    let row = get_key(cx.svc.store(), cx.org(), id)
        .await?
        .ok_or_else(key_not_found)?;
    key_visible(cx, &row)?;
    Ok(row)
}

fn key_visible(cx: &Cx<'_>, row: &KeyRow) -> Result<(), Error> {
    match cx.principal.project_id {
        Some(p) if row.project_id.as_deref() != Some(p.db().as_str()) => Err(key_not_found()),
        _ => Ok(()),
    }
}

fn key_not_found() -> Error {
    Error::not_found("Access key")
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateAccessKeyInput {
    pub name: Option<String>,
    #[serde(alias = "userId")]
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// Scopes to grant (default `read`, `write`, `ai:invoke`, `mcp`); never more than the caller has.
    #[schemars(with = "Option<Vec<ScopeName>>")]
    pub scopes: Option<Vec<String>>,
    /// Restrict the key to one project (client); omit for an org-wide key.
    #[serde(alias = "projectId")]
    pub project_id: Option<String>,
    pub plan: Option<String>,
    /// RFC 3339 time after which the key stops working.
    #[serde(alias = "expiresAt")]
    pub expires_at: Option<String>,
    /// MCP tools to list for this key (empty: all).
    #[serde(alias = "mcpTools")]
    pub mcp_tools: Option<Vec<String>>,
    /// Requests per minute for this key (default: the server's, 100).
    #[schemars(range(min = 1))]
    pub rate_limit: Option<u32>,
}

/// A scope name (for the JSON Schema; the values are checked with a suggestion on mistakes).
#[derive(JsonSchema)]
#[allow(dead_code)]
enum ScopeName {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    #[serde(rename = "runtime")]
    Runtime,
    #[serde(rename = "mcp")]
    Mcp,
    #[serde(rename = "mcp.run")]
    McpRun,
    #[serde(rename = "bud.run")]
    BudRun,
    #[serde(rename = "ai:invoke")]
    AiInvoke,
}

/// The create and rotate answer: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CreatedAccessKey {
    pub id: KeyId,
    /// The secret. Shown once; store it now.
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub user_id: Option<String>,
    pub scopes: Vec<String>,
    pub project_id: Option<ProjectId>,
    pub plan: Option<String>,
    pub status: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// For a rotation: the key this one replaces (now revoked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<KeyId>,
}

fn created(
    row: &KeyRow,
    secret: String,
    previous: Option<KeyId>,
) -> Result<CreatedAccessKey, Error> {
    let k = AccessKey::from_row(row, canopy_core::time::now_ms())?;
    Ok(CreatedAccessKey {
        id: k.id,
        key: secret,
        prefix: k.prefix,
        name: k.name,
        user_id: k.user_id,
        scopes: k.scopes,
        project_id: k.project_id,
        plan: k.plan,
        status: k.status,
        created_at: k.created_at,
        expires_at: k.expires_at,
        previous_id: previous,
    })
}

pub struct CreateAccessKey;
impl Operation for CreateAccessKey {
    const NAME: &'static str = "create_access_key";
    const SUMMARY: &'static str = "Issue a new access key (the secret is returned once).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = CreateAccessKeyInput;
    type Output = CreatedAccessKey;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let scopes = match &input.scopes {
            Some(names) if names.is_empty() => {
                return Err(Error::validation(
                    "scopes",
                    "A key needs at least one scope.",
                ));
            }
            Some(names) => Scopes::parse_list(names, "scopes")?,
            None => DEFAULT_SCOPES.iter().copied().collect(),
        };
        if !cx.principal.scopes.covers(scopes) {
            return Err(
                Error::forbidden("A key cannot grant scopes its creator does not have.")
                    .with_field("scopes"),
            );
        }
        let project = match (&input.project_id, cx.principal.project_id) {
            (Some(raw), _) => {
                let row = crate::tenancy::clients::visible_client(cx, raw)
                    .await
                    .map_err(|e| e.with_field("project_id"))?;
                ProjectId::from_db(&row.id)
            }
            (None, own) => own,
        };
        let expires_at = match &input.expires_at {
            Some(s) => {
                let t = canopy_core::time::parse_rfc3339(s).ok_or_else(|| {
                    Error::validation(
                        "expires_at",
                        "expires_at must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z.",
                    )
                })?;
                if t <= canopy_core::time::now_ms() {
                    return Err(Error::validation(
                        "expires_at",
                        "expires_at must be in the future.",
                    ));
                }
                Some(t)
            }
            None => None,
        };
        if input.rate_limit == Some(0) {
            return Err(Error::validation(
                "rate_limit",
                "rate_limit must be at least 1 request per minute.",
            ));
        }
        let name = match &input.name {
            Some(n) => validate_name(n, "name")?,
            None => "access key".to_owned(),
        };
        let new = NewKey {
            org: cx.org(),
            project,
            name,
            scopes,
            prefix: ACCESS_KEY_PREFIX,
            user_id: input.user_id,
            email: input.email,
            plan: input.plan,
            mcp_tools: input.mcp_tools.unwrap_or_default(),
            rate_limit: input.rate_limit,
            expires_at,
            created_by: Some(cx.principal.key_id),
        };
        let mut tx = cx.svc.store().begin().await?;
        let (row, secret) = mint_key(&mut tx, &new).await?;
        let out = created(&row, secret, None)?;
        cx.commit(tx, project, out.id.to_string(), None).await?;
        Ok(out)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListAccessKeysInput {
    #[serde(alias = "userId")]
    pub user_id: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListAccessKeys;
impl Operation for ListAccessKeys {
    const NAME: &'static str = "list_access_keys";
    const SUMMARY: &'static str = "List access keys (no secrets), newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = ListAccessKeysInput;
    type Output = Paged<AccessKey>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        let status = match input.status.as_deref() {
            None => KeyStatus::Any,
            Some(s) => match canopy_core::suggest::parse_enum(
                s,
                "status",
                &["active", "revoked", "expired"],
            )? {
                "active" => KeyStatus::Active,
                "revoked" => KeyStatus::Revoked,
                _ => KeyStatus::Expired,
            },
        };
        let now = canopy_core::time::now_ms();
        let filter = KeyFilter {
            org: cx.org(),
            project: cx.principal.project_id,
            user_id: input.user_id,
            status,
            now,
        };
        let rows = list_keys(cx.svc.store(), &filter, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| AccessKey::from_row(&r, now),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KeyIdInput {
    /// The key's id (`key_…`), never its secret.
    #[serde(alias = "keyId")]
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AccessKeyDetail {
    #[serde(flatten)]
    pub key: AccessKey,
    /// Whether the key is linked as a governance seat.
    pub compass_linked: bool,
    /// Requests made with the key in the last 24 hours (today and yesterday, UTC days).
    pub usage_24h: i64,
}

pub struct GetAccessKey;
impl Operation for GetAccessKey {
    const NAME: &'static str = "get_access_key";
    const SUMMARY: &'static str = "Inspect one access key: status, last use, recent usage.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = KeyIdInput;
    type Output = AccessKeyDetail;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let row = visible_key(cx, &input.id).await?;
        let now = canopy_core::time::now_ms();
        cx.svc.usage().flush(cx.svc.store()).await?;
        let since = canopy_core::time::day(now - 86_400_000);
        let usage_24h = list_usage(cx.svc.store(), &row.id, &since)
            .await?
            .iter()
            .map(|u| u.requests)
            .sum();
        Ok(AccessKeyDetail {
            key: AccessKey::from_row(&row, now)?,
            compass_linked: false,
            usage_24h,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RevokedKey {
    pub id: KeyId,
    pub status: String,
    pub revoked_at: String,
}

pub struct RevokeAccessKey;
impl Operation for RevokeAccessKey {
    const NAME: &'static str = "revoke_access_key";
    const SUMMARY: &'static str =
        "Revoke a key; it stops working on the next request. Revoking again answers the same.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = KeyIdInput;
    type Output = RevokedKey;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let row = visible_key(cx, &input.id).await?;
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        revoke_key(&mut tx, &row.id, now, None).await?;
        let id = KeyId::from_db(&row.id).ok_or_else(|| Error::internal("bad key id"))?;
        let after = get_key_tx(&mut tx, cx.org(), id)
            .await?
            .ok_or_else(key_not_found)?;
        cx.commit(tx, None, id.to_string(), None).await?;
        cx.svc.keys_changed();
        Ok(RevokedKey {
            id,
            status: "revoked".into(),
            revoked_at: canopy_core::time::rfc3339(after.revoked_at.unwrap_or(now)),
        })
    }
}

pub struct RotateAccessKey;
impl Operation for RotateAccessKey {
    const NAME: &'static str = "rotate_access_key";
    const SUMMARY: &'static str =
        "Replace a key with a new one of the same settings; the old key dies at once.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = KeyIdInput;
    type Output = CreatedAccessKey;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let old = visible_key(cx, &input.id).await?;
        let now = canopy_core::time::now_ms();
        if status_of(&old, now) != "active" {
            return Err(Error::conflict(
                "Only an active key can be rotated; this one is revoked or expired.",
            ));
        }
        let new = NewKey {
            org: cx.org(),
            project: old.project_id.as_deref().and_then(ProjectId::from_db),
            name: old.name.clone(),
            scopes: Scopes::from_db(&old.scopes),
            prefix: if old.prefix.starts_with(ACCESS_KEY_PREFIX) {
                ACCESS_KEY_PREFIX
            } else {
                crate::tenancy::DEFAULT_KEY_PREFIX
            },
            user_id: old.user_id.clone(),
            email: old.email.clone(),
            plan: old.plan.clone(),
            mcp_tools: serde_json::from_str(&old.mcp_tools).unwrap_or_default(),
            rate_limit: old.rate_limit.and_then(|n| u32::try_from(n).ok()),
            expires_at: old.expires_at,
            created_by: Some(cx.principal.key_id),
        };
        let mut tx = cx.svc.store().begin().await?;
        let (row, secret) = mint_key(&mut tx, &new).await?;
        if !revoke_key(&mut tx, &old.id, now, Some(&row.id)).await? {
            return Err(Error::conflict(
                "The key was revoked while it was being rotated.",
            ));
        }
        let previous = KeyId::from_db(&old.id);
        let out = created(&row, secret, previous)?;
        let detail = serde_json::json!({"previous_id": previous.map(|p| p.to_string())});
        cx.commit(tx, new.project, out.id.to_string(), Some(detail))
            .await?;
        cx.svc.keys_changed();
        Ok(out)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct KeyUsageInput {
    #[serde(alias = "keyId")]
    pub key_id: String,
    /// Days to report, 1–90 (default 30), counting today.
    #[schemars(range(min = 1, max = 90))]
    pub days: Option<i64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageTotals {
    pub requests: i64,
    pub rate_limited: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageDay {
    pub date: String,
    pub requests: i64,
    pub rate_limited: i64,
    /// Requests by route group (`v1/clients`, `api/admin`, …).
    pub by_route_group: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KeyUsage {
    pub key_id: KeyId,
    pub days: i64,
    pub totals: UsageTotals,
    /// One entry per day of the window, oldest first (days without requests show zeros).
    pub daily: Vec<UsageDay>,
    /// Requests by route group over the whole window.
    pub by_route_group: BTreeMap<String, i64>,
}

pub struct GetKeyUsage;
impl Operation for GetKeyUsage {
    const NAME: &'static str = "get_key_usage";
    const SUMMARY: &'static str = "Requests made with a key, by day and route group.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = KeyUsageInput;
    type Output = KeyUsage;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let days = input.days.unwrap_or(30);
        if !(1..=90).contains(&days) {
            return Err(Error::validation(
                "days",
                format!("days must be between 1 and 90; got {days}."),
            ));
        }
        let row = visible_key(cx, &input.key_id).await?;
        cx.svc.usage().flush(cx.svc.store()).await?;
        let now = canopy_core::time::now_ms();
        let dates: Vec<String> = (0..days)
            .rev()
            .map(|d| canopy_core::time::day(now - d * 86_400_000))
            .collect();
        let first = dates.first().cloned().unwrap_or_default();
        let rows = list_usage(cx.svc.store(), &row.id, &first).await?;
        let mut daily: Vec<UsageDay> = dates
            .into_iter()
            .map(|date| UsageDay {
                date,
                requests: 0,
                rate_limited: 0,
                by_route_group: BTreeMap::new(),
            })
            .collect();
        let mut totals = UsageTotals::default();
        let mut by_group = BTreeMap::new();
        for u in rows {
            totals.requests += u.requests;
            totals.rate_limited += u.rate_limited;
            *by_group.entry(u.route_group.clone()).or_insert(0) += u.requests;
            if let Some(d) = daily.iter_mut().find(|d| d.date == u.day) {
                d.requests += u.requests;
                d.rate_limited += u.rate_limited;
                *d.by_route_group.entry(u.route_group).or_insert(0) += u.requests;
            }
        }
        Ok(KeyUsage {
            key_id: KeyId::from_db(&row.id).ok_or_else(|| Error::internal("bad key id"))?,
            days,
            totals,
            daily,
            by_route_group: by_group,
        })
    }
}
