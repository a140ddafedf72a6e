//! LLM provider credentials (seed 000 §7 "Configure Provider Tokens"), per client or for the
//! whole org. The API key is sealed with the master key before it reaches the store and is
//! never shown again; answers carry metadata only.

use canopy_core::time::{now_ms, rfc3339};
use canopy_core::{Data, Deleted, Error, ProjectId, Scope};
use canopy_runtime::providers::{ProviderConfig, ProviderKind};
use canopy_store::credentials::{self as db, CredentialRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::op::{Cx, Hints, Operation};
use crate::tenancy::clients::visible_client;

/// Longest API key accepted (real ones are well under 1 KiB).
const MAX_KEY_LEN: usize = 4096;

/// Credentials as the API shows them: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CredentialView {
    pub object: String,
    /// The provider id used in bud configs (`provider`).
    pub provider: String,
    /// The wire format: `openai` (any OpenAI-compatible chat completions API) or `anthropic`.
    pub kind: String,
    /// The client these belong to; absent for org-wide credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub base_url: Option<String>,
    pub organization: Option<String>,
    pub default_model: Option<String>,
    /// Always true: a key is stored (sealed), and never returned.
    pub api_key_set: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn view(r: CredentialRow) -> CredentialView {
    CredentialView {
        object: "provider_credentials".into(),
        client_id: (!r.project_id.is_empty()).then(|| ProjectId::show(&r.project_id)),
        provider: r.provider,
        kind: r.kind,
        base_url: r.base_url,
        organization: r.organization,
        default_model: r.default_model,
        api_key_set: true,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

/// What is set on a provider.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CredentialFields {
    /// The provider's API key; stored encrypted, never returned.
    pub api_key: String,
    /// Another endpoint of the same wire format (Groq, vLLM, Ollama, a proxy); the provider's
    /// public API when absent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// OpenAI organization header, when the account needs one.
    #[serde(default)]
    pub organization: Option<String>,
    /// The model used when a bud names none.
    #[serde(default)]
    pub default_model: Option<String>,
    /// `openai` or `anthropic`; by default `anthropic` for the provider id `anthropic` and
    /// `openai` (chat completions) for every other id.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetClientCredentialsInput {
    pub client_id: String,
    /// Lowercase letters, digits, `-` and `_` (1–40): `openai`, `anthropic`, `groq`, …
    pub provider_id: String,
    #[serde(flatten)]
    pub fields: CredentialFields,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetOrgCredentialsInput {
    pub provider_id: String,
    #[serde(flatten)]
    pub fields: CredentialFields,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientProviderInput {
    pub client_id: String,
    pub provider_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrgProviderInput {
    pub provider_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientInput {
    pub client_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoInput {}

fn check_provider(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 40
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(Error::validation(
            "provider_id",
            "A provider id is 1–40 lowercase letters, digits, `-` or `_` (e.g. `openai`).",
        ));
    }
    if id == "builtin" {
        return Err(Error::validation(
            "provider_id",
            "The builtin provider is offline and needs no credentials.",
        ));
    }
    Ok(())
}

fn kind_of(provider: &str, given: Option<&str>) -> Result<ProviderKind, Error> {
    match given {
        None if provider == "anthropic" => Ok(ProviderKind::Anthropic),
        None => Ok(ProviderKind::OpenAi),
        Some(k) => ProviderKind::parse(k)
            .filter(|k| *k != ProviderKind::Builtin)
            .ok_or_else(|| {
                Error::validation(
                    "kind",
                    format!("The kind '{k}' is not valid. Accepted values are: openai, anthropic."),
                )
            }),
    }
}

fn optional(v: Option<String>, field: &str, max: usize) -> Result<Option<String>, Error> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(Error::validation(
            field,
            format!("At most {max} characters."),
        )),
        other => Ok(other),
    }
}

async fn set(
    cx: &Cx<'_>,
    project: Option<ProjectId>,
    provider: &str,
    f: CredentialFields,
) -> Result<CredentialView, Error> {
    check_provider(provider)?;
    let kind = kind_of(provider, f.kind.as_deref())?;
    let key = f.api_key.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::validation(
            "api_key",
            format!("An API key is 1–{MAX_KEY_LEN} characters."),
        ));
    }
    let base_url = optional(f.base_url, "base_url", 2000)?;
    if let Some(u) = &base_url {
        let ok = url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(Error::validation(
                "base_url",
                "base_url must be an absolute http or https URL.",
            ));
        }
    }
    let now = now_ms();
    let org = cx.org().db();
    let project_db = project.map(|p| p.db()).unwrap_or_default();
    let mut tx = cx.svc.store().begin().await?;
    let created_at = db::get(&mut tx, &org, &project_db, provider)
        .await?
        .map_or(now, |r| r.created_at);
    let row = CredentialRow {
        org_id: org,
        project_id: project_db,
        provider: provider.to_owned(),
        kind: kind.as_str().to_owned(),
        api_key_sealed: cx.svc.sealer().seal(key.as_bytes())?,
        base_url,
        organization: optional(f.organization, "organization", 200)?,
        default_model: optional(f.default_model, "default_model", 200)?,
        created_at,
        updated_at: now,
    };
    db::upsert(&mut tx, &row).await?;
    cx.commit(tx, project, format!("provider:{provider}"), None)
        .await?;
    Ok(view(row))
}

async fn delete(
    cx: &Cx<'_>,
    project: Option<ProjectId>,
    provider: &str,
) -> Result<Data<Deleted>, Error> {
    let org = cx.org().db();
    let project_db = project.map(|p| p.db()).unwrap_or_default();
    let mut tx = cx.svc.store().begin().await?;
    if !db::delete(&mut tx, &org, &project_db, provider).await? {
        return Err(Error::not_found("Provider credentials"));
    }
    let id = format!("provider:{provider}");
    cx.commit(tx, project, id.clone(), None).await?;
    Ok(Data {
        data: Deleted { id, deleted: true },
    })
}

/// A client id the caller may configure: its own with a client admin key, any of the org's
/// with an org-wide one.
async fn client(cx: &Cx<'_>, raw: &str) -> Result<ProjectId, Error> {
    let row = visible_client(cx, raw).await?;
    ProjectId::from_db(&row.id).ok_or_else(|| Error::internal("bad project id"))
}

fn org_wide(cx: &Cx<'_>) -> Result<(), Error> {
    if cx.principal.project_id.is_some() {
        return Err(Error::forbidden(
            "Only an org-wide admin key can manage org-wide provider credentials.",
        ));
    }
    Ok(())
}

pub struct SetClientCredentials;
impl Operation for SetClientCredentials {
    const NAME: &'static str = "set_client_provider_credentials";
    const SUMMARY: &'static str = "Store a client's API key (encrypted) and settings for one LLM provider; answers metadata only.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = SetClientCredentialsInput;
    type Output = CredentialView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = client(cx, &input.client_id).await?;
        set(cx, Some(p), &input.provider_id, input.fields).await
    }
}

pub struct DeleteClientCredentials;
impl Operation for DeleteClientCredentials {
    const NAME: &'static str = "delete_client_provider_credentials";
    const SUMMARY: &'static str =
        "Remove a client's credentials for one provider (the org's, if any, apply again).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = ClientProviderInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = client(cx, &input.client_id).await?;
        delete(cx, Some(p), &input.provider_id).await
    }
}

pub struct ListClientCredentials;
impl Operation for ListClientCredentials {
    const NAME: &'static str = "list_client_provider_credentials";
    const SUMMARY: &'static str =
        "The providers configured on a client and, after them, the org-wide ones it falls back to.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = ClientInput;
    type Output = Data<Vec<CredentialView>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let p = client(cx, &input.client_id).await?;
        let org = cx.org().db();
        let mut rows = db::list(cx.svc.store(), &org, &p.db()).await?;
        rows.extend(db::list(cx.svc.store(), &org, "").await?);
        Ok(Data {
            data: rows.into_iter().map(view).collect(),
        })
    }
}

pub struct SetOrgCredentials;
impl Operation for SetOrgCredentials {
    const NAME: &'static str = "set_org_provider_credentials";
    const SUMMARY: &'static str =
        "Store org-wide credentials for one LLM provider, used by every client without its own.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = SetOrgCredentialsInput;
    type Output = CredentialView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        set(cx, None, &input.provider_id, input.fields).await
    }
}

pub struct DeleteOrgCredentials;
impl Operation for DeleteOrgCredentials {
    const NAME: &'static str = "delete_org_provider_credentials";
    const SUMMARY: &'static str = "Remove the org-wide credentials of one provider.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = OrgProviderInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        delete(cx, None, &input.provider_id).await
    }
}

pub struct ListOrgCredentials;
impl Operation for ListOrgCredentials {
    const NAME: &'static str = "list_org_provider_credentials";
    const SUMMARY: &'static str = "The org-wide provider credentials (metadata only).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = NoInput;
    type Output = Data<Vec<CredentialView>>;

    async fn call(cx: &Cx<'_>, _input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let rows = db::list(cx.svc.store(), &cx.org().db(), "").await?;
        Ok(Data {
            data: rows.into_iter().map(view).collect(),
        })
    }
}

/// What a step of `project` calls `provider` with: the client's credentials, else the org's;
/// `builtin` needs none. `None` when nothing is configured.
pub async fn provider_config(
    svc: &Services,
    org: &str,
    project: &str,
    provider: &str,
) -> Result<Option<ProviderConfig>, Error> {
    if provider == "builtin" {
        return Ok(Some(ProviderConfig {
            kind: ProviderKind::Builtin,
            api_key: None,
            base_url: None,
            organization: None,
            default_model: None,
        }));
    }
    let Some(row) = db::resolve(svc.store(), org, project, provider).await? else {
        return Ok(None);
    };
    let key = svc.sealer().open(&row.api_key_sealed)?;
    let key = String::from_utf8(key).map_err(Error::internal)?;
    Ok(Some(ProviderConfig {
        kind: ProviderKind::parse(&row.kind).unwrap_or(ProviderKind::OpenAi),
        api_key: Some(key),
        base_url: row.base_url,
        organization: row.organization,
        default_model: row.default_model,
    }))
}
