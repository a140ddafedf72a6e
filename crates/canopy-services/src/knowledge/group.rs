//! Group commit for context creates: concurrent `store_context` / `log_event` calls are queued
//! to one task that writes everything waiting in one transaction (a few multi-row statements,
//! one commit), then answers each caller. Under load this turns many small transactions — each
//! a round of statements and a commit on the single SQLite writer, or a WAL flush on
//! PostgreSQL — into few; alone, a create waits for nothing.
//!
//! A caller is answered only after its commit, so nothing acknowledged is lost. Anything the
//! group cannot settle simply (a quota at its limit, a database error) is handed back, and the
//! caller runs the ordinary one-transaction path, which gives the exact answer.

use std::collections::{HashMap, HashSet};
use std::sync::{OnceLock, Weak};

use canopy_core::{Error, ProjectId};
use canopy_store::audit::{AuditRow, insert_audits};
use canopy_store::context::{ContextRow, insert_entries};
use canopy_store::projects::Counted;
use tokio::sync::{mpsc, oneshot};

use crate::Services;
use crate::governance::quotas::check_with;

/// Most creates written in one transaction.
const MAX_GROUP: usize = 256;

struct Job {
    project: ProjectId,
    row: ContextRow,
    audit: AuditRow,
    /// `true` once committed; `false` hands the create back to the caller.
    done: oneshot::Sender<bool>,
}

#[derive(Default)]
pub(crate) struct GroupWriter {
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl GroupWriter {
    /// Writes one new entry with its audit record as part of a group; `false` when the caller
    /// must write it on its own instead.
    pub async fn write(
        &self,
        svc: &Services,
        project: ProjectId,
        row: ContextRow,
        audit: AuditRow,
    ) -> bool {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
            tokio::spawn(run(svc.downgrade(), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        let job = Job {
            project,
            row,
            audit,
            done,
        };
        if queue.send(job).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

/// Takes whatever is queued, up to [`MAX_GROUP`], and writes it; ends with the services.
async fn run(svc: Weak<crate::Inner>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        let Some(svc) = Services::upgrade(&svc) else {
            break;
        };
        let batch = std::mem::take(&mut jobs);
        match write_group(&svc, &batch).await {
            Ok(refused) => {
                for job in batch {
                    let ok = !refused.contains(&job.project);
                    let _ = job.done.send(ok);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, n = batch.len(), "group commit failed; creates retry alone");
                for job in batch {
                    let _ = job.done.send(false);
                }
            }
        }
    }
}

/// Writes the group; returns the projects whose creates were left out (quota near its limit).
async fn write_group(svc: &Services, jobs: &[Job]) -> Result<HashSet<ProjectId>, Error> {
    let mut tx = svc.store().begin().await?;
    let mut adding: HashMap<ProjectId, i64> = HashMap::new();
    for j in jobs {
        *adding.entry(j.project).or_default() += 1;
    }
    let mut refused = HashSet::new();
    for (project, n) in adding {
        if check_with(&mut tx, svc, project, Counted::ContextEntries, n)
            .await
            .is_err()
        {
            refused.insert(project);
        }
    }
    let (rows, audits): (Vec<ContextRow>, Vec<AuditRow>) = jobs
        .iter()
        .filter(|j| !refused.contains(&j.project))
        .map(|j| (j.row.clone(), j.audit.clone()))
        .unzip();
    if !rows.is_empty() {
        insert_entries(&mut tx, &rows).await?;
        insert_audits(&mut tx, &audits).await?;
        tx.commit().await?;
    }
    Ok(refused)
}
