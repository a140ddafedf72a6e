//! Minolith feedback, notes, triage and the public widget (issue 3 §4).

use reqwest::StatusCode;
use serde_json::json;

use crate::both;
use crate::harness::{TestApp, assert_error, split};

both!(items_notes_and_triage, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let (s, f) = app.post("/v1/feedback/items", &k, json!({"type": "bug", "title": "Crash", "body": "It crashes on save.", "rating": 2, "tags": ["Editor"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    let id = f["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("fbk_"));
    assert_eq!(
        (
            f["data"]["status"].as_str(),
            f["data"]["source"].as_str(),
            f["data"]["priority"].as_str()
        ),
        (Some("open"), Some("api"), Some("medium"))
    );
    assert_eq!(f["data"]["tags"], json!(["editor"]));
    let (s, b) = app
        .post(
            "/v1/feedback/items",
            &k,
            json!({"type": "bgu", "body": "x"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["suggestion"], "Did you mean 'bug'?");
    let (s, b) = app
        .post("/v1/feedback/items", &k, json!({"body": "x", "rating": 9}))
        .await;
    assert_eq!(s.as_u16(), 422, "{b}");
    assert_eq!(b["error"]["field"], "rating");
    let (s, b) = app
        .post("/v1/feedback/items", &k, json!({"title": "no body"}))
        .await;
    assert_eq!(s.as_u16(), 422, "{b}");
    let (s, t) = app
        .patch(
            &format!("/v1/feedback/items/{id}"),
            &k,
            json!({"status": "in_progress", "priority": "critical"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["data"]["status"], "in_progress");
    let (s, b) = app
        .patch(
            &format!("/v1/feedback/items/{id}"),
            &k,
            json!({"status": "inprogress"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["suggestion"], "Did you mean 'in_progress'?");
    let (s, n) = app
        .post(
            &format!("/v1/feedback/items/{id}/notes"),
            &k,
            json!({"body": "Reproduced on 1.4."}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    assert!(n["data"]["id"].as_str().unwrap().starts_with("fbn_"));
    let (_, one) = app.get(&format!("/v1/feedback/items/{id}"), &k).await;
    assert_eq!(one["data"]["notes"][0]["body"], "Reproduced on 1.4.");
    let (_, list) = app
        .get("/v1/feedback/items?status=in_progress&type=bug", &k)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("notes").is_none());
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(
        u["data"]["by_action"],
        json!([{"action": "submit_feedback", "count": 1, "credits": 1}])
    );
    let (s, _) = app.delete(&format!("/v1/feedback/items/{id}"), &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/v1/feedback/items/{id}"), &k).await.0,
        StatusCode::NOT_FOUND
    );
});

both!(
    public_widget_only_when_enabled_with_cors_and_ip_limit,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let js = app
            .raw()
            .get(app.url("/widget/feedback.js"))
            .send()
            .await
            .unwrap();
        assert!(
            js.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/javascript")
        );
        assert!(js.text().await.unwrap().contains("data-project"));
        let post = || {
            app.raw().post(app.url("/public/default/feedback")).header("Origin", "https://example.com").json(&json!({"type": "feature", "body": "Please add X", "page_url": "https://example.com/p"})).send()
        };
        // Off by default: 404, nothing written.
        let (s, b) = split(post().await.unwrap()).await;
        assert_error(s, &b, 404, "not_found");
        let res = app
            .req(
                reqwest::Method::PUT,
                "/v1/feedback/widget",
                Some(&k),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = post().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        let (_, item) = split(res).await;
        assert_eq!(item["data"]["source"], "widget");
        // Preflight.
        let pre = app
            .raw()
            .request(
                reqwest::Method::OPTIONS,
                app.url("/public/default/feedback"),
            )
            .header("Origin", "https://example.com")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{}", pre.status());
        assert!(
            pre.headers()["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        // Per-address limit: 5 attempts a minute, refused ones included (two used above).
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(post().await.unwrap().status().as_u16());
        }
        assert_eq!(statuses, vec![201, 201, 201, 429, 429], "{statuses:?}");
        let (_, list) = app.get("/v1/feedback/items?source=widget", &k).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 4);
        let other = app
            .raw()
            .post(app.url("/public/nope/feedback"))
            .json(&json!({"body": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
    }
);
