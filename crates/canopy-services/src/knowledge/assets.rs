//! Styleguide assets: brand files (logos, icons, fonts, images) of up to 5 MB with metadata and
//! a download route. Stored like documents (blob + row), without text extraction.

use canopy_core::{
    Cursor, Data, Deleted, Error, PageRequest, Paged, ProjectId, Scope, StyleAssetId,
};
use canopy_store::documents::{
    AssetRow, delete_asset, get_asset, get_asset_tx, insert_asset, list_assets, update_asset,
};
use canopy_store::projects::Counted;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::governance::quotas;
use crate::knowledge::files::{
    blob_key, optional_text, read_blob, receive, remove_blob, store_with_blob,
};
use crate::knowledge::{author, current_project, tags_json};
use crate::op::{Cx, Hints, Operation};

const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 2_000;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Asset {
    /// `sga_…`
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub filename: String,
    /// Decided from the content, not the name.
    pub mime_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub download_url: String,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Asset {
    fn from_row(r: &AssetRow) -> Asset {
        let id = StyleAssetId::show(&r.id);
        Asset {
            download_url: format!("/v1/styleguide/assets/{id}/download"),
            id,
            name: r.name.clone(),
            description: r.description.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            filename: r.filename.clone(),
            mime_type: r.mime_type.clone(),
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        }
    }
}

fn check_name(n: &str) -> Result<String, Error> {
    let n = n.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME {
        return Err(Error::validation(
            "name",
            format!("name must be 1 to {MAX_NAME} characters."),
        ));
    }
    Ok(n.to_owned())
}

/// A new asset: the file plus its metadata.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UploadAssetInput {
    /// Defaults to the file name.
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub filename: Option<String>,
    /// Base64, at most 5 MB (REST: multipart `file`).
    pub content: Option<String>,
    /// The raw bytes of a multipart upload (set by the REST door, never by JSON).
    #[serde(skip)]
    #[schemars(skip)]
    pub file: Option<bytes::Bytes>,
}

pub struct UploadAsset;
impl Operation for UploadAsset {
    const NAME: &'static str = "upload_asset";
    const SUMMARY: &'static str = "Upload a styleguide asset (logo, icon, font, image).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    const CREDITS: u32 = 3;
    type Input = UploadAssetInput;
    type Output = Data<Asset>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let description =
            optional_text("description", input.description.as_deref(), MAX_DESCRIPTION)?;
        let tags = tags_json(input.tags.as_deref().unwrap_or_default())?;
        if let Some(n) = &input.name {
            check_name(n)?;
        }
        let file = receive(
            input.file,
            input.content.as_deref(),
            input.filename.as_deref(),
            cx.svc.config().max_asset_bytes,
        )?;
        let name = check_name(input.name.as_deref().unwrap_or(&file.filename))?;
        let now = canopy_core::time::now_ms();
        let id = StyleAssetId::new();
        let row = AssetRow {
            id: id.db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            name,
            description,
            tags,
            filename: file.filename.clone(),
            mime_type: file.mime_type.to_owned(),
            size_bytes: file.size(),
            sha256: file.sha256.clone(),
            blob_key: blob_key(cx, project, "assets", &id.db()),
            created_by: Some(author(cx)),
            created_at: now,
            updated_at: now,
        };
        store_with_blob(cx, &row.blob_key, &file, async {
            let mut tx = cx.svc.store().begin().await?;
            quotas::check(&mut tx, cx, project, Counted::StyleguideItems, 1).await?;
            quotas::check(&mut tx, cx, project, Counted::StorageBytes, row.size_bytes).await?;
            insert_asset(&mut tx, &row).await?;
            cx.commit(tx, Some(project), StyleAssetId::show(&row.id), None)
                .await
        })
        .await?;
        Ok(Data {
            data: Asset::from_row(&row),
        })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListAssetsInput {
    /// Name contains this (case-insensitive).
    pub name: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListAssets;
impl Operation for ListAssets {
    const NAME: &'static str = "list_assets";
    const SUMMARY: &'static str = "List the styleguide's assets, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListAssetsInput;
    type Output = Paged<Asset>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        let name = input
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let rows = list_assets(cx.svc.store(), project, name, &page).await?;
        let paged = Paged::from_rows(rows, &page, |r| Cursor {
            t: r.created_at,
            id: r.id.clone(),
        });
        Ok(paged.map(|r| Asset::from_row(&r)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssetIdInput {
    pub id: String,
}

fn asset_db_id(raw: &str) -> Result<String, Error> {
    StyleAssetId::parse(raw)
        .map(|i| i.db())
        .ok_or_else(asset_not_found)
}

fn asset_not_found() -> Error {
    Error::not_found("Styleguide asset")
}

async fn find(cx: &Cx<'_>, raw: &str) -> Result<(ProjectId, AssetRow), Error> {
    let project = current_project(cx).await?;
    let id = asset_db_id(raw)?;
    let row = get_asset(cx.svc.store(), project, &id)
        .await?
        .ok_or_else(asset_not_found)?;
    Ok((project, row))
}

pub struct GetAsset;
impl Operation for GetAsset {
    const NAME: &'static str = "get_asset";
    const SUMMARY: &'static str = "Get one styleguide asset's metadata and download URL.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = AssetIdInput;
    type Output = Data<Asset>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (_, row) = find(cx, &input.id).await?;
        Ok(Data {
            data: Asset::from_row(&row),
        })
    }
}

/// An asset with its bytes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AssetContent {
    pub asset: Asset,
    /// The file, base64-encoded.
    #[serde(serialize_with = "crate::knowledge::files::as_base64")]
    #[schemars(with = "String")]
    pub content: bytes::Bytes,
}

pub struct DownloadAsset;
impl Operation for DownloadAsset {
    const NAME: &'static str = "download_asset";
    const SUMMARY: &'static str =
        "Get a styleguide asset's file (base64 over MCP; raw bytes over REST).";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = AssetIdInput;
    type Output = AssetContent;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (_, row) = find(cx, &input.id).await?;
        let content = read_blob(cx, &row.blob_key, &row.id).await?;
        Ok(AssetContent {
            asset: Asset::from_row(&row),
            content,
        })
    }
}

/// Changes to an asset's metadata; omitted fields stay as they are.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateAssetInput {
    /// `sga_…`
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces the whole tag list.
    pub tags: Option<Vec<String>>,
}

pub struct UpdateAsset;
impl Operation for UpdateAsset {
    const NAME: &'static str = "update_asset";
    const SUMMARY: &'static str = "Change a styleguide asset's name, description or tags.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateAssetInput;
    type Output = Data<Asset>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = asset_db_id(&input.id)?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_asset_tx(&mut tx, project, &id)
            .await?
            .ok_or_else(asset_not_found)?;
        if let Some(n) = &input.name {
            row.name = check_name(n)?;
        }
        if input.description.is_some() {
            row.description =
                optional_text("description", input.description.as_deref(), MAX_DESCRIPTION)?;
        }
        if let Some(t) = &input.tags {
            row.tags = tags_json(t)?;
        }
        row.updated_at = canopy_core::time::now_ms();
        update_asset(&mut tx, &row).await?;
        cx.commit(tx, Some(project), StyleAssetId::show(&row.id), None)
            .await?;
        Ok(Data {
            data: Asset::from_row(&row),
        })
    }
}

pub struct DeleteAsset;
impl Operation for DeleteAsset {
    const NAME: &'static str = "delete_asset";
    const SUMMARY: &'static str = "Delete a styleguide asset and its file.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = AssetIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = asset_db_id(&input.id)?;
        let mut tx = cx.svc.store().begin().await?;
        let row = delete_asset(&mut tx, project, &id)
            .await?
            .ok_or_else(asset_not_found)?;
        let out = cx
            .commit_deleted(tx, project, StyleAssetId::show(&id))
            .await?;
        remove_blob(cx, &row.blob_key).await;
        Ok(out)
    }
}

impl crate::op::FileInput for UploadAssetInput {
    fn attach(&mut self, bytes: bytes::Bytes, filename: Option<String>) {
        self.file = Some(bytes);
        if self.filename.is_none() {
            self.filename = filename;
        }
    }
}

impl crate::op::FileOutput for AssetContent {
    fn into_file(self) -> (String, String, bytes::Bytes) {
        (self.asset.filename, self.asset.mime_type, self.content)
    }
}
