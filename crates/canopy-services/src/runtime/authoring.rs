//! Admin authoring of buds and branches (`/v1/admin/buds`, `/v1/admin/branches`). Each PUT
//! makes a new version; runs keep the graph they were submitted with (the engine snapshots it).

use std::collections::HashMap;

use canopy_core::{BranchId, BudId, Data, Deleted, Error, PageRequest, Paged, Scope};
use canopy_store::Store;
use canopy_store::runtime::{self as db, DefRow};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::defs::{
    self, BranchSpec, BudSpec, KIND_BRANCH, KIND_BUD, branch_definition, check_bud,
    referenced_buds, show_id,
};
use crate::op::{Cx, Hints, Operation};

/// A bud at its current version.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Bud {
    pub id: String,
    pub object: String,
    /// 1 on create, +1 on each update.
    pub version: i64,
    #[serde(flatten)]
    pub spec: BudSpec,
    pub created_at: String,
    pub updated_at: String,
}

/// A branch at its current version.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Branch {
    pub id: String,
    pub object: String,
    pub version: i64,
    #[serde(flatten)]
    pub spec: BranchSpec,
    pub created_at: String,
    pub updated_at: String,
}

impl Bud {
    pub fn from_row(r: &DefRow) -> Result<Bud, Error> {
        Ok(Bud {
            id: show_id(KIND_BUD, &r.id),
            object: "bud".into(),
            version: r.version,
            spec: serde_json::from_str(&r.spec)?,
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        })
    }
}

impl Branch {
    pub fn from_row(r: &DefRow) -> Result<Branch, Error> {
        Ok(Branch {
            id: show_id(KIND_BRANCH, &r.id),
            object: "branch".into(),
            version: r.version,
            spec: serde_json::from_str(&r.spec)?,
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        })
    }
}

pub fn bud_not_found() -> Error {
    Error::new(canopy_core::Code::BudNotFound, "Bud not found.")
}

pub fn branch_not_found() -> Error {
    Error::new(canopy_core::Code::BranchNotFound, "Branch not found.")
}

/// Authoring is org-wide: a key bound to one client may not change what all clients run.
fn org_wide(cx: &Cx<'_>) -> Result<(), Error> {
    if cx.principal.project_id.is_some() {
        return Err(Error::forbidden(
            "Only an org-wide admin key can author buds and branches.",
        ));
    }
    Ok(())
}

/// A bud of the caller's org by its public id (database form), or `bud_not_found`.
pub async fn bud_row(store: &Store, org: &str, raw: &str) -> Result<DefRow, Error> {
    let id = BudId::parse(raw).ok_or_else(bud_not_found)?;
    db::get_def(store, org, KIND_BUD, &id.db())
        .await?
        .ok_or_else(bud_not_found)
}

/// A branch of the caller's org, or `branch_not_found`.
pub async fn branch_row(store: &Store, org: &str, raw: &str) -> Result<DefRow, Error> {
    let id = BranchId::parse(raw).ok_or_else(branch_not_found)?;
    db::get_def(store, org, KIND_BRANCH, &id.db())
        .await?
        .ok_or_else(branch_not_found)
}

/// The current rows of the buds a branch names, by database id.
pub async fn buds_of(
    store: &Store,
    org: &str,
    b: &BranchSpec,
) -> Result<HashMap<String, DefRow>, Error> {
    let ids: Vec<String> = referenced_buds(b)?.into_iter().map(|(_, id)| id).collect();
    let rows = db::get_defs(store, org, &ids).await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.kind == KIND_BUD)
        .map(|r| (r.id.clone(), r))
        .collect())
}

fn checked_bud(mut spec: BudSpec) -> Result<BudSpec, Error> {
    spec.name = defs::validate_name(&spec.name, "name")?;
    check_bud(&spec, "")?;
    // The one-step graph must be one the engine accepts.
    canopy_engine::validate::validate(&defs::bud_definition(&spec))?;
    Ok(spec)
}

async fn checked_branch(cx: &Cx<'_>, mut spec: BranchSpec) -> Result<BranchSpec, Error> {
    spec.name = defs::validate_name(&spec.name, "name")?;
    let buds = buds_of(cx.svc.store(), &cx.org().db(), &spec).await?;
    if let Some(schema) = &spec.input_schema {
        super::schema::valid_schema(schema)
            .map_err(|m| Error::validation("input_schema", format!("input_schema is {m}")))?;
    }
    branch_definition(&spec, &buds)?;
    Ok(spec)
}

fn new_row(cx: &Cx<'_>, kind: &str, id: String, name: &str, spec: String) -> DefRow {
    let now = canopy_core::time::now_ms();
    DefRow {
        id,
        org_id: cx.org().db(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        version: 1,
        spec,
        created_at: now,
        updated_at: now,
    }
}

/// Writes a new version of an existing definition (the row is re-read under the
/// transaction, so two concurrent updates make two versions).
async fn bump(
    cx: &Cx<'_>,
    kind: &str,
    db_id: &str,
    name: &str,
    spec: String,
) -> Result<DefRow, Error> {
    let mut tx = cx.svc.store().begin().await?;
    let mut row = db::get_def_tx(&mut tx, &cx.org().db(), kind, db_id)
        .await?
        .ok_or_else(|| {
            if kind == KIND_BUD {
                bud_not_found()
            } else {
                branch_not_found()
            }
        })?;
    row.version += 1;
    row.name = name.to_owned();
    row.spec = spec;
    row.updated_at = canopy_core::time::now_ms();
    db::save_def(&mut tx, &row).await?;
    let detail = serde_json::json!({"version": row.version});
    cx.commit(tx, None, show_id(kind, &row.id), Some(detail))
        .await?;
    Ok(row)
}

async fn remove(cx: &Cx<'_>, kind: &str, db_id: &str) -> Result<Data<Deleted>, Error> {
    let mut tx = cx.svc.store().begin().await?;
    if !db::delete_def(&mut tx, &cx.org().db(), kind, db_id).await? {
        return Err(if kind == KIND_BUD {
            bud_not_found()
        } else {
            branch_not_found()
        });
    }
    let id = show_id(kind, db_id);
    cx.commit(tx, None, id.clone(), None).await?;
    Ok(Data {
        data: Deleted { id, deleted: true },
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDefsInput {
    /// Page size, 1–100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

async fn list_rows(
    cx: &Cx<'_>,
    kind: &str,
    input: ListDefsInput,
) -> Result<(Vec<DefRow>, PageRequest), Error> {
    let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
    let rows = db::list_defs(cx.svc.store(), &cx.org().db(), kind, &page).await?;
    Ok((rows, page))
}

// ---- buds ----

pub struct CreateBud;
impl Operation for CreateBud {
    const NAME: &'static str = "create_bud";
    const SUMMARY: &'static str = "Create a bud (one step definition) in the org, version 1.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = BudSpec;
    type Output = Bud;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let spec = checked_bud(input)?;
        let row = new_row(
            cx,
            KIND_BUD,
            BudId::new().db(),
            &spec.name,
            serde_json::to_string(&spec)?,
        );
        let mut tx = cx.svc.store().begin().await?;
        db::save_def(&mut tx, &row).await?;
        cx.commit(tx, None, show_id(KIND_BUD, &row.id), None)
            .await?;
        Bud::from_row(&row)
    }
}

pub struct ListBuds;
impl Operation for ListBuds {
    const NAME: &'static str = "list_buds";
    const SUMMARY: &'static str = "List the org's buds (newest first).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = ListDefsInput;
    type Output = Paged<Bud>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (rows, page) = list_rows(cx, KIND_BUD, input).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Bud::from_row(&r),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BudIdInput {
    /// The bud's id (`bud_…`).
    pub bud_id: String,
}

pub struct GetBud;
impl Operation for GetBud {
    const NAME: &'static str = "get_bud";
    const SUMMARY: &'static str = "Get one bud at its current version.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = BudIdInput;
    type Output = Bud;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        Bud::from_row(&bud_row(cx.svc.store(), &cx.org().db(), &input.bud_id).await?)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBudInput {
    pub bud_id: String,
    #[serde(flatten)]
    pub spec: BudSpec,
}

pub struct UpdateBud;
impl Operation for UpdateBud {
    const NAME: &'static str = "update_bud";
    const SUMMARY: &'static str =
        "Replace a bud, making a new version (runs already started keep theirs).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateBudInput;
    type Output = Bud;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let current = bud_row(cx.svc.store(), &cx.org().db(), &input.bud_id).await?;
        let spec = checked_bud(input.spec)?;
        let row = bump(
            cx,
            KIND_BUD,
            &current.id,
            &spec.name,
            serde_json::to_string(&spec)?,
        )
        .await?;
        Bud::from_row(&row)
    }
}

pub struct DeleteBud;
impl Operation for DeleteBud {
    const NAME: &'static str = "delete_bud";
    const SUMMARY: &'static str =
        "Delete a bud with its versions and assignments (runs already started carry on).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = BudIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let current = bud_row(cx.svc.store(), &cx.org().db(), &input.bud_id).await?;
        remove(cx, KIND_BUD, &current.id).await
    }
}

// ---- branches ----

pub struct CreateBranch;
impl Operation for CreateBranch {
    const NAME: &'static str = "create_branch";
    const SUMMARY: &'static str = "Create a branch (a graph of buds) in the org, version 1; an invalid graph answers 422 naming the step.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = BranchSpec;
    type Output = Branch;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let spec = checked_branch(cx, input).await?;
        let row = new_row(
            cx,
            KIND_BRANCH,
            BranchId::new().db(),
            &spec.name,
            serde_json::to_string(&spec)?,
        );
        let mut tx = cx.svc.store().begin().await?;
        db::save_def(&mut tx, &row).await?;
        cx.commit(tx, None, show_id(KIND_BRANCH, &row.id), None)
            .await?;
        Branch::from_row(&row)
    }
}

pub struct ListBranches;
impl Operation for ListBranches {
    const NAME: &'static str = "list_branches";
    const SUMMARY: &'static str = "List the org's branches (newest first).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = ListDefsInput;
    type Output = Paged<Branch>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (rows, page) = list_rows(cx, KIND_BRANCH, input).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Branch::from_row(&r),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BranchIdInput {
    /// The branch's id (`brn_…`).
    pub branch_id: String,
}

pub struct GetBranch;
impl Operation for GetBranch {
    const NAME: &'static str = "get_branch";
    const SUMMARY: &'static str = "Get one branch at its current version.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = BranchIdInput;
    type Output = Branch;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        Branch::from_row(&branch_row(cx.svc.store(), &cx.org().db(), &input.branch_id).await?)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateBranchInput {
    pub branch_id: String,
    #[serde(flatten)]
    pub spec: BranchSpec,
}

pub struct UpdateBranch;
impl Operation for UpdateBranch {
    const NAME: &'static str = "update_branch";
    const SUMMARY: &'static str =
        "Replace a branch, making a new version (runs already started keep theirs).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateBranchInput;
    type Output = Branch;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let current = branch_row(cx.svc.store(), &cx.org().db(), &input.branch_id).await?;
        let spec = checked_branch(cx, input.spec).await?;
        let row = bump(
            cx,
            KIND_BRANCH,
            &current.id,
            &spec.name,
            serde_json::to_string(&spec)?,
        )
        .await?;
        Branch::from_row(&row)
    }
}

pub struct DeleteBranch;
impl Operation for DeleteBranch {
    const NAME: &'static str = "delete_branch";
    const SUMMARY: &'static str =
        "Delete a branch with its versions and assignments (runs already started carry on).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = BranchIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        org_wide(cx)?;
        let current = branch_row(cx.svc.store(), &cx.org().db(), &input.branch_id).await?;
        remove(cx, KIND_BRANCH, &current.id).await
    }
}
