//! `GET /v1/audit`: the org's audit records, newest first, with filters.

use canopy_core::{Error, KeyId, OrgId, PageRequest, Paged, ProjectId, Scope};
use canopy_store::audit::{AuditFilter, AuditRow, list_audit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::op::{Cx, Hints, Operation};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    pub id: String,
    pub org_id: OrgId,
    pub project_id: Option<String>,
    /// The key that acted; `null` for the server itself or the CLI.
    pub key_id: Option<String>,
    pub agent: Option<String>,
    /// The operation name (`create_client`, `revoke_access_key`, …).
    pub action: String,
    /// The id of what was acted on.
    pub target: Option<String>,
    pub request_id: Option<String>,
    /// `success`, `rejected` (bad input or state), `denied` (auth) or `error`.
    pub outcome: String,
    pub detail: Option<serde_json::Value>,
    pub created_at: String,
}

impl AuditRecord {
    fn from_row(r: AuditRow) -> Result<AuditRecord, Error> {
        Ok(AuditRecord {
            id: canopy_core::AuditId::show(&r.id),
            org_id: OrgId::from_db(&r.org_id).ok_or_else(|| Error::internal("bad org id"))?,
            project_id: r.project_id,
            key_id: r.key_id,
            agent: r.agent,
            action: r.action,
            target: r.target,
            request_id: r.request_id,
            outcome: r.outcome,
            detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
            created_at: canopy_core::time::rfc3339(r.created_at),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListAuditInput {
    /// Only records of this project (`prj_…`).
    pub project: Option<String>,
    /// Only records made with this key (`key_…`).
    pub key: Option<String>,
    /// Only this action (operation name).
    pub action: Option<String>,
    /// Only records about this target id.
    pub target: Option<String>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListAudit;
impl Operation for ListAudit {
    const NAME: &'static str = "list_audit";
    const SUMMARY: &'static str = "List audit records (every mutation), newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::READ;
    type Input = ListAuditInput;
    type Output = Paged<AuditRecord>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        let project = match (&input.project, cx.principal.project_id) {
            (Some(raw), own) => {
                let id = ProjectId::parse(raw).ok_or_else(|| {
                    Error::validation("project", "project must be a project id (prj_…).")
                })?;
                if own.is_some_and(|o| o != id) {
                    return Err(Error::not_found("Project"));
                }
                Some(id)
            }
            (None, own) => own,
        };
        let key = match &input.key {
            Some(raw) => Some(
                KeyId::parse(raw)
                    .ok_or_else(|| Error::validation("key", "key must be a key id (key_…)."))?
                    .to_string(),
            ),
            None => None,
        };
        let since = match &input.since {
            Some(s) => Some(
                canopy_core::time::parse_rfc3339(s)
                    .ok_or_else(|| Error::validation("since", "since must be an RFC 3339 time."))?,
            ),
            None => None,
        };
        let filter = AuditFilter {
            project: project.map(|p| p.to_string()),
            key,
            action: input.action,
            target: input.target,
            since,
        };
        let rows = list_audit(cx.svc.store(), cx.org(), &filter, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            AuditRecord::from_row,
        )
    }
}
