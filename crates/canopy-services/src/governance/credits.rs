//! Credits and spending caps: a price per write action, a monthly total per org and project,
//! and caps that refuse a write (402) before anything of it is written.

use std::collections::HashMap;

use canopy_core::{Code, Error, ProjectId, Scope};
use canopy_store::Tx;
use canopy_store::usage::{
    LedgerRow, by_action, get_cap, get_cap_tx, insert_ledger, month_used, set_cap, try_charge,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::knowledge::current_project;
use crate::op::{Cx, Hints, Operation};

/// Seed 003's prices, by operation name. Everything else (reads, updates, deletes, Context) is free.
pub fn default_prices() -> HashMap<String, u32> {
    [
        ("create_changelog_entry", 3),
        ("submit_feedback", 1),
        ("create_runbook", 5),
        ("create_agent", 3),
        ("define_tokens", 2),
        ("define_pattern", 2),
        ("define_voice", 2),
        ("define_component", 3),
        ("upload_asset", 3),
        ("create_task", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The billing period of a time: `YYYY-MM` (UTC).
pub fn month_of(ms: i64) -> String {
    canopy_core::time::day(ms)
        .get(..7)
        .unwrap_or_default()
        .to_owned()
}

fn org_subject(org: &str) -> String {
    format!("org:{org}")
}

fn project_subject(p: ProjectId) -> String {
    format!("prj:{}", p.db())
}

/// Charges `cx.credits` to the project (if any) and the org inside `tx`.
pub(crate) async fn charge(
    tx: &mut Tx,
    cx: &Cx<'_>,
    project: Option<ProjectId>,
) -> Result<(), Error> {
    let now = canopy_core::time::now_ms();
    let month = month_of(now);
    let cost = i64::from(cx.credits);
    let mut subjects = Vec::with_capacity(2);
    if let Some(p) = project {
        subjects.push(project_subject(p));
    }
    subjects.push(org_subject(&cx.org().db()));
    for subject in &subjects {
        let cap = get_cap_tx(tx, subject).await?;
        if let Some(used) = try_charge(tx, subject, &month, cost, cap).await? {
            let cap = cap.unwrap_or_default();
            return Err(Error::new(
                Code::SpendingCapExceeded,
                format!(
                    "This action would exceed your monthly spending cap of {cap} credits. Current usage: {used} credits. \
                     This action costs {cost} credits. Raise the cap (PUT /v1/usage/cap) or wait for the next billing period."
                ),
            )
            .with_extra("current_usage", used)
            .with_extra("cap", cap)
            .with_extra("action_cost", cost));
        }
    }
    let row = LedgerRow {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        org_id: cx.org().db(),
        project_id: project.map(|p| p.db()),
        month,
        action: cx.op.to_owned(),
        credits: cost,
        key_id: Some(cx.principal.key_id.to_string()),
        created_at: now,
    };
    insert_ledger(tx, &row).await
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Spend {
    /// Credits used this period.
    pub used: i64,
    /// The monthly cap; `null` for none.
    pub cap: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ActionUsage {
    pub action: String,
    pub count: i64,
    pub credits: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageReport {
    /// The current billing period, `YYYY-MM` (UTC).
    pub period: String,
    pub project_id: ProjectId,
    pub project: Spend,
    pub org: Spend,
    /// This project's charged actions this period.
    pub by_action: Vec<ActionUsage>,
    /// Credits per priced action (everything else is free).
    pub prices: std::collections::BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetUsageInput {}

pub struct GetUsage;
impl Operation for GetUsage {
    const NAME: &'static str = "get_usage";
    const SUMMARY: &'static str =
        "Credits used this month by the project and its org, by action, with caps and prices.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = GetUsageInput;
    type Output = canopy_core::Data<UsageReport>;

    async fn call(cx: &Cx<'_>, _: Self::Input) -> Result<Self::Output, Error> {
        let store = cx.svc.store();
        let project = current_project(cx).await?;
        let month = month_of(canopy_core::time::now_ms());
        let (ps, os) = (project_subject(project), org_subject(&cx.org().db()));
        let rows = by_action(store, &cx.org().db(), Some(&project.db()), &month).await?;
        Ok(canopy_core::Data {
            data: UsageReport {
                period: month.clone(),
                project_id: project,
                project: Spend {
                    used: month_used(store, &ps, &month).await?,
                    cap: get_cap(store, &ps).await?,
                },
                org: Spend {
                    used: month_used(store, &os, &month).await?,
                    cap: get_cap(store, &os).await?,
                },
                by_action: rows
                    .into_iter()
                    .map(|(action, count, credits)| ActionUsage {
                        action,
                        count,
                        credits,
                    })
                    .collect(),
                prices: cx
                    .svc
                    .config()
                    .prices
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            },
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetCapInput {
    /// Credits per month; `null` removes the cap.
    #[schemars(range(min = 0))]
    pub cap: Option<i64>,
    /// `project` (the caller's project, default) or `org`.
    pub level: Option<String>,
}

pub struct SetSpendingCap;
impl Operation for SetSpendingCap {
    const NAME: &'static str = "set_spending_cap";
    const SUMMARY: &'static str =
        "Set or remove the monthly spending cap of the project or the org.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = SetCapInput;
    type Output = canopy_core::Data<Spend>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        if input.cap.is_some_and(|c| c < 0) {
            return Err(Error::validation(
                "cap",
                "cap must be 0 or more credits, or null to remove it.",
            ));
        }
        let level = canopy_core::suggest::parse_enum(
            input.level.as_deref().unwrap_or("project"),
            "level",
            &["project", "org"],
        )?;
        let project = current_project(cx).await?;
        let subject = if level == "org" {
            if cx.principal.project_id.is_some() {
                return Err(Error::forbidden(
                    "Only an org-wide admin key can set the org's cap.",
                ));
            }
            org_subject(&cx.org().db())
        } else {
            project_subject(project)
        };
        let mut tx = cx.svc.store().begin().await?;
        set_cap(&mut tx, &subject, input.cap, canopy_core::time::now_ms()).await?;
        cx.commit(
            tx,
            Some(project),
            subject.clone(),
            Some(serde_json::json!({"cap": input.cap, "level": level})),
        )
        .await?;
        let used = month_used(
            cx.svc.store(),
            &subject,
            &month_of(canopy_core::time::now_ms()),
        )
        .await?;
        Ok(canopy_core::Data {
            data: Spend {
                used,
                cap: input.cap,
            },
        })
    }
}
