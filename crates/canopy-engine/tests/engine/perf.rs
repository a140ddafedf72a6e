//! Rough timings, printed, never asserted (`cargo test -p canopy-engine -- --ignored perf`).
//! The benchmarks proper belong in `bench/` and docs/benchmarks.md.

use std::time::{Duration, Instant};

use canopy_engine::RunStatus;
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
    eprintln!(
        "perf: sync 10-step p50 {:?} p99 {:?}; async 100 x 10 steps in {secs:.2}s = {:.0} step transitions/s",
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
        1000.0 / secs
    );
    engine.shutdown().await;
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
