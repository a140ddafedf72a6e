//! Operations by name for `tool` and `agent` steps: the same type-erased calls as MCP's
//! `tools/call` ([`super::tools`]), so a step's call is checked, audited and charged like any
//! other.

use std::collections::HashMap;

use canopy_core::{Error, Principal};
use canopy_services::Services;
use canopy_services::op::Meta;
use serde_json::Value;

use super::schema;
use super::tools::Tool;

/// Every mounted operation by name.
pub struct StepOperations {
    by_name: HashMap<&'static str, Tool>,
}

impl StepOperations {
    pub fn new(tools: &[Tool]) -> StepOperations {
        StepOperations {
            by_name: tools.iter().map(|t| (t.info.name, t.clone())).collect(),
        }
    }
}

impl canopy_services::runtime::steps::OperationCaller for StepOperations {
    fn describe(&self, name: &str) -> Option<(String, Value)> {
        let t = self.by_name.get(name)?;
        Some((
            t.info.summary.to_owned(),
            schema::input(&t.info.input_schema),
        ))
    }

    fn call<'a>(
        &'a self,
        svc: &'a Services,
        who: &'a Principal,
        name: &'a str,
        args: Value,
    ) -> canopy_services::runtime::steps::BoxFuture<'a, Result<Value, Error>> {
        Box::pin(async move {
            let t = self
                .by_name
                .get(name)
                .ok_or_else(|| Error::not_found("Operation"))?;
            let text = (t.call)(svc, who, Meta::default(), args).await?;
            serde_json::from_str(&text).map_err(Error::from)
        })
    }
}
