//! Runbooks (issue 6 §3, §5): templates with every step type, routing on check / gate /
//! branch outcomes, variables, frozen steps, gate decisions, skip / fail / pause / resume /
//! cancel, a restart mid-run, the engine's event log, credits, delete while runs are active.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, assert_error};

async fn runbook(app: &TestApp, key: &str, body: Value) -> Value {
    let (s, r) = app.post("/v1/runbooks", key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["data"].clone()
}

async fn start(app: &TestApp, key: &str, rb: &Value, vars: Value) -> Value {
    let id = rb["id"].as_str().unwrap();
    let (s, r) = app
        .post(
            &format!("/v1/runbooks/{id}/runs"),
            key,
            json!({"variables": vars}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    r["data"].clone()
}

/// POSTs `action` on the run; answers the status and body.
async fn act(
    app: &TestApp,
    key: &str,
    run: &str,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.post(&format!("/v1/runbooks/runs/{run}/{action}"), key, body)
        .await
}

/// POSTs `action` on the run, which must succeed; answers the run.
async fn ok(app: &TestApp, key: &str, run: &str, action: &str, body: Value) -> Value {
    let (s, r) = act(app, key, run, action, body).await;
    assert_eq!(s, StatusCode::OK, "{action}: {r}");
    r["data"].clone()
}

async fn current(app: &TestApp, key: &str, run: &str) -> Value {
    let (s, r) = app
        .get(&format!("/v1/runbooks/runs/{run}/current"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["data"].clone()
}

async fn events(app: &TestApp, key: &str, run: &str) -> Vec<Value> {
    let (s, r) = app
        .get(&format!("/v1/runbooks/runs/{run}/events"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["data"].as_array().unwrap().clone()
}

/// The step keys the run reached, in order (from the engine's event log).
async fn path(app: &TestApp, key: &str, run: &str) -> Vec<String> {
    events(app, key, run)
        .await
        .iter()
        .filter(|e| e["type"] == "runbook.step_activated")
        .map(|e| e["step"].as_str().unwrap().to_owned())
        .collect()
}

fn state_of(run: &Value, key: &str) -> String {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Every step type: a check that goes to `fix` on fail, a gate, a branch with two routes.
fn release_book() -> Value {
    json!({
        "name": "Release",
        "category": "Ops",
        "tags": ["deploy"],
        "steps": [
            {"key": "prepare", "title": "Prepare", "type": "action"},
            {"key": "verify", "title": "Verify", "type": "check", "on_pass": "approve", "on_fail": "fix"},
            {"key": "fix", "title": "Fix", "type": "action"},
            {"key": "approve", "title": "Approve", "type": "gate"},
            {"key": "strategy", "title": "Strategy", "type": "branch",
             "routes": {"canary": "canary", "full": "release"}},
            {"key": "canary", "title": "Canary", "type": "action"},
            {"key": "release", "title": "Release", "type": "action"}
        ]
    })
}

both!(
    every_step_type_and_both_check_branches,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let (_, before) = app.get("/v1/usage", &k).await;
        let rb = runbook(&app, &k, release_book()).await;
        let (_, after) = app.get("/v1/usage", &k).await;
        let spent = |u: &Value| u["data"]["project"]["used"].as_i64().unwrap();
        assert_eq!(spent(&after) - spent(&before), 5, "{before} {after}");
        assert!(rb["id"].as_str().unwrap().starts_with("rnb_"), "{rb}");
        assert!(
            rb["steps"][0]["id"].as_str().unwrap().starts_with("rbs_"),
            "{rb}"
        );
        assert_eq!(rb["steps"][3]["type"], "gate");

        // A check passing: the fix is never reached, the branch takes `full`.
        let a = start(&app, &k, &rb, json!({})).await;
        let ra = id(&a);
        assert!(ra.starts_with("run_"), "{a}");
        assert!(
            a["steps"][0]["id"].as_str().unwrap().starts_with("rrs_"),
            "{a}"
        );
        assert_eq!(
            (a["status"].as_str(), a["current_step"].as_str()),
            (Some("running"), Some("prepare"))
        );
        ok(&app, &k, &ra, "advance", json!({"notes": "tagged"})).await;
        ok(&app, &k, &ra, "advance", json!({"outcome": "pass"})).await;
        ok(
            &app,
            &k,
            &ra,
            "gate",
            json!({"decision": "approved", "notes": "lgtm"}),
        )
        .await;
        let (s, e) = act(&app, &k, &ra, "advance", json!({"outcome": "sideways"})).await;
        assert_error(s, &e, 422, "validation_error");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains("`canary`") && msg.contains("`full`"), "{e}");
        ok(&app, &k, &ra, "advance", json!({"outcome": "full"})).await;
        let done = ok(
            &app,
            &k,
            &ra,
            "advance",
            json!({"output": {"version": "1.2"}}),
        )
        .await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["current_step"], Value::Null);
        assert_eq!(
            path(&app, &k, &ra).await,
            ["prepare", "verify", "approve", "strategy", "release"]
        );
        assert_eq!(state_of(&done, "fix"), "pending");
        assert_eq!(state_of(&done, "canary"), "pending");
        assert_eq!(state_of(&done, "release"), "completed");
        let release = &done["steps"][6];
        assert_eq!(release["output"]["version"], "1.2", "{done}");
        let verify = &done["steps"][1];
        assert_eq!(verify["outcome"], "pass");
        let gate = &done["steps"][3];
        assert_eq!(
            (gate["outcome"].as_str(), gate["notes"].as_str()),
            (Some("approved"), Some("lgtm"))
        );

        // A check failing: on_fail goes to `fix`, then on by position; the branch takes `canary`.
        let b = start(&app, &k, &rb, json!({})).await;
        let rbn = id(&b);
        ok(&app, &k, &rbn, "advance", json!({})).await;
        let r = ok(
            &app,
            &k,
            &rbn,
            "advance",
            json!({"outcome": "fail", "notes": "red"}),
        )
        .await;
        assert_eq!(r["current_step"], "fix", "{r}");
        ok(&app, &k, &rbn, "advance", json!({})).await;
        ok(&app, &k, &rbn, "gate", json!({"decision": "approved"})).await;
        ok(&app, &k, &rbn, "advance", json!({"outcome": "canary"})).await;
        ok(&app, &k, &rbn, "advance", json!({})).await;
        let done = ok(&app, &k, &rbn, "advance", json!({})).await;
        assert_eq!(done["status"], "completed");
        assert_eq!(
            path(&app, &k, &rbn).await,
            [
                "prepare", "verify", "fix", "approve", "strategy", "canary", "release"
            ]
        );
        assert_eq!(done["steps"][1]["outcome"], "fail");

        // Listing: both runs, filters by status and runbook.
        let (s, l) = app
            .get(
                &format!("/v1/runbooks/runs?status=completed&runbook_id={}", id(&rb)),
                &k,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{l}");
        assert_eq!(l["data"].as_array().unwrap().len(), 2, "{l}");
        let (_, l) = app.get("/v1/runbooks/runs?status=running", &k).await;
        assert_eq!(l["data"].as_array().unwrap().len(), 0, "{l}");
        // A finished run does not move.
        let (s, e) = act(&app, &k, &ra, "advance", json!({})).await;
        assert_error(s, &e, 409, "conflict");
    }
);

both!(
    variables_defaults_and_frozen_steps,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let rb = runbook(
        &app,
        &k,
        json!({
            "name": "Deploy",
            "variables": [
                {"name": "env", "required": true},
                {"name": "version", "default": "1.0"},
                {"name": "note"}
            ],
            "steps": [
                {"key": "deploy", "title": "Deploy to {env}", "instructions": "Ship {version} to {env}. {note}"},
                {"key": "smoke", "title": "Smoke test", "type": "check"}
            ]
        }),
    )
    .await;
        let rid = id(&rb);
        // A missing required variable: 422, nothing started.
        let (s, e) = app
            .post(
                &format!("/v1/runbooks/{rid}/runs"),
                &k,
                json!({"variables": {"version": "2"}}),
            )
            .await;
        assert_error(s, &e, 422, "validation_error");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("env"),
            "{e}"
        );
        let (s, e) = app
            .post(
                &format!("/v1/runbooks/{rid}/runs"),
                &k,
                json!({"variables": {"env": "x", "evn": "y"}}),
            )
            .await;
        assert_error(s, &e, 422, "validation_error");
        let (_, l) = app
            .get(&format!("/v1/runbooks/runs?runbook_id={rid}"), &k)
            .await;
        assert_eq!(l["data"].as_array().unwrap().len(), 0, "{l}");

        let run = start(&app, &k, &rb, json!({"env": "prod"})).await;
        let r = id(&run);
        assert_eq!(run["variables"], json!({"env": "prod", "version": "1.0"}));
        let cur = current(&app, &k, &r).await;
        assert_eq!(cur["step"]["key"], "deploy");
        assert_eq!(cur["step"]["title"], "Deploy to prod");
        assert_eq!(cur["step"]["instructions"], "Ship 1.0 to prod. {note}");
        assert_eq!(cur["total_steps"], 2);

        // Editing the template during the run changes nothing in it.
        let (s, u) = app
            .patch(
                &format!("/v1/runbooks/{rid}"),
                &k,
                json!({"steps": [{"key": "deploy", "title": "Changed", "instructions": "new"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{u}");
        assert_eq!(u["data"]["steps"].as_array().unwrap().len(), 1);
        assert_eq!(
            u["data"]["steps"][0]["id"], rb["steps"][0]["id"],
            "a kept key keeps its id"
        );
        let cur = current(&app, &k, &r).await;
        assert_eq!(cur["step"]["title"], "Deploy to prod");
        assert_eq!(cur["total_steps"], 2);
        let after = ok(&app, &k, &r, "advance", json!({})).await;
        assert_eq!(after["current_step"], "smoke", "{after}");
        let done = ok(&app, &k, &r, "advance", json!({"outcome": "pass"})).await;
        assert_eq!(done["status"], "completed");
        // A new run takes the new steps.
        let fresh = start(&app, &k, &rb, json!({"env": "dev"})).await;
        assert_eq!(fresh["steps"].as_array().unwrap().len(), 1);
        assert_eq!(fresh["steps"][0]["title"], "Changed");
    }
);

both!(gate_decisions, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let rb = runbook(
        &app,
        &k,
        json!({"name": "Gated", "steps": [
            {"key": "sign_off", "title": "Sign off", "type": "gate", "on_fail": "undo"},
            {"key": "go", "title": "Go"},
            {"key": "undo", "title": "Undo"}
        ]}),
    )
    .await;
    // Before a decision the gate does not advance (nor skip).
    let a = id(&start(&app, &k, &rb, json!({})).await);
    let (s, e) = act(&app, &k, &a, "advance", json!({})).await;
    assert_error(s, &e, 409, "gate_pending");
    let (s, e) = act(&app, &k, &a, "skip", json!({})).await;
    assert_error(s, &e, 409, "gate_pending");
    let (s, e) = act(&app, &k, &a, "gate", json!({"decision": "maybe"})).await;
    assert_eq!(s.as_u16(), 422, "{e}");
    assert_eq!(current(&app, &k, &a).await["step"]["key"], "sign_off");
    let r = ok(&app, &k, &a, "gate", json!({"decision": "approved"})).await;
    assert_eq!(r["current_step"], "go", "{r}");
    assert_eq!(state_of(&r, "sign_off"), "completed");
    // A decision on a step that is not a gate.
    let (s, e) = act(&app, &k, &a, "gate", json!({"decision": "approved"})).await;
    assert_error(s, &e, 409, "conflict");

    // Rejected with on_fail: the run goes there.
    let b = id(&start(&app, &k, &rb, json!({})).await);
    let r = ok(
        &app,
        &k,
        &b,
        "gate",
        json!({"decision": "rejected", "notes": "not today"}),
    )
    .await;
    assert_eq!(
        (r["status"].as_str(), r["current_step"].as_str()),
        (Some("running"), Some("undo"))
    );
    assert_eq!(state_of(&r, "sign_off"), "failed");
    assert_eq!(r["steps"][0]["outcome"], "rejected");

    // Rejected without on_fail: the run fails.
    let plain = runbook(
        &app,
        &k,
        json!({"name": "Plain gate", "steps": [{"key": "g", "title": "G", "type": "gate"}, {"key": "after", "title": "After"}]}),
    )
    .await;
    let c = id(&start(&app, &k, &plain, json!({})).await);
    let r = ok(
        &app,
        &k,
        &c,
        "gate",
        json!({"decision": "rejected", "notes": "no"}),
    )
    .await;
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["error"]["code"], "gate_rejected");
    assert_eq!(r["error"]["step"], "g");
    assert_eq!(state_of(&r, "after"), "pending");
});

both!(skip_fail_pause_resume_cancel, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let rb = runbook(
        &app,
        &k,
        json!({"name": "Control", "steps": [
            {"key": "a", "title": "A"},
            {"key": "b", "title": "B", "type": "check", "on_fail": "d"},
            {"key": "c", "title": "C"},
            {"key": "d", "title": "D"},
            {"key": "e", "title": "E"}
        ]}),
    )
    .await;
    let r = id(&start(&app, &k, &rb, json!({})).await);
    let run = ok(&app, &k, &r, "skip", json!({"notes": "not needed"})).await;
    assert_eq!(state_of(&run, "a"), "skipped");
    assert_eq!(run["current_step"], "b");
    // Failing a step with on_fail: the run goes there.
    let run = ok(&app, &k, &r, "fail", json!({"notes": "broken"})).await;
    assert_eq!(state_of(&run, "b"), "failed");
    assert_eq!(
        (run["status"].as_str(), run["current_step"].as_str()),
        (Some("running"), Some("d"))
    );
    assert_eq!(state_of(&run, "c"), "pending");

    // Paused: nothing moves until resumed.
    let run = ok(&app, &k, &r, "pause", json!({})).await;
    assert_eq!(run["status"], "paused");
    let (s, e) = act(&app, &k, &r, "advance", json!({})).await;
    assert_error(s, &e, 409, "conflict");
    let (_, l) = app.get("/v1/runbooks/runs?status=paused", &k).await;
    assert_eq!(l["data"][0]["id"], r.as_str(), "{l}");
    assert_eq!(current(&app, &k, &r).await["step"]["key"], "d");
    let run = ok(&app, &k, &r, "resume", json!({})).await;
    assert_eq!(
        (run["status"].as_str(), run["current_step"].as_str()),
        (Some("running"), Some("d"))
    );
    let (s, e) = act(&app, &k, &r, "resume", json!({})).await;
    assert_error(s, &e, 409, "conflict");
    // Naming the step guards against ending one twice: the repeat finds `e` active.
    let run = ok(&app, &k, &r, "advance", json!({"step": "d"})).await;
    assert_eq!(run["current_step"], "e");
    let (s, e) = act(&app, &k, &r, "advance", json!({"step": "d"})).await;
    assert_error(s, &e, 409, "conflict");
    assert_eq!(e["error"]["current_step"], "e", "{e}");
    assert_eq!(current(&app, &k, &r).await["step"]["key"], "e");

    // Cancelled: final, nothing moves.
    let run = ok(&app, &k, &r, "cancel", json!({})).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["current_step"], Value::Null);
    assert_eq!(state_of(&run, "e"), "skipped", "{run}");
    assert_eq!(state_of(&run, "c"), "pending");
    let (s, e) = act(&app, &k, &r, "advance", json!({})).await;
    assert_error(s, &e, 409, "conflict");
    let (s, e) = act(&app, &k, &r, "pause", json!({})).await;
    assert_error(s, &e, 409, "conflict");

    // Failing a step without on_fail fails the run.
    let r2 = id(&start(&app, &k, &rb, json!({})).await);
    let run = ok(&app, &k, &r2, "fail", json!({"notes": "disk full"})).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["step"], "a");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk full")
    );

    // An unknown run finds nothing.
    let (s, e) = app
        .get("/v1/runbooks/runs/run_00000000000000000000000000000000", &k)
        .await;
    assert_error(s, &e, 404, "not_found");
});

both!(
    restart_mid_run_and_event_log,
    |mut app: TestApp| async move {
        let k = app.admin_key.clone();
        let rb = runbook(
            &app,
            &k,
            json!({"name": "Long", "steps": [
                {"key": "one", "title": "One"},
                {"key": "two", "title": "Two", "type": "check"},
                {"key": "three", "title": "Three"}
            ]}),
        )
        .await;
        let r = id(&start(&app, &k, &rb, json!({})).await);
        ok(&app, &k, &r, "advance", json!({"notes": "done one"})).await;
        ok(&app, &k, &r, "pause", json!({})).await;

        app.restart().await;

        // The run is where it stopped: paused at `two`.
        let (s, run) = app.get(&format!("/v1/runbooks/runs/{r}"), &k).await;
        assert_eq!(s, StatusCode::OK, "{run}");
        assert_eq!(
            (
                run["data"]["status"].as_str(),
                run["data"]["current_step"].as_str()
            ),
            (Some("paused"), Some("two"))
        );
        assert_eq!(run["data"]["steps"][0]["notes"], "done one");
        // Bootstrap's active state reads the engine's runs: the paused run is there.
        let (s, b) = app.get("/v1/bootstrap", &k).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let active = &b["data"]["active_state"]["runbook_runs"];
        assert!(
            active
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == r.as_str() && x["status"] == "paused"),
            "{active}"
        );
        ok(&app, &k, &r, "resume", json!({})).await;
        assert_eq!(current(&app, &k, &r).await["step"]["key"], "two");
        ok(&app, &k, &r, "advance", json!({"outcome": "pass"})).await;
        let done = ok(&app, &k, &r, "advance", json!({})).await;
        assert_eq!(done["status"], "completed");

        // Every transition is in the engine's log, in order.
        let ev = events(&app, &k, &r).await;
        let seqs: Vec<i64> = ev.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        let got: Vec<(String, String)> = ev
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["step"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("run.queued", ""),
            ("run.started", ""),
            ("runbook.step_activated", "one"),
            ("runbook.step_completed", "one"),
            ("runbook.step_activated", "two"),
            ("run.paused", ""),
            ("run.resumed", ""),
            ("runbook.step_completed", "two"),
            ("runbook.step_activated", "three"),
            ("runbook.step_completed", "three"),
            ("run.succeeded", ""),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, want);
        let completed = &ev[3];
        assert_eq!(completed["data"]["next"], "two", "{completed}");
        assert_eq!(completed["data"]["notes"], "done one");
    }
);

both!(templates_validation_and_delete, |app: TestApp| async move {
    let k = app.admin_key.clone();
    // Bad templates: each refused with the field, and nothing charged.
    let (_, before) = app.get("/v1/usage", &k).await;
    for (body, field) in [
        (json!({"name": "x", "steps": []}), "steps"),
        (
            json!({"name": "x", "steps": [{"key": "a", "title": "A"}, {"key": "a", "title": "B"}]}),
            "steps[1].key",
        ),
        (
            json!({"name": "x", "steps": [{"key": "a", "title": "A", "type": "check", "on_fail": "zz"}]}),
            "steps[0].on_fail",
        ),
        (
            json!({"name": "x", "steps": [{"key": "a", "title": "A", "type": "branch"}]}),
            "steps[0].routes",
        ),
        (
            json!({"name": "x", "steps": [{"key": "a", "title": "A", "on_pass": "a"}]}),
            "steps[0].on_pass",
        ),
    ] {
        let (s, e) = app.post("/v1/runbooks", &k, body.clone()).await;
        assert_eq!(s.as_u16(), 422, "{body} → {e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let (s, e) = app
        .post(
            "/v1/runbooks",
            &k,
            json!({"name": "x", "steps": [{"key": "a", "title": "A", "type": "teleport"}]}),
        )
        .await;
    assert_error(s, &e, 422, "invalid_type");
    let (_, after) = app.get("/v1/usage", &k).await;
    let spent = |u: &Value| u["data"]["project"]["used"].as_i64().unwrap();
    assert_eq!(spent(&after), spent(&before));

    let rb = runbook(
        &app,
        &k,
        json!({"name": "Del", "steps": [{"key": "a", "title": "A"}]}),
    )
    .await;
    let rid = id(&rb);
    let (s, l) = app.get("/v1/runbooks?tag=none", &k).await;
    assert_eq!(
        (s, l["data"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    let (_, l) = app.get("/v1/runbooks", &k).await;
    assert_eq!(l["data"][0]["id"], rid.as_str());
    let run = id(&start(&app, &k, &rb, json!({})).await);
    // Starting runs is free.
    let (_, again) = app.get("/v1/usage", &k).await;
    assert_eq!(spent(&again) - spent(&after), 5);

    let (s, e) = app.delete(&format!("/v1/runbooks/{rid}"), &k).await;
    assert_error(s, &e, 409, "conflict");
    let (s, _) = app.get(&format!("/v1/runbooks/{rid}"), &k).await;
    assert_eq!(s, StatusCode::OK);
    let (s, d) = app
        .delete(&format!("/v1/runbooks/{rid}?force=true"), &k)
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let (s, _) = app.get(&format!("/v1/runbooks/{rid}"), &k).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The run goes on with its frozen steps.
    let done = ok(&app, &k, &run, "advance", json!({})).await;
    assert_eq!(done["status"], "completed");

    // Once its runs are over, a runbook deletes without force.
    let rb2 = runbook(
        &app,
        &k,
        json!({"name": "Del2", "steps": [{"key": "a", "title": "A"}]}),
    )
    .await;
    let r2 = id(&start(&app, &k, &rb2, json!({})).await);
    ok(&app, &k, &r2, "cancel", json!({})).await;
    let (s, d) = app.delete(&format!("/v1/runbooks/{}", id(&rb2)), &k).await;
    assert_eq!(s, StatusCode::OK, "{d}");
});

/// A `tools/call` on `/mcp`; answers the tool's structured result (which must not be an error).
async fn tool(app: &TestApp, key: &str, name: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": args}});
    let res = app
        .raw()
        .post(app.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (s, r) = crate::harness::split(res).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["result"]["isError"], false, "{name}: {r}");
    r["result"]["structuredContent"].clone()
}

both!(seed_tools_over_mcp, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let rb = tool(
        &app,
        &k,
        "create_runbook",
        json!({"name": "Via MCP", "variables": [{"name": "who", "required": true}],
               "steps": [{"key": "greet", "title": "Greet {who}"}, {"key": "gate", "title": "OK?", "type": "gate"}]}),
    )
    .await;
    let rid = rb["data"]["id"].as_str().unwrap().to_owned();
    let listed = tool(&app, &k, "list_runbooks", json!({})).await;
    assert_eq!(listed["data"][0]["id"], rid.as_str(), "{listed}");
    let run = tool(
        &app,
        &k,
        "start_run",
        json!({"id": rid, "variables": {"who": "Ada"}}),
    )
    .await;
    let run_id = run["data"]["id"].as_str().unwrap().to_owned();
    let cur = tool(&app, &k, "get_current_step", json!({"run_id": run_id})).await;
    assert_eq!(cur["data"]["step"]["title"], "Greet Ada", "{cur}");
    let moved = tool(
        &app,
        &k,
        "advance_step",
        json!({"run_id": run_id, "notes": "hi"}),
    )
    .await;
    assert_eq!(moved["data"]["current_step"], "gate", "{moved}");
    let paused = tool(&app, &k, "pause_run", json!({"run_id": run_id})).await;
    assert_eq!(paused["data"]["status"], "paused");
    tool(&app, &k, "resume_run", json!({"run_id": run_id})).await;
    let done = tool(
        &app,
        &k,
        "decide_gate",
        json!({"run_id": run_id, "decision": "approved"}),
    )
    .await;
    assert_eq!(done["data"]["status"], "completed", "{done}");
    let runs = tool(&app, &k, "list_runs", json!({"runbook_id": rid})).await;
    assert_eq!(runs["data"][0]["id"], run_id.as_str(), "{runs}");
    let one = tool(&app, &k, "get_run", json!({"run_id": run_id})).await;
    assert_eq!(one["data"]["steps"][0]["notes"], "hi");
});

both!(a_check_routing_back_loops, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let rb = runbook(
        &app,
        &k,
        json!({"name": "Retry until green", "steps": [
            {"key": "try", "title": "Try"},
            {"key": "test", "title": "Test", "type": "check", "on_fail": "try"},
            {"key": "ship", "title": "Ship"}
        ]}),
    )
    .await;
    let r = id(&start(&app, &k, &rb, json!({})).await);
    ok(&app, &k, &r, "advance", json!({})).await;
    let back = ok(
        &app,
        &k,
        &r,
        "advance",
        json!({"outcome": "fail", "notes": "red"}),
    )
    .await;
    assert_eq!(back["current_step"], "try", "{back}");
    assert_eq!(state_of(&back, "try"), "active");
    assert_eq!(back["steps"][0]["visits"], 2);
    // The step reached again starts afresh; its first outcome stays in the log.
    assert_eq!(back["steps"][0]["outcome"], Value::Null);
    ok(&app, &k, &r, "advance", json!({})).await;
    ok(&app, &k, &r, "advance", json!({"outcome": "pass"})).await;
    let done = ok(&app, &k, &r, "advance", json!({})).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        path(&app, &k, &r).await,
        ["try", "test", "try", "test", "ship"]
    );
    let failed_once = events(&app, &k, &r)
        .await
        .into_iter()
        .find(|e| e["type"] == "runbook.step_completed" && e["data"]["outcome"] == "fail")
        .unwrap();
    assert_eq!(failed_once["data"]["notes"], "red");
    assert_eq!(failed_once["data"]["next"], "try");
});

// Runbook runs share the engine's tables with Stackmint's runs but are not a client's bud or
// branch runs: its run routes neither list nor show them.
both!(
    runbook_runs_stay_out_of_client_runs,
    |app: TestApp| async move {
        let client = app.client("Ops").await;
        let (_, key) = app
            .key(&["read", "write", "runtime"], json!({"project_id": client}))
            .await;
        let (s, rb) = app
            .post(
                "/v1/runbooks",
                &key,
                json!({"name": "Deploy", "steps": [{"key": "go", "title": "Go"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{rb}");
        let rb_id = rb["data"]["id"].as_str().unwrap();
        let (s, run) = app
            .post(&format!("/v1/runbooks/{rb_id}/runs"), &key, json!({}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{run}");
        let run_id = run["data"]["id"].as_str().unwrap();
        let (s, list) = app.get(&format!("/v1/clients/{client}/runs"), &key).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
        let (s, e) = app
            .get(&format!("/v1/clients/{client}/runs/{run_id}"), &key)
            .await;
        assert_error(s, &e, 404, "run_not_found");
        // Bootstrap names the runbook with its prefixed id.
        let (_, boot) = app.get("/v1/bootstrap", &key).await;
        assert_eq!(
            boot["data"]["active_state"]["runbook_runs"][0]["definition_id"], rb["data"]["id"],
            "{boot}"
        );
    }
);

// Advance, skip, fail and gate answer the run as their transaction left it (built from the
// rows it read once, not read again): every answer is what a read right after shows. And
// they move only the project's runbook runs: another project's run, or an engine run that
// is not a runbook run, is not found and does not change.
both!(
    moves_answer_the_run_as_stored_and_only_visible_runs,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let rb = runbook(
            &app,
            &k,
            json!({"name": "Answers", "variables": [{"name": "env", "default": "prod"}], "steps": [
                {"key": "a", "title": "A on {env}", "instructions": "Do A on {env}."},
                {"key": "b", "title": "B", "type": "check", "on_fail": "a"},
                {"key": "g", "title": "G", "type": "gate", "on_fail": "c"},
                {"key": "br", "title": "Br", "type": "branch", "routes": {"left": "c", "right": "d"}},
                {"key": "c", "title": "C"},
                {"key": "d", "title": "D"}
            ]}),
        )
        .await;
        let r = id(&start(&app, &k, &rb, json!({})).await);
        let moves = [
            (
                "advance",
                json!({"step": "a", "notes": "n1", "output": {"x": 1}}),
            ),
            ("advance", json!({"outcome": "fail", "notes": "red"})),
            ("skip", json!({"notes": "again"})),
            ("advance", json!({"outcome": "pass"})),
            ("gate", json!({"decision": "approved", "notes": "ok"})),
            ("advance", json!({"outcome": "right"})),
            ("fail", json!({"notes": "broken", "output": [1, 2]})),
        ];
        for (action, body) in moves {
            let answer = ok(&app, &k, &r, action, body).await;
            let (s, read) = app.get(&format!("/v1/runbooks/runs/{r}"), &k).await;
            assert_eq!(s, StatusCode::OK, "{read}");
            assert_eq!(answer, read["data"], "{action}");
        }
        let (_, read) = app.get(&format!("/v1/runbooks/runs/{r}"), &k).await;
        let run = &read["data"];
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["steps"][0]["visits"], 2);
        assert_eq!(run["steps"][0]["title"], "A on {env}");
        assert_eq!(state_of(run, "d"), "failed");
        assert_eq!(run["steps"][5]["output"], json!([1, 2]));
        assert!(run["finished_at"].is_string(), "{run}");

        // A run the key's project does not have: not found, and it does not move.
        let r2 = id(&start(&app, &k, &rb, json!({})).await);
        let other = app.client("Elsewhere").await;
        let (_, other_key) = app
            .key(&["read", "write", "runtime"], json!({"project_id": other}))
            .await;
        for (action, body) in [
            ("advance", json!({})),
            ("skip", json!({})),
            ("fail", json!({})),
            ("gate", json!({"decision": "approved"})),
        ] {
            let (s, e) = act(&app, &other_key, &r2, action, body).await;
            assert_error(s, &e, 404, "not_found");
        }
        assert_eq!(current(&app, &k, &r2).await["step"]["key"], "a");
        assert_eq!(path(&app, &k, &r2).await, ["a"]);

        // An engine run of the project that is not a runbook run: not found either.
        let (s, b) = app
            .post(
                "/v1/admin/branches",
                &k,
                json!({"name": "Plain", "steps": [
                    {"id": "nap", "bud": {"kind": "wait", "config": {"duration_ms": 60000}}}
                ]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let branch = b["id"].as_str().unwrap();
        let (s, a) = app
            .post(
                &format!("/v1/admin/clients/{other}/branches/{branch}/assign"),
                &k,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        let (s, started) = app
            .post(
                &format!("/v1/clients/{other}/branches/{branch}/run"),
                &other_key,
                json!({"input": {}, "mode": "async"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{started}");
        let plain = started["run"]["id"].as_str().unwrap();
        let (s, e) = act(&app, &other_key, plain, "advance", json!({})).await;
        assert_error(s, &e, 404, "not_found");
        let (s, e) = act(
            &app,
            &other_key,
            plain,
            "gate",
            json!({"decision": "approved"}),
        )
        .await;
        assert_error(s, &e, 404, "not_found");
    }
);
