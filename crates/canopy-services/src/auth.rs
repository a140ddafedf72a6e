//! Authentication: a bearer credential (API key or JWT) becomes a [`Principal`] and the list
//! of rate limits that apply to it.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use canopy_core::{CredentialKind, Error, KeyId, OrgId, Principal, ProjectId, Scopes};
use canopy_store::keys::{AuthKeyRow, auth_by_hash, auth_by_id, touch_last_used};

use crate::Services;
use crate::crypto::{hash_key, same_hash};
use crate::jwt::looks_like_jwt;
use crate::limits::{Limit, RateDecision};

/// How often `last_used_at` is written for a busy key: at most once a minute.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// Keys read recently, by hash (keys) or `jwt:<id>` (tokens). See `Config::cache_keys`.
#[derive(Default)]
pub struct KeyCache {
    rows: RwLock<HashMap<String, AuthKeyRow>>,
    last_touch: Mutex<HashMap<String, i64>>,
}

impl KeyCache {
    fn get(&self, k: &str) -> Option<AuthKeyRow> {
        self.rows
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(k)
            .cloned()
    }

    fn put(&self, k: String, row: AuthKeyRow) {
        self.rows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k, row);
    }

    pub fn clear(&self) {
        self.rows.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Whether `last_used_at` is due to be written for this key.
    fn touch_due(&self, id: &str, stored: Option<i64>, now: i64) -> bool {
        let mut map = self.last_touch.lock().unwrap_or_else(|p| p.into_inner());
        let last = map.get(id).copied().or(stored).unwrap_or(0);
        if now - last >= LAST_USED_EVERY_MS {
            map.insert(id.to_owned(), now);
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
    pub limits: Vec<Limit>,
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
        let (row, kind, token_scopes) = if looks_like_jwt(credential) {
            let claims = self.signer().await?.verify(credential)?;
            let id = claims
                .key_id()
                .ok_or_else(|| Error::unauthorized("The token is not valid."))?;
            let row = self
                .key_row(format!("jwt:{}", id.db()), || auth_by_id(self.store(), id))
                .await?;
            let row = row.ok_or_else(|| {
                Error::unauthorized("The key this token was minted from no longer exists.")
            })?;
            (
                row,
                CredentialKind::Jwt,
                Some(Scopes::from_db(&claims.scopes.join(" "))),
            )
        } else {
            let hash = hash_key(credential);
            let row = self
                .key_row(hash.clone(), || auth_by_hash(self.store(), &hash))
                .await?;
            let row = row
                .filter(|r| same_hash(&r.secret_hash, &hash))
                .ok_or_else(invalid_key)?;
            (row, CredentialKind::AccessKey, None)
        };

        let now = canopy_core::time::now_ms();
        if row.revoked_at.is_some() {
            return Err(Error::unauthorized("This key has been revoked."));
        }
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::unauthorized("This key has expired."));
        }
        if row.project_archived_at.is_some() {
            return Err(Error::unauthorized(
                "This key's project (client) has been archived.",
            ));
        }
        let org_id =
            OrgId::from_db(&row.org_id).ok_or_else(|| Error::internal("bad org id in key row"))?;
        if let Some(h) = org_header.map(str::trim).filter(|h| !h.is_empty())
            && OrgId::parse(h) != Some(org_id)
        {
            return Err(Error::forbidden(
                "The org header names an org this key does not belong to.",
            ));
        }
        let key_scopes = Scopes::from_db(&row.scopes);
        // A token carries the scopes it was minted with, but never more than the key has now.
        let scopes = match token_scopes {
            Some(t) => t.iter().filter(|s| key_scopes.allows(*s)).collect(),
            None => key_scopes,
        };
        let key_id =
            KeyId::from_db(&row.id).ok_or_else(|| Error::internal("bad key id in key row"))?;
        let project_id = row.project_id.as_deref().and_then(ProjectId::from_db);

        if self.keys().touch_due(&row.id, row.last_used_at, now) {
            let store = self.store().clone();
            let id = row.id.clone();
            tokio::spawn(async move {
                if let Err(e) = touch_last_used(&store, &id, now).await {
                    tracing::debug!(error = %e, "could not record last_used_at");
                }
            });
        }

        let mut limits = vec![Limit {
            bucket: format!("key:{}", row.id),
            per_minute: limit_of(row.rate_limit).unwrap_or(self.config().default_rate_limit),
        }];
        if let (Some(p), Some(n)) = (&row.project_id, limit_of(row.project_rate_limit)) {
            limits.push(Limit {
                bucket: format!("prj:{p}"),
                per_minute: n,
            });
        }
        if let Some(n) = limit_of(row.org_rate_limit) {
            limits.push(Limit {
                bucket: format!("org:{}", row.org_id),
                per_minute: n,
            });
        }

        Ok(Authed {
            principal: Principal {
                key_id,
                org_id,
                project_id,
                scopes,
                kind,
                agent: None,
            },
            limits,
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

    async fn key_row<F, Fut>(&self, cache_key: String, load: F) -> Result<Option<AuthKeyRow>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<AuthKeyRow>, Error>>,
    {
        if !self.config().cache_keys {
            return load().await;
        }
        if let Some(row) = self.keys().get(&cache_key) {
            return Ok(Some(row));
        }
        let row = load().await?;
        if let Some(r) = &row {
            self.keys().put(cache_key, r.clone());
        }
        Ok(row)
    }

    /// Drops every cached key (after a revocation, rotation or tenancy change).
    pub(crate) fn keys_changed(&self) {
        self.keys().clear();
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
