//! Rough timings, printed, never asserted (`cargo test -p canopy-engine -- --ignored perf`).
//! The benchmarks proper belong in `bench/` and docs/benchmarks.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use canopy_engine::{BoxFuture, Engine, RunStatus, StepCall, StepError, StepExecutor, StepOutput};
use serde_json::json;

use crate::common::*;

fn ten_steps() -> serde_json::Value {
    let mut steps =
        vec![json!({"id": "s0", "kind": "transform", "config": {"jq": ".input.n + 1"}})];
    for i in 1..10 {
        steps.push(json!({
            "id": format!("s{i}"), "kind": "transform", "depends_on": [format!("s{}", i - 1)],
            "config": {"jq": format!(".steps.s{}.output + 1", i - 1)}
        }));
    }
    json!({"steps": steps})
}

async fn perf(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = ten_steps();
    let mut lat = Vec::new();
    for i in 0..100 {
        let t = Instant::now();
        let id = engine
            .submit(spec(def.clone(), json!({"n": i})))
            .await
            .unwrap();
        let run = engine
            .wait_finished(id, Duration::from_secs(10))
            .await
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(run.status, RunStatus::Succeeded);
    }
    lat.sort();
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            engine
                .submit(spec(def.clone(), json!({"n": i})))
                .await
                .unwrap(),
        );
    }
    for id in ids {
        engine
            .wait_finished(id, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    engine.shutdown().await;
    let bare = bare_inserts_per_sec(db).await;
    eprintln!(
        "perf: sync 10-step p50 {:?} p99 {:?}; async 100 x 10 steps in {secs:.2}s = {:.0} step transitions/s; \
         bare one-insert baseline {bare:.0}/s, ratio {:.2}",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        1000.0 / secs,
        1000.0 / secs / bare
    );
}

/// The bare baseline of the same run: one autocommitted `INSERT` per call through a plain
/// sqlx pool set up like the store's (SQLite: one WAL writer, `synchronous = NORMAL`, a
/// file of its own; PostgreSQL: the test database), 4 callers at once like the 4 workers.
async fn bare_inserts_per_sec(db: &TestDb) -> f64 {
    use std::str::FromStr;
    const SQL: &str = "INSERT INTO bare (v) VALUES ($1)";
    match &db.url {
        Some(url) => {
            let pg = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query("CREATE TABLE IF NOT EXISTS bare (id BIGSERIAL PRIMARY KEY, v TEXT)")
                .execute(&pg)
                .await
                .unwrap();
            four_callers(move || {
                let pg = pg.clone();
                async move {
                    sqlx::query(SQL).bind("x").execute(&pg).await.unwrap();
                }
            })
            .await
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(dir.path().join("bare.db"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            let lite = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(opts)
                .await
                .unwrap();
            sqlx::query("CREATE TABLE bare (id INTEGER PRIMARY KEY, v TEXT)")
                .execute(&lite)
                .await
                .unwrap();
            four_callers(move || {
                let lite = lite.clone();
                async move {
                    sqlx::query(SQL).bind("x").execute(&lite).await.unwrap();
                }
            })
            .await
        }
    }
}

/// Calls per second of `call`, 2,000 calls made by 4 callers at once.
async fn four_callers<F, Fut>(call: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let t = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    call().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    2000.0 / t.elapsed().as_secs_f64()
}

/// Kind `stamp`: records when each step's body starts and ends, and passes its input on.
#[derive(Default)]
struct Stamp(Mutex<HashMap<(String, String), (Instant, Instant)>>);

struct StampExec(Arc<Stamp>);

impl StepExecutor for StampExec {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let start = Instant::now();
            let out = StepOutput::from(call.input);
            if let Ok(mut m) = self.0.0.lock() {
                m.insert(
                    (call.run_id.to_string(), call.step_id),
                    (start, Instant::now()),
                );
            }
            Ok(out)
        })
    }
}

fn ten_stamps() -> serde_json::Value {
    let steps: Vec<_> = (0..10)
        .map(|i| {
            let deps: Vec<String> = if i == 0 {
                vec![]
            } else {
                vec![format!("s{}", i - 1)]
            };
            json!({"id": format!("s{i}"), "kind": "stamp", "depends_on": deps})
        })
        .collect();
    json!({"steps": steps})
}

fn pct(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

/// Time outside step bodies, the way published engine benchmarks count it: from submit to
/// the first step's body starting, and from one step's body ending to the next one's start.
async fn overhead(db: &TestDb) {
    let h = Harness::new();
    let stamps = Arc::new(Stamp::default());
    let (mut cfg, _) = h.config("perf", 2000);
    cfg.executors
        .register("stamp", Arc::new(StampExec(stamps.clone())));
    let engine = Engine::start(db.store.clone(), cfg).await.unwrap();
    let def = ten_stamps();
    let (mut first, mut gaps) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let t = Instant::now();
        let id = engine
            .submit(spec(def.clone(), json!({"n": i})))
            .await
            .unwrap();
        let run = engine
            .wait_finished(id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Succeeded);
        let m = stamps.0.lock().unwrap();
        let at = |s: usize| m[&(id.to_string(), format!("s{s}"))];
        first.push(at(0).0.saturating_duration_since(t));
        for s in 1..10 {
            gaps.push(at(s).0.saturating_duration_since(at(s - 1).1));
        }
    }
    eprintln!(
        "perf: submit to first step p50 {:?} p99 {:?}; step-to-step gap p50 {:?} p99 {:?} ({} gaps)",
        pct(&mut first, 50),
        pct(&mut first, 99),
        pct(&mut gaps, 50),
        pct(&mut gaps, 99),
        gaps.len()
    );
    engine.shutdown().await;
}

mod perf_overhead {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn sqlite() {
        super::overhead(&crate::common::TestDb::sqlite().await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn postgres() {
        if let Some(db) = crate::common::TestDb::postgres().await {
            super::overhead(&db).await
        }
    }
}

mod perf_timings {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn sqlite() {
        super::perf(&crate::common::TestDb::sqlite().await).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn postgres() {
        if let Some(db) = crate::common::TestDb::postgres().await {
            super::perf(&db).await
        }
    }
}
