//! Authentication: a bearer credential (API key or JWT) becomes a [`Principal`] and the list
//! of rate limits that apply to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use canopy_core::{CredentialKind, Error, KeyId, OrgId, Principal, ProjectId, Scopes};
use canopy_store::keys::{AuthKeyRow, auth_by_hash, auth_by_id, touch_last_used};

use crate::Services;
use crate::crypto::{HashHex, hash_key_hex, same_hash};
use crate::jwt::looks_like_jwt;
use crate::limits::{Limit, RateDecision};

/// How often `last_used_at` is written for a busy key: at most once a minute.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// What authentication needs of a key row, parsed once when the row is read: ids, scopes and
/// the rate limits (with their bucket names) that its requests count against.
#[derive(Debug)]
struct KeyInfo {
    /// The key's id as stored (for `last_used_at`).
    id: String,
    secret_hash: String,
    revoked: bool,
    expires_at: Option<i64>,
    project_archived: bool,
    last_used_at: Option<i64>,
    /// `None` when the stored id does not parse (answered as an internal error, in order).
    org_id: Option<OrgId>,
    key_id: Option<KeyId>,
    project_id: Option<ProjectId>,
    scopes: Scopes,
    limits: Arc<[Limit]>,
    /// The MCP tools to list for this key (empty: all), parsed once.
    mcp_tools: Arc<[String]>,
}

impl KeyInfo {
    fn new(row: AuthKeyRow, default_rate_limit: u32) -> KeyInfo {
        let mut limits = vec![Limit {
            bucket: format!("key:{}", row.id).into(),
            per_minute: limit_of(row.rate_limit).unwrap_or(default_rate_limit),
        }];
        if let (Some(p), Some(n)) = (&row.project_id, limit_of(row.project_rate_limit)) {
            limits.push(Limit {
                bucket: format!("prj:{p}").into(),
                per_minute: n,
            });
        }
        if let Some(n) = limit_of(row.org_rate_limit) {
            limits.push(Limit {
                bucket: format!("org:{}", row.org_id).into(),
                per_minute: n,
            });
        }
        KeyInfo {
            org_id: OrgId::from_db(&row.org_id),
            key_id: KeyId::from_db(&row.id),
            project_id: row.project_id.as_deref().and_then(ProjectId::from_db),
            scopes: Scopes::from_db(&row.scopes),
            revoked: row.revoked_at.is_some(),
            expires_at: row.expires_at,
            project_archived: row.project_archived_at.is_some(),
            last_used_at: row.last_used_at,
            limits: limits.into(),
            mcp_tools: serde_json::from_str::<Vec<String>>(&row.mcp_tools)
                .unwrap_or_default()
                .into(),
            id: row.id,
            secret_hash: row.secret_hash,
        }
    }
}

/// Keys read recently, by hash (keys) or `jwt:<id>` (tokens). See `Config::cache_keys`.
#[derive(Default)]
pub struct KeyCache {
    rows: RwLock<HashMap<String, Arc<KeyInfo>>>,
    last_touch: Mutex<HashMap<KeyId, i64>>,
}

impl KeyCache {
    fn get(&self, k: &str) -> Option<Arc<KeyInfo>> {
        self.rows
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(k)
            .cloned()
    }

    fn put(&self, k: String, info: Arc<KeyInfo>) {
        self.rows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, info);
    }

    pub fn clear(&self) {
        self.rows.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Whether `last_used_at` is due to be written for this key.
    fn touch_due(&self, id: KeyId, stored: Option<i64>, now: i64) -> bool {
        let mut map = self.last_touch.lock().unwrap_or_else(|p| p.into_inner());
        let last = map.get(&id).copied().or(stored).unwrap_or(0);
        if now - last >= LAST_USED_EVERY_MS {
            map.insert(id, now);
            true
        } else {
            false
        }
    }
}

/// An authenticated caller and the limits its requests count against.
#[derive(Clone, Debug)]
pub struct Authed {
    pub principal: Principal,
    pub limits: Arc<[Limit]>,
    /// The key's `mcp_tools` (MCP tool selection; empty: all).
    pub mcp_tools: Arc<[String]>,
}

impl Services {
    /// Checks a credential. `org_header` is the value of `X-Stackmint-Org-Id` /
    /// `X-Canopy-Org-Id`, which must name the key's own org when given.
    pub async fn authenticate(
        &self,
        credential: &str,
        org_header: Option<&str>,
    ) -> Result<Authed, Error> {
        let credential = credential.trim();
        if credential.is_empty() {
            return Err(missing_credential());
        }
        let (key, kind, token_scopes) = if looks_like_jwt(credential) {
            let claims = self.signer().await?.verify(credential)?;
            let id = claims
                .key_id()
                .ok_or_else(|| Error::unauthorized("The token is not valid."))?;
            let key = self
                .key_info(&format!("jwt:{}", id.db()), || auth_by_id(self.store(), id))
                .await?;
            let key = key.ok_or_else(|| {
                Error::unauthorized("The key this token was minted from no longer exists.")
            })?;
            (
                key,
                CredentialKind::Jwt,
                Some(Scopes::from_db(&claims.scopes.join(" "))),
            )
        } else {
            let hash: HashHex = hash_key_hex(credential);
            let hash = hash.as_str();
            let key = self
                .key_info(hash, || auth_by_hash(self.store(), hash))
                .await?;
            let key = key
                .filter(|k| same_hash(&k.secret_hash, hash))
                .ok_or_else(invalid_key)?;
            (key, CredentialKind::AccessKey, None)
        };

        let now = canopy_core::time::now_ms();
        if key.revoked {
            return Err(Error::unauthorized("This key has been revoked."));
        }
        if key.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::unauthorized("This key has expired."));
        }
        if key.project_archived {
            return Err(Error::unauthorized(
                "This key's project (client) has been archived.",
            ));
        }
        let org_id = key
            .org_id
            .ok_or_else(|| Error::internal("bad org id in key row"))?;
        if let Some(h) = org_header.map(str::trim).filter(|h| !h.is_empty())
            && OrgId::parse(h) != Some(org_id)
        {
            return Err(Error::forbidden(
                "The org header names an org this key does not belong to.",
            ));
        }
        let key_scopes = key.scopes;
        // A token carries the scopes it was minted with, but never more than the key has now.
        let scopes = match token_scopes {
            Some(t) => t.iter().filter(|s| key_scopes.allows(*s)).collect(),
            None => key_scopes,
        };
        let key_id = key
            .key_id
            .ok_or_else(|| Error::internal("bad key id in key row"))?;

        if self.keys().touch_due(key_id, key.last_used_at, now) {
            let store = self.store().clone();
            let id = key.id.clone();
            tokio::spawn(async move {
                if let Err(e) = touch_last_used(&store, &id, now).await {
                    tracing::debug!(error = %e, "could not record last_used_at");
                }
            });
        }

        Ok(Authed {
            principal: Principal {
                key_id,
                org_id,
                project_id: key.project_id,
                scopes,
                kind,
                agent: None,
            },
            limits: key.limits.clone(),
            mcp_tools: key.mcp_tools.clone(),
        })
    }

    /// Counts one request of `who` against its limits.
    pub async fn rate_check(&self, who: &Authed) -> Result<RateDecision, Error> {
        self.limiter()
            .hit(
                self.store(),
                &who.limits,
                canopy_core::time::now_ms() / 1000,
            )
            .await
    }

    /// A key by `cache_key`, from the cache when enabled, else read with `load` (and cached).
    async fn key_info<F, Fut>(
        &self,
        cache_key: &str,
        load: F,
    ) -> Result<Option<Arc<KeyInfo>>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<AuthKeyRow>, Error>>,
    {
        let cache = self.config().cache_keys;
        if cache && let Some(key) = self.keys().get(cache_key) {
            return Ok(Some(key));
        }
        let default_limit = self.config().default_rate_limit;
        let key = load()
            .await?
            .map(|row| Arc::new(KeyInfo::new(row, default_limit)));
        if cache && let Some(k) = &key {
            self.keys().put(cache_key.to_owned(), k.clone());
        }
        Ok(key)
    }

    /// Drops every cached key (after a revocation, rotation or tenancy change).
    pub(crate) fn keys_changed(&self) {
        self.expire_key_cache();
    }
}

fn limit_of(n: Option<i64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

pub fn missing_credential() -> Error {
    Error::unauthorized(
        "Authentication required. Provide a valid API key via the Authorization header: Bearer <key>, or X-Access-Key: <key>.",
    )
}

fn invalid_key() -> Error {
    Error::unauthorized("The API key is not valid.")
}
