//! Durability, black-box: real `canopy serve` processes (the built binary) killed with SIGKILL
//! mid-work and restarted, and two processes sharing one PostgreSQL database, against a local
//! HTTP sink that counts every request by its `Idempotency-Key`.
//!
//! - `crash_sqlite` / `crash_postgres`: 500 async runs of http → transform → http; the server
//!   is killed once about a third of the sink hits came in and a new one is started on the
//!   same data dir / database. Every run must succeed, every (run, http step) must have been
//!   sent with exactly one idempotency key, and a key may come twice only for a step that was
//!   taken over (cut mid-flight).
//! - `two_nodes_share_postgres`: two servers on one database (the second must not bootstrap),
//!   200 runs submitted to them alternately; the same key checks, both nodes' ids on
//!   `step.started` events, and a run's SSE stream read from either node lists the same events.
//!
//! The PostgreSQL tests need `CANOPY_TEST_PG` (a URL of a database the tests may connect to
//! and create databases from); without it they print a note and pass. Server logs (JSON) go
//! to files in the test's temp dir; a failure quotes their tails and keeps the dir.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// One test at a time: each runs server processes that want the (two) cores for themselves.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Requests in flight at once when submitting runs or reading them back.
const CONCURRENCY: usize = 16;
/// The branch's http steps (the sink sees one request per run for each).
const HTTP_STEPS: [&str; 2] = ["a", "c"];

// ---------------------------------------------------------------------------------------------
// The sink

#[derive(Default, Clone)]
struct Tally {
    /// Requests per `Idempotency-Key`.
    by_key: HashMap<String, usize>,
    /// Distinct keys per (run id, step id), parsed from the key.
    keys_of: HashMap<(String, String), BTreeSet<String>>,
    /// Requests whose key is not `run:step:item:attempt`.
    malformed: Vec<String>,
}

impl Tally {
    fn hits(&self) -> usize {
        self.by_key.values().sum()
    }

    /// Requests beyond the first for each key.
    fn same_key_repeats(&self) -> usize {
        self.by_key.values().map(|n| n.saturating_sub(1)).sum()
    }
}

struct SinkState {
    tally: Mutex<Tally>,
    arrived: AtomicUsize,
    /// Requests wait (counted already) until this is true.
    open: watch::Sender<bool>,
    /// `reached` fires once when `arrived` gets to `mark`.
    mark: usize,
    reached: Notify,
}

/// `POST /hit/{name}` on `127.0.0.1:0`: counts, waits for the gate, naps 2–12 ms (so that
/// requests are in flight when a server dies), and answers `{got: <body>, key, name}`.
#[derive(Clone)]
struct Sink {
    base: String,
    port: u16,
    st: Arc<SinkState>,
}

impl Sink {
    async fn start(open: bool, mark: usize) -> Sink {
        let (gate, _) = watch::channel(open);
        let st = Arc::new(SinkState {
            tally: Mutex::new(Tally::default()),
            arrived: AtomicUsize::new(0),
            open: gate,
            mark,
            reached: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/hit/{name}", post(hit))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            base: format!("http://127.0.0.1:{port}"),
            port,
            st,
        }
    }

    fn set_open(&self, open: bool) {
        self.st.open.send_replace(open);
    }

    fn arrived(&self) -> usize {
        self.st.arrived.load(Ordering::SeqCst)
    }

    fn tally(&self) -> Tally {
        self.st.tally.lock().unwrap().clone()
    }

    fn summary(&self) -> String {
        let t = self.tally();
        format!(
            "sink: {} requests, {} distinct keys, {} repeats of a key, {} (run, step) pairs, {} malformed keys",
            t.hits(),
            t.by_key.len(),
            t.same_key_repeats(),
            t.keys_of.len(),
            t.malformed.len()
        )
    }
}

/// `run_id:step_id:item:attempt` → (run id, step id).
fn parse_key(key: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = key.split(':').collect();
    match parts.as_slice() {
        [run, step, item, attempt]
            if !run.is_empty()
                && !step.is_empty()
                && item.parse::<i64>().is_ok()
                && attempt.parse::<u32>().is_ok() =>
        {
            Some(((*run).to_owned(), (*step).to_owned()))
        }
        _ => None,
    }
}

async fn hit(
    State(st): State<Arc<SinkState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    {
        let mut t = st.tally.lock().unwrap();
        *t.by_key.entry(key.clone()).or_default() += 1;
        match parse_key(&key) {
            Some(pair) => {
                t.keys_of.entry(pair).or_default().insert(key.clone());
            }
            None => t.malformed.push(format!("/hit/{name}: {key:?}")),
        }
    }
    let n = st.arrived.fetch_add(1, Ordering::SeqCst) + 1;
    if n == st.mark {
        st.reached.notify_one();
    }
    let mut gate = st.open.subscribe();
    let _ = gate.wait_for(|open| *open).await;
    tokio::time::sleep(Duration::from_millis(2 + (n as u64 * 7) % 11)).await;
    let got: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Json(json!({"got": got, "key": key, "name": name}))
}

// ---------------------------------------------------------------------------------------------
// Server processes

/// A reqwest builder; reqwest here is built without a default TLS provider, so install one.
fn client_builder() -> reqwest::ClientBuilder {
    canopy_runtime::init_tls();
    reqwest::Client::builder()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The flat TOML config every server of a test shares: the sink is the one private address
/// steps may reach.
fn write_config(root: &Path, sink: &Sink) -> PathBuf {
    let path = root.join("canopy.toml");
    let text = format!(
        "outbound_allow_hosts = [\"127.0.0.1:{}\"]\nengine_workers = 8\nrate_limit_per_minute = 1000000\npg_max_connections = 10\n",
        sink.port
    );
    std::fs::write(&path, text).unwrap();
    path
}

struct Launch<'a> {
    root: &'a Path,
    data_dir: &'a Path,
    config: &'a Path,
    database_url: Option<&'a str>,
    master_key: Option<&'a str>,
}

/// A `canopy serve` child process; dropping it kills (SIGKILL) and reaps it.
struct Server {
    label: String,
    child: Option<Child>,
    base: String,
    data_dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Server {
    /// Spawns `canopy serve` on a free port and waits (≤ 60 s) for `/v1/health`.
    async fn start(l: &Launch<'_>, label: &str) -> Server {
        for attempt in 1..=3 {
            let port = free_port();
            let stdout = l.root.join(format!("{label}.stdout.log"));
            let stderr = l.root.join(format!("{label}.stderr.log"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_canopy"));
            for (k, _) in std::env::vars_os() {
                let name = k.to_string_lossy();
                if name.starts_with("CANOPY_") || name == "RUST_LOG" {
                    cmd.env_remove(&k);
                }
            }
            cmd.args(["serve", "--log-format", "json", "--bind"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(l.data_dir)
                .arg("--config")
                .arg(l.config);
            if let Some(url) = l.database_url {
                cmd.arg("--database-url").arg(url);
            }
            if let Some(k) = l.master_key {
                cmd.env("CANOPY_MASTER_KEY", k);
            }
            cmd.stdin(Stdio::null())
                .stdout(File::create(&stdout).unwrap())
                .stderr(File::create(&stderr).unwrap());
            let child = cmd.spawn().expect("spawn canopy serve");
            let mut server = Server {
                label: label.to_owned(),
                child: Some(child),
                base: format!("http://127.0.0.1:{port}"),
                data_dir: l.data_dir.to_owned(),
                stdout,
                stderr,
            };
            match server.wait_healthy(Duration::from_secs(60)).await {
                Ok(()) => return server,
                // The free port was taken in between: try another.
                Err(why)
                    if why.contains("exited") && server.log().contains("bind") && attempt < 3 =>
                {
                    eprintln!("{label}: {why}; retrying on another port");
                }
                Err(why) => panic!("{label} did not become healthy: {why}\n{}", tails(l.root)),
            }
        }
        unreachable!("the loop returns or panics")
    }

    async fn wait_healthy(&mut self, within: Duration) -> Result<(), String> {
        let http = client_builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("the process exited ({status})"));
            }
            if let Ok(r) = http.get(format!("{}/v1/health", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no 200 from /v1/health within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.key"))
            .expect("admin.key in the data dir after the first start")
            .trim()
            .to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The engine node id from the `starting the run engine` log line.
    fn node_id(&self) -> Option<String> {
        self.log().lines().find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            let f = &v["fields"];
            (f["message"] == "starting the run engine")
                .then(|| f["node"].as_str().map(str::to_owned))
                .flatten()
        })
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (≤ 30 s) for the process to exit; answers its status.
    async fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("a running server");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "{} did not stop within 30 s of SIGTERM (killed it)\n{}",
                    self.label,
                    tail(&self.stderr, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "--- {} (last {} of {} lines)\n{}",
        path.display(),
        lines.len() - from,
        lines.len(),
        lines[from..].join("\n")
    )
}

/// The tails of every server log in the test's dir.
fn tails(root: &Path) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs.iter()
        .map(|p| tail(p, 30))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The test's temp dir, kept (and its path printed) when the test fails.
struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    fn new() -> Scratch {
        Scratch(Some(tempfile::tempdir().expect("tempdir")))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(d) = self.0.take()
        {
            eprintln!(
                "test failed: kept its dir with the server logs: {}",
                d.keep().display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL databases

/// A database `canopy_t_<uuid>` created for one test and dropped afterwards.
struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDb {
    /// `None` when `CANOPY_TEST_PG` is unset.
    async fn create() -> Option<PgDb> {
        let admin_url = std::env::var("CANOPY_TEST_PG").ok()?;
        let (prefix, query) = split_db_url(&admin_url);
        let name = format!("canopy_t_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("connect to CANOPY_TEST_PG");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        Some(PgDb {
            url: format!("{prefix}{name}{query}"),
            admin_url,
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime we must not block: a thread with its own.
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

// ---------------------------------------------------------------------------------------------
// The API

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Api {
        Api {
            http: client_builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Value), String> {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<(StatusCode, Value), String> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A call that must answer `want`; answers the body.
    async fn must(&self, method: Method, path: &str, body: Option<Value>, want: u16) -> Value {
        let (s, v) = self
            .call(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.as_u16(), want, "{method} {path}: {v}");
        v
    }
}

/// What a test works with: a client, its runtime key, the branch assigned to it.
struct Fixture {
    client: String,
    key: String,
    branch: String,
}

impl Fixture {
    fn runs(&self) -> String {
        format!("/v1/clients/{}/runs", self.client)
    }
}

/// http (POST /hit/a with `{n}`) → transform (n + 1) → http (POST /hit/c with `{m}`).
fn branch(sink: &Sink) -> Value {
    json!({
        "name": "Durable",
        "description": "http → transform → http",
        "steps": [
            {"id": "a", "bud": {"kind": "http", "config": {
                "method": "POST", "url": format!("{}/hit/a", sink.base),
                "body": {"n": "{{ input.n }}"}, "timeout_ms": 120000
            }}},
            {"id": "b", "bud": {"kind": "transform", "config": {
                "jq": "(.steps.a.output.body.got.n | tonumber) + 1"
            }}, "depends_on": ["a"]},
            {"id": "c", "bud": {"kind": "http", "config": {
                "method": "POST", "url": format!("{}/hit/c", sink.base),
                "body": {"m": "{{ steps.b.output }}"}, "timeout_ms": 120000
            }}, "depends_on": ["b"]}
        ]
    })
}

async fn author(admin: &Api, sink: &Sink) -> Fixture {
    let c = admin
        .must(
            Method::POST,
            "/v1/admin/clients",
            Some(json!({"name": "Durability"})),
            201,
        )
        .await;
    let client = c["id"].as_str().expect("client id").to_owned();
    let k = admin
        .must(
            Method::POST,
            "/api/admin/access-keys",
            Some(json!({"name": "durability", "scopes": ["read", "runtime", "bud.run"], "project_id": client})),
            201,
        )
        .await;
    let key = k["key"].as_str().expect("key").to_owned();
    let b = admin
        .must(Method::POST, "/v1/admin/branches", Some(branch(sink)), 201)
        .await;
    let branch = b["id"].as_str().expect("branch id").to_owned();
    admin
        .must(
            Method::POST,
            &format!("/v1/admin/clients/{client}/branches/{branch}/assign"),
            Some(json!({})),
            200,
        )
        .await;
    Fixture {
        client,
        key,
        branch,
    }
}

/// Submits runs `0..count` with input `{n: i}`, run `i` to `apis[i % apis.len()]`; answers
/// `(i, run id)` in order.
async fn submit(apis: &[Api], fx: &Fixture, count: usize, root: &Path) -> Vec<(usize, String)> {
    let path = format!("/v1/clients/{}/branches/{}/run", fx.client, fx.branch);
    let results: Vec<(usize, Result<String, String>)> = futures_util::stream::iter(0..count)
        .map(|i| {
            let api = apis[i % apis.len()].clone();
            let path = path.clone();
            async move {
                let r = match api
                    .post(&path, json!({"input": {"n": i}, "mode": "async"}))
                    .await
                {
                    Ok((s, v)) if s == StatusCode::ACCEPTED => v["run"]["id"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("no run id: {v}")),
                    Ok((s, v)) => Err(format!("{s}: {v}")),
                    Err(e) => Err(e),
                };
                (i, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut runs = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for (i, r) in results {
        match r {
            Ok(id) => runs.push((i, id)),
            Err(e) => errors.push(format!("run {i}: {e}")),
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {count} submissions failed, e.g. {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(5)],
        tails(root)
    );
    runs.sort();
    runs
}

/// Every run of the client: id → status (all pages).
async fn statuses(api: &Api, fx: &Fixture) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(c) => format!("{}?limit=100&cursor={c}", fx.runs()),
            None => format!("{}?limit=100", fx.runs()),
        };
        let (s, v) = api.get(&path).await?;
        if s != StatusCode::OK {
            return Err(format!("GET {path}: {s} {v}"));
        }
        for r in v["data"].as_array().cloned().unwrap_or_default() {
            out.insert(
                r["id"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
            );
        }
        cursor = v["pagination"]["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return Ok(out);
        }
    }
    Err("more than 1000 pages of runs".into())
}

fn count_by_status(
    runs: &[(usize, String)],
    all: &BTreeMap<String, String>,
) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for (_, id) in runs {
        let s = all.get(id).cloned().unwrap_or_else(|| "missing".into());
        *by.entry(s).or_insert(0) += 1;
    }
    by
}

/// Waits (≤ `within`) until every run succeeded; panics with a summary as soon as one ends
/// otherwise, or at the deadline.
async fn wait_all_succeeded(
    api: &Api,
    fx: &Fixture,
    runs: &[(usize, String)],
    within: Duration,
    sink: &Sink,
    root: &Path,
) {
    let deadline = Instant::now() + within;
    loop {
        let last = match statuses(api, fx).await {
            Ok(all) => {
                let by = count_by_status(runs, &all);
                if by.get("succeeded") == Some(&runs.len()) {
                    return;
                }
                let bad: Vec<&String> = runs
                    .iter()
                    .map(|(_, id)| id)
                    .filter(|id| {
                        matches!(
                            all.get(*id).map(String::as_str),
                            Some("failed" | "cancelled")
                        )
                    })
                    .collect();
                if !bad.is_empty() {
                    let detail = run_details(api, fx, &bad).await;
                    panic!(
                        "{} runs ended without succeeding; statuses {by:?}\n{detail}\n{}\n{}",
                        bad.len(),
                        sink.summary(),
                        tails(root)
                    );
                }
                format!("{by:?}")
            }
            Err(e) => format!("listing runs failed: {e}"),
        };
        if Instant::now() >= deadline {
            let stuck: Vec<&String> = match statuses(api, fx).await {
                Ok(all) => runs
                    .iter()
                    .map(|(_, id)| id)
                    .filter(|id| all.get(*id).map(String::as_str) != Some("succeeded"))
                    .collect(),
                Err(_) => Vec::new(),
            };
            let detail = run_details(api, fx, &stuck).await;
            panic!(
                "not every run succeeded within {within:?}: last statuses {last}; {} not succeeded\n{detail}\n{}\n{}",
                stuck.len(),
                sink.summary(),
                tails(root)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The first few of `ids` as the API shows them (status, steps, error).
async fn run_details(api: &Api, fx: &Fixture, ids: &[&String]) -> String {
    let mut out = String::new();
    for id in ids.iter().take(5) {
        let r = api.get(&format!("{}/{id}", fx.runs())).await;
        let steps = match &r {
            Ok((_, v)) => v["steps"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|s| {
                            format!(
                                "{}={} attempt {} {}",
                                s["step_id"].as_str().unwrap_or("?"),
                                s["status"].as_str().unwrap_or("?"),
                                s["attempt"],
                                if s["error"].is_null() {
                                    String::new()
                                } else {
                                    s["error"].to_string()
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            Err(e) => e.clone(),
        };
        let status = r
            .as_ref()
            .map(|(_, v)| format!("{} {}", v["status"], v["error"]))
            .unwrap_or_default();
        out.push_str(&format!("  {id}: {status} [{steps}]\n"));
    }
    out
}

/// A run's event log as JSON (all of it; these runs have a dozen events).
async fn events(api: &Api, fx: &Fixture, id: &str) -> Result<Vec<Value>, String> {
    let path = format!("{}/{id}/events?after_seq=0&limit=1000", fx.runs());
    let (s, v) = api.get(&path).await?;
    if s != StatusCode::OK {
        return Err(format!("GET {path}: {s} {v}"));
    }
    Ok(v["data"].as_array().cloned().unwrap_or_default())
}

/// What the checks found, for the log.
#[derive(Debug, Default)]
struct Figures {
    hits: usize,
    distinct_keys: usize,
    same_key_repeats: usize,
    takeovers: usize,
    retries: usize,
    /// `step.started` events per node id.
    started_by_node: BTreeMap<String, usize>,
}

/// A run and its events, or why they could not be read.
type ReadBack = Result<(Value, Vec<Value>), String>;

/// Reads every run back (run `i` from `apis[i % len]`) and checks: succeeded with the output
/// the data flow gives (`m == n + 1`); per (run, http step) exactly one distinct key, hit at
/// least once, and more than once only if the step was taken over; no foreign or malformed
/// keys at the sink.
async fn verify(
    apis: &[Api],
    fx: &Fixture,
    runs: &[(usize, String)],
    sink: &Sink,
    root: &Path,
) -> Figures {
    let read: Vec<(usize, String, ReadBack)> = futures_util::stream::iter(runs.iter().cloned())
        .map(|(i, id)| {
            let api = apis[i % apis.len()].clone();
            async move {
                let r = async {
                    let (s, run) = api.get(&format!("{}/{id}", fx.runs())).await?;
                    if s != StatusCode::OK {
                        return Err(format!("GET run: {s} {run}"));
                    }
                    Ok((run, events(&api, fx, &id).await?))
                }
                .await;
                (i, id, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let tally = sink.tally();
    let mut problems = Vec::new();
    let mut figures = Figures {
        hits: tally.hits(),
        distinct_keys: tally.by_key.len(),
        same_key_repeats: tally.same_key_repeats(),
        ..Figures::default()
    };
    let ours: BTreeSet<&str> = runs.iter().map(|(_, id)| id.as_str()).collect();
    for (i, id, r) in &read {
        let (run, evs) = match r {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("{id}: cannot read it back: {e}"));
                continue;
            }
        };
        if run["status"] != "succeeded" {
            problems.push(format!("{id}: status {} {}", run["status"], run["error"]));
        }
        let want = (i + 1).to_string();
        if run["output"]["body"]["got"]["m"].as_str() != Some(want.as_str()) {
            problems.push(format!(
                "{id} (n = {i}): output {} (wanted body.got.m = {want:?})",
                run["output"]
            ));
        }
        if !evs.iter().any(|e| e["type"] == "run.succeeded") {
            problems.push(format!("{id}: no run.succeeded event"));
        }
        let mut taken_over = BTreeSet::new();
        for e in evs.iter().filter(|e| e["type"] == "step.started") {
            let step = e["step_id"].as_str().unwrap_or_default().to_owned();
            if e["data"]["takeover"] == true {
                figures.takeovers += 1;
                taken_over.insert(step.clone());
            }
            if e["data"]["attempt"].as_i64().is_some_and(|a| a > 1) {
                figures.retries += 1;
            }
            let node = e["data"]["node"].as_str().unwrap_or("(no node)").to_owned();
            *figures.started_by_node.entry(node).or_insert(0) += 1;
        }
        for step in HTTP_STEPS {
            match tally.keys_of.get(&(id.clone(), step.to_owned())) {
                None => problems.push(format!("{id} step {step}: the sink never saw it")),
                Some(keys) if keys.len() != 1 => {
                    let counted: Vec<String> = keys
                        .iter()
                        .map(|k| format!("{k} ×{}", tally.by_key.get(k).copied().unwrap_or(0)))
                        .collect();
                    problems.push(format!(
                        "{id} step {step}: {} distinct idempotency keys: {counted:?}",
                        keys.len()
                    ));
                }
                Some(keys) => {
                    let k = keys.iter().next().unwrap();
                    let n = tally.by_key.get(k).copied().unwrap_or(0);
                    if n > 1 && !taken_over.contains(step) {
                        problems.push(format!(
                            "{id} step {step}: key {k} came {n} times but the step was never taken over"
                        ));
                    }
                }
            }
        }
    }
    for (run, step) in tally.keys_of.keys() {
        if !ours.contains(run.as_str()) {
            problems.push(format!(
                "the sink saw run {run} step {step}, not one of ours"
            ));
        }
    }
    for m in &tally.malformed {
        problems.push(format!("malformed key: {m}"));
    }
    assert!(
        problems.is_empty(),
        "{} problems (first 30):\n  {}\n{figures:?}\n{}\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  "),
        sink.summary(),
        tails(root)
    );
    figures
}

// ---------------------------------------------------------------------------------------------
// Crash: SIGKILL a third of the way through 500 runs, restart, everything finishes once.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn crash(backend: Backend) {
    const RUNS: usize = 500;
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match PgDb::create().await {
            Some(db) => Some(db),
            None => {
                eprintln!("CANOPY_TEST_PG is not set: PostgreSQL crash test not run");
                return;
            }
        },
    };
    let _serial = SERIAL.lock().await;
    let t0 = Instant::now();
    let scratch = Scratch::new();
    let root = scratch.path();
    let expected = RUNS * HTTP_STEPS.len();
    // Closed at first: all runs are submitted before any step gets its answer.
    let sink = Sink::start(false, expected / 3).await;
    let config = write_config(root, &sink);
    let data = root.join("data");
    let launch = Launch {
        root,
        data_dir: &data,
        config: &config,
        database_url: pg.as_ref().map(|d| d.url.as_str()),
        master_key: None,
    };
    let mut first = Server::start(&launch, "first").await;
    let admin = Api::new(&first.base, &first.admin_key());
    let fx = author(&admin, &sink).await;
    let runs = submit(&[Api::new(&first.base, &fx.key)], &fx, RUNS, root).await;
    let submitted = t0.elapsed();
    let held = sink.arrived();

    sink.set_open(true);
    if tokio::time::timeout(Duration::from_secs(120), sink.st.reached.notified())
        .await
        .is_err()
    {
        panic!(
            "the sink never got {} requests within 120 s of opening\n{}\n{}",
            expected / 3,
            sink.summary(),
            tails(root)
        );
    }
    first.kill();
    let at_kill = sink.arrived();
    let killed_at = t0.elapsed();

    let second = Server::start(&launch, "second").await;
    assert!(
        !second.printed().contains("First start"),
        "the restarted server bootstrapped again:\n{}",
        second.printed()
    );
    let restarted = Instant::now();
    let api = Api::new(&second.base, &fx.key);
    wait_all_succeeded(&api, &fx, &runs, Duration::from_secs(180), &sink, root).await;
    let recovery = restarted.elapsed();
    let figures = verify(std::slice::from_ref(&api), &fx, &runs, &sink, root).await;
    eprintln!(
        "crash/{backend:?}: {RUNS} runs × {} http steps; submitted in {submitted:.1?} ({held} requests held at the gate); \
         SIGKILL at {killed_at:.1?} after {at_kill} sink requests; all succeeded {recovery:.1?} after the restart; \
         sink: {} requests, {} distinct keys, {} repeats of a key (same key), {} takeovers, {} retries; total {:.1?}",
        HTTP_STEPS.len(),
        figures.hits,
        figures.distinct_keys,
        figures.same_key_repeats,
        figures.takeovers,
        figures.retries,
        t0.elapsed()
    );
    let mut second = second;
    let status = second.terminate().await;
    assert!(
        status.success(),
        "the restarted server did not stop cleanly on SIGTERM: {status}\n{}",
        tail(&second.stderr, 40)
    );
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sqlite() {
    crash(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_postgres() {
    crash(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// Two nodes on one PostgreSQL database.

/// A run's SSE stream read to its end (or `run.succeeded`): `(id, event)` per frame.
async fn sse(api: &Api, path: &str) -> Result<Vec<(i64, String)>, String> {
    let mut res = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(&api.key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    if res.status() != StatusCode::OK {
        return Err(format!("GET {path}: {}", res.status()));
    }
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !text.contains("event: run.succeeded\n") {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(format!("GET {path}: {e}\n{text}")),
            Err(_) => return Err(format!("GET {path}: no run.succeeded within 30 s\n{text}")),
        }
    }
    let mut frames = Vec::new();
    for frame in text.split("\n\n") {
        let mut id = None;
        let mut event = None;
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.trim().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.trim().to_owned());
            }
        }
        if let (Some(id), Some(event)) = (id, event) {
            frames.push((id, event));
        }
    }
    Ok(frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_postgres() {
    const RUNS: usize = 200;
    let Some(pg) = PgDb::create().await else {
        eprintln!("CANOPY_TEST_PG is not set: two-node test not run");
        return;
    };
    let _serial = SERIAL.lock().await;
    let t0 = Instant::now();
    let scratch = Scratch::new();
    let root = scratch.path();
    let sink = Sink::start(true, usize::MAX).await;
    let config = write_config(root, &sink);
    let mut master = [0u8; 32];
    master[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    master[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let master = base64::engine::general_purpose::STANDARD.encode(master);
    let (dir_a, dir_b) = (root.join("a"), root.join("b"));
    let launch_a = Launch {
        root,
        data_dir: &dir_a,
        config: &config,
        database_url: Some(pg.url.as_str()),
        master_key: Some(master.as_str()),
    };
    let launch_b = Launch {
        data_dir: &dir_b,
        ..launch_a
    };
    let mut a = Server::start(&launch_a, "node-a").await;
    let admin_key = a.admin_key();
    let mut b = Server::start(&launch_b, "node-b").await;
    // B joins the bootstrapped database: no admin key of its own, no first-start banner.
    assert!(
        !dir_b.join("admin.key").exists() && !b.printed().contains("First start"),
        "node B bootstrapped again: {}\n{}",
        b.printed(),
        tails(root)
    );
    // A's admin key works on B.
    Api::new(&b.base, &admin_key)
        .must(Method::GET, "/v1/admin/branches", None, 200)
        .await;
    let (node_a, node_b) = (a.node_id(), b.node_id());
    assert!(
        node_a.is_some() && node_b.is_some() && node_a != node_b,
        "engine node ids from the logs: A {node_a:?}, B {node_b:?}\n{}",
        tails(root)
    );
    let (node_a, node_b) = (node_a.unwrap(), node_b.unwrap());

    let fx = author(&Api::new(&a.base, &admin_key), &sink).await;
    let apis = [Api::new(&a.base, &fx.key), Api::new(&b.base, &fx.key)];
    let runs = submit(&apis, &fx, RUNS, root).await;
    wait_all_succeeded(&apis[0], &fx, &runs, Duration::from_secs(120), &sink, root).await;
    let figures = verify(&apis, &fx, &runs, &sink, root).await;
    let on_a = figures.started_by_node.get(&node_a).copied().unwrap_or(0);
    let on_b = figures.started_by_node.get(&node_b).copied().unwrap_or(0);
    assert!(
        on_a > 0 && on_b > 0,
        "both nodes should have started steps: A ({node_a}) {on_a}, B ({node_b}) {on_b}; all: {:?}",
        figures.started_by_node
    );
    let others: Vec<&String> = figures
        .started_by_node
        .keys()
        .filter(|n| **n != node_a && **n != node_b)
        .collect();
    assert!(
        others.is_empty(),
        "step.started from unknown nodes: {others:?}"
    );

    // Finished runs submitted to A: the SSE replay is the same from both nodes, and the same
    // as the JSON log.
    for (_, id) in runs.iter().filter(|(i, _)| i % 2 == 0).take(3) {
        let path = format!("{}/{id}/events", fx.runs());
        let from_a = sse(&apis[0], &path).await.unwrap_or_else(|e| panic!("{e}"));
        let from_b = sse(&apis[1], &path).await.unwrap_or_else(|e| panic!("{e}"));
        let logged: Vec<(i64, String)> = events(&apis[0], &fx, id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|e| {
                (
                    e["seq"].as_i64().unwrap_or(-1),
                    e["type"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(from_a, from_b, "run {id}: SSE from A vs B");
        assert_eq!(from_a, logged, "run {id}: SSE vs the JSON log");
    }

    // A live run submitted to A, tailed from B (and A) while its steps are held at the sink.
    sink.set_open(false);
    let live = apis[0]
        .must(
            Method::POST,
            &format!("/v1/clients/{}/branches/{}/run", fx.client, fx.branch),
            Some(json!({"input": {"n": 1000}, "mode": "async"})),
            202,
        )
        .await;
    let live_id = live["run"]["id"].as_str().expect("run id").to_owned();
    let path = format!("{}/{live_id}/events", fx.runs());
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sink.set_open(true);
    };
    let (from_b, from_a, ()) = tokio::join!(sse(&apis[1], &path), sse(&apis[0], &path), release);
    let from_b = from_b.unwrap_or_else(|e| panic!("{e}\n{}", tails(root)));
    let from_a = from_a.unwrap_or_else(|e| panic!("{e}\n{}", tails(root)));
    assert_eq!(from_a, from_b, "live run {live_id}: SSE from A vs B");
    let seqs: Vec<i64> = from_b.iter().map(|(s, _)| *s).collect();
    let gapless: Vec<i64> = (1..=i64::try_from(seqs.len()).unwrap()).collect();
    assert_eq!(
        seqs, gapless,
        "live run {live_id}: seq numbers from B: {from_b:?}"
    );
    assert_eq!(
        from_b.last().map(|(_, t)| t.as_str()),
        Some("run.succeeded"),
        "{from_b:?}"
    );

    eprintln!(
        "two-nodes: {RUNS} runs alternately to A and B, all succeeded; step.started by node: A {on_a}, B {on_b}; \
         sink: {} requests, {} distinct keys, {} repeats of a key, {} takeovers, {} retries; \
         live run {live_id}: {} SSE events, same from A and B; total {:.1?}",
        figures.hits,
        figures.distinct_keys,
        figures.same_key_repeats,
        figures.takeovers,
        figures.retries,
        from_b.len(),
        t0.elapsed()
    );
    for (label, s) in [("A", a.terminate().await), ("B", b.terminate().await)] {
        assert!(
            s.success(),
            "node {label} did not stop cleanly on SIGTERM: {s}\n{}",
            tails(root)
        );
    }
    drop(pg);
}
