//! `Idempotency-Key` on POST: the same key with the same request within 24 hours replays the
//! first response; the same key with a different body answers 422; a key whose first request
//! is still running answers 409. Only successful answers are kept: an error changed nothing,
//! so a retry of a failed request runs again.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use canopy_core::{Code, Error, Principal};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::body_error;
use crate::error::ApiError;

/// Largest response kept for replay; larger ones are answered but not stored.
const MAX_STORED: usize = 4 * 1024 * 1024;

pub async fn idempotency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    run(&st, req, next).await
}

/// The idempotency step for an authenticated request (called by `auth::require_auth`): runs
/// `next` directly unless the request is a POST with an `Idempotency-Key`.
pub async fn run(st: &AppState, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(idem_key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    match replay_or_run(st.clone(), req, next, idem_key).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn replay_or_run(
    st: AppState,
    req: Request,
    next: Next,
    idem_key: String,
) -> Result<Response, ApiError> {
    if idem_key.is_empty() || idem_key.len() > 255 {
        return Err(ApiError(Error::new(
            Code::BadRequest,
            "Idempotency-Key must be 1 to 255 characters.",
        )));
    }
    let key_id = req
        .extensions()
        .get::<Principal>()
        .map(|p| p.key_id.db())
        .ok_or_else(|| ApiError(Error::internal("idempotency before auth")))?;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, st.http.max_body_bytes)
        .await
        .map_err(body_error)?;
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update(b" ");
    h.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""));
    h.update(b"\n");
    h.update(&bytes);
    let hash = format!("{:x}", h.finalize());

    let svc = &st.svc;
    if let Some(prev) = svc.idempotency_claim(&key_id, &idem_key, &hash).await? {
        if prev.request_hash != hash {
            return Err(ApiError(
                Error::new(
                    Code::IdempotencyKeyReused,
                    "This Idempotency-Key was used for a different request in the last 24 hours.",
                )
                .with_field("Idempotency-Key"),
            ));
        }
        let Some(status) = prev.status else {
            return Err(ApiError(Error::conflict(
                "A request with this Idempotency-Key is still in progress.",
            )));
        };
        let mut res = Response::new(Body::from(prev.body.unwrap_or_default()));
        *res.status_mut() = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
        if let Some(ct) = prev
            .content_type
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            res.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(res);
    }

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = res.status();
    // Only successful answers are kept: an error changed nothing, so a retry may run again.
    let pending = res
        .extensions()
        .get::<crate::error::PendingError>()
        .is_some();
    if status.is_server_error() || pending {
        svc.idempotency_release(&key_id, &idem_key).await?;
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED).await {
        Ok(b) => b,
        Err(_) => {
            svc.idempotency_release(&key_id, &idem_key).await?;
            return Err(ApiError(Error::internal(
                "response too large to keep for idempotent replay",
            )));
        }
    };
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    svc.idempotency_complete(&key_id, &idem_key, status.as_u16(), ct, &bytes)
        .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
