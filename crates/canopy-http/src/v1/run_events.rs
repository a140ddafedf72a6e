//! `GET /v1/clients/{clientId}/runs/{runId}/events`: a run's event log as server-sent events
//! (`Accept: text/event-stream`), or as one JSON page otherwise.
//!
//! The stream replays the log from `Last-Event-ID` (or `after_seq`, or the start), then tails
//! it until the run's final event, with a keepalive comment every 15 s. Every read goes
//! through the `list_client_run_events` operation, so the caller's scope and the run's visibility are
//! checked the same way as on every other route; the first read happens before the response
//! starts, so a refusal is an ordinary JSON error. A graceful shutdown ends open streams.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use canopy_core::Principal;
use canopy_services::op::{Meta, dispatch};
use canopy_services::runtime::runs::{EventsPage, ListRunEvents, ListRunEventsInput};
use canopy_services::runtime::view::EventView;
use serde_json::{Map, Value};

use crate::AppState;
use crate::api::{Api, Caller, form_urlencoded_pairs, input_error, query_kinds, rest};
use crate::error::ApiError;

pub const PATH: &str = "/v1/clients/{clientId}/runs/{runId}/events";

/// How often a tail looks without being woken: changes made on other nodes (one node's
/// commits wake its own tails at once).
const POLL: Duration = Duration::from_millis(500);
/// A comment line after this long without an event, so proxies keep the stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Events read per page while replaying.
const PAGE: i64 = 500;

pub fn routes() -> Api {
    let kinds = std::sync::Arc::new(query_kinds(
        &canopy_services::op::OpInfo::of::<ListRunEvents>().input_schema,
    ));
    let handler = move |State(st): State<AppState>, req: Request| {
        let kinds = kinds.clone();
        async move { events(st, req, &kinds).await }
    };
    Api::new("runtime").custom::<ListRunEvents>(
        Method::GET,
        PATH,
        StatusCode::OK,
        crate::api::Media::EventStream,
        get(handler),
    )
}

fn wants_sse(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

async fn events(
    st: AppState,
    req: Request,
    kinds: &HashMap<String, crate::api::Kind>,
) -> Result<Response, ApiError> {
    if !wants_sse(&req) {
        return rest::<ListRunEvents>(st, req, StatusCode::OK, |_| None, kinds).await;
    }
    let (mut parts, _) = req.into_parts();
    let caller = Caller::of(&st, &mut parts).await?;
    let mut obj = Map::new();
    if let Some(q) = parts.uri.query() {
        for (k, v) in form_urlencoded_pairs(q) {
            obj.entry(k.clone())
                .or_insert(crate::api::coerce(kinds.get(&k).copied(), v));
        }
    }
    caller.add_path_params(&mut obj);
    let resume = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(seq) = resume {
        obj.insert("after_seq".into(), Value::from(seq));
    }
    let first: ListRunEventsInput =
        serde_path_to_error::deserialize(Value::Object(obj)).map_err(input_error)?;
    let tail = Tail {
        st: st.clone(),
        principal: caller.principal.clone(),
        request_id: caller.request_id.clone(),
        project: caller.project.clone(),
        client_id: first.client_id.clone(),
        run_id: first.run_id.clone(),
    };
    // The first page authorises the stream: a refusal answers as JSON, before any event.
    let after = first.after_seq.unwrap_or(0).max(0);
    let page = tail.read(after).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(tail.run(page, after, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let frame = rx.recv().await?;
        Some((Ok::<_, Infallible>(frame), rx))
    });
    let mut res = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// What a tailing stream needs to keep reading through the operation.
struct Tail {
    st: AppState,
    principal: Principal,
    request_id: Option<String>,
    project: Option<String>,
    client_id: String,
    run_id: String,
}

impl Tail {
    async fn read(&self, after: i64) -> Result<EventsPage, canopy_core::Error> {
        let meta = Meta {
            request_id: self.request_id.as_deref(),
            project: self.project.as_deref(),
        };
        let input = ListRunEventsInput {
            client_id: self.client_id.clone(),
            run_id: self.run_id.clone(),
            after_seq: Some(after),
            limit: Some(PAGE),
        };
        dispatch::<ListRunEvents>(&self.st.svc, &self.principal, meta, input).await
    }

    /// Sends `page`, then reads and sends until the run's log is complete (its final event
    /// sent, or a finished run with nothing after `Last-Event-ID`), the client leaves, or a
    /// read fails (the error is sent as an `error` event).
    async fn run(self, mut page: EventsPage, mut after: i64, tx: tokio::sync::mpsc::Sender<Bytes>) {
        // Local commits wake the tail at once; other nodes' commits are read on the timer.
        let changes = canopy_core::RunId::parse(&self.run_id)
            .and_then(|id| self.st.svc.engine().ok().map(|e| e.watch_run(id)));
        // Registered before each read, so a change that lands during the read is not missed.
        let mut armed = None;
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            let last = page.is_last();
            // A full page means more is waiting: read on without a pause (replay).
            let full = i64::try_from(page.data.len()).unwrap_or(i64::MAX) >= PAGE;
            for e in page.data.drain(..) {
                after = after.max(e.seq);
                if tx.send(frame(&e)).await.is_err() {
                    return;
                }
                quiet_since = tokio::time::Instant::now();
            }
            if last {
                return;
            }
            if !full {
                let wake = async {
                    match armed.take() {
                        Some(n) => n.await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep(POLL) => {}
                    // The server is going down: end the stream; the client resumes with
                    // `Last-Event-ID` on another node or after the restart.
                    _ = self.st.svc.stopping() => return,
                }
                if quiet_since.elapsed() >= KEEPALIVE {
                    quiet_since = tokio::time::Instant::now();
                    if tx
                        .send(Bytes::from_static(b": keepalive\n\n"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            armed = changes.as_ref().map(|c| c.next());
            page = match self.read(after).await {
                Ok(p) => p,
                Err(e) => {
                    let body = serde_json::json!({"code": e.code.as_str(), "message": e.message});
                    let _ = tx
                        .send(Bytes::from(format!("event: error\ndata: {body}\n\n")))
                        .await;
                    return;
                }
            };
        }
    }
}

/// One event as an SSE frame: `id` is the sequence number (for `Last-Event-ID`), `event` the
/// type, `data` the event as JSON.
fn frame(e: &EventView) -> Bytes {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        e.seq, e.kind
    ))
}
