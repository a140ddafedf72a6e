//! Test databases (a SQLite file in a temp dir; a fresh PostgreSQL database per test when
//! `CANOPY_TEST_PG` is set, dropped afterwards), test executors and helpers.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canopy_core::{OrgId, ProjectId, RunId};
use canopy_engine::{
    BoxFuture, Definition, Engine, EngineConfig, Executors, Run, RunKind, RunSpec, StepCall,
    StepError, StepExecutor, StepOutput,
};
use canopy_store::Store;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Runs a scenario on SQLite and, when `CANOPY_TEST_PG` is set, on PostgreSQL.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = crate::common::TestDb::sqlite().await;
                super::$name(&db).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = crate::common::TestDb::postgres().await {
                    super::$name(&db).await
                }
            }
        }
    };
}

pub struct TestDb {
    pub store: Store,
    pub url: Option<String>,
    _dir: Option<TempDir>,
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

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_sqlite(&dir.path().join("engine.db"))
            .await
            .expect("open sqlite");
        store.migrate().await.expect("migrate");
        TestDb {
            store,
            url: None,
            _dir: Some(dir),
            _pg: None,
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        let admin = std::env::var("CANOPY_TEST_PG").ok()?;
        let (prefix, query) = split_db_url(&admin);
        let name = format!("canopy_e_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .expect("connect CANOPY_TEST_PG");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
        let url = format!("{prefix}{name}{query}");
        let store = Store::open_postgres(&url, 12).await.expect("open pg");
        store.migrate().await.expect("migrate");
        Some(TestDb {
            store,
            url: Some(url),
            _dir: None,
            _pg: Some(PgDb {
                admin_url: admin,
                name,
            }),
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.url.is_some()
    }

    /// Another store on the same database: its own pool, as a second node would have.
    pub async fn second_store(&self) -> Store {
        match &self.url {
            Some(u) => Store::open_postgres(u, 12).await.expect("open pg"),
            None => self.store.clone(),
        }
    }
}

/// What the test executor saw: calls per idempotency key, executions in flight, overlaps.
#[derive(Default)]
pub struct Log {
    pub calls: Mutex<HashMap<String, usize>>,
    /// `run:step:item` of executions running now.
    in_flight: Mutex<HashSet<String>>,
    pub overlaps: AtomicUsize,
    pub max_parallel: AtomicUsize,
    pub dropped: AtomicUsize,
}

impl Log {
    pub fn calls_of(&self, key: &str) -> usize {
        self.calls.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    pub fn snapshot(&self) -> HashMap<String, usize> {
        self.calls.lock().unwrap().clone()
    }
}

/// Marks an execution finished (or dropped mid-way) when it goes out of scope.
struct Running {
    log: Arc<Log>,
    slot: String,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut f = self.log.in_flight.lock().unwrap();
        f.remove(&self.slot);
        if !self.done {
            self.log.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Kind `test`. Config: `sleep_ms` (how long it works), `fail_times` (the first attempts fail,
/// retryably), `hang` (never finishes), `output` (what to answer; else `{"echo": input}`).
pub struct TestExec {
    pub log: Arc<Log>,
    /// Calls executed by this instance (one per engine in the two-node test).
    pub mine: AtomicUsize,
}

impl TestExec {
    pub fn new(log: Arc<Log>) -> Arc<TestExec> {
        Arc::new(TestExec {
            log,
            mine: AtomicUsize::new(0),
        })
    }
}

impl StepExecutor for TestExec {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            self.mine.fetch_add(1, Ordering::SeqCst);
            *self
                .log
                .calls
                .lock()
                .unwrap()
                .entry(call.idempotency_key.clone())
                .or_default() += 1;
            let slot = format!("{}:{}:{:?}", call.run_id, call.step_id, call.item);
            let mut guard = {
                let mut f = self.log.in_flight.lock().unwrap();
                if !f.insert(slot.clone()) {
                    self.log.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                self.log.max_parallel.fetch_max(f.len(), Ordering::SeqCst);
                Running {
                    log: self.log.clone(),
                    slot,
                    done: false,
                }
            };
            let cfg = &call.config;
            if cfg.get("hang").and_then(Value::as_bool) == Some(true) {
                std::future::pending::<()>().await;
            }
            if let Some(ms) = cfg.get("sleep_ms").and_then(Value::as_u64) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            guard.done = true;
            drop(guard);
            let usage = cfg.get("usage").cloned();
            let fail_times = cfg.get("fail_times").and_then(Value::as_u64).unwrap_or(0);
            if u64::from(call.attempt) <= fail_times {
                let e = StepError::retryable(
                    "flaky",
                    format!("attempt {} fails on purpose", call.attempt),
                );
                return Err(match usage {
                    Some(u) => e.with_usage(u),
                    None => e,
                });
            }
            Ok(StepOutput {
                output: cfg
                    .get("output")
                    .cloned()
                    .unwrap_or_else(|| json!({"echo": call.input, "attempt": call.attempt})),
                usage,
            })
        })
    }
}

pub struct Harness {
    pub log: Arc<Log>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            log: Arc::new(Log::default()),
        }
    }

    pub fn config(&self, node: &str, lease_ms: u64) -> (EngineConfig, Arc<TestExec>) {
        let exec = TestExec::new(self.log.clone());
        let mut executors = Executors::default();
        executors.register("test", exec.clone());
        (
            EngineConfig {
                workers: 4,
                lease: Duration::from_millis(lease_ms),
                node_id: format!("{node}-{}", uuid::Uuid::new_v4().simple()),
                poll: Duration::from_millis(500),
                executors,
            },
            exec,
        )
    }

    pub async fn engine(&self, store: &Store) -> Engine {
        let (cfg, _) = self.config("n", 2000);
        Engine::start(store.clone(), cfg)
            .await
            .expect("start engine")
    }
}

pub fn spec(def: Value, input: Value) -> RunSpec {
    let definition: Definition = serde_json::from_value(def).expect("definition");
    RunSpec {
        org_id: OrgId::new(),
        project_id: ProjectId::new(),
        kind: RunKind::Branch,
        definition_id: None,
        definition_version: None,
        definition,
        input,
    }
}

/// Submits and waits (up to 20 s) for the run to finish.
pub async fn run_to_end(engine: &Engine, def: Value, input: Value) -> Run {
    let id = engine.submit(spec(def, input)).await.expect("submit");
    let run = engine
        .wait_finished(id, Duration::from_secs(20))
        .await
        .expect("wait");
    assert!(run.status.is_final(), "run did not finish: {run:#?}");
    run
}

/// Polls `check` every 10 ms until it holds, or fails the test after `secs`.
pub async fn until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the step run `step` has `status`.
pub async fn step_reaches(engine: &Engine, id: RunId, step: &str, status: &str) {
    let what = format!("step {step} to be {status}");
    until(20, &what, || async {
        let run = engine.get(id).await.expect("get");
        run.step(step).is_some_and(|s| s.status.as_str() == status)
    })
    .await
}

/// Asserts the run's events are numbered 1..=n without gaps.
pub async fn assert_events_contiguous(engine: &Engine, id: RunId) -> Vec<canopy_engine::Event> {
    let events = engine.events(id, 0, 1000).await.expect("events");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "event numbering: {events:#?}");
    }
    events
}
