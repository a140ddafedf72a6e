//! Operations: each action of Canopy declared once and served by every door (REST, MCP).
//!
//! An operation is a marker type implementing [`Operation`]. Its `NAME` is at once the MCP
//! tool name, the OpenAPI `operationId`, the audit action and the price key. [`dispatch`] is
//! the single path every call takes: scope check, the call, and an audit record of refused or
//! failed mutations (successful ones are audited inside their own transaction by [`Cx::commit`]).

use std::future::Future;

use canopy_core::{Error, Principal, ProjectId, Scope};
use canopy_store::Tx;
use canopy_store::audit::{AuditRow, insert_audit, insert_audit_alone};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Services;

/// MCP tool annotations, set truthfully per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

impl Hints {
    pub const READ: Hints = Hints {
        read_only: true,
        destructive: false,
        idempotent: true,
    };
    pub const WRITE: Hints = Hints {
        read_only: false,
        destructive: false,
        idempotent: false,
    };
    pub const UPDATE: Hints = Hints {
        read_only: false,
        destructive: false,
        idempotent: true,
    };
    pub const DESTROY: Hints = Hints {
        read_only: false,
        destructive: true,
        idempotent: true,
    };
}

pub trait Operation: Send + Sync + 'static {
    /// MCP tool name = OpenAPI operationId = audit action.
    const NAME: &'static str;
    /// One-line summary for OpenAPI and MCP.
    const SUMMARY: &'static str;
    /// The scope a caller needs; `None` lets any authenticated caller in.
    const SCOPE: Option<Scope>;
    const HINTS: Hints;
    /// Credits charged per successful call unless the price table says otherwise (reads are free).
    const CREDITS: u32 = 0;

    type Input: DeserializeOwned + JsonSchema + Send;
    type Output: Serialize + JsonSchema + Send;

    fn call(
        cx: &Cx<'_>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send;
}

/// The context of one call: the services, who is calling, and request metadata.
pub struct Cx<'a> {
    pub svc: &'a Services,
    pub principal: &'a Principal,
    pub request_id: Option<&'a str>,
    /// The project the request names (`X-Canopy-Project`: id or slug), if any.
    pub project_hint: Option<&'a str>,
    pub op: &'static str,
    /// What a successful call costs (the price table's entry for `op`).
    pub credits: u32,
}

/// What a door knows of a request besides its input.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta<'a> {
    pub request_id: Option<&'a str>,
    /// `X-Canopy-Project`: which project an org-wide key works in.
    pub project: Option<&'a str>,
}

impl Cx<'_> {
    /// The org the caller belongs to.
    pub fn org(&self) -> canopy_core::OrgId {
        self.principal.org_id
    }

    /// Charges the operation's credits (refusing with 402 past a spending cap) and writes the
    /// success audit record into `tx`, then commits: the change, its charge and its record land
    /// together or not at all.
    pub async fn commit(
        &self,
        mut tx: Tx,
        project: Option<ProjectId>,
        target: impl Into<Option<String>>,
        detail: Option<serde_json::Value>,
    ) -> Result<(), Error> {
        if self.credits > 0 {
            crate::governance::credits::charge(
                &mut tx,
                self,
                project.or(self.principal.project_id),
            )
            .await?;
        }
        let row = self.audit_row(project, target.into(), "success", detail);
        insert_audit(&mut tx, &row).await?;
        tx.commit().await
    }

    /// [`Cx::commit`] for a deletion, answering `{"data": {"id", "deleted": true}}`.
    pub async fn commit_deleted(
        &self,
        tx: Tx,
        project: ProjectId,
        id: String,
    ) -> Result<canopy_core::Data<canopy_core::Deleted>, Error> {
        self.commit(tx, Some(project), id.clone(), None).await?;
        Ok(canopy_core::Data {
            data: canopy_core::Deleted { id, deleted: true },
        })
    }

    /// The success audit record of this call, for writes committed outside [`Cx::commit`].
    pub(crate) fn success_audit(
        &self,
        project: Option<ProjectId>,
        target: Option<String>,
    ) -> AuditRow {
        self.audit_row(project, target, "success", None)
    }

    fn audit_row(
        &self,
        project: Option<ProjectId>,
        target: Option<String>,
        outcome: &str,
        detail: Option<serde_json::Value>,
    ) -> AuditRow {
        let p = self.principal;
        AuditRow {
            id: canopy_core::AuditId::new().db(),
            org_id: p.org_id.db(),
            project_id: project.or(p.project_id).map(|p| p.to_string()),
            key_id: Some(p.key_id.to_string()),
            agent: p.agent.clone(),
            action: self.op.to_owned(),
            target,
            request_id: self.request_id.map(str::to_owned),
            outcome: outcome.to_owned(),
            detail: detail.map(|d| d.to_string()),
            created_at: canopy_core::time::now_ms(),
        }
    }
}

/// Runs one operation for a caller: the only path from a surface into a service.
pub async fn dispatch<O: Operation>(
    svc: &Services,
    principal: &Principal,
    meta: Meta<'_>,
    input: O::Input,
) -> Result<O::Output, Error> {
    let request_id = meta.request_id;
    let credits = svc.config().price(O::NAME, O::CREDITS);
    let cx = Cx {
        svc,
        principal,
        request_id,
        project_hint: meta.project,
        op: O::NAME,
        credits,
    };
    let result = async {
        if let Some(scope) = O::SCOPE {
            principal.require(scope)?;
        }
        if let Some(agent) = &principal.agent {
            crate::agents::resolve_agent_header(&cx, agent).await?;
        }
        O::call(&cx, input).await
    }
    .await;
    if let Err(e) = &result
        && !O::HINTS.read_only
    {
        // The change rolled back; keep a record that it was attempted and how it ended.
        let detail = serde_json::json!({"code": e.code.as_str(), "message": e.message});
        let row = cx.audit_row(None, None, outcome_of(e), Some(detail));
        if let Err(audit_err) = insert_audit_alone(svc.store(), &row).await {
            tracing::warn!(error = %audit_err, op = O::NAME, "could not audit a failed mutation");
        }
    }
    result
}

fn outcome_of(e: &Error) -> &'static str {
    match e.status().as_u16() {
        401 | 403 => "denied",
        500.. => "error",
        _ => "rejected",
    }
}

/// What the doors need to know of an operation without its types (OpenAPI, MCP listings).
#[derive(Clone, Debug)]
pub struct OpInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub scope: Option<Scope>,
    pub hints: Hints,
    pub credits: u32,
    pub input_schema: serde_json::Value,
    pub output_schema: serde_json::Value,
}

impl OpInfo {
    pub fn of<O: Operation>() -> OpInfo {
        OpInfo {
            name: O::NAME,
            summary: O::SUMMARY,
            scope: O::SCOPE,
            hints: O::HINTS,
            credits: O::CREDITS,
            input_schema: schema_of::<O::Input>(),
            output_schema: schema_of::<O::Output>(),
        }
    }
}

/// JSON Schema 2020-12 of a type, with definitions inlined under `$defs`.
pub fn schema_of<T: JsonSchema>() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or_default()
}

/// For `#[schemars(schema_with = …)]` on a batch's list whose items are another operation's
/// input (the batch's summary names it): a list of `T` without the item fields' descriptions.
/// The one-item operation documents the fields; the batch's listing (every MCP client pays for
/// it) does not carry them twice. Types, `required` and nested schemas stay.
pub fn list_documented_elsewhere<T: JsonSchema>(
    g: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    let mut item = T::json_schema(g);
    item.remove("description");
    if let Some(props) = item
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for p in props.values_mut() {
            if let Some(p) = p.as_object_mut() {
                p.remove("description");
            }
        }
    }
    schemars::json_schema!({"type": "array", "items": item})
}

/// An input with no fields.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
pub struct NoInput {}

/// An input that can carry an uploaded file's raw bytes (the REST door's multipart uploads;
/// JSON and MCP callers send base64 `content` instead).
pub trait FileInput {
    fn attach(&mut self, bytes: bytes::Bytes, filename: Option<String>);
}

/// An output that is a file: the REST door answers its bytes, MCP its base64 form.
pub trait FileOutput {
    /// `(filename, mime type, bytes)`.
    fn into_file(self) -> (String, String, bytes::Bytes);
}
