//! Minolith changelog with versions, publishing and the public page / RSS feed (issue 3 §3).

use reqwest::StatusCode;
use serde_json::json;

use crate::both;
use crate::harness::{TestApp, assert_error, split};

both!(
    entries_versions_publishing_and_public_feed,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let (s, v) = app
            .post(
                "/v1/changelog/versions",
                &k,
                json!({"name": "1.4.0", "description": "Spring release"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let vid = v["data"]["id"].as_str().unwrap().to_owned();
        assert!(vid.starts_with("ver_"));
        let (s, e1) = app.post("/v1/changelog/entries", &k, json!({"title": "Dark mode", "body": "Toggle in settings <b>now</b> & more.", "category": "added", "version_id": vid})).await;
        assert_eq!(s, StatusCode::CREATED, "{e1}");
        assert_eq!(e1["data"]["status"], "draft");
        let (_, e2) = app
            .post(
                "/v1/changelog/entries",
                &k,
                json!({"title": "Fix login", "category": "fixed"}),
            )
            .await;
        let e2id = e2["data"]["id"].as_str().unwrap().to_owned();
        let (s, b) = app
            .post(
                "/v1/changelog/entries",
                &k,
                json!({"title": "x", "category": "fixd"}),
            )
            .await;
        assert_error(s, &b, 422, "invalid_type");
        assert_eq!(b["error"]["suggestion"], "Did you mean 'fixed'?");
        let (s, b) = app
            .post("/v1/changelog/versions", &k, json!({"name": "1.4.0"}))
            .await;
        assert_error(s, &b, 409, "conflict");
        // Nothing public yet.
        let (s, public) = split(
            app.raw()
                .get(app.url("/public/default/changelog"))
                .header("Accept", "application/json")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{public}");
        assert_eq!(public["entries"], json!([]));
        // Publish one entry, then the version (which publishes its entries).
        let (s, p) = app
            .post(
                &format!("/v1/changelog/entries/{e2id}/publish"),
                &k,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["data"]["status"], "published");
        let (s, pv) = app
            .post(
                &format!("/v1/changelog/versions/{vid}/publish"),
                &k,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{pv}");
        assert_eq!(pv["data"]["status"], "published");
        assert_eq!(pv["data"]["entries"][0]["status"], "published");
        // A draft stays private.
        app.post(
            "/v1/changelog/entries",
            &k,
            json!({"title": "Secret draft", "category": "changed"}),
        )
        .await;
        let (_, public) = split(
            app.raw()
                .get(app.url("/public/default/changelog"))
                .header("Accept", "application/json")
                .send()
                .await
                .unwrap(),
        )
        .await;
        let titles: Vec<&str> = public["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, vec!["Dark mode", "Fix login"]);
        assert_eq!(public["entries"][0]["version"], "1.4.0");
        // HTML page, escaped.
        let html = app
            .raw()
            .get(app.url("/public/default/changelog"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Dark mode")
                && html.contains("&lt;b&gt;now&lt;/b&gt; &amp; more")
                && !html.contains("Secret draft")
        );
        // RSS 2.0, parsed by a real XML parser.
        let res = app
            .raw()
            .get(app.url("/public/default/changelog.rss"))
            .send()
            .await
            .unwrap();
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/rss+xml")
        );
        let xml = res.text().await.unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed RSS");
        let rss = doc.root_element();
        assert_eq!(rss.tag_name().name(), "rss");
        assert_eq!(rss.attribute("version"), Some("2.0"));
        let channel = rss.children().find(|n| n.has_tag_name("channel")).unwrap();
        for required in ["title", "link", "description"] {
            assert!(
                channel.children().any(|n| n.has_tag_name(required)),
                "channel lacks {required}"
            );
        }
        let items: Vec<_> = channel
            .children()
            .filter(|n| n.has_tag_name("item"))
            .collect();
        assert_eq!(items.len(), 2);
        let first_title = items[0]
            .children()
            .find(|n| n.has_tag_name("title"))
            .and_then(|n| n.text())
            .unwrap();
        assert_eq!(first_title, "[1.4.0] Dark mode");
        let desc = items[0]
            .children()
            .find(|n| n.has_tag_name("description"))
            .and_then(|n| n.text())
            .unwrap();
        assert_eq!(desc, "Toggle in settings <b>now</b> & more.");
        let date = items[0]
            .children()
            .find(|n| n.has_tag_name("pubDate"))
            .and_then(|n| n.text())
            .unwrap();
        assert!(
            time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
                .is_ok(),
            "{date}"
        );
        // Unknown project → 404 without a key; archived projects vanish too.
        assert_eq!(
            app.raw()
                .get(app.url("/public/nope/changelog.rss"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
        // Credits: 3 per entry created (three; the refused one cost nothing).
        let (_, u) = app.get("/v1/usage", &k).await;
        assert_eq!(
            u["data"]["by_action"],
            json!([{"action": "create_changelog_entry", "count": 3, "credits": 9}])
        );
        // Deleting a version keeps its entries.
        let (s, _) = app
            .delete(&format!("/v1/changelog/versions/{vid}"), &k)
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, e) = app
            .get(
                &format!(
                    "/v1/changelog/entries/{}",
                    e1["data"]["id"].as_str().unwrap()
                ),
                &k,
            )
            .await;
        assert_eq!(e["data"]["version_id"], serde_json::Value::Null);
        let (_, list) = app.get("/v1/changelog/entries?status=draft", &k).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
    }
);
