//! Minolith styleguide: tokens, components, patterns, voice, export, search (issue 3 §5).

use reqwest::StatusCode;
use serde_json::json;

use crate::both;
use crate::harness::{TestApp, assert_error, split};

both!(tokens_items_export_and_search, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let put = |section: &'static str, body: serde_json::Value| {
        let url = app.url(&format!("/v1/styleguide/tokens/{section}"));
        app.raw().put(url).bearer_auth(&k).json(&body).send()
    };
    let (s, t) = split(put("colours", json!({"tokens": {"primary": "#3b5bdb", "danger": {"value": "#e03131", "description": "Destructive actions"}}})).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["data"]["section"], "colours");
    let (s, b) = split(put("colors", json!({"tokens": {}})).await.unwrap()).await;
    assert_error(s, &b, 422, "invalid_type");
    assert_eq!(b["error"]["suggestion"], "Did you mean 'colours'?");
    let (s, b) = split(
        put("spacing", json!({"tokens": {"x": {"nope": 1}}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s.as_u16(), 422, "{b}");
    // Replacing a section replaces it whole.
    split(
        put("colours", json!({"tokens": {"primary": "#000"}}))
            .await
            .unwrap(),
    )
    .await;
    let (_, one) = app.get("/v1/styleguide/tokens/colours", &k).await;
    assert_eq!(one["data"], json!({"colours": {"primary": "#000"}}));
    // Items: define (create or replace by name), read by name or id, update, delete.
    let (s, c) = app.post("/v1/styleguide/components", &k, json!({"name": "Button", "description": "Primary action", "examples": {"do": ["One per view"], "dont": ["Two side by side"]}, "props": {"size": ["s", "m"]}})).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cid = c["data"]["id"].as_str().unwrap().to_owned();
    assert!(cid.starts_with("sgc_"));
    let (_, again) = app
        .post(
            "/v1/styleguide/components",
            &k,
            json!({"name": "Button", "description": "Main action"}),
        )
        .await;
    assert_eq!(
        again["data"]["id"],
        cid.as_str(),
        "defining the same name replaces it"
    );
    let (s, got) = app.get("/v1/styleguide/components/Button", &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["data"]["description"], "Main action");
    app.post("/v1/styleguide/patterns", &k, json!({"name": "Empty states", "body": "Explain what goes here and offer the first action."})).await;
    let (s, v) = app
        .post(
            "/v1/styleguide/voice",
            &k,
            json!({"name": "Plain words", "rules": ["Say what happened", "No jargon"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(v["data"]["id"].as_str().unwrap().starts_with("sgv_"));
    let (s, up) = app
        .patch(
            &format!("/v1/styleguide/components/{cid}"),
            &k,
            json!({"body": "Use for the main action."}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{up}");
    assert_eq!(up["data"]["description"], "Main action");
    // Export and search across kinds.
    let (_, all) = app.get("/v1/styleguide", &k).await;
    assert_eq!(all["data"]["tokens"]["colours"]["primary"], "#000");
    assert_eq!(all["data"]["components"].as_array().unwrap().len(), 1);
    assert_eq!(all["data"]["patterns"].as_array().unwrap().len(), 1);
    assert_eq!(all["data"]["voice"].as_array().unwrap().len(), 1);
    let (_, hits) = app.get("/v1/styleguide/search?q=action", &k).await;
    let kinds: Vec<&str> = hits["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"component") && kinds.contains(&"pattern"),
        "{hits}"
    );
    let (_, tok) = app.get("/v1/styleguide/search?q=primary", &k).await;
    assert_eq!(tok["data"][0]["id"], "colours.primary");
    // Credits: tokens 2 per write, component 3, pattern 2, voice 2.
    let (_, u) = app.get("/v1/usage", &k).await;
    let credits: i64 = u["data"]["by_action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["credits"].as_i64().unwrap())
        .sum();
    assert_eq!(credits, 2 * 2 + 3 * 2 + 2 + 2, "{u}");
    let (s, _) = app.delete("/v1/styleguide/voice/Plain%20words", &k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.get("/v1/styleguide/voice/Plain%20words", &k).await.0,
        StatusCode::NOT_FOUND
    );
});
