//! Bootstrap (issue 6 §4): one snapshot with every part, `changes_since_last_session` per
//! key and agent (a second bootstrap reports none), follow-ups derived from state.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, split};

async fn boot(app: &TestApp, key: &str, agent: Option<&str>) -> Value {
    let mut r = app
        .raw()
        .request(Method::GET, app.url("/v1/bootstrap"))
        .bearer_auth(key);
    if let Some(a) = agent {
        r = r.header("X-Minolith-Agent", a);
    }
    let (s, b) = split(r.send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["data"].clone()
}

both!(
    bootstrap_reports_state_and_changes_once,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        // An empty project: every part is there, the first session has no changes, and the
        // follow-ups say what is missing.
        let b = boot(&app, &k, None).await;
        for part in [
            "agent",
            "prompt",
            "context",
            "subagents",
            "active_state",
            "styleguide",
            "changes_since_last_session",
            "follow_up",
        ] {
            assert!(b.get(part).is_some(), "missing {part}: {b}");
        }
        assert_eq!(b["changes_since_last_session"]["first_session"], true);
        assert!(b["agent"].is_null());
        let fu = b["follow_up"].to_string();
        assert!(fu.contains("No main agent"), "{fu}");
        assert_eq!(
            b["active_state"]["workflow"],
            json!(["open", "review", "done"])
        );

        // State to report.
        let (s, _) = app
            .post(
                "/v1/agents",
                &k,
                json!({"name": "lead", "role": "Leads", "is_main": true}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = app
            .post(
                "/v1/agents",
                &k,
                json!({"name": "riley", "role": "Writes tests"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, e) = app
            .post(
                "/v1/context/entries",
                &k,
                json!({"type": "rule", "title": "Always test", "body": "b", "tags": ["bootstrap"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        let (s, _) = app
            .post(
                "/v1/context/entries",
                &k,
                json!({"type": "fact", "title": "Key fact", "body": "b", "priority": "high"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, t) = app.post("/v1/tasks", &k, json!({"title": "Fix it", "priority": "urgent", "assignee": {"type": "agent", "name": "riley"}})).await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let (s, _) = app
            .post("/v1/feedback/items", &k, json!({"body": "broken"}))
            .await;
        assert_eq!(s, StatusCode::CREATED);

        let b = boot(&app, &k, None).await;
        assert_eq!(b["agent"]["name"], "lead", "{b}");
        assert_eq!(b["subagents"][0]["name"], "riley");
        assert_eq!(b["subagents"][0]["role"], "Writes tests");
        assert_eq!(b["prompt"][0]["title"], "Always test");
        assert_eq!(b["context"][0]["title"], "Key fact");
        assert_eq!(b["active_state"]["feedback"]["open"], 1);
        let ch = &b["changes_since_last_session"];
        assert_eq!(ch["first_session"], false);
        assert_eq!(ch["services"]["context"]["created"], 2, "{ch}");
        assert_eq!(ch["services"]["tasks"]["ids"][0], t["data"]["id"], "{ch}");
        assert_eq!(ch["services"]["agents"]["changed"], 2);
        assert_eq!(ch["new_notes"], 1, "the assignment note: {ch}");
        assert!(
            b["follow_up"].to_string().contains("feedback item is open"),
            "{}",
            b["follow_up"]
        );

        // Right after, nothing changed.
        let b = boot(&app, &k, None).await;
        assert_eq!(
            b["changes_since_last_session"]["services"],
            json!({}),
            "{b}"
        );
        assert_eq!(b["changes_since_last_session"]["new_notes"], 0);

        // Sessions are per key and agent: riley's first bootstrap is a first session, with its tasks.
        let b = boot(&app, &k, Some("riley")).await;
        assert_eq!(b["changes_since_last_session"]["first_session"], true);
        assert_eq!(b["agent"]["name"], "riley");
        assert_eq!(b["active_state"]["my_tasks"][0]["title"], "Fix it");
        assert!(
            b["follow_up"].to_string().contains("(1 urgent)"),
            "{}",
            b["follow_up"]
        );
        // The MCP tool answers the same snapshot.
        let (s, r) = split(
        app.raw()
            .post(app.url("/mcp"))
            .bearer_auth(&k)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "bootstrap", "arguments": {}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["result"]["isError"], false, "{r}");
        assert_eq!(
            r["result"]["structuredContent"]["data"]["agent"]["name"], "lead",
            "{r}"
        );
    }
);
