//! The step kinds that need Canopy itself: `llm` and `agent` (provider credentials of the
//! run's client), `tool` (Canopy operations, buds, external MCP servers). `http` and `script`
//! come from `canopy_runtime` as they are; this module registers them all with the engine.
//!
//! Executors hold the services weakly: the services own the engine, whose workers own the
//! executors, and a strong reference back would keep a stopped server's pools alive.

mod agent;
mod llm;
mod operations;
mod tool;

use std::sync::{Arc, Weak};
use std::time::Duration;

use canopy_core::{Error, KeyId, OrgId, Principal, ProjectId, Scope, Scopes};
use canopy_engine::{Executors, StepCall, StepError};
use canopy_runtime::mcp_client::McpClient;
use canopy_runtime::outbound::{self, HttpStep};
use canopy_runtime::providers::{Prices, Providers};
use canopy_runtime::script::{ScriptLimits, ScriptStep};
use serde_json::{Value, json};

pub use canopy_engine::BoxFuture;
pub use operations::OperationCaller;

use crate::{Inner, Services};

/// Longest a single model call may take.
const MODEL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a single external MCP call may take.
const MCP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the Canopy-aware executors share.
pub(crate) struct Kit {
    svc: Weak<Inner>,
    providers: Providers,
    prices: Prices,
    mcp: McpClient,
    /// The executors of the kinds a bud used as an agent tool may have (filled in once built).
    inner: std::sync::OnceLock<Executors>,
}

impl Kit {
    fn services(&self) -> Result<Services, StepError> {
        Services::upgrade(&self.svc)
            .ok_or_else(|| StepError::retryable("shutting_down", "The server is stopping."))
    }
}

/// Every step kind's executor, for the engine of `svc`.
pub fn executors(svc: &Services) -> Result<Executors, Error> {
    let cfg = svc.config();
    let policy = cfg.outbound.clone();
    let guarded = outbound::client(&policy, MCP_TIMEOUT).map_err(Error::internal)?;
    let kit = Arc::new(Kit {
        svc: svc.downgrade(),
        providers: Providers::new(MODEL_TIMEOUT),
        prices: cfg.model_prices.clone(),
        mcp: McpClient::new(guarded),
        inner: std::sync::OnceLock::new(),
    });
    let mut e = Executors::default();
    e.register(
        "http",
        Arc::new(HttpStep::new(policy).map_err(Error::internal)?),
    );
    e.register("script", Arc::new(ScriptStep::new(ScriptLimits::default())));
    e.register("llm", Arc::new(llm::LlmStep(kit.clone())));
    e.register("tool", Arc::new(tool::ToolStep(kit.clone())));
    // A bud called as an agent's tool runs inline with these (not `agent` itself, so agents
    // cannot nest without bound; not `approval`/`wait`, which suspend a whole step).
    let _ = kit.inner.set(e.clone());
    e.register("agent", Arc::new(agent::AgentStep(kit)));
    Ok(e)
}

/// Who a step acts as when it calls Canopy operations: the run's client, reading and
/// writing, never administering.
pub(crate) fn run_principal(call: &StepCall) -> Result<Principal, StepError> {
    let bad = || StepError::fatal("internal", "The run has no valid org or project.");
    let org = OrgId::from_db(&call.org_id).ok_or_else(bad)?;
    let project = ProjectId::from_db(&call.project_id).ok_or_else(bad)?;
    Ok(Principal {
        key_id: KeyId::nil(),
        org_id: org,
        project_id: Some(project),
        scopes: Scopes::empty().with(Scope::Read).with(Scope::Write),
        kind: canopy_core::CredentialKind::AccessKey,
        agent: None,
    })
}

/// What templates of a step see: `input` (the step's input), `run` (`id`, `input`),
/// `steps.<id>.output`, `client.id`, and `item`/`index` inside a `for_each`.
pub(crate) fn template_context(call: &StepCall) -> Value {
    let c = &call.context;
    let mut ctx = json!({
        "input": call.input,
        "run": {"id": call.run_id.to_string(), "input": c.get("input").cloned().unwrap_or(Value::Null)},
        "steps": c.get("steps").cloned().unwrap_or_else(|| json!({})),
        "client": {"id": ProjectId::show(&call.project_id)},
    });
    for k in ["item", "index"] {
        if let Some(v) = c.get(k) {
            ctx[k] = v.clone();
        }
    }
    ctx
}

/// A config string rendered as a template (`field` names it in the error).
pub(crate) fn render(src: &str, ctx: &Value, field: &str) -> Result<String, StepError> {
    canopy_runtime::template::render(src, ctx)
        .map_err(|m| StepError::fatal("template_error", format!("{field}: {m}")))
}

/// A required text setting.
pub(crate) fn text<'a>(config: &'a Value, field: &str) -> Result<Option<&'a str>, StepError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(StepError::fatal(
            "invalid_config",
            format!("config.{field} must be text"),
        )),
    }
}
