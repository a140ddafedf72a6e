use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use canopy_runtime::outbound::{HttpStep, OutboundPolicy};
use serde_json::{Value, json};

use crate::common::{call, run, serve};

/// Echoes the request as JSON; `/status/<n>` answers n; `/slow` sleeps; `/redirect?to=`
/// redirects; `/big` answers 11 MiB.
async fn sink() -> SocketAddr {
    async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        // Repeated headers are joined, so a duplicate shows.
        let mut h = serde_json::Map::new();
        for name in headers.keys() {
            let all: Vec<&str> = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or_default())
                .collect();
            h.insert(name.as_str().to_owned(), json!(all.join(", ")));
        }
        axum::Json(json!({
            "method": method.as_str(),
            "headers": h,
            "body": String::from_utf8_lossy(&body),
        }))
    }
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo))
        .route(
            "/status/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u16>| async move {
                    (StatusCode::from_u16(n).unwrap(), "status body")
                },
            ),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/redirect",
            get(
                |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    Redirect::temporary(&q["to"])
                },
            ),
        )
        .route(
            "/text",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "plain text") }),
        )
        .route("/big", get(|| async { vec![b'x'; 11 * 1024 * 1024] }));
    serve(app).await
}

fn step(policy: OutboundPolicy) -> HttpStep {
    HttpStep::new(policy).unwrap()
}

fn open() -> OutboundPolicy {
    OutboundPolicy {
        allow_private: true,
        allow_hosts: vec![],
    }
}

#[tokio::test]
async fn default_policy_refuses_private_targets() {
    let addr = sink().await;
    let port = addr.port();
    let s = step(OutboundPolicy::default());
    for url in [
        format!("http://127.0.0.1:{port}/echo"),
        format!("http://localhost:{port}/echo"),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/echo"),
        format!("http://[::ffff:127.0.0.1]:{port}/echo"),
    ] {
        let e = run(&s, call("http", json!({"url": url}), json!(null)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ssrf_refused", "{url}: {e:?}");
        assert!(!e.retryable);
    }
    // The resolver's refusal names the host and the reason.
    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://localhost:{port}/echo")}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("localhost") && e.message.contains("loopback"),
        "{e:?}"
    );
}

#[tokio::test]
async fn redirect_to_a_private_host_is_refused() {
    let addr = sink().await;
    let port = addr.port();
    // Only the first hop is allowed: 127.0.0.1 on this port.
    let s = step(OutboundPolicy {
        allow_private: false,
        allow_hosts: vec![format!("127.0.0.1:{port}")],
    });
    let ok = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://127.0.0.1:{port}/echo")}),
            json!(null),
        ),
    )
    .await
    .unwrap();
    assert_eq!(ok["status"], 200);
    for target in [
        format!("http://localhost:{port}/echo"),
        format!("http://[::1]:{port}/echo"),
        "http://169.254.169.254/".to_owned(),
    ] {
        let url = format!("http://127.0.0.1:{port}/redirect?to={target}");
        let e = run(&s, call("http", json!({"url": url}), json!(null)))
            .await
            .unwrap_err();
        assert_eq!(e.code, "ssrf_refused", "{target}: {e:?}");
    }
    // A redirect back to the allowed host is followed.
    let url = format!("http://127.0.0.1:{port}/redirect?to=/echo/after");
    let out = run(&s, call("http", json!({"url": url}), json!(null)))
        .await
        .unwrap();
    assert_eq!(out["status"], 200);
}

#[tokio::test]
async fn allow_private_and_allow_hosts_let_through() {
    let addr = sink().await;
    let port = addr.port();
    let by_name = step(OutboundPolicy {
        allow_private: false,
        allow_hosts: vec!["localhost".to_owned()],
    });
    let out = run(
        &by_name,
        call(
            "http",
            json!({"url": format!("http://localhost:{port}/echo")}),
            json!(null),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], 200);
    let out = run(
        &step(open()),
        call(
            "http",
            json!({"url": format!("http://127.0.0.1:{port}/echo")}),
            json!(null),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["body"]["method"], "GET");
    // A host listed with a port is allowed on that port only.
    let pinned = step(OutboundPolicy {
        allow_private: false,
        allow_hosts: vec![format!("localhost:{}", port.wrapping_add(1))],
    });
    let e = run(
        &pinned,
        call(
            "http",
            json!({"url": format!("http://localhost:{port}/echo")}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ssrf_refused");
}

#[tokio::test]
async fn templating_reaches_the_sink() {
    let addr = sink().await;
    let config = json!({
        "method": "post",
        "url": format!("http://{addr}/echo/{{{{ steps.prev.output.id }}}}?q={{{{ step_input.q }}}}"),
        "headers": {"X-Run": "{{ input.run }}", "X-Fixed": "yes", "Idempotency-Key": "mine"},
        "body": {"name": "{{ step_input.name }}", "n": 5, "list": ["{{ input.run + 1 }}"]},
    });
    let out = run(
        &step(open()),
        call("http", config, json!({"q": "a b", "name": "Ada"})),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["headers"]["content-type"], "application/json");
    let seen = &out["body"];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["headers"]["x-run"], "1");
    assert_eq!(seen["headers"]["x-fixed"], "yes");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    // The engine's key wins over a configured one.
    assert_eq!(seen["headers"]["idempotency-key"], "run_x:s:-1:1");
    let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"name": "Ada", "n": 5, "list": ["2"]}));

    // A string body is rendered and sent as text.
    let config = json!({
        "method": "PUT",
        "url": format!("http://{addr}/echo"),
        "body": "hello {{ step_input.name }}",
    });
    let out = run(&step(open()), call("http", config, json!({"name": "Bo"})))
        .await
        .unwrap();
    assert_eq!(out["body"]["body"], "hello Bo");
    assert_eq!(out["body"]["method"], "PUT");
    assert!(
        out["body"]["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(out["body"]["headers"]["idempotency-key"], "run_x:s:-1:1");
}

#[tokio::test]
async fn response_modes() {
    let addr = sink().await;
    let s = step(open());
    let out = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/text")}),
            json!(null),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["body"], "plain text");
    let out = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/echo"), "response": "text"}),
            json!(null),
        ),
    )
    .await
    .unwrap();
    assert!(out["body"].is_string());
    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/text"), "response": "json"}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "invalid_response");
    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/big")}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "response_too_large");
}

#[tokio::test]
async fn statuses_and_timeouts() {
    let addr = sink().await;
    let s = step(open());
    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/echo"), "expect": [201]}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "http_status");
    assert!(!e.retryable);
    assert!(e.message.contains("200"), "{e:?}");

    let out = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/status/404"), "expect": [404]}),
            json!(null),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], 404);

    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/status/404")}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("http_status", false));
    assert!(
        e.message.contains("404") && e.message.contains("status body"),
        "{e:?}"
    );

    for code in [503, 429, 408] {
        let e = run(
            &s,
            call(
                "http",
                json!({"url": format!("http://{addr}/status/{code}")}),
                json!(null),
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.retryable),
            ("http_status", true),
            "{code}"
        );
    }

    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{addr}/slow"), "timeout_ms": 200}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("timeout", true), "{e:?}");
}

#[tokio::test]
async fn bad_configs_are_fatal() {
    let addr = sink().await;
    let s = step(open());
    for (config, code) in [
        (json!({}), "invalid_config"),
        (json!({"url": "file:///etc/passwd"}), "invalid_config"),
        (json!({"url": "not a url"}), "invalid_config"),
        (
            json!({"url": format!("http://{addr}/echo"), "method": "GE T"}),
            "invalid_config",
        ),
        (
            json!({"url": format!("http://{addr}/echo"), "headers": {"X": ["a"]}}),
            "invalid_config",
        ),
        (json!({"url": "http://{{ 1 + }}"}), "template_error"),
        (
            json!({"url": format!("http://{addr}/echo"), "response": 5}),
            "invalid_config",
        ),
        (
            json!({"url": format!("http://{addr}/echo"), "body": {"a": "{% if %}"}}),
            "template_error",
        ),
    ] {
        let e = run(&s, call("http", config.clone(), json!(null)))
            .await
            .unwrap_err();
        assert_eq!(e.code, code, "{config}: {e:?}");
        assert!(!e.retryable);
    }
    // Nothing listening: a retryable transport error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = run(
        &s,
        call(
            "http",
            json!({"url": format!("http://{closed}/")}),
            json!(null),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("transport", true), "{e:?}");
}
