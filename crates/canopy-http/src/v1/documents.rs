//! Minolith documents (routes fixed in surface-v1-knowledge.md).

use axum::http::{Method, StatusCode};
use canopy_services::knowledge::documents::*;

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("documents")
        .upload::<UploadDocument>("/v1/documents")
        .op::<ListDocuments>(Method::GET, "/v1/documents", StatusCode::OK)
        .op::<GetDocument>(Method::GET, "/v1/documents/{id}", StatusCode::OK)
        .op::<UpdateDocument>(Method::PATCH, "/v1/documents/{id}", StatusCode::OK)
        .op::<DeleteDocument>(Method::DELETE, "/v1/documents/{id}", StatusCode::OK)
        .download::<DownloadDocument>("/v1/documents/{id}/download")
}
