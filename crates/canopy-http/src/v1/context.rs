//! Minolith context (seed 003; routes fixed in surface-v1-knowledge.md).

use axum::http::{Method, StatusCode};
use canopy_services::knowledge::context::{
    BulkDeleteContext, BulkStoreContext, BulkUpdateContext, DeleteContext, GetContext,
    GetContextEntry, GetRecentEvents, ListScopes, ListTags, LogEvent, StoreContext, UpdateContext,
};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("context")
        .op::<StoreContext>(Method::POST, "/v1/context/entries", StatusCode::CREATED)
        .op::<GetContext>(Method::GET, "/v1/context/entries", StatusCode::OK)
        .op::<BulkStoreContext>(
            Method::POST,
            "/v1/context/entries/bulk",
            StatusCode::CREATED,
        )
        .op::<BulkUpdateContext>(Method::PATCH, "/v1/context/entries/bulk", StatusCode::OK)
        .op::<BulkDeleteContext>(Method::DELETE, "/v1/context/entries/bulk", StatusCode::OK)
        .op::<GetContextEntry>(Method::GET, "/v1/context/entries/{id}", StatusCode::OK)
        .op::<UpdateContext>(Method::PATCH, "/v1/context/entries/{id}", StatusCode::OK)
        .op::<DeleteContext>(Method::DELETE, "/v1/context/entries/{id}", StatusCode::OK)
        .op::<LogEvent>(Method::POST, "/v1/context/events", StatusCode::CREATED)
        .op::<GetRecentEvents>(Method::GET, "/v1/context/events", StatusCode::OK)
        .op::<ListTags>(Method::GET, "/v1/context/tags", StatusCode::OK)
        .op::<ListScopes>(Method::GET, "/v1/context/scopes", StatusCode::OK)
}
