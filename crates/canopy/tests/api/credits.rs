//! Credits and spending caps (issue 3 §7).

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Backend, TestApp, assert_error};

/// A server where storing context costs 1 credit (Context is free by default; prices are
/// configuration), so caps can be exercised through a simple write.
async fn priced(backend: Backend) -> Option<TestApp> {
    TestApp::start(backend, |s| {
        s.rate_limit_per_minute = 100_000;
        s.prices.insert("store_context".into(), 1);
    })
    .await
}

fn entry(i: usize) -> serde_json::Value {
    json!({"type": "fact", "title": format!("fact {i}"), "body": "b"})
}

async fn cap_refuses_and_writes_nothing(app: TestApp) {
    let k = app.admin_key.clone();
    let (s, u) = app.get("/v1/usage", &k).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["data"]["project"]["used"], 0);
    assert_eq!(
        u["data"]["prices"]["create_changelog_entry"], 3,
        "seed prices are the defaults"
    );
    let (s, c) = crate::harness::split(
        app.req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&k),
            Some(json!({"cap": 3})),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["data"]["cap"], 3);
    for i in 0..3 {
        let (s, b) = app.post("/v1/context/entries", &k, entry(i)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = app.post("/v1/context/entries", &k, entry(3)).await;
    assert_error(s, &b, 402, "spending_cap_exceeded");
    assert_eq!(b["error"]["current_usage"], 3);
    assert_eq!(b["error"]["cap"], 3);
    assert_eq!(b["error"]["action_cost"], 1);
    let (_, list) = app.get("/v1/context/entries?limit=100", &k).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        3,
        "the refused write wrote nothing"
    );
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(u["data"]["project"], json!({"used": 3, "cap": 3}));
    assert_eq!(u["data"]["org"]["used"], 3);
    assert_eq!(
        u["data"]["by_action"],
        json!([{"action": "store_context", "count": 3, "credits": 3}])
    );
    // Removing the cap lets writes through again; a read key cannot set caps.
    let (_, read) = app.key(&["read"], json!({})).await;
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&read),
            Some(json!({"cap": null})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&k),
            Some(json!({"cap": null})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.post("/v1/context/entries", &k, entry(4)).await.0,
        StatusCode::CREATED
    );
    // An org cap applies across its projects.
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&k),
            Some(json!({"cap": 4, "level": "org"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (s, b) = app.post("/v1/context/entries", &k, entry(5)).await;
    assert_error(s, &b, 402, "spending_cap_exceeded");
    assert_eq!(b["error"]["cap"], 4);
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&k),
            Some(json!({"cap": 4, "level": "orgg"})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 422);
}

async fn concurrent_writers_never_overspend(app: TestApp) {
    let k = app.admin_key.clone();
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&k),
            Some(json!({"cap": 20})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let app = app.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            app.post("/v1/context/entries", &k, entry(i)).await.0
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (20, 44));
    let (_, list) = app.get("/v1/context/entries?limit=100", &k).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 20);
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(u["data"]["project"]["used"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_refuses_and_writes_nothing_sqlite() {
    cap_refuses_and_writes_nothing(priced(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_refuses_and_writes_nothing_postgres() {
    match priced(Backend::Postgres).await {
        Some(app) => cap_refuses_and_writes_nothing(app).await,
        None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_overspend_sqlite() {
    concurrent_writers_never_overspend(priced(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_overspend_postgres() {
    match priced(Backend::Postgres).await {
        Some(app) => concurrent_writers_never_overspend(app).await,
        None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
    }
}

async fn quotas_refuse_past_the_limit(app: TestApp) {
    let k = app.admin_key.clone();
    for i in 0..2 {
        assert_eq!(
            app.post("/v1/context/entries", &k, entry(i)).await.0,
            StatusCode::CREATED
        );
    }
    let (s, b) = app
        .post(
            "/v1/context/entries/bulk",
            &k,
            json!({"entries": [entry(2), entry(3)]}),
        )
        .await;
    assert_error(s, &b, 403, "quota_exceeded");
    assert_eq!(
        (
            b["error"]["current"].as_i64(),
            b["error"]["limit"].as_i64(),
            b["error"]["adding"].as_i64()
        ),
        (Some(2), Some(3), Some(2))
    );
    assert_eq!(
        app.post("/v1/context/entries", &k, entry(4)).await.0,
        StatusCode::CREATED
    );
    let (s, b) = app.post("/v1/context/entries", &k, entry(5)).await;
    assert_error(s, &b, 403, "quota_exceeded");
    assert_eq!(b["error"]["quota"], "context_entries");
    let (_, list) = app.get("/v1/context/entries", &k).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
}

async fn quota_app(backend: Backend) -> Option<TestApp> {
    TestApp::start(backend, |s| {
        s.rate_limit_per_minute = 100_000;
        s.quotas.insert("context_entries".into(), 3);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_past_the_limit_sqlite() {
    quotas_refuse_past_the_limit(quota_app(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_past_the_limit_postgres() {
    match quota_app(Backend::Postgres).await {
        Some(app) => quotas_refuse_past_the_limit(app).await,
        None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
    }
}
