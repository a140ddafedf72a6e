//! The embeddable feedback widget: `GET /widget/feedback.js` and the keyless, CORS-enabled
//! `POST /public/{project}/feedback` it posts to (only when the project enabled the widget;
//! at most 5 submissions per minute per client address and project).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use canopy_core::{Code, Error};
use canopy_services::knowledge::feedback::SubmitFeedbackInput;

use crate::AppState;
use crate::error::ApiError;

const PER_IP_PER_MINUTE: u32 = 5;

pub async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("feedback.js"),
    )
        .into_response()
}

pub async fn submit(
    State(st): State<AppState>,
    Path(project): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let decision = st
        .svc
        .public_rate_check(&format!("widget:{project}:{ip}"), PER_IP_PER_MINUTE)
        .await?;
    if decision.exceeded {
        let retry = decision.retry_after(canopy_core::time::now_ms() / 1000);
        return Err(ApiError(
            Error::new(
                Code::RateLimitExceeded,
                format!(
                    "At most {PER_IP_PER_MINUTE} submissions a minute. Retry after {retry} seconds."
                ),
            )
            .with_extra("retry_after", retry),
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(crate::api::body_error)?;
    let input: SubmitFeedbackInput = serde_json::from_slice(&bytes).map_err(|e| {
        let field = e.to_string().split('`').nth(1).map(str::to_owned);
        let mut err = Error::new(Code::ValidationError, format!("Invalid feedback: {e}."));
        if let Some(f) = field {
            err = err.with_field(f);
        }
        ApiError(err)
    })?;
    let item = st
        .svc
        .widget_feedback(&project, input, request_id.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(item)).into_response())
}
