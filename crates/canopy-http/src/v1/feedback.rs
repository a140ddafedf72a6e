//! Minolith feedback (routes fixed in surface-v1-knowledge.md).

use axum::http::{Method, StatusCode};
use canopy_services::knowledge::feedback::*;

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("feedback")
        .op::<SubmitFeedback>(Method::POST, "/v1/feedback/items", StatusCode::CREATED)
        .op::<ListFeedback>(Method::GET, "/v1/feedback/items", StatusCode::OK)
        .op::<GetFeedbackItem>(Method::GET, "/v1/feedback/items/{id}", StatusCode::OK)
        .op::<UpdateFeedbackStatus>(Method::PATCH, "/v1/feedback/items/{id}", StatusCode::OK)
        .op::<DeleteFeedbackItem>(Method::DELETE, "/v1/feedback/items/{id}", StatusCode::OK)
        .op::<AddFeedbackNote>(
            Method::POST,
            "/v1/feedback/items/{id}/notes",
            StatusCode::CREATED,
        )
        .op::<ConfigureFeedbackWidget>(Method::PUT, "/v1/feedback/widget", StatusCode::OK)
}
