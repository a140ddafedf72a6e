//! Run control: pause, resume, retry a step, recover.

use std::time::Duration;

use canopy_core::Code;
use canopy_engine::{Engine, RunStatus, StepStatus};
use canopy_store::engine as db;
use serde_json::json;

use crate::common::*;

fn kinds(events: &[canopy_engine::Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// A step executing when the run is paused finishes and is recorded; its successor waits,
/// parked, until the resume. The pause and resume come from a second node without workers.
async fn pause_lets_the_running_step_finish_and_holds_the_next(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let (mut cfg, _) = h.config("ctl", 2000);
    cfg.workers = 0;
    let control = Engine::start(db.second_store().await, cfg).await.unwrap();
    let def = json!({"steps": [
        {"id": "a", "kind": "test", "config": {"sleep_ms": 400}},
        {"id": "b", "kind": "test", "depends_on": ["a"]}
    ]});
    let id = engine.submit(spec(def, json!({}))).await.unwrap();
    step_reaches(&engine, id, "a", "running").await;
    let run = control.pause(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Paused);
    // Pausing again changes nothing.
    assert_eq!(control.pause(id).await.unwrap().status, RunStatus::Paused);

    step_reaches(&engine, id, "a", "succeeded").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let run = engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Paused, "{run:#?}");
    assert_eq!(run.step("b").unwrap().status, StepStatus::Pending);
    assert_eq!(h.log.calls_of(&format!("{id}:b:-1:1")), 0);
    let jobs = db::list_run_jobs(&db.store, &id.db()).await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0].run_at, db::PARKED_AT);

    let run = control.resume(id).await.unwrap();
    assert_ne!(run.status, RunStatus::Paused);
    let run = engine
        .wait_finished(id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(h.log.calls_of(&format!("{id}:a:-1:1")), 1);
    assert_eq!(h.log.calls_of(&format!("{id}:b:-1:1")), 1);
    let events = assert_events_contiguous(&engine, id).await;
    let k = kinds(&events);
    let paused = k.iter().position(|e| *e == "run.paused").unwrap();
    let a_done = k.iter().position(|e| *e == "step.succeeded").unwrap();
    let resumed = k.iter().position(|e| *e == "run.resumed").unwrap();
    assert!(paused < a_done && a_done < resumed, "{k:?}");
    assert_eq!(events[resumed].data["from"], "paused");
    engine.shutdown().await;
    control.shutdown().await;
}
both!(pause_lets_the_running_step_finish_and_holds_the_next);

/// A pause is state in the database: it outlives the engine, and a timer that falls due
/// meanwhile is held until the resume.
async fn pause_survives_a_restart_and_holds_timers(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "w", "kind": "wait", "config": {"duration_ms": 200}},
        {"id": "b", "kind": "test", "depends_on": ["w"]}
    ]});
    let id = engine.submit(spec(def, json!({}))).await.unwrap();
    step_reaches(&engine, id, "w", "waiting").await;
    engine.pause(id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    engine.shutdown().await;

    let engine = h.engine(&db.store).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let run = engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Paused, "{run:#?}");
    assert_eq!(run.step("w").unwrap().status, StepStatus::Waiting);
    assert_eq!(run.step("b").unwrap().status, StepStatus::Pending);
    assert_eq!(h.log.total(), 0);

    engine.resume(id).await.unwrap();
    let run = engine
        .wait_finished(id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(h.log.calls_of(&format!("{id}:b:-1:1")), 1);
    assert_events_contiguous(&engine, id).await;
    engine.shutdown().await;
}
both!(pause_survives_a_restart_and_holds_timers);

/// A failed step retried runs again with the next attempt number (a new idempotency key)
/// and a fresh retry budget; the step cancelled by the failure runs after it.
async fn retry_a_failed_step(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "a", "kind": "test", "config": {"fail_times": 1}},
        {"id": "b", "kind": "test", "depends_on": ["a"]}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    let id = run.id;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.step("b").unwrap().status, StepStatus::Cancelled);

    let run = engine.retry_step(id, "a").await.unwrap();
    assert!(!run.status.is_final(), "{run:#?}");
    let run = engine
        .wait_finished(id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.error, None);
    assert_eq!(run.step("a").unwrap().attempt, 2);
    assert_eq!(h.log.calls_of(&format!("{id}:a:-1:1")), 1);
    assert_eq!(h.log.calls_of(&format!("{id}:a:-1:2")), 1);
    assert_eq!(h.log.calls_of(&format!("{id}:b:-1:1")), 1);
    let events = assert_events_contiguous(&engine, id).await;
    let req = events
        .iter()
        .find(|e| e.kind == "step.retry_requested")
        .unwrap();
    assert_eq!(req.step_id.as_deref(), Some("a"));
    assert_eq!(req.data["reset"], json!(["b"]));
    // Retrying a step that succeeded, or a run that did, is a conflict.
    assert_eq!(
        engine.retry_step(id, "a").await.unwrap_err().code,
        Code::Conflict
    );

    // The budget is fresh: two attempts failed before the retry, two more are allowed.
    let def = json!({"steps": [
        {"id": "a", "kind": "test", "config": {"fail_times": 3},
         "retry": {"max_attempts": 2, "backoff_ms": 10}}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.step("a").unwrap().attempt, 2);
    engine.retry_step(run.id, "a").await.unwrap();
    let run = engine
        .wait_finished(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.step("a").unwrap().attempt, 4);
    for a in 1..=4 {
        assert_eq!(h.log.calls_of(&format!("{}:a:-1:{a}", run.id)), 1);
    }
    engine.shutdown().await;
}
both!(retry_a_failed_step);

/// Recover reruns the failed steps and everything downstream of them (a dependent that had
/// finished on a tolerated failure included), not the unrelated branch that succeeded.
async fn recover_reruns_failed_steps_and_their_downstream(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "good", "kind": "test"},
        {"id": "soft", "kind": "test", "config": {"fail_times": 1}, "continue_on_error": true},
        {"id": "soft_after", "kind": "test", "depends_on": ["soft"]},
        {"id": "hard", "kind": "test", "config": {"fail_times": 1, "sleep_ms": 400}},
        {"id": "end", "kind": "test", "depends_on": ["good", "soft_after", "hard"]}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    let id = run.id;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(run.step("good").unwrap().status, StepStatus::Succeeded);
    assert_eq!(
        run.step("soft_after").unwrap().status,
        StepStatus::Succeeded
    );
    assert_eq!(run.step("end").unwrap().status, StepStatus::Cancelled);

    engine.recover(id).await.unwrap();
    let run = engine
        .wait_finished(id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let calls = |step: &str| {
        h.log
            .snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{id}:{step}:")))
            .map(|(_, n)| *n)
            .sum::<usize>()
    };
    assert_eq!(calls("good"), 1);
    assert_eq!(calls("soft"), 2);
    assert_eq!(calls("soft_after"), 2);
    assert_eq!(calls("hard"), 2);
    assert_eq!(calls("end"), 1);
    assert_eq!(run.step("soft_after").unwrap().attempt, 2);
    assert_eq!(
        run.step("soft_after").unwrap().output.clone().unwrap()["attempt"],
        2
    );
    let events = assert_events_contiguous(&engine, id).await;
    let rec = events.iter().find(|e| e.kind == "run.recovering").unwrap();
    assert_eq!(rec.data["failed"], json!(["hard", "soft"]));
    assert_eq!(
        rec.data["reset"],
        json!(["end", "hard", "soft", "soft_after"])
    );
    assert_eq!(engine.recover(id).await.unwrap_err().code, Code::Conflict);
    engine.shutdown().await;
}
both!(recover_reruns_failed_steps_and_their_downstream);

async fn control_conflicts(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let done = run_to_end(
        &engine,
        json!({"steps": [{"id": "a", "kind": "test"}]}),
        json!({}),
    )
    .await;
    let conflict = |r: Result<canopy_engine::Run, canopy_core::Error>| {
        assert_eq!(r.unwrap_err().code, Code::Conflict);
    };
    conflict(engine.pause(done.id).await);
    conflict(engine.resume(done.id).await);
    conflict(engine.retry_step(done.id, "a").await);
    conflict(engine.recover(done.id).await);

    let def = json!({"steps": [{"id": "h", "kind": "test", "config": {"hang": true}}]});
    let id = engine.submit(spec(def, json!({}))).await.unwrap();
    step_reaches(&engine, id, "h", "running").await;
    conflict(engine.resume(id).await);
    conflict(engine.retry_step(id, "h").await);
    conflict(engine.recover(id).await);
    let err = engine.pause(done.id).await.unwrap_err();
    assert!(err.message.contains("succeeded"), "{}", err.message);
    engine.cancel(id).await.unwrap();

    // Of a failed run: an unknown step is invalid; a succeeded one is a conflict, and so is
    // a cancelled one while the step that failed the run stays failed.
    let def = json!({"steps": [
        {"id": "ok", "kind": "test"},
        {"id": "bad", "kind": "test", "config": {"fail_times": 1}, "depends_on": ["ok"]},
        {"id": "after", "kind": "test", "depends_on": ["bad"]}
    ]});
    let failed = run_to_end(&engine, def, json!({})).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let err = engine.retry_step(failed.id, "nope").await.unwrap_err();
    assert_eq!(err.field.as_deref(), Some("step_id"));
    conflict(engine.retry_step(failed.id, "ok").await);
    conflict(engine.retry_step(failed.id, "after").await);
    conflict(engine.resume(failed.id).await);
    let events = engine.events(failed.id, 0, 1000).await.unwrap();
    assert_eq!(events.last().unwrap().kind, "run.failed");
    engine.shutdown().await;
}
both!(control_conflicts);

/// A `for_each` step that failed fans out again on retry; its elements' attempts go on.
async fn retry_a_failed_for_each(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "each", "kind": "test", "for_each": ".input.xs", "config": {"fail_times": 1}}
    ]});
    let run = run_to_end(&engine, def, json!({"xs": [1]})).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    engine.retry_step(run.id, "each").await.unwrap();
    let run = engine
        .wait_finished(run.id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(h.log.calls_of(&format!("{}:each:0:2", run.id)), 1);
    assert_eq!(run.output.unwrap()[0]["attempt"], 2);
    engine.shutdown().await;
}
both!(retry_a_failed_for_each);

/// An approval decided while the run is paused is recorded, but what it frees waits for the
/// resume; a paused run can be cancelled, which removes its parked jobs.
async fn decide_and_cancel_while_paused(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "gate", "kind": "approval", "config": {"prompt": "go?"}},
        {"id": "after", "kind": "test", "depends_on": ["gate"]}
    ]});
    let id = engine.submit(spec(def.clone(), json!({}))).await.unwrap();
    step_reaches(&engine, id, "gate", "waiting").await;
    engine.pause(id).await.unwrap();
    let run = engine
        .decide_approval(id, "gate", canopy_engine::Decision::Approve, None)
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Paused, "{run:#?}");
    assert_eq!(run.step("gate").unwrap().status, StepStatus::Succeeded);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.log.total(), 0);
    engine.resume(id).await.unwrap();
    let run = engine
        .wait_finished(id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(h.log.calls_of(&format!("{id}:after:-1:1")), 1);

    let id = engine.submit(spec(def, json!({}))).await.unwrap();
    step_reaches(&engine, id, "gate", "waiting").await;
    engine.pause(id).await.unwrap();
    engine
        .decide_approval(id, "gate", canopy_engine::Decision::Approve, None)
        .await
        .unwrap();
    assert_eq!(
        db::list_run_jobs(&db.store, &id.db()).await.unwrap().len(),
        1
    );
    let run = engine.cancel(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(
        db::list_run_jobs(&db.store, &id.db())
            .await
            .unwrap()
            .is_empty()
    );
    assert_events_contiguous(&engine, id).await;
    engine.shutdown().await;
}
both!(decide_and_cancel_while_paused);
