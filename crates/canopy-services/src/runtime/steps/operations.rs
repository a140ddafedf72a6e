//! Calling Canopy operations by name from a step. The registry of operations by name is
//! built by the doors (every mounted operation is a tool), so the server hands it to the
//! services at start through this trait rather than services depending on the doors.

use canopy_core::{Error, Principal};
use canopy_engine::BoxFuture;
use serde_json::Value;

use crate::Services;

pub trait OperationCaller: Send + Sync + 'static {
    /// The description and input schema of an operation, if it exists.
    fn describe(&self, name: &str) -> Option<(String, Value)>;

    /// Runs an operation as `who` (same checks, audit and credits as any door).
    fn call<'a>(
        &'a self,
        svc: &'a Services,
        who: &'a Principal,
        name: &'a str,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, Error>>;
}
