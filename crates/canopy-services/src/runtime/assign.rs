//! Assigning buds and branches to clients (seed 000 §7): what a client may run.

use canopy_core::{Error, Scope};
use canopy_store::runtime as db;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::authoring::{branch_row, bud_row};
use super::defs::{KIND_BRANCH, KIND_BUD, show_id};
use crate::op::{Cx, Hints, Operation};
use crate::tenancy::clients::visible_client;

/// The state of one assignment after the call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    pub object: String,
    pub client_id: String,
    /// `bud` or `branch`.
    pub kind: String,
    /// The bud's or branch's id.
    pub id: String,
    /// Whether the client may now run it.
    pub assigned: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssignBranchInput {
    pub client_id: String,
    pub branch_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AssignBudInput {
    pub client_id: String,
    pub bud_id: String,
}

async fn set(
    cx: &Cx<'_>,
    client: &str,
    kind: &str,
    raw: &str,
    assigned: bool,
) -> Result<Assignment, Error> {
    let project = visible_client(cx, client).await?;
    // What a client may run is the org's decision, not one of its own keys'.
    if cx.principal.project_id.is_some() {
        return Err(Error::forbidden(
            "Only an org-wide admin key can assign buds and branches.",
        ));
    }
    let org = cx.org().db();
    let def = if kind == KIND_BUD {
        bud_row(cx.svc.store(), &org, raw).await?
    } else {
        branch_row(cx.svc.store(), &org, raw).await?
    };
    let mut tx = cx.svc.store().begin().await?;
    if assigned {
        db::assign(
            &mut tx,
            &project.id,
            &def.id,
            kind,
            canopy_core::time::now_ms(),
        )
        .await?;
    } else {
        db::unassign(&mut tx, &project.id, &def.id).await?;
    }
    let project_id = canopy_core::ProjectId::from_db(&project.id)
        .ok_or_else(|| Error::internal("bad project id"))?;
    let id = show_id(kind, &def.id);
    cx.commit(tx, Some(project_id), id.clone(), None).await?;
    Ok(Assignment {
        object: "assignment".into(),
        client_id: project_id.to_string(),
        kind: kind.to_owned(),
        id,
        assigned,
    })
}

pub struct AssignBranch;
impl Operation for AssignBranch {
    const NAME: &'static str = "assign_branch";
    const SUMMARY: &'static str = "Assign a branch to a client so its keys may run it.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = AssignBranchInput;
    type Output = Assignment;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        set(cx, &input.client_id, KIND_BRANCH, &input.branch_id, true).await
    }
}

pub struct UnassignBranch;
impl Operation for UnassignBranch {
    const NAME: &'static str = "unassign_branch";
    const SUMMARY: &'static str = "Withdraw a branch from a client (its runs are kept).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = AssignBranchInput;
    type Output = Assignment;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        set(cx, &input.client_id, KIND_BRANCH, &input.branch_id, false).await
    }
}

pub struct AssignBud;
impl Operation for AssignBud {
    const NAME: &'static str = "assign_bud";
    const SUMMARY: &'static str = "Assign a single bud to a client so its keys may run it.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = AssignBudInput;
    type Output = Assignment;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        set(cx, &input.client_id, KIND_BUD, &input.bud_id, true).await
    }
}

pub struct UnassignBud;
impl Operation for UnassignBud {
    const NAME: &'static str = "unassign_bud";
    const SUMMARY: &'static str = "Withdraw a bud from a client (its runs are kept).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = AssignBudInput;
    type Output = Assignment;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        set(cx, &input.client_id, KIND_BUD, &input.bud_id, false).await
    }
}
