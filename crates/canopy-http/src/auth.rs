//! The authentication and rate-limit layer of every protected route.
//!
//! Reads `Authorization: Bearer …` or `X-Access-Key`, asks the services who is calling, counts
//! the request against its limits, and puts the [`canopy_core::Principal`] in the request's
//! extensions. Every answer it lets through (and its own 429) carries `X-RateLimit-*` headers.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use canopy_core::{Code, Error};
use canopy_services::auth::missing_credential;
use canopy_services::limits::RateDecision;

use crate::AppState;
use crate::error::ApiError;

pub async fn require_auth(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let authed = {
        let h = req.headers();
        let credential = match credential(h) {
            Ok(c) => c,
            Err(e) => return ApiError(e).into_response(),
        };
        let org = header_str(h, "x-stackmint-org-id").or_else(|| header_str(h, "x-canopy-org-id"));
        match st.svc.authenticate(credential, org).await {
            Ok(a) => a,
            Err(e) => return ApiError(e).into_response(),
        }
    };
    let decision = match st.svc.rate_check(&authed).await {
        Ok(d) => d,
        Err(e) => return ApiError(e).into_response(),
    };
    let group = route_group(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or(req.uri().path()),
    );
    let now = canopy_core::time::now_ms();
    st.svc
        .usage()
        .record(authed.principal.key_id, now, group, decision.exceeded);

    let span = tracing::Span::current();
    span.record("key_id", tracing::field::display(authed.principal.key_id));
    span.record("org", tracing::field::display(authed.principal.org_id));

    let mut res = if decision.exceeded {
        let retry = decision.retry_after(now / 1000);
        ApiError(
            Error::new(
                Code::RateLimitExceeded,
                format!(
                    "Rate limit of {} requests per minute exceeded. Retry after {retry} seconds.",
                    decision.limit
                ),
            )
            .with_extra("retry_after", retry),
        )
        .into_response()
    } else {
        req.extensions_mut()
            .insert(McpTools(authed.mcp_tools.clone()));
        req.extensions_mut().insert(authed.principal);
        crate::idempotency::run(&st, req, next).await
    };
    rate_headers(res.headers_mut(), &decision);
    res
}

/// The key's `mcp_tools` (its MCP tool selection), for `/mcp`'s `tools/list`.
#[derive(Clone, Debug)]
pub struct McpTools(pub std::sync::Arc<[String]>);

fn rate_headers(h: &mut HeaderMap, d: &RateDecision) {
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
}

/// The credential of a request: `Authorization: Bearer <x>` or `X-Access-Key: <x>`.
fn credential(h: &HeaderMap) -> Result<&str, Error> {
    if let Some(v) = h.get(header::AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| Error::unauthorized("The Authorization header is not valid text."))?;
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err(Error::unauthorized(
                "The Authorization header must be 'Bearer <key or token>'.",
            ));
        }
        return Ok(rest.trim());
    }
    match header_str(h, "x-access-key") {
        Some(k) if !k.trim().is_empty() => Ok(k.trim()),
        _ => Err(missing_credential()),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The first two segments of a route template: `/v1/clients/{clientId}` → `v1/clients`.
pub fn route_group(path: &str) -> &str {
    let path = path.trim_start_matches('/');
    match path.match_indices('/').nth(1) {
        Some((i, _)) => &path[..i],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        assert_eq!(route_group("/v1/clients/{clientId}"), "v1/clients");
        assert_eq!(route_group("/api/admin/access-keys"), "api/admin");
        assert_eq!(route_group("/mcp"), "mcp");
        assert_eq!(route_group("/v1/"), "v1/");
        assert_eq!(route_group("//a//b"), "a/");
        assert_eq!(route_group(""), "");
    }

    #[test]
    fn credentials() {
        let mut h = HeaderMap::new();
        assert!(credential(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(credential(&h).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  k1 "),
        );
        assert_eq!(credential(&h).ok(), Some("k1"));
        let mut h = HeaderMap::new();
        h.insert("x-access-key", HeaderValue::from_static("k2"));
        assert_eq!(credential(&h).ok(), Some("k2"));
    }
}
