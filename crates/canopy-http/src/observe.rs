//! Health, Prometheus metrics and the per-request tracing span.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;

use crate::AppState;

/// The process-wide recorder (metrics are global; several test servers in one process share it).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ])
                .ok()
                .and_then(|b| b.install_recorder().ok())
        })
        .as_ref()
}

/// Folds recorded histogram samples into their buckets. Without it a server nobody scrapes
/// keeps every sample in memory; the server calls it every few seconds.
pub fn upkeep() {
    if let Some(h) = prometheus() {
        h.run_upkeep();
    }
}

/// Counts requests and their latency by matched route, method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("canopy_http_requests_total", &labels).increment(1);
    metrics::histogram!("canopy_http_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    res
}

pub async fn metrics_text(State(st): State<AppState>) -> Response {
    let (size, idle) = st.svc.store().pool_stats();
    metrics::gauge!("canopy_db_pool_connections").set(f64::from(size));
    metrics::gauge!("canopy_db_pool_idle_connections").set(f64::from(idle));
    let body = prometheus().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct Health {
    /// `ok` while the server is up.
    pub status: &'static str,
    pub version: &'static str,
}

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

pub async fn jwks(State(st): State<AppState>) -> Result<Response, crate::error::ApiError> {
    let signer = st.svc.signer().await?;
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(signer.jwks()),
    )
        .into_response())
}

/// Request ids without a `getrandom` syscall per request: a random per-process prefix and a
/// counter, shaped like a UUID (unique per server process, unguessable across restarts).
#[derive(Clone, Copy, Default)]
pub struct RequestIds;

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            prefix >> 32,
            (prefix >> 16) & 0xffff,
            prefix & 0xffff,
            (n >> 48) & 0xffff,
            n & 0xffff_ffff_ffff
        );
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}
