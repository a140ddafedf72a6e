//! Tasks and teams (issue 6 §1–§2): workflow validation, notes written by status changes and
//! assignments, `mine` ordering and its header, the team feed with `since`, credits, and
//! invite → accept → the member's key sees only its project.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, assert_error, split};

/// A request as agent `agent` (the `X-Minolith-Agent` header).
async fn as_agent(
    app: &TestApp,
    key: &str,
    agent: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app
        .raw()
        .request(method, app.url(path))
        .bearer_auth(key)
        .header("X-Minolith-Agent", agent);
    if let Some(b) = body {
        r = r.json(&b);
    }
    split(r.send().await.unwrap()).await
}

async fn task(app: &TestApp, key: &str, body: Value) -> Value {
    let (s, t) = app.post("/v1/tasks", key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    t["data"].clone()
}

both!(
    workflow_status_notes_and_credits,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        // The default workflow.
        let (s, w) = app.get("/v1/tasks/workflow", &k).await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(w["data"]["statuses"], json!(["open", "review", "done"]));
        assert_eq!(w["data"]["is_default"], true);

        // Bad lists are refused with every reason, and change nothing.
        let (s, e) = split(
            app.req(
                Method::PUT,
                "/v1/tasks/workflow",
                Some(&k),
                Some(json!({"statuses": ["todo", "doing", "doing"]})),
            )
            .await,
        )
        .await;
        assert_error(s, &e, 422, "validation_error");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("first status") && msg.contains("last status") && msg.contains("twice"),
            "{e}"
        );
        let eleven: Vec<String> = std::iter::once("open".to_owned())
            .chain((0..9).map(|i| format!("s{i}")))
            .chain(std::iter::once("done".to_owned()))
            .collect();
        let (s, e) = split(
            app.req(
                Method::PUT,
                "/v1/tasks/workflow",
                Some(&k),
                Some(json!({"statuses": eleven})),
            )
            .await,
        )
        .await;
        assert_error(s, &e, 422, "validation_error");
        let (_, w) = app.get("/v1/tasks/workflow", &k).await;
        assert_eq!(w["data"]["is_default"], true);

        // A custom workflow.
        let (s, w) = split(
            app.req(
                Method::PUT,
                "/v1/tasks/workflow",
                Some(&k),
                Some(json!({"statuses": ["open", "in_progress", "review", "done"]})),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert!(w["data"]["id"].as_str().unwrap().starts_with("wfl_"));

        let (_, before) = app.get("/v1/usage", &k).await;
        let t = task(
            &app,
            &k,
            json!({"title": "Ship it", "priority": "high", "tags": ["Release"]}),
        )
        .await;
        let id = t["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("tsk_"));
        assert_eq!(
            (t["status"].as_str(), t["tags"].clone()),
            (Some("open"), json!(["release"]))
        );
        let (_, after) = app.get("/v1/usage", &k).await;
        let spent = |u: &Value| u["data"]["project"]["used"].as_i64().unwrap();
        assert_eq!(spent(&after) - spent(&before), 2, "{before} {after}");

        // An unknown status: 422 with a suggestion; nothing changes.
        let (s, e) = app
            .post(
                &format!("/v1/tasks/{id}/status"),
                &k,
                json!({"status": "in_progres"}),
            )
            .await;
        assert_error(s, &e, 422, "invalid_type");
        assert!(
            e["error"]["suggestion"]
                .as_str()
                .unwrap()
                .contains("in_progress"),
            "{e}"
        );
        // Forward, forward, back.
        for st in ["review", "in_progress"] {
            let (s, r) = app
                .post(&format!("/v1/tasks/{id}/status"), &k, json!({"status": st}))
                .await;
            assert_eq!(
                (s, r["data"]["status"].as_str()),
                (StatusCode::OK, Some(st)),
                "{r}"
            );
        }
        // `done` needs a resolution.
        let (s, e) = app
            .post(
                &format!("/v1/tasks/{id}/status"),
                &k,
                json!({"status": "done"}),
            )
            .await;
        assert_error(s, &e, 422, "validation_error");
        assert_eq!(e["error"]["field"], "resolution");
        let (s, r) = app
            .post(
                &format!("/v1/tasks/{id}/status"),
                &k,
                json!({"status": "done", "resolution": "Released 1.2"}),
            )
            .await;
        assert_eq!(
            (s, r["data"]["resolution"].as_str()),
            (StatusCode::OK, Some("Released 1.2")),
            "{r}"
        );

        // The workflow cannot drop a status tasks are in.
        let (s, e) = split(
            app.req(
                Method::PUT,
                "/v1/tasks/workflow",
                Some(&k),
                Some(json!({"statuses": ["open", "review", "done"]})),
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "no task is in_progress any more: {e}");

        // Notes: every status change wrote one, in order, plus a comment and a commit.
        let (s, _) = app
            .post(
                &format!("/v1/tasks/{id}/notes"),
                &k,
                json!({"body": "Looks good"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, n) = app
            .post(
                &format!("/v1/tasks/{id}/notes"),
                &k,
                json!({"type": "commit", "commit": {"sha": "ABC123", "branch": "main"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{n}");
        assert_eq!(n["data"]["commit"]["sha"], "abc123");
        let (s, e) = app
            .post(
                &format!("/v1/tasks/{id}/notes"),
                &k,
                json!({"type": "commit"}),
            )
            .await;
        assert_error(s, &e, 422, "validation_error");
        let (_, got) = app.get(&format!("/v1/tasks/{id}"), &k).await;
        let kinds: Vec<&str> = got["data"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "status_change",
                "status_change",
                "status_change",
                "comment",
                "commit"
            ],
            "{got}"
        );
        assert!(
            got["data"]["notes"][0]["body"]
                .as_str()
                .unwrap()
                .contains("open → review")
        );
    }
);

both!(assignment_mine_and_feed, |app: TestApp| async move {
    let k = app.admin_key.clone();
    for name in ["riley", "max"] {
        let (s, a) = app.post("/v1/agents", &k, json!({"name": name})).await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
    }
    let riley = json!({"type": "agent", "name": "riley"});
    let low = task(
        &app,
        &k,
        json!({"title": "low", "priority": "low", "assignee": riley}),
    )
    .await;
    let urgent = task(
        &app,
        &k,
        json!({"title": "urgent", "priority": "urgent", "assignee": riley}),
    )
    .await;
    let med1 = task(&app, &k, json!({"title": "medium 1", "assignee": riley})).await;
    let med2 = task(&app, &k, json!({"title": "medium 2", "assignee": riley})).await;
    task(&app, &k, json!({"title": "someone else's", "priority": "urgent", "assignee": {"type": "agent", "name": "max"}})).await;
    // An unknown assignee is refused.
    let (s, e) = app
        .post(
            "/v1/tasks",
            &k,
            json!({"title": "x", "assignee": {"type": "agent", "name": "nobody"}}),
        )
        .await;
    assert_error(s, &e, 422, "validation_error");
    let (s, e) = app
        .post(
            "/v1/tasks",
            &k,
            json!({"title": "x", "assignee": {"type": "robot", "name": "riley"}}),
        )
        .await;
    assert_error(s, &e, 422, "invalid_type");

    // `mine` needs the header, and orders by priority, then age.
    let (s, e) = app.get("/v1/tasks/mine", &k).await;
    assert_error(s, &e, 422, "agent_header_required");
    let (s, mine) = as_agent(&app, &k, "riley", Method::GET, "/v1/tasks/mine", None).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    let titles: Vec<&str> = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["urgent", "medium 1", "medium 2", "low"]);
    // Paged by position.
    let (_, p1) = as_agent(
        &app,
        &k,
        "riley",
        Method::GET,
        "/v1/tasks/mine?limit=3",
        None,
    )
    .await;
    let cursor = p1["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = as_agent(
        &app,
        &k,
        "riley",
        Method::GET,
        &format!("/v1/tasks/mine?limit=3&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(p2["data"][0]["title"], "low", "{p2}");
    assert_eq!(p2["pagination"]["has_more"], false);
    let _ = (&low, &urgent, &med2);

    // Reassigning writes a note and moves the task out of riley's list.
    let since = chrono_now();
    let mid = med1["id"].as_str().unwrap();
    let (s, r) = app
        .post(
            &format!("/v1/tasks/{mid}/assign"),
            &k,
            json!({"assignee": {"type": "agent", "name": "max"}}),
        )
        .await;
    assert_eq!(
        (s, r["data"]["assignee"]["name"].as_str()),
        (StatusCode::OK, Some("max")),
        "{r}"
    );
    let (_, mine) = as_agent(&app, &k, "riley", Method::GET, "/v1/tasks/mine", None).await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 3);
    // Notes written by an agent are attributed to it.
    let (s, _) = as_agent(
        &app,
        &k,
        "riley",
        Method::POST,
        &format!("/v1/tasks/{mid}/notes"),
        Some(json!({"body": "handing over"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // The feed since then: the assignment and the comment, in order.
    let (s, feed) = app.get(&format!("/v1/tasks/feed?since={since}"), &k).await;
    assert_eq!(s, StatusCode::OK, "{feed}");
    let items = feed["data"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["assignment", "comment"], "{feed}");
    assert_eq!(items[1]["author"], "riley");
    // The whole feed pages forward without repeats.
    let (_, all) = app.get("/v1/tasks/feed?limit=2", &k).await;
    let c = all["pagination"]["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get(&format!("/v1/tasks/feed?limit=2&cursor={c}"), &k)
        .await;
    assert_ne!(all["data"][1]["id"], next["data"][0]["id"]);
    let (s, e) = app.get("/v1/tasks/feed?since=yesterday", &k).await;
    assert_error(s, &e, 422, "validation_error");
    // Filters.
    let (_, urgent_only) = app.get("/v1/tasks?priority=urgent", &k).await;
    assert_eq!(urgent_only["data"].as_array().unwrap().len(), 2);
    let (_, found) = app.get("/v1/tasks?search=MEDIUM%202", &k).await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
});

/// Now as RFC 3339 with milliseconds (the feed's `since`).
fn chrono_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let f = time::format_description::well_known::Rfc3339;
    t.format(&f).unwrap()
}

both!(
    invite_accept_member_key_and_member_assignment,
    |app: TestApp| async move {
        let a = app.client("Alpha").await;
        let b = app.client("Beta").await;
        let (_, alpha_admin) = app
            .key(&["read", "write", "admin", "mcp"], json!({"project_id": a}))
            .await;
        let (s, inv) = app
            .post(
                "/v1/team/invites",
                &alpha_admin,
                json!({"email": "Ada@Example.com", "name": "Ada", "role": "member"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        let token = inv["data"]["token"].as_str().unwrap().to_owned();
        let (s, acc) = split(
            app.req(
                Method::POST,
                &format!("/v1/team/invites/{token}/accept"),
                None,
                None,
            )
            .await,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{acc}");
        assert_eq!(acc["data"]["member"]["email"], "ada@example.com");
        let member_key = acc["data"]["key"].as_str().unwrap().to_owned();
        // Used once.
        let (s, e) = split(
            app.req(
                Method::POST,
                &format!("/v1/team/invites/{token}/accept"),
                None,
                None,
            )
            .await,
        )
        .await;
        assert_error(s, &e, 409, "conflict");
        let (s, e) = split(
            app.req(
                Method::POST,
                "/v1/team/invites/inv_tok_nope/accept",
                None,
                None,
            )
            .await,
        )
        .await;
        assert_error(s, &e, 404, "not_found");

        // The member's key works in its project and sees nothing of the other.
        let (s, t) = app
            .post("/v1/tasks", &member_key, json!({"title": "from Ada"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let tid = t["data"]["id"].as_str().unwrap().to_owned();
        let (_, beta_key) = app.key(&["read", "write"], json!({"project_id": b})).await;
        let (s, e) = app.get(&format!("/v1/tasks/{tid}"), &beta_key).await;
        assert_error(s, &e, 404, "not_found");
        let (s, e) = split(
            app.raw()
                .get(app.url("/v1/tasks"))
                .bearer_auth(&member_key)
                .header("X-Canopy-Project", &b)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s.as_u16(), 404, "{e}");
        // A member cannot invite (no admin scope).
        let (s, e) = app
            .post(
                "/v1/team/invites",
                &member_key,
                json!({"email": "x@example.com", "name": "X"}),
            )
            .await;
        assert_error(s, &e, 403, "forbidden");

        // Members are listed, and tasks can be assigned to them by name.
        let (_, members) = app.get("/v1/team/members", &alpha_admin).await;
        assert_eq!(members["data"][0]["name"], "Ada", "{members}");
        assert_eq!(members["data"][0]["role"], "member");
        let (s, r) = app
            .post(
                &format!("/v1/tasks/{tid}/assign"),
                &alpha_admin,
                json!({"assignee": {"type": "member", "name": "Ada"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        // A name that is on another project's team only is refused here.
        let (_, beta_admin) = app
            .key(&["read", "write", "admin"], json!({"project_id": b}))
            .await;
        let (s, _) = app
            .post(
                "/v1/team/members",
                &beta_admin,
                json!({"email": "bo@example.com", "name": "Bo"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, e) = app
            .post(
                &format!("/v1/tasks/{tid}/assign"),
                &alpha_admin,
                json!({"assignee": {"type": "member", "name": "Bo"}}),
            )
            .await;
        assert_error(s, &e, 422, "validation_error");
        // Role change, then removal.
        let mid = members["data"][0]["id"].as_str().unwrap();
        let (s, m) = app
            .patch(
                &format!("/v1/team/members/{mid}"),
                &alpha_admin,
                json!({"role": "viewer"}),
            )
            .await;
        assert_eq!(
            (s, m["data"]["role"].as_str()),
            (StatusCode::OK, Some("viewer")),
            "{m}"
        );
        let (s, e) = app
            .patch(
                &format!("/v1/team/members/{mid}"),
                &beta_admin,
                json!({"role": "owner"}),
            )
            .await;
        assert_error(s, &e, 404, "not_found");
        let (s, _) = app
            .delete(&format!("/v1/team/members/{mid}"), &alpha_admin)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, members) = app.get("/v1/team/members", &alpha_admin).await;
        assert_eq!(members["data"].as_array().unwrap().len(), 0);
    }
);
