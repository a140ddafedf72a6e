//! The caller's own credential: `GET /api/auth/me` and the key → JWT exchange.

use canopy_core::{CredentialKind, Error, KeyId, OrgId, ProjectId, Scope};
use canopy_store::keys::get_key;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::op::{Cx, Hints, NoInput, Operation};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    /// `access_key` or `jwt`.
    #[serde(rename = "type")]
    pub kind: String,
    pub key_id: KeyId,
    /// The key's first 12 characters.
    pub prefix: String,
    pub name: String,
    pub user_id: Option<String>,
    pub org_id: OrgId,
    pub project_id: Option<ProjectId>,
    /// The scopes in force for this request (a JWT's scopes, capped by its key's).
    pub scopes: Vec<String>,
    pub plan: Option<String>,
    pub governance_cap: Option<i64>,
    pub expires_at: Option<String>,
}

pub struct WhoAmI;
impl Operation for WhoAmI {
    const NAME: &'static str = "get_identity";
    const SUMMARY: &'static str = "Describe the credential making this request.";
    const SCOPE: Option<Scope> = None;
    const HINTS: Hints = Hints::READ;
    type Input = NoInput;
    type Output = Me;

    async fn call(cx: &Cx<'_>, _input: Self::Input) -> Result<Self::Output, Error> {
        let p = cx.principal;
        let row = get_key(cx.svc.store(), p.org_id, p.key_id)
            .await?
            .ok_or_else(|| Error::unauthorized("This key no longer exists."))?;
        Ok(Me {
            kind: p.kind.as_str().into(),
            key_id: p.key_id,
            prefix: row.prefix,
            name: row.name,
            user_id: row.user_id,
            org_id: p.org_id,
            project_id: p.project_id,
            scopes: p.scopes.names().into_iter().map(str::to_owned).collect(),
            plan: row.plan,
            governance_cap: None,
            expires_at: row.expires_at.map(canopy_core::time::rfc3339),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TokenInput {
    /// Lifetime in seconds, 60–86400 (default 3600); larger values are capped.
    #[schemars(range(min = 60))]
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Token {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

pub struct ExchangeToken;
impl Operation for ExchangeToken {
    const NAME: &'static str = "exchange_token";
    const SUMMARY: &'static str =
        "Exchange an access key for an RS256 JWT carrying its org, project and scopes.";
    const SCOPE: Option<Scope> = None;
    const HINTS: Hints = Hints::WRITE;
    type Input = TokenInput;
    type Output = Token;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = cx.principal;
        if p.kind != CredentialKind::AccessKey {
            return Err(Error::forbidden(
                "A token cannot be exchanged for another; send the access key itself.",
            ));
        }
        let requested = input.expires_in.unwrap_or(3600);
        if requested < 60 {
            return Err(Error::validation(
                "expires_in",
                "expires_in must be at least 60 seconds.",
            ));
        }
        let ttl = requested.min(cx.svc.config().max_token_ttl_secs);
        // A token never outlives its key.
        let row = get_key(cx.svc.store(), p.org_id, p.key_id)
            .await?
            .ok_or_else(|| Error::unauthorized("This key no longer exists."))?;
        let ttl = match row.expires_at {
            Some(exp) => ttl.min(((exp - canopy_core::time::now_ms()) / 1000).max(1)),
            None => ttl,
        };
        let scopes = p.scopes.names().into_iter().map(str::to_owned).collect();
        let token = cx
            .svc
            .signer()
            .await?
            .mint(p.key_id, p.org_id, p.project_id, scopes, ttl)?;
        let tx = cx.svc.store().begin().await?;
        cx.commit(
            tx,
            None,
            p.key_id.to_string(),
            Some(serde_json::json!({"expires_in": ttl})),
        )
        .await?;
        Ok(Token {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: ttl,
        })
    }
}

/// Parses a key id for the CLI.
pub fn parse_key_id(raw: &str) -> Result<KeyId, Error> {
    KeyId::parse(raw).ok_or_else(|| Error::not_found("Access key"))
}
