//! The platform foundation (issue 2): auth, scopes, tenancy, pagination, limits, conventions,
//! idempotency, audit, tokens, keys, persistence.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both;
use crate::harness::{Backend, TestApp, assert_error, split};

both!(
    auth_failures_are_401_in_the_envelope,
    |app: TestApp| async move {
        // Missing credential.
        let (s, b) = split(app.req(Method::GET, "/v1/clients", None, None).await).await;
        assert_error(s, &b, 401, "unauthorized");
        assert!(
            b["error"]["docs"].as_str().unwrap().starts_with(&app.base),
            "docs link is absolute: {b}"
        );
        // Malformed header.
        let res = app
            .raw()
            .get(app.url("/v1/clients"))
            .header("Authorization", "Basic abc")
            .send()
            .await
            .unwrap();
        let (s, b) = split(res).await;
        assert_error(s, &b, 401, "unauthorized");
        // Unknown key.
        let (s, b) = app
            .get(
                "/v1/clients",
                "cnp_notarealkeyatallnotarealkeyatallnotareal",
            )
            .await;
        assert_error(s, &b, 401, "unauthorized");
        // Revoked key.
        let (id, key) = app.key(&["read"], json!({})).await;
        assert_eq!(app.get("/api/auth/me", &key).await.0, StatusCode::OK);
        let (s, b) = app
            .post(
                &format!("/api/admin/access-keys/{id}/revoke"),
                &app.admin_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["status"], "revoked");
        let (s, b) = app.get("/api/auth/me", &key).await;
        assert_error(s, &b, 401, "unauthorized");
        // Revoking again answers the same.
        let (s, b2) = app
            .post(
                &format!("/api/admin/access-keys/{id}/revoke"),
                &app.admin_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b2["status"], "revoked");
        // Expired key: valid for ~1.5 s.
        let soon = canopy_core::time::rfc3339(canopy_core::time::now_ms() + 1500);
        let (_, key) = app.key(&["read"], json!({"expires_at": soon})).await;
        assert_eq!(app.get("/api/auth/me", &key).await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let (s, b) = app.get("/api/auth/me", &key).await;
        assert_error(s, &b, 401, "unauthorized");
        // X-Access-Key works as well as Bearer.
        let res = app
            .raw()
            .get(app.url("/api/auth/me"))
            .header("X-Access-Key", &app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
);

both!(wrong_scope_is_403, |app: TestApp| async move {
    let (_, read) = app.key(&["read"], json!({})).await;
    let (s, b) = app
        .post("/v1/admin/clients", &read, json!({"name": "x"}))
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.get("/v1/clients", &read).await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.get("/api/admin/access-keys", &read).await;
    assert_error(s, &b, 403, "forbidden");
    // A key cannot mint a key with more power than it has.
    let (_, admin_less) = app.key(&["write", "read"], json!({})).await;
    let (s, _) = app
        .post(
            "/api/admin/access-keys",
            &admin_less,
            json!({"scopes": ["admin"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nothing was created by the refused write.
    let (_, list) = app.get("/v1/clients?limit=100", &app.admin_key).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "x")
    );
});

both!(
    other_orgs_and_projects_answer_404,
    |app: TestApp| async move {
        let mine = app.client("Mine").await;
        let (_, other_admin) =
            canopy_services::tenancy::create_org(app.svc.store(), "other", "Other")
                .await
                .unwrap();
        // Another org's admin cannot see my client, nor find it in lists.
        let (s, b) = app.get(&format!("/v1/clients/{mine}"), &other_admin).await;
        assert_error(s, &b, 404, "not_found");
        let (s, b) = app
            .patch(
                &format!("/v1/admin/clients/{mine}"),
                &other_admin,
                json!({"name": "stolen"}),
            )
            .await;
        assert_error(s, &b, 404, "not_found");
        let (_, list) = app.get("/v1/clients?limit=100", &other_admin).await;
        assert!(
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != mine.as_str()),
            "{list}"
        );
        // Nor my keys.
        let (my_key_id, _) = app.key(&["read"], json!({})).await;
        let (s, _) = app
            .get(&format!("/api/admin/access-keys/{my_key_id}"), &other_admin)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // A key of project B sees project B but gets 404 for project A.
        let b_id = app.client("B").await;
        let (_, b_key) = app
            .key(&["read", "admin"], json!({"project_id": b_id}))
            .await;
        assert_eq!(
            app.get(&format!("/v1/clients/{b_id}"), &b_key).await.0,
            StatusCode::OK
        );
        let (s, b) = app.get(&format!("/v1/clients/{mine}"), &b_key).await;
        assert_error(s, &b, 404, "not_found");
        let (_, list) = app.get("/v1/clients", &b_key).await;
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(ids, vec![b_id.as_str()]);
        // Garbage and plain-UUID ids.
        assert_eq!(
            app.get("/v1/clients/prj_nope", &app.admin_key).await.0,
            StatusCode::NOT_FOUND
        );
        let plain = uuid::Uuid::parse_str(mine.trim_start_matches("prj_"))
            .unwrap()
            .hyphenated()
            .to_string();
        let (s, b) = app
            .get(&format!("/v1/clients/{plain}"), &app.admin_key)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["id"], mine.as_str());
        // The org header must name the key's own org.
        let res = app
            .raw()
            .get(app.url("/v1/clients"))
            .bearer_auth(&app.admin_key)
            .header("X-Stackmint-Org-Id", "org_00000000000000000000000000000001")
            .send()
            .await
            .unwrap();
        let (s, b) = split(res).await;
        assert_error(s, &b, 403, "forbidden");
        let (_, me) = app.get("/api/auth/me", &app.admin_key).await;
        let res = app
            .raw()
            .get(app.url("/v1/clients"))
            .bearer_auth(&app.admin_key)
            .header("X-Canopy-Org-Id", me["org_id"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
);

both!(
    pagination_walks_250_items_without_gaps,
    |app: TestApp| async move {
        let mut created = HashSet::new();
        for i in 0..250 {
            created.insert(app.client(&format!("client {i:03}")).await);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/clients?limit=100&cursor={c}"),
                None => "/v1/clients?limit=100".to_owned(),
            };
            let (s, b) = app.get(&path, &app.admin_key).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            pages += 1;
            assert_eq!(b["pagination"]["limit"], 100);
            for c in b["data"].as_array().unwrap() {
                seen.push(c["id"].as_str().unwrap().to_owned());
            }
            match b["pagination"]["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(b["pagination"]["has_more"], true);
                    cursor = Some(c.to_owned());
                }
                None => {
                    assert_eq!(b["pagination"]["has_more"], false);
                    break;
                }
            }
        }
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "no duplicates");
        assert!(created.is_subset(&unique), "no gaps");
        assert_eq!(pages, 3);
        // Bounds and bad cursors.
        let (s, b) = app.get("/v1/clients?limit=101", &app.admin_key).await;
        assert_error(s, &b, 422, "invalid_input");
        assert_eq!(b["error"]["field"], "limit");
        let (s, b) = app.get("/v1/clients?limit=0", &app.admin_key).await;
        assert_eq!(s.as_u16(), 422, "{b}");
        let (s, b) = app.get("/v1/clients?cursor=garbage!", &app.admin_key).await;
        assert_error(s, &b, 400, "invalid_cursor");
        let (s, b) = app.get("/v1/clients?limit=abc", &app.admin_key).await;
        assert_eq!(s.as_u16(), 422, "{b}");
        assert_eq!(b["error"]["field"], "limit");
    }
);

/// Waits until at least `secs` remain in the current rate-limit minute.
pub(crate) async fn away_from_window_edge(secs: i64) {
    let now = canopy_core::time::now_ms();
    let left = 60_000 - now.rem_euclid(60_000);
    if left < secs * 1000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 50)).await;
    }
}

async fn rate_limit_case(app: TestApp) {
    away_from_window_edge(20).await;
    for i in 1..=100 {
        let res = app
            .req(Method::GET, "/api/auth/me", Some(&app.admin_key), None)
            .await;
        assert_eq!(res.status(), StatusCode::OK, "request {i}");
        let h = res.headers();
        assert_eq!(h["x-ratelimit-limit"], "100");
        assert_eq!(
            h["x-ratelimit-remaining"].to_str().unwrap(),
            (100 - i).to_string()
        );
        assert!(h.contains_key("x-ratelimit-reset"));
    }
    let res = app
        .req(Method::GET, "/api/auth/me", Some(&app.admin_key), None)
        .await;
    let retry_header: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    let (s, b) = split(res).await;
    assert_error(s, &b, 429, "rate_limit_exceeded");
    let retry = b["error"]["retry_after"].as_i64().unwrap();
    assert!((1..=60).contains(&retry), "{b}");
    assert_eq!(retry, retry_header);
    // Stackmint routes name the code their own way.
    let (s, b) = app.get("/v1/clients", &app.admin_key).await;
    assert_error(s, &b, 429, "rate_limited");
    // Another key has its own allowance.
    let other = canopy_services::tenancy::create_org(app.svc.store(), "second", "Second")
        .await
        .unwrap()
        .1;
    assert_eq!(app.get("/api/auth/me", &other).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_request_in_a_minute_is_429_sqlite() {
    let app = TestApp::start(Backend::Sqlite, |_| {}).await.unwrap();
    rate_limit_case(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_request_in_a_minute_is_429_postgres() {
    match TestApp::start(Backend::Postgres, |_| {}).await {
        Some(app) => rate_limit_case(app).await,
        None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
    }
}

both!(
    conventions_bad_json_oversize_unknown_route_method,
    |app: TestApp| async move {
        let send = |method: Method, path: &str, body: Vec<u8>| {
            app.raw()
                .request(method, app.url(path))
                .bearer_auth(&app.admin_key)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let res = send(Method::POST, "/v1/admin/clients", b"{\"name\": ".to_vec())
            .await
            .unwrap();
        assert!(res.headers().contains_key("x-request-id"));
        let (s, b) = split(res).await;
        assert_error(s, &b, 400, "invalid_json");
        let res = send(Method::POST, "/v1/admin/clients", b"[1,2]".to_vec())
            .await
            .unwrap();
        let (s, b) = split(res).await;
        assert_error(s, &b, 400, "invalid_json");
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
        let (s, b) = split(
            send(Method::POST, "/v1/admin/clients", big.into_bytes())
                .await
                .unwrap(),
        )
        .await;
        assert_error(s, &b, 413, "payload_too_large");
        let (s, b) = split(send(Method::GET, "/v1/nothing-here", vec![]).await.unwrap()).await;
        assert_error(s, &b, 404, "not_found");
        let (s, b) = split(app.req(Method::GET, "/nope", None, None).await).await;
        assert_error(s, &b, 404, "not_found");
        let (s, b) = split(send(Method::PUT, "/v1/clients", vec![]).await.unwrap()).await;
        assert_error(s, &b, 405, "method_not_allowed");
        // Validation errors name the field; nothing is written.
        let (s, b) = app
            .post(
                "/v1/admin/clients",
                &app.admin_key,
                json!({"slug": "no-name"}),
            )
            .await;
        assert_error(s, &b, 422, "invalid_input");
        assert_eq!(b["error"]["field"], "name");
        let (s, b) = app
            .post(
                "/v1/admin/clients",
                &app.admin_key,
                json!({"name": "ok", "slug": "Bad Slug"}),
            )
            .await;
        assert_eq!(s.as_u16(), 422);
        assert_eq!(b["error"]["field"], "slug");
        let (s, b) = app
            .post(
                "/api/admin/access-keys",
                &app.admin_key,
                json!({"scopes": ["wirte"]}),
            )
            .await;
        assert_error(s, &b, 422, "invalid_type");
        assert_eq!(b["error"]["field"], "scopes");
        assert_eq!(b["error"]["suggestion"], "Did you mean 'write'?");
        // Duplicate slug → 409.
        app.client("Dup").await;
        let (s, b) = app
            .post("/v1/admin/clients", &app.admin_key, json!({"name": "Dup"}))
            .await;
        assert_error(s, &b, 409, "conflict");
        // Request ids: generated, or propagated when sent.
        let res = app
            .raw()
            .get(app.url("/v1/health"))
            .header("x-request-id", "abc-123")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], "abc-123");
    }
);

both!(
    idempotent_post_replays_the_first_response,
    |app: TestApp| async move {
        let post = |key: &'static str, body: Value| {
            app.raw()
                .post(app.url("/v1/admin/clients"))
                .bearer_auth(&app.admin_key)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
        };
        let first = post("k-1", json!({"name": "Once"})).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(!first.headers().contains_key("idempotent-replayed"));
        let (_, a) = split(first).await;
        let second = post("k-1", json!({"name": "Once"})).await.unwrap();
        assert_eq!(second.status(), StatusCode::CREATED);
        assert_eq!(second.headers()["idempotent-replayed"], "true");
        let (_, b) = split(second).await;
        assert_eq!(a, b);
        let (_, list) = app.get("/v1/clients?limit=100", &app.admin_key).await;
        let n = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] == "Once")
            .count();
        assert_eq!(n, 1, "created once");
        let (s, b) = split(post("k-1", json!({"name": "Other"})).await.unwrap()).await;
        assert_error(s, &b, 422, "idempotency_key_reused");
        // A failed request is not kept: the same key can be retried after fixing nothing else.
        let (s, _) = split(post("k-2", json!({"name": ""})).await.unwrap()).await;
        assert_eq!(s.as_u16(), 422);
        let (s, _) = split(post("k-2", json!({"name": ""})).await.unwrap()).await;
        assert_eq!(s.as_u16(), 422);
    }
);

both!(every_mutation_is_audited, |app: TestApp| async move {
    let id = app.client("Audited").await;
    app.patch(
        &format!("/v1/admin/clients/{id}"),
        &app.admin_key,
        json!({"name": "Audited 2"}),
    )
    .await;
    let (key_id, _) = app.key(&["read"], json!({})).await;
    let (s, rotated) = app
        .post(
            &format!("/api/admin/access-keys/{key_id}/rotate"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/admin/access-keys/{new_id}/revoke"),
        &app.admin_key,
        json!({}),
    )
    .await;
    app.delete(&format!("/v1/admin/clients/{id}"), &app.admin_key)
        .await;
    let (_, read) = app.key(&["read"], json!({})).await;
    let (s, _) = app
        .post("/v1/admin/clients", &read, json!({"name": "denied"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, log) = app.get("/v1/audit?limit=100", &app.admin_key).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let rows = log["data"].as_array().unwrap();
    let find = |action: &str, target: &str| {
        rows.iter()
            .any(|r| r["action"] == action && r["target"] == target && r["outcome"] == "success")
    };
    assert!(find("create_client", &id), "{log}");
    assert!(find("update_client", &id));
    assert!(find("archive_client", &id));
    assert!(find("create_access_key", &key_id));
    assert!(find("rotate_access_key", &new_id));
    assert!(find("revoke_access_key", &new_id));
    assert!(
        rows.iter()
            .any(|r| r["action"] == "create_client" && r["outcome"] == "denied"),
        "refused writes are recorded"
    );
    assert!(
        rows.iter()
            .all(|r| r["created_at"].as_str().is_some() && r["org_id"].as_str().is_some())
    );
    assert!(
        rows.iter()
            .filter(|r| r["outcome"] == "success" && !r["key_id"].is_null())
            .all(|r| r["request_id"].as_str().is_some_and(|s| !s.is_empty())),
        "{log}"
    );
    // Filters.
    let (_, only) = app
        .get(
            &format!("/v1/audit?action=update_client&target={id}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let (_, future) = app
        .get("/v1/audit?since=2999-01-01T00:00:00Z", &app.admin_key)
        .await;
    assert_eq!(future["data"].as_array().unwrap().len(), 0);
    // Reads are not audited.
    assert!(rows.iter().all(|r| r["action"] != "list_clients"));
});

both!(
    jwt_exchange_use_expiry_and_revocation,
    |app: TestApp| async move {
        let (key_id, key) = app.key(&["read", "write"], json!({})).await;
        let (s, tok) = app
            .post("/api/auth/token", &key, json!({"expires_in": 600}))
            .await;
        assert_eq!(s, StatusCode::OK, "{tok}");
        assert_eq!(tok["token_type"], "Bearer");
        assert_eq!(tok["expires_in"], 600);
        let jwt = tok["access_token"].as_str().unwrap().to_owned();
        let (s, me) = app.get("/api/auth/me", &jwt).await;
        assert_eq!(s, StatusCode::OK, "{me}");
        assert_eq!(me["type"], "jwt");
        assert_eq!(me["key_id"], key_id.as_str());
        assert_eq!(me["scopes"], json!(["read", "write"]));
        // Larger lifetimes are capped; tiny ones refused; a JWT cannot be exchanged.
        let (_, capped) = app
            .post("/api/auth/token", &key, json!({"expires_in": 10_000_000}))
            .await;
        assert_eq!(capped["expires_in"], 86_400);
        let (s, b) = app
            .post("/api/auth/token", &key, json!({"expires_in": 5}))
            .await;
        assert_eq!(s.as_u16(), 422, "{b}");
        let (s, b) = app.post("/api/auth/token", &jwt, json!({})).await;
        assert_error(s, &b, 403, "forbidden");
        // The JWKS verifies it (kid matches).
        let jwks: Value = app
            .raw()
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert!(jwks["keys"][0]["n"].as_str().unwrap().len() > 300);
        // A tampered token is refused.
        let tampered = format!("{}x", &jwt[..jwt.len() - 1]);
        let (s, _) = app.get("/api/auth/me", &tampered).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Revoking the key kills its tokens.
        app.post(
            &format!("/api/admin/access-keys/{key_id}/revoke"),
            &app.admin_key,
            json!({}),
        )
        .await;
        let (s, b) = app.get("/api/auth/me", &jwt).await;
        assert_error(s, &b, 401, "unauthorized");
        // Expiry: a key that lives ~2 s mints a token that dies with it.
        let soon = canopy_core::time::rfc3339(canopy_core::time::now_ms() + 2500);
        let (_, short) = app.key(&["read"], json!({"expires_at": soon})).await;
        let (_, tok) = app.post("/api/auth/token", &short, json!({})).await;
        assert!(tok["expires_in"].as_i64().unwrap() <= 3, "{tok}");
        let jwt = tok["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/api/auth/me", &jwt).await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(3200)).await;
        let (s, b) = app.get("/api/auth/me", &jwt).await;
        assert_error(s, &b, 401, "unauthorized");
    }
);

both!(
    rotation_replaces_the_key_at_once,
    |app: TestApp| async move {
        let (old_id, old) = app
            .key(&["read"], json!({"rate_limit": 50, "user_id": "u1"}))
            .await;
        let (s, r) = app
            .post(
                &format!("/api/admin/access-keys/{old_id}/rotate"),
                &app.admin_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["previous_id"], old_id.as_str());
        assert_eq!(r["status"], "active");
        let new = r["key"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert_eq!(
            app.get("/api/auth/me", &old).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (s, me) = app.get("/api/auth/me", &new).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["user_id"], "u1");
        let res = app.req(Method::GET, "/api/auth/me", Some(&new), None).await;
        assert_eq!(
            res.headers()["x-ratelimit-limit"],
            "50",
            "settings carry over"
        );
        // The old one cannot be rotated again; lists show no secrets.
        let (s, _) = app
            .post(
                &format!("/api/admin/access-keys/{old_id}/rotate"),
                &app.admin_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (_, list) = app
            .get("/api/admin/access-keys?status=revoked", &app.admin_key)
            .await;
        assert!(
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["id"] == old_id.as_str())
        );
        assert!(!list.to_string().contains(&new) && !list.to_string().contains(&old));
        let (s, b) = app
            .get("/api/admin/access-keys?status=actve", &app.admin_key)
            .await;
        assert_error(s, &b, 422, "invalid_type");
        assert_eq!(b["error"]["suggestion"], "Did you mean 'active'?");
        let (s, detail) = app
            .get(
                &format!("/api/admin/access-keys/{}", r["id"].as_str().unwrap()),
                &app.admin_key,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(detail["usage_24h"].as_i64().unwrap() >= 2, "{detail}");
        assert!(detail["last_used_at"].as_str().is_some(), "{detail}");
    }
);

both!(usage_by_day_and_route_group, |app: TestApp| async move {
    let (id, key) = app.key(&["admin"], json!({})).await;
    for _ in 0..3 {
        app.get("/v1/clients", &key).await;
    }
    app.get("/api/auth/me", &key).await;
    let (s, u) = app
        .get(&format!("/api/admin/usage/{id}?days=7"), &app.admin_key)
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["days"], 7);
    assert_eq!(u["daily"].as_array().unwrap().len(), 7);
    assert_eq!(u["totals"]["requests"], 4);
    assert_eq!(u["by_route_group"]["v1/clients"], 3);
    assert_eq!(u["by_route_group"]["api/auth"], 1);
    let today = &u["daily"][6];
    assert_eq!(
        today["date"],
        canopy_core::time::day(canopy_core::time::now_ms())
    );
    assert_eq!(today["requests"], 4);
    let (s, b) = app
        .get(&format!("/api/admin/usage/{id}?days=91"), &app.admin_key)
        .await;
    assert_eq!(s.as_u16(), 422, "{b}");
});

both!(
    archived_clients_lock_their_keys,
    |app: TestApp| async move {
        let id = app.client("Short-lived").await;
        let (_, key) = app.key(&["read"], json!({"project_id": id})).await;
        assert_eq!(
            app.get(&format!("/v1/clients/{id}"), &key).await.0,
            StatusCode::OK
        );
        let (s, c) = app
            .delete(&format!("/v1/admin/clients/{id}"), &app.admin_key)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["status"], "archived");
        assert_eq!(
            app.get(&format!("/v1/clients/{id}"), &key).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (_, list) = app.get("/v1/clients", &app.admin_key).await;
        assert!(
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != id.as_str())
        );
        let (_, all) = app
            .get("/v1/clients?include_archived=true", &app.admin_key)
            .await;
        assert!(
            all["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == id.as_str())
        );
    }
);

both!(data_survives_a_restart, |mut app: TestApp| async move {
    let id = app.client("Durable").await;
    let (_, key) = app.key(&["read"], json!({})).await;
    app.restart().await;
    let (s, c) = app.get(&format!("/v1/clients/{id}"), &app.admin_key).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["name"], "Durable");
    assert_eq!(app.get("/api/auth/me", &key).await.0, StatusCode::OK);
    // No second bootstrap: still one admin key from the first start.
    let (_, keys) = app
        .get("/api/admin/access-keys?limit=100", &app.admin_key)
        .await;
    let firsts = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "admin (first start)")
        .count();
    assert_eq!(firsts, 1, "{keys}");
    // A JWT minted before the restart still verifies (the signing key is in the database).
    let (_, tok) = app.post("/api/auth/token", &key, json!({})).await;
    app.restart().await;
    assert_eq!(
        app.get("/api/auth/me", tok["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
});

both!(
    docs_openapi_and_metrics_are_served,
    |app: TestApp| async move {
        let spec: Value = app
            .raw()
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        for (path, method, op) in [
            ("/v1/clients", "get", "list_clients"),
            ("/v1/clients/{clientId}", "get", "get_client"),
            ("/v1/admin/clients", "post", "create_client"),
            ("/v1/admin/clients/{clientId}", "patch", "update_client"),
            ("/v1/admin/clients/{clientId}", "delete", "archive_client"),
            ("/api/admin/access-keys", "post", "create_access_key"),
            (
                "/api/admin/access-keys/{id}/rotate",
                "post",
                "rotate_access_key",
            ),
            ("/api/admin/usage/{keyId}", "get", "get_key_usage"),
            ("/api/auth/token", "post", "exchange_token"),
            ("/v1/audit", "get", "list_audit"),
            ("/v1/health", "get", "health"),
            (
                "/public/{project}/feedback",
                "post",
                "submit_widget_feedback",
            ),
            ("/v1/context/entries", "post", "store_context"),
            ("/v1/agents/sync", "post", "sync_agents"),
        ] {
            assert_eq!(
                spec["paths"][path][method]["operationId"], op,
                "{path} {method}"
            );
        }
        // Every $ref resolves inside the document.
        let text = spec.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let target = r.split('"').next().unwrap();
            let name = target.trim_start_matches("#/components/schemas/");
            assert!(
                spec["components"]["schemas"].get(name).is_some(),
                "dangling {target}"
            );
        }
        let docs = app
            .raw()
            .get(app.url("/docs"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(docs.contains("/openapi.json"));
        let errors = app
            .raw()
            .get(app.url("/docs/errors"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for code in canopy_core::Code::ALL {
            assert!(
                errors.contains(&format!("id=\"{}\"", code.as_str())),
                "{}",
                code.as_str()
            );
        }
        app.get("/v1/clients", &app.admin_key).await;
        let metrics = app
            .raw()
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("canopy_http_requests_total"), "{metrics}");
        assert!(metrics.contains("route=\"/v1/clients\""));
        assert!(metrics.contains("canopy_db_pool_connections"));
        let (s, h) = split(app.req(Method::GET, "/v1/health", None, None).await).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["status"], "ok");
        assert!(h["version"].as_str().is_some());
    }
);

/// Two nodes on one PostgreSQL database: a revocation on one holds on the other at once, and
/// rate limits are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_revocations_and_limits_postgres() {
    let Some(a) = TestApp::start(Backend::Postgres, |s| s.rate_limit_per_minute = 100_000).await
    else {
        eprintln!("CANOPY_TEST_PG is not set: not run");
        return;
    };
    let mut b_settings = a.settings.clone();
    b_settings.data_dir = a.dir.path().join("data");
    let mut b = TestApp::start(Backend::Sqlite, |s| *s = b_settings.clone())
        .await
        .unwrap();
    b.admin_key = a.admin_key.clone();
    let (id, key) = a.key(&["read"], json!({"rate_limit": 6})).await;
    away_from_window_edge(10).await;
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            node.get("/api/auth/me", &key).await.0,
            StatusCode::OK,
            "request {i}"
        );
    }
    assert_eq!(
        a.get("/api/auth/me", &key).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "limit shared across nodes"
    );
    let (_, key2) = a.key(&["read"], json!({})).await;
    let (_, detail) = a
        .get(&format!("/api/admin/access-keys/{id}"), &a.admin_key)
        .await;
    assert_eq!(detail["status"], "active");
    assert_eq!(b.get("/api/auth/me", &key2).await.0, StatusCode::OK);
    let (_, me) = b.get("/api/auth/me", &key2).await;
    let key2_id = me["key_id"].as_str().unwrap().to_owned();
    a.post(
        &format!("/api/admin/access-keys/{key2_id}/revoke"),
        &a.admin_key,
        json!({}),
    )
    .await;
    assert_eq!(
        b.get("/api/auth/me", &key2).await.0,
        StatusCode::UNAUTHORIZED,
        "revocation holds on the other node"
    );
}

both!(
    org_and_client_limits_are_shared_by_their_keys,
    |app: TestApp| async move {
        away_from_window_edge(15).await;
        // A client limit of 3 is shared by two keys of that client.
        let id = app.client("Limited").await;
        let (s, _) = app
            .patch(
                &format!("/v1/admin/clients/{id}"),
                &app.admin_key,
                json!({"rate_limit": 3}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (_, k1) = app.key(&["read"], json!({"project_id": id})).await;
        let (_, k2) = app.key(&["read"], json!({"project_id": id})).await;
        assert_eq!(app.get("/api/auth/me", &k1).await.0, StatusCode::OK);
        assert_eq!(app.get("/api/auth/me", &k2).await.0, StatusCode::OK);
        let res = app.req(Method::GET, "/api/auth/me", Some(&k1), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["x-ratelimit-limit"],
            "3",
            "the tightest limit is reported"
        );
        assert_eq!(
            app.get("/api/auth/me", &k2).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        // An org limit applies to every key of the org.
        let (org, other) =
            canopy_services::tenancy::create_org(app.svc.store(), "capped", "Capped")
                .await
                .unwrap();
        canopy_services::tenancy::set_org_rate_limit(app.svc.store(), org, Some(2))
            .await
            .unwrap();
        app.svc.expire_key_cache();
        assert_eq!(app.get("/api/auth/me", &other).await.0, StatusCode::OK);
        assert_eq!(app.get("/api/auth/me", &other).await.0, StatusCode::OK);
        assert_eq!(
            app.get("/api/auth/me", &other).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
);
