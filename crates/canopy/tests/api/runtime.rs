//! Stackmint runtime (issue 5 §4): authoring buds and branches, assignment, runs sync and
//! async, approvals, cancel, the SSE event stream, versions, 404s and scopes.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, assert_error};

/// A transform bud doubling `input.n`.
fn double_bud() -> Value {
    json!({"name": "Double", "description": "n * 2", "kind": "transform", "config": {"jq": ".input.n * 2"}})
}

/// transform (a bud by id) → approval → transform (inline).
fn gated_branch(bud_id: &str) -> Value {
    json!({
        "name": "Gated",
        "steps": [
            {"id": "double", "bud_id": bud_id},
            {"id": "gate", "bud": {"kind": "approval", "config": {"prompt": "Go on?"}}, "depends_on": ["double"]},
            {"id": "plus", "bud": {"kind": "transform", "config": {"jq": ".steps.double.output + 1"}}, "depends_on": ["gate"]}
        ]
    })
}

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

async fn put(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    crate::harness::split(app.req(Method::PUT, path, Some(key), Some(body)).await).await
}

/// Reads an SSE stream until `until` appears in it (or 15 s pass); answers the text.
async fn sse(app: &TestApp, path: &str, key: &str, last_id: Option<i64>, until: &str) -> String {
    let mut req = app
        .raw()
        .get(app.url(path))
        .bearer_auth(key)
        .header("accept", "text/event-stream");
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.to_string());
    }
    let mut res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !text.contains(until) {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(Ok(None)) => break,
            other => panic!("stream ended without {until}: {other:?}\n{text}"),
        }
    }
    text
}

both!(
    author_assign_run_approve_cancel_events,
    |app: TestApp| async move {
        let admin = app.admin_key.clone();
        // Authoring.
        let (s, bud) = app.post("/v1/admin/buds", &admin, double_bud()).await;
        assert_eq!(s, StatusCode::CREATED, "{bud}");
        let bud_id = bud["id"].as_str().unwrap().to_owned();
        assert!(bud_id.starts_with("bud_"), "{bud}");
        assert_eq!(
            (bud["version"].as_i64(), bud["kind"].as_str()),
            (Some(1), Some("transform"))
        );
        let (s, branch) = app
            .post("/v1/admin/branches", &admin, gated_branch(&bud_id))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{branch}");
        let branch_id = branch["id"].as_str().unwrap().to_owned();
        assert!(branch_id.starts_with("brn_"), "{branch}");
        let (s, list) = app.get("/v1/admin/branches", &admin).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let (s, got) = app.get(&format!("/v1/admin/buds/{bud_id}"), &admin).await;
        assert_eq!((s, got["name"].as_str()), (StatusCode::OK, Some("Double")));

        let client = app.client("Acme").await;
        let other = app.client("Other").await;
        let (_, key) = app
            .key(
                &["read", "runtime", "bud.run"],
                json!({"project_id": client}),
            )
            .await;
        let (_, read_only) = app.key(&["read"], json!({"project_id": client})).await;
        let c = format!("/v1/clients/{client}");

        // Nothing is assigned yet.
        let (s, b) = app
            .post(
                &format!("{c}/branches/{branch_id}/run"),
                &key,
                json!({"input": {"n": 1}}),
            )
            .await;
        assert_error(s, &b, 404, "branch_not_found");
        let (s, b) = app
            .post(
                &format!("{c}/buds/{bud_id}/run"),
                &key,
                json!({"input": {"n": 1}}),
            )
            .await;
        assert_error(s, &b, 404, "bud_not_found");
        let (s, l) = app.get(&format!("{c}/branches"), &key).await;
        assert_eq!(
            (s, l["data"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0))
        );

        let (s, a) = app
            .post(
                &format!("/v1/admin/clients/{client}/branches/{branch_id}/assign"),
                &admin,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, a["assigned"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{a}"
        );
        let (s, l) = app.get(&format!("{c}/branches"), &key).await;
        assert_eq!(
            (s, l["data"][0]["id"].as_str()),
            (StatusCode::OK, Some(branch_id.as_str())),
            "{l}"
        );
        // The branch's bud is runnable by the client through it.
        let (s, l) = app.get(&format!("{c}/buds"), &key).await;
        assert_eq!(
            (s, l["data"][0]["id"].as_str()),
            (StatusCode::OK, Some(bud_id.as_str())),
            "{l}"
        );

        // A bud, sync: 200 with the output.
        let (s, r) = app
            .post(
                &format!("{c}/buds/{bud_id}/run"),
                &key,
                json!({"input": {"n": 21}, "mode": "sync"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(
            (r["run"]["status"].as_str(), &r["run"]["output"]),
            (Some("succeeded"), &json!(42)),
            "{r}"
        );
        assert_eq!(r["run"]["bud_id"].as_str(), Some(bud_id.as_str()));
        assert_eq!(r["run"]["steps"][0]["status"], "succeeded");

        // A scope short: read cannot run.
        let (s, b) = app
            .post(
                &format!("{c}/branches/{branch_id}/run"),
                &read_only,
                json!({"input": {"n": 1}}),
            )
            .await;
        assert_error(s, &b, 403, "forbidden");

        // The branch, sync with a short timeout: the approval holds it, so 202 with the run.
        let (s, r) = app
            .post(
                &format!("{c}/branches/{branch_id}/run"),
                &key,
                json!({"input": {"n": 20}, "mode": "sync", "timeout_ms": 300}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
        let run_id = r["run"]["id"].as_str().unwrap().to_owned();
        assert!(run_id.starts_with("run_"), "{r}");
        let run_path = format!("{c}/runs/{run_id}");
        let waiting = run_until(&app, &key, &run_path, &["waiting"]).await;
        let gate = waiting["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step_id"] == "gate")
            .unwrap();
        assert_eq!(gate["status"], "waiting", "{waiting}");
        // Approve through the API; the run finishes.
        let (s, r) = app
            .post(
                &format!("{run_path}/approve"),
                &key,
                json!({"step_id": "gate", "decision": "approve", "comment": "ok"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let done = run_until(&app, &key, &run_path, &["succeeded", "failed"]).await;
        assert_eq!(
            (done["status"].as_str(), &done["output"]),
            (Some("succeeded"), &json!(41)),
            "{done}"
        );
        assert_eq!(done["version"], 1);
        assert!(done["duration_ms"].as_i64().is_some(), "{done}");

        // Events: the replay has every transition, then the stream ends at the final event.
        let text = sse(
            &app,
            &format!("{run_path}/events"),
            &key,
            None,
            "event: run.succeeded",
        )
        .await;
        for t in [
            "run.queued",
            "step.started",
            "step.waiting",
            "approval.decided",
            "run.succeeded",
        ] {
            assert!(
                text.contains(&format!("event: {t}\n")),
                "{t} missing:\n{text}"
            );
        }
        assert!(text.starts_with("id: 1\n"), "{text}");
        // Resume after event 3.
        let text = sse(
            &app,
            &format!("{run_path}/events"),
            &key,
            Some(3),
            "event: run.succeeded",
        )
        .await;
        assert!(text.starts_with("id: 4\n"), "{text}");
        // Resuming after the final event of a finished run ends the stream at once, empty.
        let last = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .filter_map(|n| n.parse::<i64>().ok())
            .max()
            .unwrap();
        let res = app
            .raw()
            .get(app.url(&format!("{run_path}/events")))
            .bearer_auth(&key)
            .header("accept", "text/event-stream")
            .header("last-event-id", last.to_string())
            .send()
            .await
            .unwrap();
        let body = tokio::time::timeout(Duration::from_secs(5), res.text())
            .await
            .expect("the stream of a finished run ends")
            .unwrap();
        assert_eq!(body, "");
        // The same log as JSON without the SSE Accept header.
        let (s, ev) = app
            .get(&format!("{run_path}/events?after_seq=0&limit=2"), &key)
            .await;
        assert_eq!(
            (s, ev["data"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(2)),
            "{ev}"
        );
        assert_eq!(ev["data"][0]["type"], "run.queued");
        assert_eq!(ev["run_status"], "succeeded");

        // Async: 202 at once; SSE tails it live through the approval.
        let (s, r) = app
            .post(
                &format!("{c}/branches/{branch_id}/run"),
                &key,
                json!({"input": {"n": 1}, "mode": "async"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
        let async_path = format!("{c}/runs/{}", r["run"]["id"].as_str().unwrap());
        run_until(&app, &key, &async_path, &["waiting"]).await;
        let tail = {
            let app_url = format!("{async_path}/events");
            let k = key.clone();
            let app = &app;
            async move { sse(app, &app_url, &k, None, "event: run.succeeded").await }
        };
        let approve = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            app.post(
                &format!("{async_path}/approve"),
                &key,
                json!({"step_id": "gate", "decision": "approve"}),
            )
            .await
        };
        let (text, (s, _)) = tokio::join!(tail, approve);
        assert_eq!(s, StatusCode::OK);
        assert!(text.contains("event: approval.decided\n"), "{text}");
        let done = run_until(&app, &key, &async_path, &["succeeded"]).await;
        assert_eq!(done["output"], json!(3));

        // Cancel a waiting run.
        let (_, r) = app
            .post(
                &format!("{c}/branches/{branch_id}/run"),
                &key,
                json!({"input": {"n": 1}, "mode": "async"}),
            )
            .await;
        let cancel_id = r["run"]["id"].as_str().unwrap().to_owned();
        let cancel_path = format!("{c}/runs/{cancel_id}");
        run_until(&app, &key, &cancel_path, &["waiting"]).await;
        let (s, r) = app
            .post(&format!("{cancel_path}/cancel"), &key, json!({}))
            .await;
        assert_eq!(
            (s, r["status"].as_str()),
            (StatusCode::OK, Some("cancelled")),
            "{r}"
        );
        let (s, b) = app
            .post(
                &format!("{cancel_path}/approve"),
                &key,
                json!({"step_id": "gate", "decision": "approve"}),
            )
            .await;
        assert!(s.is_client_error(), "approving a cancelled run: {s} {b}");

        // Listing and filters.
        let (s, l) = app.get(&format!("{c}/runs"), &key).await;
        assert_eq!(
            (s, l["data"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(4)),
            "{l}"
        );
        let (_, l) = app.get(&format!("{c}/runs?status=cancelled"), &key).await;
        assert_eq!(l["data"].as_array().map(Vec::len), Some(1), "{l}");
        assert_eq!(l["data"][0]["id"].as_str(), Some(cancel_id.as_str()));
        let (_, l) = app.get(&format!("{c}/runs?bud_id={bud_id}"), &key).await;
        assert_eq!(l["data"].as_array().map(Vec::len), Some(1), "{l}");
        let (_, l) = app
            .get(&format!("{c}/runs?branch_id={branch_id}&limit=2"), &key)
            .await;
        assert_eq!(l["data"].as_array().map(Vec::len), Some(2), "{l}");
        let cursor = l["pagination"]["next_cursor"].as_str().unwrap().to_owned();
        let (_, l) = app
            .get(
                &format!("{c}/runs?branch_id={branch_id}&limit=2&cursor={cursor}"),
                &key,
            )
            .await;
        assert_eq!(l["data"].as_array().map(Vec::len), Some(1), "{l}");
        let (s, b) = app.get(&format!("{c}/runs?status=done"), &key).await;
        assert_error(s, &b, 422, "invalid_type");

        // Foreign and unknown ids.
        let (s, b) = app
            .get(&format!("/v1/clients/{other}/runs/{run_id}"), &admin)
            .await;
        assert_error(s, &b, 404, "run_not_found");
        let (s, b) = app
            .get(
                &format!("{c}/runs/run_0190f0e0a0b07c3d8e9f0a1b2c3d4e5f"),
                &key,
            )
            .await;
        assert_error(s, &b, 404, "run_not_found");
        let (s, b) = app.get(&format!("{c}/runs/nonsense"), &key).await;
        assert_error(s, &b, 404, "run_not_found");
        let (s, b) = app
            .get(&format!("/v1/clients/{other}/runs/{run_id}"), &key)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        let (s, b) = app
            .post(
                &format!("/v1/clients/{other}/branches/{branch_id}/run"),
                &admin,
                json!({}),
            )
            .await;
        assert_error(s, &b, 404, "branch_not_found");
        let (s, b) = app
            .get(
                "/v1/admin/buds/bud_0190f0e0a0b07c3d8e9f0a1b2c3d4e5f",
                &admin,
            )
            .await;
        assert_error(s, &b, 404, "bud_not_found");

        // Unassigning withdraws the branch (and the bud it brought).
        let (s, _) = app
            .delete(
                &format!("/v1/admin/clients/{client}/branches/{branch_id}/assign"),
                &admin,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) = app
            .post(
                &format!("{c}/buds/{bud_id}/run"),
                &key,
                json!({"input": {"n": 1}}),
            )
            .await;
        assert_error(s, &b, 404, "bud_not_found");
        // A bud assigned on its own.
        let (s, _) = app
            .post(
                &format!("/v1/admin/clients/{client}/buds/{bud_id}/assign"),
                &admin,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, r) = app
            .post(
                &format!("{c}/buds/{bud_id}/run"),
                &key,
                json!({"input": {"n": 5}, "mode": "async"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    }
);

both!(invalid_graphs_and_versions, |app: TestApp| async move {
    let admin = app.admin_key.clone();
    let (s, bud) = app.post("/v1/admin/buds", &admin, double_bud()).await;
    assert_eq!(s, StatusCode::CREATED, "{bud}");
    let bud_id = bud["id"].as_str().unwrap().to_owned();

    // A cycle names the step.
    let cycle = json!({"name": "Loop", "steps": [
        {"id": "a", "bud_id": bud_id, "depends_on": ["b"]},
        {"id": "b", "bud_id": bud_id, "depends_on": ["a"]}
    ]});
    let (s, b) = app.post("/v1/admin/branches", &admin, cycle).await;
    assert_error(s, &b, 422, "invalid_input");
    assert!(
        b["error"]["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("steps[") && f.ends_with("].depends_on")),
        "{b}"
    );
    // An unknown bud, an unknown dependency, a step with neither bud nor bud_id, a bad kind.
    let (s, b) = app
        .post("/v1/admin/branches", &admin, json!({"name": "X", "steps": [{"id": "a", "bud_id": "bud_0190f0e0a0b07c3d8e9f0a1b2c3d4e5f"}]}))
        .await;
    assert_error(s, &b, 422, "invalid_input");
    assert_eq!(b["error"]["field"], "steps[0].bud_id");
    let (s, b) = app
        .post("/v1/admin/branches", &admin, json!({"name": "X", "steps": [{"id": "a", "bud_id": bud_id}, {"id": "b", "bud_id": bud_id, "depends_on": ["zz"]}]}))
        .await;
    assert_error(s, &b, 422, "invalid_input");
    assert_eq!(b["error"]["field"], "steps[1].depends_on");
    let (s, b) = app
        .post(
            "/v1/admin/branches",
            &admin,
            json!({"name": "X", "steps": [{"id": "a"}]}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_input");
    assert_eq!(b["error"]["field"], "steps[0]");
    let (s, b) = app
        .post(
            "/v1/admin/buds",
            &admin,
            json!({"name": "X", "kind": "lmm"}),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{b}");
    assert_eq!(b["error"]["field"], "kind");

    // Versions: a run keeps the version it started with.
    let v1 = json!({"name": "Versioned", "steps": [
        {"id": "gate", "bud": {"kind": "approval"}},
        {"id": "out", "bud": {"kind": "transform", "config": {"jq": "\"v1\""}}, "depends_on": ["gate"]}
    ]});
    let (s, br) = app.post("/v1/admin/branches", &admin, v1).await;
    assert_eq!(s, StatusCode::CREATED, "{br}");
    let branch_id = br["id"].as_str().unwrap().to_owned();
    let client = app.client("Acme").await;
    let c = format!("/v1/clients/{client}");
    app.post(
        &format!("/v1/admin/clients/{client}/branches/{branch_id}/assign"),
        &admin,
        json!({}),
    )
    .await;
    let (s, r) = app
        .post(
            &format!("{c}/branches/{branch_id}/run"),
            &admin,
            json!({"mode": "async"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let old = format!("{c}/runs/{}", r["run"]["id"].as_str().unwrap());
    run_until(&app, &admin, &old, &["waiting"]).await;

    let v2 = json!({"name": "Versioned", "steps": [
        {"id": "gate", "bud": {"kind": "approval"}},
        {"id": "out", "bud": {"kind": "transform", "config": {"jq": "\"v2\""}}, "depends_on": ["gate"]}
    ]});
    let (s, br) = put(&app, &format!("/v1/admin/branches/{branch_id}"), &admin, v2).await;
    assert_eq!(
        (s, br["version"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{br}"
    );
    let (s, b) = put(
        &app,
        &format!("/v1/admin/branches/{branch_id}"),
        &admin,
        json!({"name": "X", "steps": [{"id": "a", "bud_id": bud_id, "depends_on": ["a"]}]}),
    )
    .await;
    assert_error(s, &b, 422, "invalid_input");

    app.post(
        &format!("{old}/approve"),
        &admin,
        json!({"step_id": "gate", "decision": "approve"}),
    )
    .await;
    let done = run_until(&app, &admin, &old, &["succeeded", "failed"]).await;
    assert_eq!(
        (done["version"].as_i64(), &done["output"]),
        (Some(1), &json!("v1")),
        "{done}"
    );

    let (_, r) = app
        .post(
            &format!("{c}/branches/{branch_id}/run"),
            &admin,
            json!({"mode": "async"}),
        )
        .await;
    let new = format!("{c}/runs/{}", r["run"]["id"].as_str().unwrap());
    assert_eq!(r["run"]["version"], 2);
    run_until(&app, &admin, &new, &["waiting"]).await;
    let (s, r) = app
        .post(
            &format!("{new}/approve"),
            &admin,
            json!({"step_id": "gate", "decision": "reject", "comment": "no"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let done = run_until(&app, &admin, &new, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "failed", "{done}");

    // A client's own admin key can neither assign nor author.
    let (_, own) = app.key(&["admin"], json!({"project_id": client})).await;
    let (s, b) = app
        .post(
            &format!("/v1/admin/clients/{client}/buds/{bud_id}/assign"),
            &own,
            json!({}),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.post("/v1/admin/buds", &own, double_bud()).await;
    assert_error(s, &b, 403, "forbidden");
    // A bud's update makes version 2; deleting it answers 404 afterwards.
    let (s, b) = put(
        &app,
        &format!("/v1/admin/buds/{bud_id}"),
        &admin,
        json!({"name": "Triple", "kind": "transform", "config": {"jq": ".input.n * 3"}}),
    )
    .await;
    assert_eq!((s, b["version"].as_i64()), (StatusCode::OK, Some(2)), "{b}");
    let (s, _) = app
        .delete(&format!("/v1/admin/buds/{bud_id}"), &admin)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app.get(&format!("/v1/admin/buds/{bud_id}"), &admin).await;
    assert_error(s, &b, 404, "bud_not_found");
});

both!(shutdown_ends_event_streams, |mut app: TestApp| async move {
    let admin = app.admin_key.clone();
    let (_, br) = app
        .post(
            "/v1/admin/branches",
            &admin,
            json!({"name": "Hold", "steps": [{"id": "gate", "bud": {"kind": "approval"}}]}),
        )
        .await;
    let branch_id = br["id"].as_str().unwrap().to_owned();
    let client = app.client("Acme").await;
    let c = format!("/v1/clients/{client}");
    app.post(
        &format!("/v1/admin/clients/{client}/branches/{branch_id}/assign"),
        &admin,
        json!({}),
    )
    .await;
    let (s, r) = app
        .post(
            &format!("{c}/branches/{branch_id}/run"),
            &admin,
            json!({"mode": "async"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let run = format!("{c}/runs/{}", r["run"]["id"].as_str().unwrap());
    run_until(&app, &admin, &run, &["waiting"]).await;
    // A watcher tails the waiting run...
    let mut res = app
        .raw()
        .get(app.url(&format!("{run}/events")))
        .bearer_auth(&admin)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let first = res.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("id: 1\n"));
    // ...and the graceful shutdown does not wait the grace period (5 s) for it.
    let t = Instant::now();
    let drain = async move { while let Ok(Some(_)) = res.chunk().await {} };
    let ((), ()) = tokio::join!(app.shutdown(), drain);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The run survives the restart and can still be decided.
    app.launch().await;
    let (s, r) = app
        .post(
            &format!("{run}/approve"),
            &admin,
            json!({"step_id": "gate", "decision": "approve"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let done = run_until(&app, &admin, &run, &["succeeded"]).await;
    assert_eq!(done["status"], "succeeded");
});

/// A `tools/call` on `/mcp` (2026-07-28, no session), answering the result.
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

both!(
    runtime_operations_are_mcp_tools,
    |app: TestApp| async move {
        let admin = app.admin_key.clone();
        let client = app.client("Acme").await;
        let bud = mcp_call(&app, &admin, "create_bud", double_bud()).await;
        assert_eq!(bud["isError"], false, "{bud}");
        let bud_id = bud["structuredContent"]["id"].as_str().unwrap().to_owned();
        let a = mcp_call(
            &app,
            &admin,
            "assign_bud",
            json!({"client_id": client, "bud_id": bud_id}),
        )
        .await;
        assert_eq!(a["structuredContent"]["assigned"], true, "{a}");
        let r = mcp_call(
            &app,
            &admin,
            "run_bud",
            json!({"client_id": client, "bud_id": bud_id, "input": {"n": 4}}),
        )
        .await;
        assert_eq!(r["isError"], false, "{r}");
        let run = &r["structuredContent"]["run"];
        assert_eq!(
            (run["status"].as_str(), &run["output"]),
            (Some("succeeded"), &json!(8)),
            "{r}"
        );
        let run_id = run["id"].as_str().unwrap().to_owned();
        let got = mcp_call(
            &app,
            &admin,
            "get_client_run",
            json!({"client_id": client, "run_id": run_id}),
        )
        .await;
        assert_eq!(got["structuredContent"]["output"], 8, "{got}");
        let list = mcp_call(
            &app,
            &admin,
            "list_client_runs",
            json!({"client_id": client}),
        )
        .await;
        assert_eq!(
            list["structuredContent"]["data"].as_array().map(Vec::len),
            Some(1),
            "{list}"
        );
        let ev = mcp_call(
            &app,
            &admin,
            "list_client_run_events",
            json!({"client_id": client, "run_id": run_id}),
        )
        .await;
        assert_eq!(ev["structuredContent"]["run_status"], "succeeded", "{ev}");
        // A missing run is a tool error naming the code.
        let miss = mcp_call(
            &app,
            &admin,
            "get_client_run",
            json!({"client_id": client, "run_id": "run_0190f0e0a0b07c3d8e9f0a1b2c3d4e5f"}),
        )
        .await;
        assert_eq!(miss["isError"], true, "{miss}");
        assert!(miss.to_string().contains("run_not_found"), "{miss}");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_runs_202_and_events_sse() {
    let app = TestApp::sqlite().await;
    let spec: Value = app
        .raw()
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = &spec["paths"]["/v1/clients/{clientId}/branches/{branchId}/run"]["post"];
    assert_eq!(run["operationId"], "run_branch");
    assert!(
        run["responses"]["200"].is_object() && run["responses"]["202"].is_object(),
        "{run}"
    );
    let ev = &spec["paths"]["/v1/clients/{clientId}/runs/{runId}/events"]["get"];
    assert!(
        ev["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{ev}"
    );
    for p in [
        "/v1/admin/buds/{budId}",
        "/v1/admin/branches",
        "/v1/clients/{clientId}/runs",
    ] {
        assert!(spec["paths"][p].is_object(), "{p}");
    }
}
