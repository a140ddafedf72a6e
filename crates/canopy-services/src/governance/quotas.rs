//! Per-project quotas: generous ceilings a self-hosted user should not meet by surprise, but
//! that stop a runaway agent from filling the disk. Checked inside the write's transaction.

use std::collections::HashMap;

use canopy_core::{Code, Error, ProjectId};
use canopy_store::Tx;
use canopy_store::projects::{Counted, count_in_project};

use crate::op::Cx;

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

/// Refuses with 403 `quota_exceeded` when adding `adding` rows of `what` would pass the quota.
pub(crate) async fn check(
    tx: &mut Tx,
    cx: &Cx<'_>,
    project: ProjectId,
    what: Counted,
    adding: i64,
) -> Result<(), Error> {
    let Some(limit) = cx.svc.config().quotas.get(what.name()).copied() else {
        return Ok(());
    };
    let current = count_in_project(tx, what, project).await?;
    if current + adding > limit {
        return Err(Error::new(
            Code::QuotaExceeded,
            format!("The project holds {current} {} and its quota is {limit}; this request adds {adding}.", what.name().replace('_', " ")),
        )
        .with_extra("quota", what.name())
        .with_extra("current", current)
        .with_extra("limit", limit)
        .with_extra("adding", adding));
    }
    Ok(())
}
