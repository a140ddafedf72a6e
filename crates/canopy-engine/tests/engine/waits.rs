//! Approvals and durable timers.

use std::time::Duration;

use canopy_core::Code;
use canopy_engine::{Decision, Engine, RunStatus, StepStatus};
use serde_json::json;

use crate::common::*;

fn approval_branch(config: serde_json::Value) -> serde_json::Value {
    json!({"steps": [
        {"id": "prep", "kind": "transform", "config": {"jq": "\"ready\""}},
        {"id": "ok", "kind": "approval", "depends_on": ["prep"], "config": config},
        {"id": "ship", "kind": "transform", "depends_on": ["ok"], "config": {"jq": ".steps.ok.output"}}
    ]})
}

async fn approval_approved(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let id = engine
        .submit(spec(
            approval_branch(json!({"prompt": "Ship it?"})),
            json!({}),
        ))
        .await
        .unwrap();
    step_reaches(&engine, id, "ok", "waiting").await;
    let run = engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Waiting);
    assert_eq!(run.step("ship").unwrap().status, StepStatus::Pending);
    // Deciding a step that is not waiting is refused.
    let err = engine
        .decide_approval(id, "ship", Decision::Approve, None)
        .await
        .expect_err("not an approval");
    assert_eq!(err.code, Code::ValidationError);
    let run = engine
        .decide_approval(id, "ok", Decision::Approve, Some("lgtm".into()))
        .await
        .unwrap();
    assert_eq!(run.step("ok").unwrap().status, StepStatus::Succeeded);
    let run = engine
        .wait_finished(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(
        run.output,
        Some(json!({"decision": "approve", "comment": "lgtm"}))
    );
    let again = engine
        .decide_approval(id, "ok", Decision::Approve, None)
        .await
        .expect_err("decided twice");
    assert_eq!(again.code, Code::Conflict);
    let events = assert_events_contiguous(&engine, id).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"run.waiting") && kinds.contains(&"approval.decided"),
        "{kinds:?}"
    );
    engine.shutdown().await;
}
both!(approval_approved);

async fn approval_rejected(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let id = engine
        .submit(spec(approval_branch(json!({})), json!({})))
        .await
        .unwrap();
    step_reaches(&engine, id, "ok", "waiting").await;
    engine
        .decide_approval(id, "ok", Decision::Reject, Some("not today".into()))
        .await
        .unwrap();
    let run = engine
        .wait_finished(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.step("ok").unwrap().error.clone().unwrap();
    assert_eq!(err["code"], "rejected");
    assert_eq!(err["message"], "not today");
    assert_eq!(run.step("ship").unwrap().status, StepStatus::Cancelled);
    engine.shutdown().await;
}
both!(approval_rejected);

async fn approval_timeout_applies_on_timeout(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = approval_branch(json!({"timeout_ms": 150, "on_timeout": "approve"}));
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.output.unwrap()["timed_out"], true);
    let def = approval_branch(json!({"timeout_ms": 150, "on_timeout": "fail"}));
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.step("ok").unwrap().error.clone().unwrap()["code"],
        "approval_timeout"
    );
    engine.shutdown().await;
}
both!(approval_timeout_applies_on_timeout);

async fn durable_wait_survives_a_restart(db: &TestDb) {
    let h = Harness::new();
    let first = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "before", "kind": "transform", "config": {"jq": "1"}},
        {"id": "nap", "kind": "wait", "depends_on": ["before"], "config": {"duration_ms": 700}},
        {"id": "after", "kind": "transform", "depends_on": ["nap"], "config": {"jq": "2"}}
    ]});
    let id = first.submit(spec(def, json!({}))).await.unwrap();
    step_reaches(&first, id, "nap", "waiting").await;
    assert_eq!(first.get(id).await.unwrap().status, RunStatus::Waiting);
    first.shutdown().await;
    drop(first);
    // Nothing runs while no engine does.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = h.engine(&db.store).await;
    let run: canopy_engine::Run = second
        .wait_finished(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let nap = run.step("nap").unwrap();
    assert!(
        nap.finished_at.unwrap() - nap.started_at.unwrap() >= 700,
        "{nap:?}"
    );
    assert_eq!(run.output, Some(json!(2)));
    second.shutdown().await;
}
both!(durable_wait_survives_a_restart);

/// A sync caller whose timeout passes gets the run as it is; it carries on.
async fn wait_finished_times_out_into_async(db: &TestDb) {
    let h = Harness::new();
    let engine: Engine = h.engine(&db.store).await;
    let def = json!({"steps": [{"id": "nap", "kind": "wait", "config": {"duration_ms": 400}}]});
    let id = engine.submit(spec(def, json!({}))).await.unwrap();
    let run = engine
        .wait_finished(id, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(!run.status.is_final());
    // Any timeout is accepted, even one too large to add to a clock.
    let run = engine.wait_finished(id, Duration::MAX).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    engine.shutdown().await;
}
both!(wait_finished_times_out_into_async);

/// A run watcher wakes on the commit a decision makes (event streams rely on it), and one
/// armed before the change is not missed even if awaited after it.
async fn run_watch_wakes_on_changes(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let id = engine
        .submit(spec(approval_branch(json!({"prompt": "Go?"})), json!({})))
        .await
        .unwrap();
    step_reaches(&engine, id, "ok", "waiting").await;
    let watch = engine.watch_run(id);
    let armed = watch.next();
    engine
        .decide_approval(id, "ok", Decision::Approve, None)
        .await
        .unwrap();
    // Armed before the decision: resolves although awaited only now. The bound only keeps a
    // broken watcher from hanging the suite.
    tokio::time::timeout(Duration::from_secs(10), armed)
        .await
        .expect("the watcher saw the decision's commit");
    // A watcher of another run is not woken by this one.
    let other = engine
        .submit(spec(
            approval_branch(json!({"prompt": "Other?"})),
            json!({}),
        ))
        .await
        .unwrap();
    step_reaches(&engine, other, "ok", "waiting").await;
    let quiet = engine.watch_run(other);
    let armed = quiet.next();
    engine
        .wait_finished(id, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), armed)
            .await
            .is_err(),
        "a run's commits do not wake another run's watcher"
    );
    engine.shutdown().await;
}
both!(run_watch_wakes_on_changes);
