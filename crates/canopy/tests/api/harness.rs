//! `TestApp`: a real Canopy server on `127.0.0.1:0` in this process, on a fresh SQLite file or
//! (when `CANOPY_TEST_PG` is set) a fresh PostgreSQL database, plus a small HTTP client.

use std::time::Duration;

use canopy::Settings;
use canopy_services::Services;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub admin_key: String,
    pub settings: Settings,
    pub svc: Services,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    pub dir: TempDir,
    _pg: Option<PgDb>,
}

struct PgDb {
    admin_url: String,
    name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime we may block; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                        pool.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// `postgres://u@h:p/db?x` → (`postgres://u@h:p/`, `?x`).
fn split_db_url(url: &str) -> (String, String) {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let cut = main.rfind('/').map(|i| i + 1).unwrap_or(main.len());
    (main[..cut].to_owned(), query)
}

impl TestApp {
    /// A server on SQLite with a generous default rate limit (tests make many requests).
    pub async fn sqlite() -> TestApp {
        TestApp::start(Backend::Sqlite, |s| s.rate_limit_per_minute = 100_000)
            .await
            .expect("sqlite app")
    }

    /// A server on a new PostgreSQL database, or `None` when `CANOPY_TEST_PG` is unset.
    pub async fn postgres() -> Option<TestApp> {
        std::env::var("CANOPY_TEST_PG").ok()?;
        Some(
            TestApp::start(Backend::Postgres, |s| s.rate_limit_per_minute = 100_000)
                .await
                .expect("postgres app"),
        )
    }

    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
        // reqwest is built with rustls and no default crypto provider: install ring first.
        canopy_runtime::init_tls();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::for_data_dir(dir.path().join("data"));
        let mut pg = None;
        if backend == Backend::Postgres {
            let url = std::env::var("CANOPY_TEST_PG").ok()?;
            let (prefix, query) = split_db_url(&url);
            let name = format!("canopy_t_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&url)
                .await
                .expect("connect to CANOPY_TEST_PG");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
            settings.database_url = Some(format!("{prefix}{name}{query}"));
            settings.pg_max_connections = 8;
            pg = Some(PgDb {
                admin_url: url,
                name,
            });
        }
        tweak(&mut settings);
        let mut app = TestApp {
            base: String::new(),
            admin_key: String::new(),
            svc: canopy::prepare(&settings).await.expect("prepare").svc,
            settings,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            stop: None,
            handle: None,
            dir,
            _pg: pg,
        };
        // `prepare` above bootstrapped the database; read the admin key from where it went.
        app.admin_key = app.bootstrap_key().await;
        app.launch().await;
        Some(app)
    }

    async fn bootstrap_key(&self) -> String {
        std::fs::read_to_string(self.settings.data_dir.join("admin.key"))
            .expect("admin.key")
            .trim()
            .to_owned()
    }

    /// Starts the server (again) on a new port with the same database.
    pub async fn launch(&mut self) {
        let prepared = canopy::prepare(&self.settings).await.expect("prepare");
        self.svc = prepared.svc.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        self.base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            canopy::serve(listener, prepared, stop, Duration::from_secs(5))
                .await
                .expect("serve");
        });
        self.stop = Some(tx);
        self.handle = Some(handle);
    }

    /// Stops the server gracefully and waits for it.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task");
        }
    }

    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.launch().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn req(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut r = self.http.request(method, self.url(path));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("request")
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        split(self.req(Method::GET, path, Some(key), None).await).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        split(self.req(Method::POST, path, Some(key), Some(body)).await).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        split(self.req(Method::PATCH, path, Some(key), Some(body)).await).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (StatusCode, Value) {
        split(self.req(Method::DELETE, path, Some(key), None).await).await
    }

    /// Creates a key with `scopes` through the API and returns (id, secret).
    pub async fn key(&self, scopes: &[&str], extra: Value) -> (String, String) {
        let mut body = serde_json::json!({"name": "test", "scopes": scopes});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, v) = self
            .post("/api/admin/access-keys", &self.admin_key, body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().expect("id").to_owned(),
            v["key"].as_str().expect("key").to_owned(),
        )
    }

    /// Creates a client and returns its id.
    pub async fn client(&self, name: &str) -> String {
        let (status, v) = self
            .post(
                "/v1/admin/clients",
                &self.admin_key,
                serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

pub async fn split(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let bytes = res.bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

/// Asserts the error envelope: status, code, and a docs link to the code's entry.
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "status; body: {body}");
    let e = &body["error"];
    assert_eq!(e["code"], want_code, "code; body: {body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message; body: {body}"
    );
    let docs = e["docs"].as_str().unwrap_or_default();
    assert!(
        docs.ends_with(&format!(
            "/docs/errors#{}",
            e["code"].as_str().unwrap_or_default()
        )) || docs.contains("/docs/errors#"),
        "docs link; body: {body}"
    );
}

/// Runs a test body on SQLite, and on PostgreSQL when `CANOPY_TEST_PG` is set.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::harness::TestApp::sqlite().await;
                ($body)(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::harness::TestApp::postgres().await {
                    Some(app) => ($body)(app).await,
                    None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
                }
            }
        }
    };
}
