//! Documents: files a project keeps (specs, PDFs, spreadsheets, images) with metadata, a
//! download route, and their text extracted into a search index. Documents are free of credits;
//! their count and bytes count against the project's quotas.
//!
//! An upload is checked whole (size, type from content, text extraction) before anything is
//! written; then the blob is stored (fsynced) and the row committed. If the commit fails the
//! blob is removed again, so a refused upload leaves nothing behind.

use bytes::Bytes;
use canopy_core::suggest::parse_enum;
use canopy_core::{Cursor, Data, Deleted, DocumentId, Error, PageRequest, Paged, ProjectId, Scope};
use canopy_store::documents::{
    DocumentFilter, DocumentRow, delete_document, get_document, get_document_tx, insert_document,
    list_documents, update_document,
};
use canopy_store::projects::Counted;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::governance::quotas;
use crate::knowledge::files::{
    blob_key, extract_text, optional_text, read_blob, receive, remove_blob, store_with_blob,
};
use crate::knowledge::{
    author, current_project, search_offset, search_text, set_search_cursor, tag_filter, tags_json,
};
use crate::op::{Cx, Hints, Operation};

pub const PRIORITIES: &[&str] = &["high", "normal", "low"];
const MAX_TITLE: usize = 500;
const MAX_DESCRIPTION: usize = 10_000;

/// A document's metadata (never its bytes; see `download_url`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// `doc_…`
    pub id: String,
    pub title: String,
    pub description: String,
    /// `high`, `normal` or `low`.
    pub priority: String,
    pub scope: String,
    pub tags: Vec<String>,
    pub filename: String,
    /// Decided from the content, not the name.
    pub mime_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Where the bytes are served (same credentials).
    pub download_url: String,
    /// `extracted`, `truncated` (only the first 256 KiB of text is searchable) or `none`.
    pub text_status: String,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Document {
    fn from_row(r: &DocumentRow) -> Document {
        let id = DocumentId::show(&r.id);
        Document {
            download_url: format!("/v1/documents/{id}/download"),
            id,
            title: r.title.clone(),
            description: r.description.clone(),
            priority: r.priority.clone(),
            scope: r.scope.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            filename: r.filename.clone(),
            mime_type: r.mime_type.clone(),
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
            text_status: r.text_status.clone(),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        }
    }
}

/// A new document: the file plus its metadata.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UploadDocumentInput {
    /// 1–500 chars.
    pub title: String,
    /// Up to 10,000 chars.
    pub description: Option<String>,
    /// `high`, `normal` (default) or `low`.
    pub priority: Option<String>,
    /// a-z, 0-9 and hyphens; default `global`.
    pub scope: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Its extension helps tell text formats apart.
    pub filename: Option<String>,
    /// Base64 (REST: multipart `file`).
    pub content: Option<String>,
    /// The raw bytes of a multipart upload (set by the REST door, never by JSON).
    #[serde(skip)]
    #[schemars(skip)]
    pub file: Option<Bytes>,
}

fn check_title(t: &str) -> Result<String, Error> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE {
        return Err(Error::validation(
            "title",
            format!("title must be 1 to {MAX_TITLE} characters."),
        ));
    }
    Ok(t.to_owned())
}

/// Scopes of documents are slugs: lower-case letters, digits, hyphens.
fn check_scope(s: Option<&str>) -> Result<String, Error> {
    let s = s.map(str::trim).unwrap_or("global");
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(Error::validation(
            "scope",
            "scope must be 1 to 100 lower-case letters, digits or hyphens.",
        ));
    }
    Ok(s.to_owned())
}

fn check_priority(p: Option<&str>) -> Result<String, Error> {
    Ok(match p {
        Some(p) => parse_enum(p, "priority", PRIORITIES)?,
        None => "normal",
    }
    .to_owned())
}

pub struct UploadDocument;
impl Operation for UploadDocument {
    const NAME: &'static str = "upload_document";
    const SUMMARY: &'static str =
        "Upload a document (PDF, office, text, image, zip…); its text becomes searchable.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = UploadDocumentInput;
    type Output = Data<Document>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        // Every field is checked before the (costly) file work.
        let title = check_title(&input.title)?;
        let description =
            optional_text("description", input.description.as_deref(), MAX_DESCRIPTION)?;
        let priority = check_priority(input.priority.as_deref())?;
        let scope = check_scope(input.scope.as_deref())?;
        let tags = tags_json(input.tags.as_deref().unwrap_or_default())?;
        let file = receive(
            input.file,
            input.content.as_deref(),
            input.filename.as_deref(),
            cx.svc.config().max_document_bytes,
        )?;
        let (text, text_status) = extract_text(cx, &file).await?;
        let now = canopy_core::time::now_ms();
        let id = DocumentId::new();
        let row = DocumentRow {
            id: id.db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            title,
            description,
            priority,
            scope,
            tags,
            filename: file.filename.clone(),
            mime_type: file.mime_type.to_owned(),
            size_bytes: file.size(),
            sha256: file.sha256.clone(),
            blob_key: blob_key(cx, project, "documents", &id.db()),
            text,
            text_status: text_status.to_owned(),
            created_by: Some(author(cx)),
            created_at: now,
            updated_at: now,
        };
        store_with_blob(cx, &row.blob_key, &file, async {
            let mut tx = cx.svc.store().begin().await?;
            quotas::check(&mut tx, cx, project, Counted::Documents, 1).await?;
            quotas::check(&mut tx, cx, project, Counted::StorageBytes, row.size_bytes).await?;
            insert_document(&mut tx, &row).await?;
            cx.commit(tx, Some(project), DocumentId::show(&row.id), None)
                .await
        })
        .await?;
        Ok(Data {
            data: Document::from_row(&row),
        })
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListDocumentsInput {
    pub scope: Option<String>,
    pub priority: Option<String>,
    /// Comma-separated; every tag must match.
    pub tags: Option<String>,
    /// e.g. `application/pdf`.
    pub mime_type: Option<String>,
    /// Full-text; by relevance.
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListDocuments;
impl Operation for ListDocuments {
    const NAME: &'static str = "list_documents";
    const SUMMARY: &'static str = "List or search documents.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListDocumentsInput;
    type Output = Paged<Document>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        let search = search_text(input.search.as_deref());
        let offset = search_offset(search.is_some(), &mut page)?;
        let priority = match &input.priority {
            Some(p) => Some(parse_enum(p, "priority", PRIORITIES)?.to_owned()),
            None => None,
        };
        let filter = DocumentFilter {
            scope: input.scope,
            priority,
            mime_type: input.mime_type,
            tags: tag_filter(input.tags.as_deref()),
            search: search.clone(),
        };
        let rows = list_documents(cx.svc.store(), project, &filter, &page, offset).await?;
        let mut paged = Paged::from_rows(rows, &page, |r| Cursor {
            t: r.created_at,
            id: r.id.clone(),
        });
        if search.is_some() {
            set_search_cursor(&mut paged, offset, &page);
        }
        Ok(paged.map(|r| Document::from_row(&r)))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DocumentIdInput {
    pub id: String,
}

fn document_db_id(raw: &str) -> Result<String, Error> {
    DocumentId::parse(raw)
        .map(|i| i.db())
        .ok_or_else(document_not_found)
}

fn document_not_found() -> Error {
    Error::not_found("Document")
}

async fn find(cx: &Cx<'_>, raw: &str) -> Result<(ProjectId, DocumentRow), Error> {
    let project = current_project(cx).await?;
    let id = document_db_id(raw)?;
    let row = get_document(cx.svc.store(), project, &id)
        .await?
        .ok_or_else(document_not_found)?;
    Ok((project, row))
}

pub struct GetDocument;
impl Operation for GetDocument {
    const NAME: &'static str = "get_document";
    const SUMMARY: &'static str = "Get one document's metadata and download URL.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = DocumentIdInput;
    type Output = Data<Document>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (_, row) = find(cx, &input.id).await?;
        Ok(Data {
            data: Document::from_row(&row),
        })
    }
}

/// A document with its bytes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DocumentContent {
    pub document: Document,
    /// The file, base64-encoded.
    #[serde(serialize_with = "crate::knowledge::files::as_base64")]
    #[schemars(with = "String")]
    pub content: Bytes,
}

pub struct DownloadDocument;
impl Operation for DownloadDocument {
    const NAME: &'static str = "download_document";
    const SUMMARY: &'static str = "Get a document's file (base64 over MCP; raw bytes over REST).";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = DocumentIdInput;
    type Output = DocumentContent;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (_, row) = find(cx, &input.id).await?;
        let content = read_blob(cx, &row.blob_key, &row.id).await?;
        Ok(DocumentContent {
            document: Document::from_row(&row),
            content,
        })
    }
}

/// Changes to a document's metadata; omitted fields stay as they are.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateDocumentInput {
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    pub scope: Option<String>,
    /// Replaces the whole tag list.
    pub tags: Option<Vec<String>>,
}

pub struct UpdateDocument;
impl Operation for UpdateDocument {
    const NAME: &'static str = "update_document";
    const SUMMARY: &'static str = "Change a document's metadata (the file stays).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateDocumentInput;
    type Output = Data<Document>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = document_db_id(&input.id)?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_document_tx(&mut tx, project, &id)
            .await?
            .ok_or_else(document_not_found)?;
        if let Some(t) = &input.title {
            row.title = check_title(t)?;
        }
        if input.description.is_some() {
            row.description =
                optional_text("description", input.description.as_deref(), MAX_DESCRIPTION)?;
        }
        if input.priority.is_some() {
            row.priority = check_priority(input.priority.as_deref())?;
        }
        if input.scope.is_some() {
            row.scope = check_scope(input.scope.as_deref())?;
        }
        if let Some(t) = &input.tags {
            row.tags = tags_json(t)?;
        }
        row.updated_at = canopy_core::time::now_ms();
        update_document(&mut tx, &row).await?;
        cx.commit(tx, Some(project), DocumentId::show(&row.id), None)
            .await?;
        Ok(Data {
            data: Document::from_row(&row),
        })
    }
}

pub struct DeleteDocument;
impl Operation for DeleteDocument {
    const NAME: &'static str = "delete_document";
    const SUMMARY: &'static str = "Delete a document and its file.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = DocumentIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = document_db_id(&input.id)?;
        let mut tx = cx.svc.store().begin().await?;
        let row = delete_document(&mut tx, project, &id)
            .await?
            .ok_or_else(document_not_found)?;
        let out = cx
            .commit_deleted(tx, project, DocumentId::show(&id))
            .await?;
        remove_blob(cx, &row.blob_key).await;
        Ok(out)
    }
}

impl crate::op::FileInput for UploadDocumentInput {
    fn attach(&mut self, bytes: Bytes, filename: Option<String>) {
        self.file = Some(bytes);
        if self.filename.is_none() {
            self.filename = filename;
        }
    }
}

impl crate::op::FileOutput for DocumentContent {
    fn into_file(self) -> (String, String, Bytes) {
        (
            self.document.filename,
            self.document.mime_type,
            self.content,
        )
    }
}
