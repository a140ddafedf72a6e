//! Run control through the API: pause and resume a branch held at a `wait` step; retry a
//! failed step and recover a failed run (a `transform` whose jq fails every time, so the
//! step runs again and fails again; the success paths are the engine's tests); conflicts,
//! other clients' runs, the `paused` status filter.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, assert_error};

async fn run_until(app: &TestApp, key: &str, path: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, r) = app.get(path, key).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        if want.contains(&r["status"].as_str().unwrap_or_default()) {
            return r;
        }
        assert!(Instant::now() < deadline, "run never reached {want:?}: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates `branch`, assigns it to a new client, and answers (client path, runtime key,
/// branch id).
async fn setup(app: &TestApp, branch: Value) -> (String, String, String) {
    let admin = app.admin_key.clone();
    let (s, b) = app.post("/v1/admin/branches", &admin, branch).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let branch_id = b["id"].as_str().unwrap().to_owned();
    let client = app.client("Acme").await;
    let (s, a) = app
        .post(
            &format!("/v1/admin/clients/{client}/branches/{branch_id}/assign"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (_, key) = app
        .key(&["read", "runtime", "mcp"], json!({"project_id": client}))
        .await;
    (format!("/v1/clients/{client}"), key, branch_id)
}

/// A `tools/call` on `/mcp` (no session), answering the result.
async fn mcp_call(app: &TestApp, key: &str, name: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": args}});
    let res = app
        .raw()
        .post(app.url("/mcp"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (s, v) = crate::harness::split(res).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["error"].is_null(), "{v}");
    v["result"].clone()
}

async fn start(app: &TestApp, c: &str, key: &str, branch: &str) -> String {
    let (s, r) = app
        .post(
            &format!("{c}/branches/{branch}/run"),
            key,
            json!({"input": {"n": 1}, "mode": "async"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    format!("{c}/runs/{}", r["run"]["id"].as_str().unwrap())
}

both!(pause_and_resume, |app: TestApp| async move {
    let branch = json!({
        "name": "Slow",
        "steps": [
            {"id": "nap", "bud": {"kind": "wait", "config": {"duration_ms": 300}}},
            {"id": "after", "bud": {"kind": "transform", "config": {"jq": ".input.n + 1"}}, "depends_on": ["nap"]}
        ]
    });
    let (c, key, branch_id) = setup(&app, branch).await;
    let run = start(&app, &c, &key, &branch_id).await;
    run_until(&app, &key, &run, &["waiting"]).await;

    let (s, r) = app.post(&format!("{run}/pause"), &key, json!({})).await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("paused")),
        "{r}"
    );
    // The timer falls due while paused; it is held, and nothing after it starts.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, r) = app.get(&run, &key).await;
    assert_eq!(r["status"], "paused", "{r}");
    let after = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == "after")
        .unwrap()
        .clone();
    assert_eq!(after["status"], "pending", "{r}");
    let (s, l) = app.get(&format!("{c}/runs?status=paused"), &key).await;
    assert_eq!(s, StatusCode::OK, "{l}");
    assert_eq!(l["data"].as_array().map(Vec::len), Some(1), "{l}");

    let (s, r) = app.post(&format!("{run}/resume"), &key, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_ne!(r["status"], "paused", "{r}");
    let done = run_until(&app, &key, &run, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(
        (done["status"].as_str(), &done["output"]),
        (Some("succeeded"), &json!(2)),
        "{done}"
    );

    // Conflicts: the run is final now.
    let (s, b) = app.post(&format!("{run}/pause"), &key, json!({})).await;
    assert_error(s, &b, 409, "conflict");
    let (s, b) = app.post(&format!("{run}/resume"), &key, json!({})).await;
    assert_error(s, &b, 409, "conflict");
    let (s, e) = app.get(&format!("{run}/events"), &key).await;
    assert_eq!(s, StatusCode::OK);
    let text = e.to_string();
    assert!(
        text.contains("run.paused") && text.contains("run.resumed"),
        "{text}"
    );

    // Another client's run is not found, whatever the action.
    let other = app.client("Other").await;
    let (_, other_key) = app
        .key(&["read", "runtime"], json!({"project_id": other}))
        .await;
    let id = run.rsplit('/').next().unwrap();
    for action in ["pause", "resume", "recover"] {
        let (s, b) = app
            .post(
                &format!("/v1/clients/{other}/runs/{id}/{action}"),
                &other_key,
                json!({}),
            )
            .await;
        assert_error(s, &b, 404, "run_not_found");
    }
    let (s, b) = app
        .post(
            &format!("/v1/clients/{other}/runs/{id}/retry"),
            &other_key,
            json!({"step_id": "nap"}),
        )
        .await;
    assert_error(s, &b, 404, "run_not_found");
});

both!(retry_and_recover_a_failed_step, |app: TestApp| async move {
    let branch = json!({
        "name": "Broken",
        "steps": [
            {"id": "ok", "bud": {"kind": "transform", "config": {"jq": ".input.n"}}},
            {"id": "bad", "bud": {"kind": "transform", "config": {"jq": ".input.missing | keys"}}, "depends_on": ["ok"]},
            {"id": "after", "bud": {"kind": "transform"}, "depends_on": ["bad"]}
        ]
    });
    let (c, key, branch_id) = setup(&app, branch).await;
    let run = start(&app, &c, &key, &branch_id).await;
    let failed = run_until(&app, &key, &run, &["failed", "succeeded"]).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let step = |r: &Value, id: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(step(&failed, "bad")["attempt"], 1);

    // A step that succeeded cannot be retried; an unknown one is invalid.
    let (s, b) = app
        .post(&format!("{run}/retry"), &key, json!({"step_id": "ok"}))
        .await;
    assert_error(s, &b, 409, "conflict");
    let (s, b) = app
        .post(&format!("{run}/retry"), &key, json!({"step_id": "nope"}))
        .await;
    assert!(s.is_client_error() && s != StatusCode::CONFLICT, "{s} {b}");

    // Retried, the step runs again (attempt 2) and fails again: jq errors are not fixed by
    // running twice.
    let (s, r) = app
        .post(&format!("{run}/retry"), &key, json!({"step_id": "bad"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let again = run_until(&app, &key, &run, &["failed"]).await;
    assert_eq!(step(&again, "bad")["attempt"], 2, "{again}");
    assert_eq!(step(&again, "after")["status"], "cancelled", "{again}");

    // Recover (here as an MCP tool) reruns it once more; `ok` does not depend on it and is
    // kept.
    let client = c.rsplit('/').next().unwrap();
    let run_id = run.rsplit('/').next().unwrap();
    let r = mcp_call(
        &app,
        &key,
        "recover_client_run",
        json!({"client_id": client, "run_id": run_id}),
    )
    .await;
    assert_eq!(r["isError"], false, "{r}");
    let third = run_until(&app, &key, &run, &["failed"]).await;
    assert_eq!(step(&third, "bad")["attempt"], 3, "{third}");
    assert_eq!(step(&third, "ok")["attempt"], 1, "{third}");
    let (_, e) = app.get(&format!("{run}/events"), &key).await;
    let text = e.to_string();
    assert!(
        text.contains("step.retry_requested") && text.contains("run.recovering"),
        "{text}"
    );
});
