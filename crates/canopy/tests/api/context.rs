//! Minolith context (issue 3, first part): entries, events, bulk, tags/scopes, search, isolation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, assert_error, split};

async fn store(app: &TestApp, key: &str, body: Value) -> Value {
    let (s, b) = app.post("/v1/context/entries", key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["data"].clone()
}

both!(entries_crud_and_validation, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let e = store(&app, &k, json!({"type": "rule", "title": "Use UTC", "body": "All times in UTC.", "tags": ["Time", "db"], "priority": "high"})).await;
    let id = e["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ctx_"));
    assert_eq!(e["tags"], json!(["db", "time"]));
    assert_eq!(e["scope"], "global");
    assert_eq!(e["priority"], "high");
    assert!(e["created_by"].as_str().unwrap().starts_with("key_"));
    let (s, got) = app.get(&format!("/v1/context/entries/{id}"), &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["data"], e);
    let (s, up) = app
        .patch(
            &format!("/v1/context/entries/{id}"),
            &k,
            json!({"body": "Store and show UTC.", "scope": "backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{up}");
    assert_eq!(up["data"]["body"], "Store and show UTC.");
    assert_eq!(up["data"]["title"], "Use UTC");
    assert_eq!(up["data"]["scope"], "backend");
    // Enum mistakes: 422 with field and suggestion; nothing written.
    let (s, b) = app
        .post(
            "/v1/context/entries",
            &k,
            json!({"type": "decison", "title": "x", "body": "y"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["field"], "type");
    assert_eq!(b["error"]["suggestion"], "Did you mean 'decision'?");
    assert!(b["error"]["message"].as_str().unwrap().contains("glossary"));
    let (s, b) = app
        .patch(
            &format!("/v1/context/entries/{id}"),
            &k,
            json!({"priority": "hgih"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["suggestion"], "Did you mean 'high'?");
    let (s, b) = app
        .post(
            "/v1/context/entries",
            &k,
            json!({"type": "fact", "body": "no title"}),
        )
        .await;
    assert_error(s, &b, 422, "validation_error");
    assert_eq!(b["error"]["field"], "title");
    let (_, list) = app.get("/v1/context/entries", &k).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Delete.
    let (s, d) = app.delete(&format!("/v1/context/entries/{id}"), &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["data"], json!({"id": id, "deleted": true}));
    assert_eq!(
        app.get(&format!("/v1/context/entries/{id}"), &k).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v1/context/entries/{id}"), &k).await.0,
        StatusCode::NOT_FOUND
    );
    // Scopes: read keys cannot write.
    let (_, read) = app.key(&["read"], json!({})).await;
    let (s, b) = app
        .post(
            "/v1/context/entries",
            &read,
            json!({"type": "fact", "title": "t", "body": "b"}),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
});

both!(
    events_are_immutable_and_listed_newest_first,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let (s, e1) = app
            .post("/v1/context/events", &k, json!({"title": "deployed v1"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e1}");
        assert_eq!(e1["data"]["type"], "event");
        let (_, e2) = app
            .post(
                "/v1/context/events",
                &k,
                json!({"title": "deployed v2", "body": "with migration"}),
            )
            .await;
        store(
            &app,
            &k,
            json!({"type": "fact", "title": "not an event", "body": "b"}),
        )
        .await;
        let id = e1["data"]["id"].as_str().unwrap();
        let (s, b) = app
            .patch(
                &format!("/v1/context/entries/{id}"),
                &k,
                json!({"title": "rewritten"}),
            )
            .await;
        assert_error(s, &b, 403, "immutable_entry");
        let (_, still) = app.get(&format!("/v1/context/entries/{id}"), &k).await;
        assert_eq!(still["data"]["title"], "deployed v1");
        let (s, events) = app.get("/v1/context/events", &k).await;
        assert_eq!(s, StatusCode::OK);
        let titles: Vec<&str> = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, vec!["deployed v2", "deployed v1"]);
        let (_, later) = app
            .get(
                &format!(
                    "/v1/context/events?since={}",
                    e2["data"]["created_at"].as_str().unwrap()
                ),
                &k,
            )
            .await;
        assert_eq!(later["data"].as_array().unwrap().len(), 1);
        // An entry cannot be turned into an event.
        let f = store(&app, &k, json!({"type": "fact", "title": "f", "body": "b"})).await;
        let (s, _) = app
            .patch(
                &format!("/v1/context/entries/{}", f["id"].as_str().unwrap()),
                &k,
                json!({"type": "event"}),
            )
            .await;
        assert_eq!(s.as_u16(), 422);
    }
);

both!(bulk_is_all_or_nothing, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let entries: Vec<Value> = (0..5).map(|i| json!({"type": "fact", "title": format!("fact {i}"), "body": "b", "tags": ["bulk"]})).collect();
    let mut bad = entries.clone();
    bad[3]["type"] = json!("nope");
    let (s, b) = app
        .post("/v1/context/entries/bulk", &k, json!({"entries": bad}))
        .await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["field"], "entries[3].type");
    let (_, list) = app.get("/v1/context/entries", &k).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "nothing written");
    let (s, created) = app
        .post("/v1/context/entries/bulk", &k, json!({"entries": entries}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let ids: Vec<String> = created["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);
    // Bulk update with one unknown id changes nothing.
    let (s, b) = app.patch("/v1/context/entries/bulk", &k, json!({"entries": [{"id": ids[0], "title": "changed"}, {"id": "ctx_00000000000000000000000000000000", "title": "x"}]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(b["error"]["field"], "entries[1].id");
    let (_, first) = app
        .get(&format!("/v1/context/entries/{}", ids[0]), &k)
        .await;
    assert_eq!(first["data"]["title"], "fact 0");
    let (s, b) = app.patch("/v1/context/entries/bulk", &k, json!({"entries": [{"id": ids[0], "title": "changed"}, {"id": ids[1], "priority": "low"}]})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"][0]["title"], "changed");
    assert_eq!(b["data"][1]["priority"], "low");
    // Bulk delete with one unknown id deletes nothing.
    let (s, b) = split(
        app.req(
            Method::DELETE,
            "/v1/context/entries/bulk",
            Some(&k),
            Some(json!({"ids": [ids[2], "ctx_00000000000000000000000000000000"]})),
        )
        .await,
    )
    .await;
    assert_error(s, &b, 404, "not_found");
    assert_eq!(b["error"]["field"], "ids[1]");
    assert_eq!(
        app.get(&format!("/v1/context/entries/{}", ids[2]), &k)
            .await
            .0,
        StatusCode::OK
    );
    let (s, b) = split(
        app.req(
            Method::DELETE,
            "/v1/context/entries/bulk",
            Some(&k),
            Some(json!({"ids": [ids[2], ids[3]]})),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"].as_array().unwrap().len(), 2);
    let (_, list) = app.get("/v1/context/entries", &k).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    // Limits on batch size.
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"type": "fact", "title": format!("{i}"), "body": "b"}))
        .collect();
    let (s, b) = app
        .post("/v1/context/entries/bulk", &k, json!({"entries": many}))
        .await;
    assert_eq!(s.as_u16(), 422, "{b}");
    // Audited once per bulk with the ids.
    let (_, log) = app
        .get("/v1/audit?action=bulk_store_context", &app.admin_key)
        .await;
    let rows = log["data"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["outcome"] == "success"
            && r["detail"]["ids"].as_array().is_some_and(|a| a.len() == 5)),
        "{log}"
    );
});

both!(
    filters_tags_scopes_and_pagination,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        for i in 0..30 {
            let tags = if i % 3 == 0 {
                json!(["api", "auth"])
            } else {
                json!(["api"])
            };
            let kind = if i % 2 == 0 { "rule" } else { "fact" };
            let scope = if i < 10 { "backend" } else { "frontend" };
            store(&app, &k, json!({"type": kind, "title": format!("entry {i}"), "body": "b", "tags": tags, "scope": scope})).await;
        }
        let (_, both_tags) = app
            .get("/v1/context/entries?tags=api,auth&limit=100", &k)
            .await;
        assert_eq!(both_tags["data"].as_array().unwrap().len(), 10);
        let (_, rules_backend) = app
            .get("/v1/context/entries?type=rule&scope=backend&limit=100", &k)
            .await;
        assert_eq!(rules_backend["data"].as_array().unwrap().len(), 5);
        // Walk a filtered list in pages of 4: no duplicates, no gaps.
        let mut seen = std::collections::HashSet::new();
        let mut path = "/v1/context/entries?tags=api&type=fact&limit=4".to_owned();
        loop {
            let (s, page) = app.get(&path, &k).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            for e in page["data"].as_array().unwrap() {
                assert_eq!(e["type"], "fact");
                assert!(seen.insert(e["id"].as_str().unwrap().to_owned()));
            }
            match page["pagination"]["next_cursor"].as_str() {
                Some(c) => {
                    path = format!("/v1/context/entries?tags=api&type=fact&limit=4&cursor={c}")
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 15);
        let (_, tags) = app.get("/v1/context/tags", &k).await;
        assert_eq!(
            tags["data"],
            json!([{"value": "api", "count": 30}, {"value": "auth", "count": 10}])
        );
        let (_, scopes) = app.get("/v1/context/scopes", &k).await;
        assert_eq!(
            scopes["data"],
            json!([{"value": "frontend", "count": 20}, {"value": "backend", "count": 10}])
        );
        let (s, b) = app.get("/v1/context/entries?priority=urgent", &k).await;
        assert_error(s, &b, 422, "invalid_type");
    }
);

both!(
    search_ranks_title_matches_first_and_combines_with_filters,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let body_hit = store(&app, &k, json!({"type": "fact", "title": "Networking notes", "body": "We retry the deployment pipeline twice."})).await;
        let title_hit = store(
            &app,
            &k,
            json!({"type": "fact", "title": "Deployment pipeline", "body": "Runs on every merge."}),
        )
        .await;
        store(
            &app,
            &k,
            json!({"type": "fact", "title": "Unrelated", "body": "Nothing to see."}),
        )
        .await;
        store(&app, &k, json!({"type": "rule", "title": "Deployment freeze", "body": "No deployments on Friday.", "tags": ["ops"]})).await;
        let (s, r) = app
            .get("/v1/context/entries?search=deployment%20pipeline", &k)
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let ids: Vec<&str> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            vec![
                title_hit["id"].as_str().unwrap(),
                body_hit["id"].as_str().unwrap()
            ],
            "{r}"
        );
        let (_, filtered) = app
            .get(
                "/v1/context/entries?search=deployment&type=rule&tags=ops",
                &k,
            )
            .await;
        let titles: Vec<&str> = filtered["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, vec!["Deployment freeze"]);
        // Stemming: "deployments" finds "deployment".
        let (_, stem) = app
            .get("/v1/context/entries?search=deployments&limit=1", &k)
            .await;
        assert_eq!(stem["data"].as_array().unwrap().len(), 1);
        assert_eq!(stem["pagination"]["has_more"], true);
        let next = stem["pagination"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, page2) = app
            .get(
                &format!("/v1/context/entries?search=deployments&limit=1&cursor={next}"),
                &k,
            )
            .await;
        assert_ne!(page2["data"][0]["id"], stem["data"][0]["id"]);
        // A search cursor is refused on a plain list; operators in the query are plain words.
        let (s, b) = app
            .get(&format!("/v1/context/entries?cursor={next}"), &k)
            .await;
        assert_error(s, &b, 400, "invalid_cursor");
        let (s, _) = app
            .get("/v1/context/entries?search=%22%2A%20OR%20NEAR(", &k)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
);

both!(context_is_isolated_per_project, |app: TestApp| async move {
    let a = store(
        &app,
        &app.admin_key,
        json!({"type": "fact", "title": "secret of A", "body": "b", "tags": ["a-only"]}),
    )
    .await;
    let b_id = app.client("Project B").await;
    let (_, b_key) = app
        .key(&["read", "write"], json!({"project_id": b_id}))
        .await;
    let a_id = a["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/context/entries/{a_id}"), &b_key)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(
            &format!("/v1/context/entries/{a_id}"),
            &b_key,
            json!({"title": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v1/context/entries/{a_id}"), &b_key)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = app.get("/v1/context/entries?search=secret", &b_key).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    let (_, tags) = app.get("/v1/context/tags", &b_key).await;
    assert_eq!(tags["data"], json!([]));
    store(
        &app,
        &b_key,
        json!({"type": "fact", "title": "B's own", "body": "b"}),
    )
    .await;
    let (_, a_list) = app.get("/v1/context/entries", &app.admin_key).await;
    assert_eq!(
        a_list["data"].as_array().unwrap().len(),
        1,
        "lists never mix projects"
    );
});

both!(
    markdown_answers_for_people_and_agents,
    |app: TestApp| async move {
        store(&app, &app.admin_key, json!({"type": "rule", "title": "Use UTC", "body": "All times in UTC.", "tags": ["time"]})).await;
        let res = app
            .raw()
            .get(app.url("/v1/context/entries"))
            .bearer_auth(&app.admin_key)
            .header("Accept", "text/markdown")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/markdown")
        );
        let md = res.text().await.unwrap();
        assert!(md.contains("## Use UTC"), "{md}");
        assert!(md.contains("All times in UTC."), "{md}");
        assert!(md.contains("- **tags**: time"), "{md}");
        // JSON stays the default.
        let res = app
            .raw()
            .get(app.url("/v1/context/entries"))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
);

both!(
    org_keys_pick_a_project_with_the_project_header,
    |app: TestApp| async move {
        let b = app.client("Bee").await;
        let k = app.admin_key.clone();
        let res = app
            .raw()
            .post(app.url("/v1/context/entries"))
            .bearer_auth(&k)
            .header("X-Canopy-Project", "bee")
            .json(&json!({"type": "fact", "title": "in bee", "body": "b"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        // By id too; the default project does not see it.
        let res = app
            .raw()
            .get(app.url("/v1/context/entries"))
            .bearer_auth(&k)
            .header("X-Canopy-Project", &b)
            .send()
            .await
            .unwrap();
        let (_, list) = split(res).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let (_, default) = app.get("/v1/context/entries", &k).await;
        assert_eq!(default["data"].as_array().unwrap().len(), 0);
        // Unknown project, or a project key naming another project → 404.
        let res = app
            .raw()
            .get(app.url("/v1/context/entries"))
            .bearer_auth(&k)
            .header("X-Canopy-Project", "nope")
            .send()
            .await
            .unwrap();
        let (s, body) = split(res).await;
        assert_error(s, &body, 404, "not_found");
        let (_, bee_key) = app.key(&["read"], json!({"project_id": b})).await;
        let res = app
            .raw()
            .get(app.url("/v1/context/entries"))
            .bearer_auth(&bee_key)
            .header("X-Canopy-Project", "default")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
);

both!(
    concurrent_creates_are_all_kept_and_audited,
    |app: TestApp| async move {
        // 64 creates at once: they are committed in groups; every one answered 201 must be
        // readable, searchable, tagged and audited.
        let k = app.admin_key.clone();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (url, k) = (app.url("/v1/context/entries"), k.clone());
            let http = app.raw().clone();
            tasks.push(tokio::spawn(async move {
            let body = json!({"type": "fact", "title": format!("racer {i}"), "body": "many at once", "tags": ["race", format!("n{}", i % 4)]});
            let res = http.post(url).bearer_auth(k).json(&body).send().await.unwrap();
            split(res).await
        }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            let (s, v) = t.await.unwrap();
            assert_eq!(s, StatusCode::CREATED, "{v}");
            ids.push(v["data"]["id"].as_str().unwrap().to_owned());
        }
        let (_, l) = app.get("/v1/context/entries?tags=race&limit=100", &k).await;
        assert_eq!(l["data"].as_array().unwrap().len(), 64, "{l}");
        let (_, l) = app
            .get("/v1/context/entries?tags=race,n2&limit=100", &k)
            .await;
        assert_eq!(l["data"].as_array().unwrap().len(), 16, "{l}");
        let (_, l) = app
            .get("/v1/context/entries?search=racer&limit=100", &k)
            .await;
        assert_eq!(l["data"].as_array().unwrap().len(), 64, "{l}");
        let (_, a) = app
            .get("/v1/audit?action=store_context&limit=100", &k)
            .await;
        let audited: Vec<&str> = a["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["target"].as_str())
            .collect();
        for id in &ids {
            assert!(audited.contains(&id.as_str()), "{id} not audited: {a}");
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_pass_the_quota() {
    let app = crate::harness::TestApp::start(crate::harness::Backend::Sqlite, |s| {
        s.rate_limit_per_minute = 100_000;
        s.quotas.insert("context_entries".into(), 10);
    })
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (url, k) = (app.url("/v1/context/entries"), app.admin_key.clone());
        let http = app.raw().clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"type": "fact", "title": format!("q {i}"), "body": "b"});
            split(
                http.post(url)
                    .bearer_auth(k)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (s, v) = t.await.unwrap();
        match s.as_u16() {
            201 => created += 1,
            _ => assert_error(s, &v, 403, "quota_exceeded"),
        }
    }
    assert_eq!(created, 10);
    let (_, l) = app
        .get("/v1/context/entries?limit=100", &app.admin_key)
        .await;
    assert_eq!(l["data"].as_array().unwrap().len(), 10);
}

both!(
    search_pages_stay_in_their_project,
    |app: TestApp| async move {
        // More matches than a page in two projects: pages of A hold A's matches only, each once,
        // best (title) matches first.
        let b_id = app.client("Project B").await;
        let (_, b_key) = app
            .key(&["read", "write"], json!({"project_id": b_id}))
            .await;
        for (key, n) in [(&app.admin_key, 25), (&b_key, 40)] {
            let entries: Vec<Value> = (0..n)
            .map(|i| json!({"type": "fact", "title": if i % 5 == 0 { format!("zebra {i}") } else { format!("note {i}") }, "body": "a zebra crossing"}))
            .collect();
            let (s, v) = app
                .post("/v1/context/entries/bulk", key, json!({"entries": entries}))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (s, page) = app
                .get(
                    &format!("/v1/context/entries?search=zebra&limit=10{cursor}"),
                    &app.admin_key,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            for e in page["data"].as_array().unwrap() {
                seen.push(e["title"].as_str().unwrap().to_owned());
            }
            match page["pagination"]["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25, "{seen:?}");
        let unique: std::collections::HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), 25, "no entry twice: {seen:?}");
        assert!(
            seen[..5].iter().all(|t| t.starts_with("zebra")),
            "title matches first: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|t| t.split(' ').nth(1).unwrap().parse::<u32>().unwrap() < 25)
        );
    }
);

both!(
    org_wide_keys_follow_the_default_project,
    |app: TestApp| async move {
        // The `default` project an org-wide key works in is remembered briefly; archiving it takes
        // effect on the next request.
        let k = app.admin_key.clone();
        let (s, _) = app
            .post(
                "/v1/context/entries",
                &k,
                json!({"type": "fact", "title": "t", "body": "b"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, clients) = app.get("/v1/clients", &k).await;
        let default = clients["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["slug"] == "default")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, b) = app
            .delete(&format!("/v1/admin/clients/{default}"), &k)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = app
            .post(
                "/v1/context/entries",
                &k,
                json!({"type": "fact", "title": "t", "body": "b"}),
            )
            .await;
        assert_error(s, &b, 400, "bad_request");
    }
);

both!(
    get_context_reads_one_entry_by_id,
    |app: TestApp| async move {
        // The seed's get_context both reads one entry and queries: `id` selects one.
        let k = app.admin_key.clone();
        let e = store(
            &app,
            &k,
            json!({"type": "rule", "title": "only me", "body": "b"}),
        )
        .await;
        store(
            &app,
            &k,
            json!({"type": "rule", "title": "not me", "body": "b"}),
        )
        .await;
        let id = e["id"].as_str().unwrap();
        let (s, one) = app.get(&format!("/v1/context/entries?id={id}"), &k).await;
        assert_eq!(s, StatusCode::OK, "{one}");
        assert_eq!(one["data"].as_array().unwrap().len(), 1);
        assert_eq!(one["data"][0]["title"], "only me");
        assert_eq!(one["pagination"]["has_more"], false);
        let (s, b) = app
            .get(
                "/v1/context/entries?id=ctx_00000000-0000-7000-8000-000000000000",
                &k,
            )
            .await;
        assert_error(s, &b, 404, "not_found");
    }
);
