//! `POST /v1/team/invites/{token}/accept`: the invitee has no key yet; the one-time token is
//! the credential. Answers the new member and their key (shown once).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

pub async fn accept(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let accepted = canopy_services::work::teams::accept_invite(&st.svc, &token).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"data": accepted})),
    )
        .into_response())
}
