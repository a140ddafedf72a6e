//! Manual runs (runbooks): no job is ever queued for them, workers never touch them, and
//! their owner's changes commit with their events; pause / resume / cancel are the usual
//! ones, retry and recover are refused.

use std::time::Duration;

use canopy_core::Code;
use canopy_engine::{ManualChange, ManualEnd, RunKind, RunStatus, StepStatus};
use canopy_store::engine as db;
use serde_json::json;

use crate::common::*;

async fn manual_runs_never_reach_workers(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let mut s = spec(
        json!({"steps": [{"id": "a", "kind": "test"}, {"id": "b", "kind": "test"}]}),
        json!({}),
    );
    s.kind = RunKind::Runbook;
    let first = ManualChange::default()
        .step("a", StepStatus::Running, None)
        .event("runbook.step_activated", Some("a"), json!({}));
    let id = engine.submit_manual(s, first).await.unwrap();
    let run = engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.step("a").unwrap().status, StepStatus::Running);
    assert_eq!(run.step("b").unwrap().status, StepStatus::Pending);
    assert!(
        db::list_run_jobs(&db.store, &id.db())
            .await
            .unwrap()
            .is_empty()
    );

    // Workers are idle: nothing of the run executes, however long we wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.log.total(), 0);

    // A refused change changes nothing.
    let e = engine
        .apply_manual(id, |_| Err(canopy_core::Error::conflict("no")))
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Conflict);

    let run = engine
        .apply_manual(id, |now| {
            assert_eq!(now.step("a").unwrap().status, StepStatus::Running);
            Ok(ManualChange::default()
                .step("a", StepStatus::Succeeded, Some(json!({"outcome": "pass"})))
                .step("b", StepStatus::Running, None)
                .event("runbook.step_completed", Some("a"), json!({"next": "b"})))
        })
        .await
        .unwrap();
    assert_eq!(
        run.step("a").unwrap().output,
        Some(json!({"outcome": "pass"}))
    );
    assert_eq!(run.step("b").unwrap().status, StepStatus::Running);

    // Pause and resume queue nothing for a manual run.
    assert_eq!(engine.pause(id).await.unwrap().status, RunStatus::Paused);
    let run = engine.resume(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert!(
        db::list_run_jobs(&db.store, &id.db())
            .await
            .unwrap()
            .is_empty()
    );

    let run = engine
        .apply_manual(id, |_| {
            Ok(ManualChange {
                end: Some(ManualEnd::Failed {
                    error: json!({"code": "step_failed", "message": "b failed", "step": "b"}),
                }),
                ..ManualChange::default()
            }
            .step("b", StepStatus::Failed, None))
        })
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_ref().unwrap()["code"], "step_failed");
    // Reopening would queue jobs for workers: refused.
    assert_eq!(engine.recover(id).await.unwrap_err().code, Code::Conflict);
    assert_eq!(
        engine.retry_step(id, "b").await.unwrap_err().code,
        Code::Conflict
    );
    assert_eq!(h.log.total(), 0);

    let events = assert_events_contiguous(&engine, id).await;
    let k: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        k,
        [
            "run.queued",
            "run.started",
            "runbook.step_activated",
            "runbook.step_completed",
            "run.paused",
            "run.resumed",
            "run.failed"
        ]
    );

    // Only manual runs take manual changes.
    let other = engine
        .submit(spec(
            json!({"steps": [{"id": "x", "kind": "test"}]}),
            json!({}),
        ))
        .await
        .unwrap();
    let e = engine
        .apply_manual(other, |_| Ok(ManualChange::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Conflict);
}
both!(manual_runs_never_reach_workers);

// A manual change answers the run as its transaction left it (built from the rows it read,
// not read again): the same as a read right after. A definition given back with
// `keep_definition` is the one the run's next change sees (taken, not decoded again), and
// giving back one that no change lent is harmless.
async fn manual_answers_match_a_read_and_kept_definitions(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "a", "kind": "runbook.action", "config": {"title": "A"}},
        {"id": "b", "kind": "runbook.check", "config": {"title": "B", "on_fail": "a"}},
        {"id": "c", "kind": "runbook.action", "config": {"title": "C"}}
    ]});
    let mut s = spec(def.clone(), json!({"variables": {}}));
    s.kind = RunKind::Runbook;
    s.definition_version = Some(7);
    let first = ManualChange::default().step("a", StepStatus::Running, None);
    let id = engine.submit_manual(s, first).await.unwrap();
    let as_read = |v: &canopy_engine::Run| serde_json::to_value(v).unwrap();

    // a → b, b fails back to a (a visited twice), a → b → c, c ends the run.
    let moves: [(&str, StepStatus, Option<&str>); 5] = [
        ("a", StepStatus::Succeeded, Some("b")),
        ("b", StepStatus::Failed, Some("a")),
        ("a", StepStatus::Succeeded, Some("b")),
        ("b", StepStatus::Succeeded, Some("c")),
        ("c", StepStatus::Succeeded, None),
    ];
    for (i, (from, status, to)) in moves.into_iter().enumerate() {
        let answer = engine
            .apply_manual(id, |now| {
                assert_eq!(serde_json::to_value(&now.definition).unwrap(), def);
                assert_eq!(now.step(from).unwrap().status, StepStatus::Running);
                let mut c = ManualChange::default()
                    .step(from, status, Some(json!({"n": i})))
                    .event("runbook.step_completed", Some(from), json!({}));
                match to {
                    Some(next) => c = c.step(next, StepStatus::Running, None),
                    None => {
                        c.end = Some(ManualEnd::Succeeded {
                            output: json!({"last_step": from}),
                        })
                    }
                }
                Ok(c)
            })
            .await
            .unwrap();
        let read = engine.get(id).await.unwrap();
        assert_eq!(as_read(&answer), as_read(&read), "move {i}");
        // Every other answer is given back; the next change sees the same definition.
        if i % 2 == 0 {
            canopy_engine::manual::keep_definition(answer);
        }
    }
    let run = engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.step("a").unwrap().attempt, 2);
    assert_eq!(run.output, Some(json!({"last_step": "c"})));
    // Given back with no change under way, or twice: dropped.
    canopy_engine::manual::keep_definition(run);
    canopy_engine::manual::keep_definition(engine.get(id).await.unwrap());
}
both!(manual_answers_match_a_read_and_kept_definitions);
