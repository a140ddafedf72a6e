//! Clients (= projects): Stackmint's `/v1/clients` and `/v1/admin/clients` routes.

use canopy_core::{Error, PageRequest, Paged, ProjectId, Scope};
use canopy_store::projects::{
    ProjectFilter, ProjectRow, get_project, get_project_tx, insert_project, list_projects,
    update_project,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::op::{Cx, Hints, Operation};
use crate::tenancy::{new_project_row, validate_name, validate_slug};

/// A client: an isolated workspace of an org (Stackmint client, Minolith/Stagent project).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Client {
    pub id: ProjectId,
    pub object: String,
    pub name: String,
    pub slug: String,
    /// `active` or `archived`.
    pub status: String,
    pub metadata: serde_json::Value,
    /// Requests per minute shared by all of this client's keys; `null` for no client-wide limit.
    pub rate_limit: Option<u32>,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
}

impl Client {
    pub fn from_row(r: &ProjectRow) -> Result<Client, Error> {
        Ok(Client {
            id: ProjectId::from_db(&r.id).ok_or_else(|| Error::internal("bad project id"))?,
            object: "client".into(),
            name: r.name.clone(),
            slug: r.slug.clone(),
            status: if r.archived_at.is_some() {
                "archived"
            } else {
                "active"
            }
            .into(),
            metadata: serde_json::from_str(&r.metadata).unwrap_or_else(|_| serde_json::json!({})),
            rate_limit: r.rate_limit.and_then(|n| u32::try_from(n).ok()),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
            archived_at: r.archived_at.map(canopy_core::time::rfc3339),
        })
    }
}

fn page_of(rows: Vec<ProjectRow>, page: &PageRequest) -> Result<Paged<Client>, Error> {
    Paged::try_from_rows(
        rows,
        page,
        |r| (r.created_at, &r.id),
        |r| Client::from_row(&r),
    )
}

/// Resolves a client id for the caller: unknown, malformed, another org's or (for a
/// project-scoped key) another project's id all answer the same 404.
pub async fn visible_client(cx: &Cx<'_>, raw: &str) -> Result<ProjectRow, Error> {
    let id = ProjectId::parse(raw)
        .filter(|id| cx.principal.sees_project(*id))
        .ok_or_else(client_not_found)?;
    get_project(cx.svc.store(), cx.org(), id)
        .await?
        .ok_or_else(client_not_found)
}

fn client_not_found() -> Error {
    Error::not_found("Client")
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListClientsInput {
    /// Page size, 1–100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Include archived clients (default false).
    #[serde(default)]
    pub include_archived: bool,
}

pub struct ListClients;
impl Operation for ListClients {
    const NAME: &'static str = "list_clients";
    const SUMMARY: &'static str = "List the org's clients (newest first).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = ListClientsInput;
    type Output = Paged<Client>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        let filter = ProjectFilter {
            org: cx.org(),
            only: cx.principal.project_id,
            include_archived: input.include_archived,
        };
        page_of(list_projects(cx.svc.store(), &filter, &page).await?, &page)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientIdInput {
    /// The client's id (`prj_…` or a plain UUID).
    pub client_id: String,
}

pub struct GetClient;
impl Operation for GetClient {
    const NAME: &'static str = "get_client";
    const SUMMARY: &'static str = "Get one client (org admin, or a key of that client).";
    const SCOPE: Option<Scope> = None;
    const HINTS: Hints = Hints::READ;
    type Input = ClientIdInput;
    type Output = Client;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let row = visible_client(cx, &input.client_id).await?;
        // Org-wide keys need `admin`; a key of this very client may read it with any scope.
        if cx.principal.project_id.is_none() {
            cx.principal.require(Scope::Admin)?;
        }
        Client::from_row(&row)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateClientInput {
    /// Display name, 1–200 characters.
    pub name: String,
    /// URL-safe unique name within the org; derived from `name` when omitted.
    pub slug: Option<String>,
    /// Free-form JSON object kept with the client.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Requests per minute shared by all of this client's keys.
    #[schemars(range(min = 1))]
    pub rate_limit: Option<u32>,
}

pub struct CreateClient;
impl Operation for CreateClient {
    const NAME: &'static str = "create_client";
    const SUMMARY: &'static str = "Create a client (a tenant workspace).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = CreateClientInput;
    type Output = Client;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        if cx.principal.project_id.is_some() {
            return Err(Error::forbidden(
                "Only an org-wide admin key can create clients.",
            ));
        }
        let metadata = serde_json::Value::Object(input.metadata.unwrap_or_default());
        let mut row = new_project_row(cx.org(), &input.name, input.slug.as_deref(), &metadata)?;
        row.rate_limit = positive_limit(input.rate_limit)?;
        let mut tx = cx.svc.store().begin().await?;
        insert_project(&mut tx, &row)
            .await
            .map_err(|e| slug_conflict(e, &row.slug))?;
        let client = Client::from_row(&row)?;
        cx.commit(tx, Some(client.id), client.id.to_string(), None)
            .await?;
        Ok(client)
    }
}

fn positive_limit(n: Option<u32>) -> Result<Option<i64>, Error> {
    match n {
        Some(0) => Err(Error::validation(
            "rate_limit",
            "rate_limit must be at least 1 request per minute.",
        )),
        n => Ok(n.map(i64::from)),
    }
}

fn slug_conflict(e: Error, slug: &str) -> Error {
    if e.code == canopy_core::Code::Conflict {
        Error::conflict(format!(
            "A client with slug '{slug}' already exists in this org."
        ))
        .with_field("slug")
    } else {
        e
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateClientInput {
    pub client_id: String,
    pub name: Option<String>,
    pub slug: Option<String>,
    /// Replaces the whole metadata object.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[schemars(range(min = 1))]
    pub rate_limit: Option<u32>,
}

pub struct UpdateClient;
impl Operation for UpdateClient {
    const NAME: &'static str = "update_client";
    const SUMMARY: &'static str = "Update a client's name, slug, metadata or rate limit.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateClientInput;
    type Output = Client;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let current = visible_client(cx, &input.client_id).await?;
        let mut row = current.clone();
        if let Some(n) = &input.name {
            row.name = validate_name(n, "name")?;
        }
        if let Some(s) = &input.slug {
            row.slug = validate_slug(s)?;
        }
        if let Some(m) = input.metadata {
            row.metadata = serde_json::Value::Object(m).to_string();
        }
        if input.rate_limit.is_some() {
            row.rate_limit = positive_limit(input.rate_limit)?;
        }
        row.updated_at = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        update_project(&mut tx, &row)
            .await
            .map_err(|e| slug_conflict(e, &row.slug))?;
        let client = Client::from_row(&row)?;
        cx.commit(tx, Some(client.id), client.id.to_string(), None)
            .await?;
        cx.svc.keys_changed();
        Ok(client)
    }
}

pub struct ArchiveClient;
impl Operation for ArchiveClient {
    const NAME: &'static str = "archive_client";
    const SUMMARY: &'static str =
        "Archive a client: it leaves listings and its keys stop working. Its data is kept.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = ClientIdInput;
    type Output = Client;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let current = visible_client(cx, &input.client_id).await?;
        if cx.principal.project_id.is_some() {
            return Err(Error::forbidden(
                "Only an org-wide admin key can archive clients.",
            ));
        }
        let mut tx = cx.svc.store().begin().await?;
        let id =
            ProjectId::from_db(&current.id).ok_or_else(|| Error::internal("bad project id"))?;
        let mut row = get_project_tx(&mut tx, cx.org(), id)
            .await?
            .ok_or_else(client_not_found)?;
        if row.archived_at.is_none() {
            let now = canopy_core::time::now_ms();
            row.archived_at = Some(now);
            row.updated_at = now;
            update_project(&mut tx, &row).await?;
        }
        let client = Client::from_row(&row)?;
        cx.commit(tx, Some(client.id), client.id.to_string(), None)
            .await?;
        cx.svc.keys_changed();
        Ok(client)
    }
}
