//! Minolith agents and agent identity (issue 3 §1).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::harness::{TestApp, assert_error, split};

both!(
    agents_crud_main_and_context_resolution,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        app.post(
            "/v1/context/entries",
            &k,
            json!({"type": "rule", "title": "Review rule", "body": "b", "tags": ["review"]}),
        )
        .await;
        app.post(
            "/v1/context/entries",
            &k,
            json!({"type": "fact", "title": "Other", "body": "b"}),
        )
        .await;
        let (s, a) = app.post("/v1/agents", &k, json!({
        "name": "riley", "role": "Reviews code", "prompt": "You review.", "is_main": true,
        "tools_allowed": ["get_context"], "context_requirements": [{"type": "rule", "tags": ["review"]}], "tags": ["qa"]
    })).await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        let id = a["data"]["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("agt_"));
        assert_eq!(a["data"]["source"], "user");
        assert_eq!(a["data"]["is_main"], true);
        // Read by name, with resolved context.
        let (s, got) = app.get("/v1/agents/riley", &k).await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(got["data"]["id"], id.as_str());
        let titles: Vec<&str> = got["data"]["context"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, vec!["Review rule"]);
        // Duplicate name → 409; a second main → 409 unless replace_main.
        let (s, b) = app.post("/v1/agents", &k, json!({"name": "riley"})).await;
        assert_error(s, &b, 409, "conflict");
        let (s, b) = app
            .post("/v1/agents", &k, json!({"name": "max", "is_main": true}))
            .await;
        assert_error(s, &b, 409, "conflict");
        assert_eq!(b["error"]["field"], "is_main");
        let (s, _) = app
            .post(
                "/v1/agents",
                &k,
                json!({"name": "max", "is_main": true, "replace_main": true}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, riley) = app.get("/v1/agents/riley", &k).await;
        assert_eq!(riley["data"]["is_main"], false);
        // Validation with suggestions.
        let (s, b) = app
            .post("/v1/agents", &k, json!({"name": "x", "scope": "globl"}))
            .await;
        assert_error(s, &b, 422, "invalid_type");
        assert_eq!(b["error"]["suggestion"], "Did you mean 'global'?");
        let (s, b) = app
            .post("/v1/agents", &k, json!({"name": "Bad Name"}))
            .await;
        assert_eq!(s.as_u16(), 422, "{b}");
        // Update and delete.
        let (s, up) = app
            .patch(
                &format!("/v1/agents/{id}"),
                &k,
                json!({"prompt": "You review carefully."}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{up}");
        assert_eq!(up["data"]["prompt"], "You review carefully.");
        assert_eq!(up["data"]["role"], "Reviews code");
        let (_, list) = app.get("/v1/agents?tags=qa", &k).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let (s, d) = app.delete("/v1/agents/max", &k).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(app.get("/v1/agents/max", &k).await.0, StatusCode::NOT_FOUND);
        // Creating an agent costs 3 credits.
        let (_, u) = app.get("/v1/usage", &k).await;
        assert_eq!(
            u["data"]["by_action"],
            json!([{"action": "create_agent", "count": 2, "credits": 6}])
        );
    }
);

both!(
    agent_header_attributes_writes_and_rejects_unknown_names,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        app.post("/v1/agents", &k, json!({"name": "riley"})).await;
        let send = |agent: &'static str| {
            app.raw()
                .post(app.url("/v1/context/entries"))
                .bearer_auth(&k)
                .header("X-Minolith-Agent", agent)
                .json(&json!({"type": "fact", "title": "by an agent", "body": "b"}))
                .send()
        };
        let (s, e) = split(send("riley").await.unwrap()).await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        assert_eq!(e["data"]["created_by"], "riley");
        let (s, b) = split(send("rilye").await.unwrap()).await;
        assert_error(s, &b, 422, "unknown_agent");
        let (_, list) = app.get("/v1/context/entries", &k).await;
        assert_eq!(
            list["data"].as_array().unwrap().len(),
            1,
            "the refused write wrote nothing"
        );
        let res = app
            .raw()
            .get(app.url("/v1/context/entries?created_by=riley"))
            .bearer_auth(&k)
            .header("X-Canopy-Agent", "riley")
            .send()
            .await
            .unwrap();
        let (s, l) = split(res).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(l["data"].as_array().unwrap().len(), 1);
        let (_, log) = app.get("/v1/audit?action=store_context", &k).await;
        assert!(
            log["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["agent"] == "riley" && r["outcome"] == "success"),
            "{log}"
        );
    }
);

both!(sync_and_registry, |app: TestApp| async move {
    let k = app.admin_key.clone();
    app.post("/v1/agents", &k, json!({"name": "old-one"})).await;
    let (s, r) = app.post("/v1/agents/sync", &k, json!({"mode": "merge", "agents": [
        {"name": "writer", "role": "Writes docs", "prompt": "Write.", "tools_allowed": ["get_context"], "model": "m1"},
        {"name": "old-one", "role": "Updated"}
    ]})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["data"]["created"].as_u64(),
            r["data"]["updated"].as_u64(),
            r["data"]["deleted"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    let files = r["data"]["files"].as_array().unwrap();
    let writer = files.iter().find(|f| f["name"] == "writer").unwrap();
    assert_eq!(writer["filename"], "writer.md");
    let content = writer["content"].as_str().unwrap();
    assert!(
        content.starts_with(
            "---\nname: writer\ndescription: Writes docs\ntools: get_context\nmodel: m1\n---\n"
        ),
        "{content}"
    );
    assert!(content.ends_with("Write.\n"));
    let (_, r) = app
        .post(
            "/v1/agents/sync",
            &k,
            json!({"mode": "replace", "agents": [{"name": "writer"}]}),
        )
        .await;
    assert_eq!(r["data"]["deleted"], 1);
    assert_eq!(
        app.get("/v1/agents/old-one", &k).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, b) = app
        .post(
            "/v1/agents/sync",
            &k,
            json!({"mode": "mrege", "agents": []}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_type");
    // Registry: at least eight templates, filters, install (free) and a name clash.
    let (_, reg) = app.get("/v1/agents/registry", &k).await;
    let all = reg["data"].as_array().unwrap();
    assert!(all.len() >= 8);
    assert!(
        all.iter()
            .all(|t| t["id"].as_str().unwrap().starts_with("agr_")
                && !t["prompt"].as_str().unwrap().is_empty())
    );
    let (_, sec) = app.get("/v1/agents/registry?category=security", &k).await;
    assert_eq!(sec["data"][0]["name"], "security-auditor");
    let tid = all.iter().find(|t| t["name"] == "code-reviewer").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, one) = app.get(&format!("/v1/agents/registry/{tid}"), &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["data"]["name"], "code-reviewer");
    let (s, inst) = app
        .post(&format!("/v1/agents/registry/{tid}/install"), &k, json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inst}");
    assert_eq!(inst["data"]["source"], "registry");
    let (s, _) = app
        .post(&format!("/v1/agents/registry/{tid}/install"), &k, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .post(
            &format!("/v1/agents/registry/{tid}/install"),
            &k,
            json!({"name": "reviewer-2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, u) = app.get("/v1/usage", &k).await;
    assert!(
        u["data"]["by_action"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] != "install_registry_agent"),
        "install is free"
    );
    let res = app
        .req(
            Method::GET,
            "/v1/agents/registry/agr_00000000000000000000000000000000",
            Some(&k),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
});

both!(
    global_agents_are_visible_to_every_project,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        app.post(
            "/v1/agents",
            &k,
            json!({"name": "shared", "scope": "global"}),
        )
        .await;
        app.post("/v1/agents", &k, json!({"name": "local"})).await;
        let b = app.client("B").await;
        let (_, bk) = app.key(&["read", "write"], json!({"project_id": b})).await;
        assert_eq!(app.get("/v1/agents/shared", &bk).await.0, StatusCode::OK);
        assert_eq!(
            app.get("/v1/agents/local", &bk).await.0,
            StatusCode::NOT_FOUND
        );
        // B cannot change A's global agent.
        assert_eq!(
            app.patch("/v1/agents/shared", &bk, json!({"role": "x"}))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let res = app
            .raw()
            .post(app.url("/v1/context/entries"))
            .bearer_auth(&bk)
            .header("X-Minolith-Agent", "shared")
            .json(&json!({"type": "fact", "title": "t", "body": "b"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_install_count_against_the_agent_quota() {
    let app = crate::harness::TestApp::start(crate::harness::Backend::Sqlite, |s| {
        s.rate_limit_per_minute = 100_000;
        s.quotas.insert("agents".into(), 2);
    })
    .await
    .unwrap();
    let k = app.admin_key.clone();
    let (s, _) = app.post("/v1/agents", &k, json!({"name": "one"})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Two new names would make three: refused whole.
    let (s, b) = app
        .post(
            "/v1/agents/sync",
            &k,
            json!({"mode": "merge", "agents": [{"name": "two"}, {"name": "three"}]}),
        )
        .await;
    assert_error(s, &b, 403, "quota_exceeded");
    // Updating the existing one and adding one fits.
    let (s, b) = app
        .post(
            "/v1/agents/sync",
            &k,
            json!({"mode": "merge", "agents": [{"name": "one", "role": "r"}, {"name": "two"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, reg) = app.get("/v1/agents/registry", &k).await;
    let tid = reg["data"][0]["id"].as_str().unwrap().to_owned();
    let (s, b) = app
        .post(&format!("/v1/agents/registry/{tid}/install"), &k, json!({}))
        .await;
    assert_error(s, &b, 403, "quota_exceeded");
    let (_, l) = app.get("/v1/agents", &k).await;
    assert_eq!(l["data"].as_array().unwrap().len(), 2, "{l}");
}
