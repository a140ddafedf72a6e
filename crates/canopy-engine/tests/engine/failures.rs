//! Retries, timeouts, failures, cancel.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use canopy_core::Code;
use canopy_engine::{RunStatus, StepStatus};
use canopy_store::engine as db;
use serde_json::json;

use crate::common::*;

async fn retry_with_backoff_then_success(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "flaky", "kind": "test", "config": {"fail_times": 2},
         "retry": {"max_attempts": 3, "backoff_ms": 80}}
    ]});
    let run = run_to_end(&engine, def, json!({"v": 1})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let s = run.step("flaky").unwrap();
    assert_eq!(s.attempt, 3);
    assert_eq!(run.output, Some(json!({"echo": {"v": 1}, "attempt": 3})));
    // One call per attempt, each with its own key.
    for a in 1..=3 {
        assert_eq!(h.log.calls_of(&format!("{}:flaky:-1:{a}", run.id)), 1);
    }
    let events = assert_events_contiguous(&engine, run.id).await;
    let starts: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "step.started")
        .map(|e| e.at)
        .collect();
    let retries: Vec<&canopy_engine::Event> = events
        .iter()
        .filter(|e| e.kind == "step.retrying")
        .collect();
    assert_eq!(starts.len(), 3);
    assert_eq!(retries.len(), 2);
    // Backoff doubles: 80 ms, then 160 ms.
    assert!(starts[1] - retries[0].at >= 80, "{events:#?}");
    assert!(starts[2] - retries[1].at >= 160, "{events:#?}");
    assert_eq!(
        retries[1].data["retry_at"].as_i64().unwrap() - retries[1].at,
        160
    );
    engine.shutdown().await;
}
both!(retry_with_backoff_then_success);

/// Usage reported by attempts adds up on the step (failed attempts included) and on the run.
async fn usage_adds_up_over_attempts_and_steps(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let u = json!({"input_tokens": 5, "output_tokens": 2, "cost_usd": 0.5, "model": "m"});
    let def = json!({"steps": [
        {"id": "a", "kind": "test", "config": {"fail_times": 1, "usage": u},
         "retry": {"max_attempts": 2}},
        {"id": "b", "kind": "test", "config": {"usage": u}, "depends_on": ["a"]},
        {"id": "c", "kind": "test", "depends_on": ["b"]}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(
        run.step("a").unwrap().usage,
        Some(json!({"input_tokens": 10, "output_tokens": 4, "cost_usd": 1.0, "model": "m"}))
    );
    assert_eq!(run.step("c").unwrap().usage, None);
    assert_eq!(
        run.usage,
        Some(json!({"input_tokens": 15, "output_tokens": 6, "cost_usd": 1.5, "model": "m"}))
    );
    engine.shutdown().await;
}
both!(usage_adds_up_over_attempts_and_steps);

async fn exhausted_retries_fail_the_run_unless_continue_on_error(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "bad", "kind": "test", "config": {"fail_times": 5}, "retry": {"max_attempts": 2, "backoff_ms": 10}},
        {"id": "after", "kind": "transform", "depends_on": ["bad"]}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.step("bad").unwrap().status, StepStatus::Failed);
    assert_eq!(run.step("bad").unwrap().attempt, 2);
    assert_eq!(run.step("after").unwrap().status, StepStatus::Cancelled);
    assert_eq!(run.error.clone().unwrap()["step"], "bad");
    assert_eq!(run.error.unwrap()["code"], "flaky");

    let def = json!({"steps": [
        {"id": "bad", "kind": "test", "config": {"fail_times": 5}, "continue_on_error": true},
        {"id": "after", "kind": "transform", "depends_on": ["bad"], "config": {"jq": ".steps.bad.status"}}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.output, Some(json!("failed")));
    engine.shutdown().await;
}
both!(exhausted_retries_fail_the_run_unless_continue_on_error);

async fn step_timeout_fails_the_attempt(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "slow", "kind": "test", "config": {"sleep_ms": 10_000}, "timeout_ms": 100},
    ]});
    let t = Instant::now();
    let run = run_to_end(&engine, def, json!({})).await;
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.step("slow").unwrap().error.clone().unwrap()["code"],
        "timeout"
    );
    // The timed-out execution was dropped, not left running.
    assert_eq!(h.log.dropped.load(Ordering::SeqCst), 1);

    // A timeout is retryable: with attempts left, the next one runs.
    let def = json!({"steps": [
        {"id": "slow", "kind": "test", "config": {"sleep_ms": 10_000}, "timeout_ms": 80,
         "retry": {"max_attempts": 2, "backoff_ms": 1}},
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.step("slow").unwrap().attempt, 2);
    engine.shutdown().await;
}
both!(step_timeout_fails_the_attempt);

async fn cancel_while_a_step_runs(db: &TestDb) {
    let h = Harness::new();
    let (mut cfg, _) = h.config("n", 300);
    cfg.workers = 2;
    let engine = canopy_engine::Engine::start(db.store.clone(), cfg)
        .await
        .unwrap();
    let def = json!({"steps": [
        {"id": "hang", "kind": "test", "config": {"hang": true}},
        {"id": "next", "kind": "transform", "depends_on": ["hang"]}
    ]});
    let id = engine.submit(spec(def, json!({}))).await.unwrap();
    step_reaches(&engine, id, "hang", "running").await;
    until(5, "the executor to start", || async { h.log.total() == 1 }).await;
    let run = engine.cancel(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.step("hang").unwrap().status, StepStatus::Cancelled);
    assert_eq!(run.step("next").unwrap().status, StepStatus::Cancelled);
    assert!(
        db::list_run_jobs(&db.store, &id.db())
            .await
            .unwrap()
            .is_empty()
    );
    // The worker notices at its next heartbeat (a third of the lease) and drops the step.
    until(5, "the running step to be dropped", || async {
        h.log.dropped.load(Ordering::SeqCst) == 1
    })
    .await;
    let run = engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.step("next").unwrap().started_at, None);
    let events = assert_events_contiguous(&engine, id).await;
    assert_eq!(events.last().unwrap().kind, "run.cancelled");
    let again = engine.cancel(id).await.expect_err("already cancelled");
    assert_eq!(again.code, Code::Conflict);
    engine.shutdown().await;
}
both!(cancel_while_a_step_runs);

async fn start_refuses_a_config_it_cannot_honour(db: &TestDb) {
    let h = Harness::new();
    let (mut cfg, _) = h.config("n", 2000);
    cfg.lease = Duration::from_millis(5);
    let err = canopy_engine::Engine::start(db.store.clone(), cfg.clone())
        .await
        .err()
        .unwrap();
    assert_eq!(err.field.as_deref(), Some("lease"));
    cfg.lease = Duration::from_secs(1);
    cfg.poll = Duration::ZERO;
    let err = canopy_engine::Engine::start(db.store.clone(), cfg)
        .await
        .err()
        .unwrap();
    assert_eq!(err.field.as_deref(), Some("poll"));
}
both!(start_refuses_a_config_it_cannot_honour);
