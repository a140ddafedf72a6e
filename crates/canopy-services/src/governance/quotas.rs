//! Per-project quotas: generous ceilings a self-hosted user should not meet by surprise, but
//! that stop a runaway agent from filling the disk. Checked inside the write's transaction.
//!
//! Counting a large table on every create would make each create slower as the project
//! grows, so recent exact counts are kept in memory ([`QuotaCounts`]) and raised by what each
//! create adds. A create far below its limit trusts the remembered count; one within 1 % of
//! the limit, or whose count is older than ten seconds, counts again exactly. Deletions only
//! make the remembered count too high, which errs towards counting again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use canopy_core::{Code, Error, ProjectId};
use canopy_store::Tx;
use canopy_store::projects::{Counted, count_in_project};

use crate::op::Cx;

/// How long a remembered count is trusted (other nodes' creates are unseen meanwhile).
const FRESH_FOR: Duration = Duration::from_secs(10);

pub fn default_quotas() -> HashMap<String, i64> {
    [
        ("context_entries", 1_000_000),
        ("agents", 1_000),
        ("changelog_entries", 100_000),
        ("feedback_items", 1_000_000),
        ("documents", 100_000),
        ("styleguide_items", 10_000),
        // 10 GiB of uploaded files per project.
        ("storage_bytes", 10 * 1024 * 1024 * 1024),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A project and the kind of row a quota counts.
type CountKey = (ProjectId, &'static str);

/// Recent exact counts by project and kind, with when they were counted.
#[derive(Default)]
pub struct QuotaCounts(Mutex<HashMap<CountKey, (i64, Instant)>>);

impl QuotaCounts {
    /// Adds `adding` to a fresh remembered count when the result stays clear of `limit`.
    fn try_add(&self, key: CountKey, adding: i64, limit: i64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&key) {
            Some((n, at)) if at.elapsed() < FRESH_FOR && *n + adding <= limit - limit / 100 => {
                *n += adding;
                true
            }
            _ => false,
        }
    }

    fn set(&self, key: CountKey, n: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key, (n, Instant::now()));
    }
}

/// Refuses with 403 `quota_exceeded` when adding `adding` rows of `what` would pass the quota.
pub(crate) async fn check(
    tx: &mut Tx,
    cx: &Cx<'_>,
    project: ProjectId,
    what: Counted,
    adding: i64,
) -> Result<(), Error> {
    check_with(tx, cx.svc, project, what, adding).await
}

/// [`check`] without a call context (group commits).
pub(crate) async fn check_with(
    tx: &mut Tx,
    svc: &crate::Services,
    project: ProjectId,
    what: Counted,
    adding: i64,
) -> Result<(), Error> {
    let Some(limit) = svc.config().quotas.get(what.name()).copied() else {
        return Ok(());
    };
    let key = (project, what.name());
    let counts = svc.quota_counts();
    if counts.try_add(key, adding, limit) {
        return Ok(());
    }
    let current = count_in_project(tx, what, project).await?;
    if current + adding > limit {
        counts.set(key, current);
        return Err(Error::new(
            Code::QuotaExceeded,
            format!("The project holds {current} {} and its quota is {limit}; this request adds {adding}.", what.name().replace('_', " ")),
        )
        .with_extra("quota", what.name())
        .with_extra("current", current)
        .with_extra("limit", limit)
        .with_extra("adding", adding));
    }
    counts.set(key, current + adding);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_counts_are_trusted_only_clear_of_the_limit() {
        let c = QuotaCounts::default();
        let key = (ProjectId::new(), "x");
        assert!(!c.try_add(key, 1, 1000), "nothing remembered yet");
        c.set(key, 980);
        assert!(c.try_add(key, 10, 1000), "990 <= 1000 - 10");
        assert!(!c.try_add(key, 1, 1000), "991 is within 1 % of the limit");
        c.set(key, 0);
        assert!(!c.try_add(key, 3, 2), "small limits always count");
    }
}
