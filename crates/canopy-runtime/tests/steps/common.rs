use std::net::SocketAddr;

use canopy_core::RunId;
use canopy_engine::{StepCall, StepError, StepExecutor};
use serde_json::{Value, json};

/// Serves `app` on 127.0.0.1 at a free port.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// A call of `kind` with `config` and `input`; the context holds the run input `{"run": 1}`.
pub fn call(kind: &str, config: Value, input: Value) -> StepCall {
    StepCall {
        run_id: RunId::new(),
        org_id: "org".to_owned(),
        project_id: "project".to_owned(),
        step_id: "s".to_owned(),
        item: None,
        attempt: 1,
        idempotency_key: "run_x:s:-1:1".to_owned(),
        kind: kind.to_owned(),
        config,
        input: input.clone(),
        context: json!({"input": {"run": 1}, "steps": {"prev": {"status": "succeeded", "output": {"id": 42}, "error": null}}}),
    }
}

pub async fn run(exec: &dyn StepExecutor, call: StepCall) -> Result<Value, StepError> {
    exec.execute(call).await.map(|o| o.output)
}
