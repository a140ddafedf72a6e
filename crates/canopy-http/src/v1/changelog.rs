//! Minolith changelog (routes fixed in surface-v1-knowledge.md).

use axum::http::{Method, StatusCode};
use canopy_services::knowledge::changelog::*;

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("changelog")
        .op::<CreateChangelogEntry>(Method::POST, "/v1/changelog/entries", StatusCode::CREATED)
        .op::<ListChangelogEntries>(Method::GET, "/v1/changelog/entries", StatusCode::OK)
        .op::<GetChangelogEntry>(Method::GET, "/v1/changelog/entries/{id}", StatusCode::OK)
        .op::<UpdateChangelogEntry>(Method::PATCH, "/v1/changelog/entries/{id}", StatusCode::OK)
        .op::<DeleteChangelogEntry>(Method::DELETE, "/v1/changelog/entries/{id}", StatusCode::OK)
        .op::<PublishChangelogEntry>(
            Method::POST,
            "/v1/changelog/entries/{id}/publish",
            StatusCode::OK,
        )
        .op::<CreateChangelogVersion>(Method::POST, "/v1/changelog/versions", StatusCode::CREATED)
        .op::<ListChangelogVersions>(Method::GET, "/v1/changelog/versions", StatusCode::OK)
        .op::<GetChangelogVersion>(Method::GET, "/v1/changelog/versions/{id}", StatusCode::OK)
        .op::<UpdateChangelogVersion>(Method::PATCH, "/v1/changelog/versions/{id}", StatusCode::OK)
        .op::<DeleteChangelogVersion>(
            Method::DELETE,
            "/v1/changelog/versions/{id}",
            StatusCode::OK,
        )
        .op::<PublishChangelogVersion>(
            Method::POST,
            "/v1/changelog/versions/{id}/publish",
            StatusCode::OK,
        )
}
