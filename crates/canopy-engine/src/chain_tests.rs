//! White-box checks of step chaining: a completion claims the step it made due for the
//! worker that completed, in the same transaction, and that claim is as durable as any other.

use canopy_core::time::now_ms;
use canopy_core::{OrgId, ProjectId};
use canopy_store::Store;
use canopy_store::engine::{self as db, JobRow, Lease};
use serde_json::json;

use crate::executor::StepOutput;
use crate::model::{RunKind, RunSpec};
use crate::ops::{self, Begin, Chained};

const LEASE: i64 = 30_000;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sqlite(&dir.path().join("chain.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    (dir, store)
}

fn two_steps() -> RunSpec {
    let definition = serde_json::from_value(json!({"steps": [
        {"id": "a", "kind": "x"},
        {"id": "b", "kind": "x", "depends_on": ["a"], "input": {"got": "=.steps.a.output"}}
    ]}))
    .expect("definition");
    RunSpec {
        org_id: OrgId::new(),
        project_id: ProjectId::new(),
        kind: RunKind::Branch,
        definition_id: None,
        definition_version: None,
        definition,
        input: json!({}),
    }
}

fn lease_of(job: &JobRow) -> Lease {
    Lease {
        job_id: job.id.clone(),
        owner: job.lease_owner.clone().unwrap_or_default(),
        attempts: job.attempts,
    }
}

/// Submits the two-step run and runs `a` through claim and start; returns its job.
async fn start_first(store: &Store, now: i64) -> (String, JobRow) {
    let (id, _) = ops::submit(store, "n", two_steps(), now).await.unwrap();
    let job = db::claim_job(store, "n/0", now, now + LEASE)
        .await
        .unwrap()
        .expect("a is due");
    let begin = ops::begin_step(store, "n", &job, &lease_of(&job), now + LEASE, now)
        .await
        .unwrap();
    assert!(matches!(begin, Begin::Execute(ref x, _) if x.step.id == "a"));
    (id.db(), job)
}

#[tokio::test]
async fn a_completion_claims_the_next_step_for_its_worker() {
    let (_dir, store) = store().await;
    let now = now_ms();
    let (run, job) = start_first(&store, now).await;
    let (_, chained) = ops::complete_step(
        &store,
        "n",
        &job,
        &lease_of(&job),
        Ok(StepOutput::from(json!(41))),
        now,
        Some(("n/0", now + LEASE)),
    )
    .await
    .unwrap()
    .expect("lease held");
    let Some(Chained {
        job: next,
        lease,
        exec,
    }) = chained
    else {
        panic!("b was not chained");
    };
    assert_eq!(exec.step.id, "b");
    assert_eq!(exec.attempt, 1);
    assert_eq!(
        exec.input,
        json!({"got": 41}),
        "input resolved from a's output"
    );
    assert_eq!(lease.owner, "n/0");
    // The job is queued, leased to this worker as one claim, and no one else can claim it.
    let jobs = db::list_run_jobs(&store, &run).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, next.id);
    assert_eq!(jobs[0].lease_owner.as_deref(), Some("n/0"));
    assert_eq!(jobs[0].attempts, 1);
    assert!(
        db::claim_job(&store, "n/1", now, now + LEASE)
            .await
            .unwrap()
            .is_none()
    );
    // If this worker dies, the lease runs out and another worker takes the attempt over.
    let later = now + LEASE + 1;
    let taken = db::claim_job(&store, "m/0", later, later + LEASE)
        .await
        .unwrap()
        .expect("due again after the lease");
    assert_eq!(taken.id, next.id);
    match ops::begin_step(&store, "m", &taken, &lease_of(&taken), later + LEASE, later)
        .await
        .unwrap()
    {
        Begin::Execute(x, _) => {
            assert_eq!(
                (x.step.id.as_str(), x.attempt),
                ("b", 1),
                "a takeover, not a new attempt"
            )
        }
        _ => panic!("b was not taken over"),
    }
    // The dead worker's late result is refused: its lease is gone.
    let late = ops::complete_step(
        &store,
        "n",
        &next,
        &lease,
        Ok(StepOutput::from(json!(0))),
        later,
        None,
    )
    .await
    .unwrap();
    assert!(late.is_none());
    // The refused transaction was rolled back and the writer is free: the new owner finishes.
    let done = ops::complete_step(
        &store,
        "m",
        &taken,
        &lease_of(&taken),
        Ok(StepOutput::from(json!(42))),
        later,
        None,
    )
    .await
    .unwrap()
    .expect("the new owner holds the lease");
    assert!(done.0.finished);
    let run_row = db::get_run(&store, &run).await.unwrap().unwrap();
    assert_eq!(run_row.status, "succeeded");
    assert!(db::list_run_jobs(&store, &run).await.unwrap().is_empty());
}

#[tokio::test]
async fn without_chain_the_next_step_is_left_to_the_claims() {
    let (_dir, store) = store().await;
    let now = now_ms();
    let (run, job) = start_first(&store, now).await;
    let (c, chained) = ops::complete_step(
        &store,
        "n",
        &job,
        &lease_of(&job),
        Ok(StepOutput::from(json!(1))),
        now,
        None,
    )
    .await
    .unwrap()
    .expect("lease held");
    assert!(chained.is_none());
    assert_eq!(c.due_now, 1);
    let jobs = db::list_run_jobs(&store, &run).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].lease_owner, None);
    assert_eq!(jobs[0].attempts, 0);
}
