//! Crashes, lease takeover, and several engines on one database.

use std::sync::atomic::Ordering;
use std::time::Duration;

use canopy_engine::{Engine, RunStatus};
use serde_json::json;

use crate::common::*;

fn chain(sleep_ms: u64) -> serde_json::Value {
    json!({"steps": [
        {"id": "s1", "kind": "test", "config": {"sleep_ms": sleep_ms}},
        {"id": "s2", "kind": "test", "depends_on": ["s1"], "config": {"sleep_ms": sleep_ms}},
        {"id": "s3", "kind": "test", "depends_on": ["s2"], "config": {"sleep_ms": sleep_ms}}
    ]})
}

/// Abort an engine mid-flight; a new one takes the abandoned leases over once they run out.
/// Every step's side effect happens once per idempotency key, except an attempt cut short
/// by the crash, which runs again under the same key (at most one per crashed worker).
async fn crashed_engine_work_is_taken_over(db: &TestDb) {
    let h = Harness::new();
    let (cfg, _) = h.config("crashing", 400);
    let workers = cfg.workers;
    let first = Engine::start(db.store.clone(), cfg).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            first
                .submit(spec(chain(100), json!({"i": i})))
                .await
                .unwrap(),
        );
    }
    until(20, "some steps to run", || async { h.log.total() >= 12 }).await;
    first.abort();
    drop(first);
    let before = h.log.snapshot();

    let (cfg, _) = h.config("rescuer", 400);
    let second = Engine::start(db.store.clone(), cfg).await.unwrap();
    let mut takeovers = 0;
    for id in &ids {
        let run = second
            .wait_finished(*id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
        for s in ["s1", "s2", "s3"] {
            assert_eq!(run.step(s).unwrap().attempt, 1, "no retries were due");
        }
        let events = assert_events_contiguous(&second, *id).await;
        takeovers += events
            .iter()
            .filter(|e| e.kind == "step.started" && e.data["takeover"] == true)
            .count();
    }
    let calls = h.log.snapshot();
    assert_eq!(calls.len(), 60, "one key per step of each run");
    let twice: Vec<&String> = calls
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(calls.values().all(|n| *n <= 2), "{calls:?}");
    assert!(
        twice.len() <= workers,
        "more repeats than crashed workers: {twice:?}"
    );
    // Only attempts the crash cut short ran twice.
    for k in &twice {
        assert_eq!(
            before.get(*k),
            Some(&1),
            "{k} repeated without having been cut short"
        );
    }
    assert!(
        takeovers >= 1,
        "the crash left no step running to take over"
    );
    assert_eq!(h.log.overlaps.load(Ordering::SeqCst), 0);
    second.shutdown().await;
}
both!(crashed_engine_work_is_taken_over);

/// Two engines (two nodes, each with its own pool) share one database: all runs finish,
/// both engines work, and no step ever executes twice, let alone at once.
async fn two_engines_share_two_hundred_runs(db: &TestDb) {
    let h = Harness::new();
    let (c1, x1) = h.config("one", 5000);
    let (c2, x2) = h.config("two", 5000);
    let one = Engine::start(db.store.clone(), c1).await.unwrap();
    let two = Engine::start(db.second_store().await, c2).await.unwrap();
    let def = json!({"steps": [
        {"id": "a", "kind": "test", "config": {"sleep_ms": 3}},
        {"id": "b", "kind": "test", "depends_on": ["a"], "config": {"sleep_ms": 1}},
        {"id": "c", "kind": "transform", "depends_on": ["b"], "config": {"jq": ".steps.a.output.echo.i"}}
    ]});
    let mut ids = Vec::new();
    for i in 0..200 {
        let engine = if i % 2 == 0 { &one } else { &two };
        ids.push(
            engine
                .submit(spec(def.clone(), json!({"i": i})))
                .await
                .unwrap(),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        // Waiting on the other node's runs too: its finish reaches this one by NOTIFY.
        let run = one
            .wait_finished(*id, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
        assert_eq!(run.output, Some(json!(i)));
        if i % 20 == 0 {
            assert_events_contiguous(&one, *id).await;
        }
    }
    let calls = h.log.snapshot();
    assert_eq!(calls.len(), 400);
    assert!(calls.values().all(|n| *n == 1), "a step ran twice");
    assert_eq!(h.log.overlaps.load(Ordering::SeqCst), 0);
    let (n1, n2) = (
        x1.mine.load(Ordering::SeqCst),
        x2.mine.load(Ordering::SeqCst),
    );
    assert_eq!(n1 + n2, 400);
    assert!(n1 > 0 && n2 > 0, "one engine did all the work: {n1} / {n2}");
    one.shutdown().await;
    two.shutdown().await;
}
both!(two_engines_share_two_hundred_runs);

/// Across nodes, wake-ups travel by PostgreSQL NOTIFY, not by polling: with a 10 s safety
/// poll, a run submitted on a node without workers is picked up by the other node at once,
/// and the submitting node's `wait_finished` hears of its end at once.
async fn other_nodes_are_woken_by_notify(db: &TestDb) {
    if !db.is_postgres() {
        return; // one process: SQLite wakes in memory (every other test covers that)
    }
    let h = Harness::new();
    let (mut c1, _) = h.config("client", 5000);
    c1.workers = 0;
    c1.poll = Duration::from_secs(10);
    let (mut c2, _) = h.config("worker", 5000);
    c2.poll = Duration::from_secs(10);
    let client = Engine::start(db.store.clone(), c1).await.unwrap();
    let worker = Engine::start(db.second_store().await, c2).await.unwrap();
    // Let the workers go idle (their first look finds nothing; they now sleep up to 10 s).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = std::time::Instant::now();
    for i in 0..3 {
        let id = client
            .submit(spec(chain(1), json!({"i": i})))
            .await
            .unwrap();
        let run = client
            .wait_finished(id, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Succeeded);
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    client.shutdown().await;
    worker.shutdown().await;
}
both!(other_nodes_are_woken_by_notify);

/// A step whose worker dies every time (say it takes the process down) is not taken over
/// forever: after `MAX_TAKEOVERS` it fails as `abandoned`.
async fn a_step_that_keeps_killing_its_worker_is_abandoned(db: &TestDb) {
    let h = Harness::new();
    let def = json!({"steps": [{"id": "doom", "kind": "test", "config": {"hang": true}}]});
    let mut id = None;
    let mut crashes = 0;
    loop {
        let (mut cfg, _) = h.config("doomed", 100);
        cfg.workers = 1;
        let engine = Engine::start(db.store.clone(), cfg).await.unwrap();
        let run_id = match id {
            Some(r) => r,
            None => *id.insert(engine.submit(spec(def.clone(), json!({}))).await.unwrap()),
        };
        // Either the step runs again (its executor is called once more), or the run ends.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let ended = loop {
            if engine.get(run_id).await.unwrap().status.is_final() {
                break true;
            }
            if h.log.total() > crashes {
                break false;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck after {crashes} crashes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        if ended {
            let run = engine.get(run_id).await.unwrap();
            assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
            let err = run.step("doom").unwrap().error.clone().unwrap();
            assert_eq!(err["code"], "abandoned", "{err}");
            assert_eq!(run.step("doom").unwrap().attempt, 1);
            break;
        }
        crashes += 1;
        assert!(crashes <= 10, "never abandoned");
        engine.abort();
    }
    // One start and five takeovers ran the executor; the sixth takeover gives up.
    assert_eq!(crashes, 6);
    assert_eq!(h.log.total(), 6);
}
both!(a_step_that_keeps_killing_its_worker_is_abandoned);
