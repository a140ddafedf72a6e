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
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let elapsed = start.elapsed().as_secs_f64();
    series::with(route, &method, res.status(), |requests, duration| {
        requests.increment(1);
        duration.record(elapsed);
    });
    res
}

/// The metric handles of each (route, method, status) seen, so that counting a request
/// builds no label strings and looks nothing up in the recorder's registry. The series are
/// exactly those `metrics::counter!`/`histogram!` would register with the same labels.
mod series {
    use std::borrow::Cow;
    use std::collections::HashMap;
    use std::sync::{OnceLock, RwLock};

    use axum::http::{Method, StatusCode};
    use metrics::{Counter, Histogram};

    struct Series {
        method: Cow<'static, str>,
        status: u16,
        requests: Counter,
        duration: Histogram,
    }

    type Map = RwLock<HashMap<Box<str>, Vec<Series>>>;

    fn map() -> &'static Map {
        static MAP: OnceLock<Map> = OnceLock::new();
        MAP.get_or_init(Map::default)
    }

    /// The method as a label, without allocating for the standard methods.
    fn method_label(m: &Method) -> Cow<'static, str> {
        const KNOWN: [(Method, &str); 9] = [
            (Method::GET, "GET"),
            (Method::POST, "POST"),
            (Method::PUT, "PUT"),
            (Method::PATCH, "PATCH"),
            (Method::DELETE, "DELETE"),
            (Method::HEAD, "HEAD"),
            (Method::OPTIONS, "OPTIONS"),
            (Method::CONNECT, "CONNECT"),
            (Method::TRACE, "TRACE"),
        ];
        match KNOWN.iter().find(|(k, _)| k == m) {
            Some((_, name)) => Cow::Borrowed(name),
            None => Cow::Owned(m.as_str().to_owned()),
        }
    }

    fn find<'a>(list: &'a [Series], method: &Method, status: u16) -> Option<&'a Series> {
        list.iter()
            .find(|s| s.status == status && s.method == method.as_str())
    }

    /// Runs `f` with the handles of this series, registering them on first sight.
    pub fn with(
        route: &str,
        method: &Method,
        status: StatusCode,
        f: impl FnOnce(&Counter, &Histogram),
    ) {
        let code = status.as_u16();
        {
            let map = map().read().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = map.get(route).and_then(|l| find(l, method, code)) {
                f(&s.requests, &s.duration);
                return;
            }
        }
        let mut map = map().write().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(route.into()).or_default();
        if find(list, method, code).is_none() {
            let label = method_label(method);
            let labels = [
                ("route", route.to_owned()),
                ("method", label.clone().into_owned()),
                ("status", status.as_str().to_owned()),
            ];
            list.push(Series {
                method: label,
                status: code,
                requests: metrics::counter!("canopy_http_requests_total", &labels),
                duration: metrics::histogram!("canopy_http_request_duration_seconds", &labels[..2]),
            });
        }
        if let Some(s) = find(list, method, code) {
            f(&s.requests, &s.duration);
        }
    }
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
        // The header takes the string's buffer as it is (no second copy).
        axum::http::HeaderValue::from_maybe_shared(axum::body::Bytes::from(id))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}
