//! Graph semantics: order, parallelism, `when`, `for_each`, validation.

use canopy_core::Code;
use canopy_engine::{RunStatus, StepStatus};
use canopy_store::engine as db;
use serde_json::{Value, json};

use crate::common::*;

async fn linear_ten_step_transform(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let mut steps =
        vec![json!({"id": "s0", "kind": "transform", "config": {"jq": ".input.n + 1"}})];
    for i in 1..10 {
        steps.push(json!({
            "id": format!("s{i}"), "kind": "transform", "depends_on": [format!("s{}", i - 1)],
            "config": {"jq": format!(".steps.s{}.output + 1", i - 1)}
        }));
    }
    let run = run_to_end(&engine, json!({"steps": steps}), json!({"n": 5})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.output, Some(json!(15)));
    assert_eq!(run.steps.len(), 10);
    for s in &run.steps {
        assert_eq!(s.status, StepStatus::Succeeded);
        assert_eq!(s.attempt, 1);
    }
    // Each step started after the one before it finished.
    for i in 1..10 {
        let prev = run.step(&format!("s{}", i - 1)).unwrap();
        let cur = run.step(&format!("s{i}")).unwrap();
        assert!(cur.started_at >= prev.finished_at);
    }
    let events = assert_events_contiguous(&engine, run.id).await;
    assert_eq!(events.first().map(|e| e.kind.as_str()), Some("run.queued"));
    assert_eq!(
        events.last().map(|e| e.kind.as_str()),
        Some("run.succeeded")
    );
    let started = events.iter().filter(|e| e.kind == "step.started").count();
    assert_eq!(started, 10);
    // Finished jobs leave the queue.
    assert!(
        db::list_run_jobs(&db.store, &run.id.db())
            .await
            .unwrap()
            .is_empty()
    );
    // Events after a sequence number.
    let tail = engine
        .events(run.id, events.len() as i64 - 2, 100)
        .await
        .unwrap();
    assert_eq!(tail.len(), 2);
    assert!(
        engine
            .events(run.id, events.len() as i64, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let missing = canopy_core::RunId::new();
    assert_eq!(
        engine.events(missing, 0, 10).await.unwrap_err().code,
        Code::NotFound
    );
    assert_eq!(engine.get(missing).await.unwrap_err().code, Code::NotFound);
    engine.shutdown().await;
}
both!(linear_ten_step_transform);

async fn diamond_runs_branches_in_parallel(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "a", "kind": "transform", "config": {"jq": ".input.x"}},
        {"id": "b", "kind": "test", "depends_on": ["a"], "config": {"sleep_ms": 300, "output": "B"}},
        {"id": "c", "kind": "test", "depends_on": ["a"], "config": {"sleep_ms": 300, "output": "C"}},
        {"id": "d", "kind": "transform", "depends_on": ["b", "c"],
         "input": {"b": "=.steps.b.output", "c": "=.steps.c.output", "a": "=.steps.a.output"}}
    ]});
    let run = run_to_end(&engine, def, json!({"x": 7})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.output, Some(json!({"b": "B", "c": "C", "a": 7})));
    let (b, c, d) = (
        run.step("b").unwrap(),
        run.step("c").unwrap(),
        run.step("d").unwrap(),
    );
    // b and c ran at the same time.
    assert!(
        b.started_at < c.finished_at && c.started_at < b.finished_at,
        "{b:?} {c:?}"
    );
    assert!(h.log.max_parallel.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    // d waited for both.
    assert!(d.started_at >= b.finished_at && d.started_at >= c.finished_at);
    // Parallel completions still number the events without gaps or duplicates.
    assert_events_contiguous(&engine, run.id).await;
    engine.shutdown().await;
}
both!(diamond_runs_branches_in_parallel);

async fn when_false_skips_and_dependents_still_run(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "a", "kind": "transform", "config": {"jq": "{go: false}"}},
        {"id": "yes", "kind": "transform", "depends_on": ["a"], "when": ".steps.a.output.go", "config": {"jq": "\"took yes\""}},
        {"id": "no", "kind": "transform", "depends_on": ["a"], "when": ".steps.a.output.go | not", "config": {"jq": "\"took no\""}},
        {"id": "join", "kind": "transform", "depends_on": ["yes", "no"],
         "config": {"jq": "{yes: .steps.yes.status, no: .steps.no.output}"}},
        {"id": "after_skip", "kind": "transform", "depends_on": ["yes"], "when": "false"},
        {"id": "tail", "kind": "transform", "depends_on": ["after_skip"], "config": {"jq": "\"tail ran\""}}
    ], "output": {"join": "=.steps.join.output", "tail": "=.steps.tail.output"}});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(run.step("yes").unwrap().status, StepStatus::Skipped);
    assert_eq!(run.step("no").unwrap().status, StepStatus::Succeeded);
    assert_eq!(run.step("after_skip").unwrap().status, StepStatus::Skipped);
    assert_eq!(
        run.output,
        Some(json!({"join": {"yes": "skipped", "no": "took no"}, "tail": "tail ran"}))
    );
    let events = assert_events_contiguous(&engine, run.id).await;
    assert_eq!(
        events.iter().filter(|e| e.kind == "step.skipped").count(),
        2
    );
    engine.shutdown().await;
}
both!(when_false_skips_and_dependents_still_run);

async fn for_each_fans_out_and_collects_in_order(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "list", "kind": "transform", "config": {"jq": "[range(.input.n)]"}},
        // Later elements sleep less, so they finish first; the output keeps list order.
        {"id": "each", "kind": "test", "depends_on": ["list"], "for_each": ".steps.list.output",
         "input": {"i": "=.item", "idx": "=.index"}, "config": {"sleep_ms": 20}},
        {"id": "times", "kind": "transform", "depends_on": ["list"], "for_each": ".steps.list.output",
         "config": {"jq": ".item * 10"}},
        {"id": "none", "kind": "transform", "for_each": "[]"},
        {"id": "sum", "kind": "transform", "depends_on": ["times", "each"],
         "config": {"jq": "{sum: (.steps.times.output | add), n: (.steps.each.output | length), none: .steps.none.output}"}}
    ], "output": "=.steps.sum.output"});
    let run = run_to_end(&engine, def, json!({"n": 6})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(
        run.step("times").unwrap().output,
        Some(json!([0, 10, 20, 30, 40, 50]))
    );
    let each = run.step("each").unwrap().output.clone().unwrap();
    let idx: Vec<Value> = each
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["echo"]["idx"].clone())
        .collect();
    assert_eq!(idx, (0..6).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(run.output, Some(json!({"sum": 150, "n": 6, "none": []})));
    let items = run
        .steps
        .iter()
        .filter(|s| s.step_id == "times" && s.item.is_some())
        .count();
    assert_eq!(items, 6);
    assert_eq!(h.log.total(), 6);
    engine.shutdown().await;
}
both!(for_each_fans_out_and_collects_in_order);

async fn invalid_graphs_name_the_step(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let cases = [
        (
            json!({"steps": [{"id": "a", "kind": "transform"}, {"id": "b", "kind": "transform", "depends_on": ["zz"]}]}),
            "steps[1].depends_on",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "transform"}, {"id": "a", "kind": "transform"}]}),
            "steps[1].id",
        ),
        (
            json!({"steps": [
            {"id": "root", "kind": "transform"},
            {"id": "x", "kind": "transform", "depends_on": ["root", "z"]},
            {"id": "y", "kind": "transform", "depends_on": ["x"]},
            {"id": "z", "kind": "transform", "depends_on": ["y"]}]}),
            "steps[1].depends_on",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "transform", "depends_on": ["a"]}]}),
            "steps[0].depends_on",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "transform", "when": ".x |"}]}),
            "steps[0].when",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "transform"}, {"id": "b", "kind": "transform", "for_each": "[limit(3; repeat(1))]"}]}),
            "steps[1].for_each",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "transform", "config": {"jq": "env"}}]}),
            "steps[0].config.jq",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "wait", "config": {}}]}),
            "steps[0].config",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "approval", "config": {"on_timeout": "maybe"}}]}),
            "steps[0].config.on_timeout",
        ),
        (
            json!({"steps": [{"id": "a", "kind": "test", "retry": {"max_attempts": 0}}]}),
            "steps[0].retry.max_attempts",
        ),
        (json!({"steps": []}), "steps"),
    ];
    for (def, field) in cases {
        let err = engine
            .submit(spec(def.clone(), json!({})))
            .await
            .expect_err("invalid");
        assert_eq!(err.code, Code::ValidationError, "{def}");
        assert_eq!(err.field.as_deref(), Some(field), "{def}: {}", err.message);
    }
    engine.shutdown().await;
}
both!(invalid_graphs_name_the_step);

async fn unknown_kind_fails_the_step_clearly(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [{"id": "call", "kind": "llm", "config": {}}]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.step("call").unwrap().error.clone().unwrap();
    assert_eq!(err["code"], "unknown_kind");
    assert!(err["message"].as_str().unwrap().contains("`llm`"), "{err}");
    assert_eq!(run.error.unwrap()["step"], "call");
    engine.shutdown().await;
}
both!(unknown_kind_fails_the_step_clearly);

async fn for_each_element_failures(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    // An element that fails fails the step and the run at once.
    let def = json!({"steps": [
        {"id": "each", "kind": "transform", "for_each": "[1, 0, 2]", "config": {"jq": "if .item == 0 then error(\"zero\") else 10 / .item end"}},
        {"id": "after", "kind": "transform", "depends_on": ["each"]}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(
        run.step("each").unwrap().error.clone().unwrap()["code"],
        "item_failed"
    );
    assert_eq!(run.step("after").unwrap().status, StepStatus::Cancelled);
    // With continue_on_error the list keeps null for the failed element and the run goes on.
    let def = json!({"steps": [
        {"id": "each", "kind": "transform", "for_each": "[1, 0, 2]", "continue_on_error": true,
         "config": {"jq": "if .item == 0 then error(\"zero\") else 10 / .item end"}},
        {"id": "after", "kind": "transform", "depends_on": ["each"],
         "config": {"jq": "{status: .steps.each.status, out: .steps.each.output}"}}
    ]});
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    assert_eq!(
        run.output,
        Some(json!({"status": "failed", "out": [10, null, 5]}))
    );
    engine.shutdown().await;
}
both!(for_each_element_failures);

/// Timers inside a fan-out: each element waits on its own, in parallel.
async fn for_each_of_waits(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let def = json!({"steps": [
        {"id": "naps", "kind": "wait", "for_each": "[1, 2, 3, 4, 5, 6]", "config": {"duration_ms": 300}}
    ]});
    let t = std::time::Instant::now();
    let run = run_to_end(&engine, def, json!({})).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let elapsed = t.elapsed();
    assert!(elapsed >= std::time::Duration::from_millis(300));
    assert!(
        elapsed < std::time::Duration::from_millis(1500),
        "{elapsed:?}: not in parallel"
    );
    assert_eq!(
        run.step("naps")
            .unwrap()
            .output
            .as_ref()
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        6
    );
    engine.shutdown().await;
}
both!(for_each_of_waits);

/// A bud run is a one-step graph; its output is that step's output, and the definition it ran
/// is kept with the run.
async fn bud_run_keeps_its_snapshot(db: &TestDb) {
    let h = Harness::new();
    let engine = h.engine(&db.store).await;
    let mut s = spec(
        json!({"steps": [{"id": "bud", "kind": "transform", "config": {"jq": ".input.a * 2"}}]}),
        json!({"a": 21}),
    );
    s.kind = canopy_engine::RunKind::Bud;
    s.definition_id = Some("bud_123".into());
    s.definition_version = Some(3);
    let id = engine.submit(s).await.unwrap();
    let run = engine
        .wait_finished(id, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!(42)));
    assert_eq!(run.kind, "bud");
    assert_eq!(run.definition_version, Some(3));
    assert_eq!(run.definition.steps[0].config["jq"], ".input.a * 2");
    assert!(run.started_at.is_some() && run.finished_at >= run.started_at);
    engine.shutdown().await;
}
both!(bud_run_keeps_its_snapshot);
