//! `llm`: one model call. Config: `provider` (default `builtin`), `model`, `system` and
//! `prompt` (templates), `temperature`, `max_tokens`, `response` (`text` or `json`, with an
//! optional JSON `schema` the answer must match), `stream`.

use std::sync::Arc;

use canopy_engine::{BoxFuture, StepCall, StepError, StepExecutor, StepOutput};
use canopy_runtime::providers::{ChatRequest, ChatResponse, Message, ProviderError};
use serde_json::{Value, json};

use super::{Kit, render, template_context, text};
use crate::runtime::credentials::provider_config;

pub(crate) struct LlmStep(pub Arc<Kit>);

impl StepExecutor for LlmStep {
    fn execute(&self, call: StepCall) -> BoxFuture<'_, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let spec = ModelSpec::parse(&call)?;
            let messages = vec![Message::User {
                text: spec.prompt.clone(),
            }];
            let (resp, usage) = chat(&self.0, &call, &spec, messages, Vec::new()).await?;
            let mut out = json!({
                "text": resp.text,
                "provider": resp.provider,
                "model": resp.model,
                "stop_reason": resp.stop_reason,
            });
            if spec.json {
                let parsed = parse_json_answer(&resp.text).map_err(|m| {
                    StepError::retryable("invalid_model_output", m).with_usage(usage.clone())
                })?;
                if let Some(schema) = &spec.schema {
                    check_schema(schema, &parsed).map_err(|m| {
                        StepError::retryable("invalid_model_output", m).with_usage(usage.clone())
                    })?;
                }
                out["json"] = parsed;
            }
            Ok(StepOutput {
                output: out,
                usage: Some(usage),
            })
        })
    }
}

/// The model settings of an `llm` or `agent` step, templates rendered.
pub(crate) struct ModelSpec {
    pub provider: String,
    pub model: Option<String>,
    pub system: Option<String>,
    pub prompt: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub json: bool,
    pub schema: Option<Value>,
    pub stream: bool,
}

impl ModelSpec {
    pub fn parse(call: &StepCall) -> Result<ModelSpec, StepError> {
        let c = &call.config;
        let ctx = template_context(call);
        let bad = |m: &str| StepError::fatal("invalid_config", m.to_owned());
        let prompt = match text(c, "prompt")? {
            Some(p) => render(p, &ctx, "prompt")?,
            // Without a prompt the step's input is the prompt.
            None => match &call.input {
                Value::String(s) => s.clone(),
                Value::Null => return Err(bad("an llm step needs config.prompt or an input")),
                other => other.to_string(),
            },
        };
        let system = text(c, "system")?
            .map(|s| render(s, &ctx, "system"))
            .transpose()?;
        let json = match text(c, "response")? {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(bad(&format!(
                    "config.response is text or json, not `{other}`"
                )));
            }
        };
        let temperature = match c.get("temperature") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .filter(|t| (0.0..=2.0).contains(t))
                    .ok_or_else(|| bad("config.temperature is a number from 0 to 2"))?,
            ),
        };
        let max_tokens = match c.get("max_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("config.max_tokens is a positive integer"))?,
            ),
        };
        Ok(ModelSpec {
            provider: text(c, "provider")?.unwrap_or("builtin").to_owned(),
            model: text(c, "model")?.map(str::to_owned),
            system,
            prompt,
            temperature,
            max_tokens,
            json,
            schema: c.get("schema").filter(|s| !s.is_null()).cloned(),
            stream: c.get("stream").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// One model call with the run's client's credentials; the usage record it cost.
pub(crate) async fn chat(
    kit: &Kit,
    call: &StepCall,
    spec: &ModelSpec,
    messages: Vec<Message>,
    tools: Vec<canopy_runtime::providers::ToolSpec>,
) -> Result<(ChatResponse, Value), StepError> {
    let svc = kit.services()?;
    let cfg = provider_config(&svc, &call.org_id, &call.project_id, &spec.provider)
        .await
        .map_err(|e| StepError::retryable("internal", e.message.to_string()))?
        .ok_or_else(|| {
            StepError::fatal(
                "provider_not_configured",
                format!(
                    "No credentials for provider `{}` on this client or its org; set them with POST /v1/admin/clients/{{clientId}}/providers/{}/credentials.",
                    spec.provider, spec.provider
                ),
            )
        })?;
    let req = ChatRequest {
        model: spec.model.clone(),
        system: spec.system.clone(),
        messages,
        tools,
        temperature: spec.temperature,
        max_tokens: spec.max_tokens,
        json_mode: spec.json,
        stream: spec.stream,
    };
    let resp = kit
        .providers
        .chat(&cfg, &req, None)
        .await
        .map_err(provider_error)?;
    let cost = kit.prices.cost_usd(&resp.provider, &resp.model, resp.usage);
    let mut usage = json!({
        "input_tokens": resp.usage.input_tokens,
        "output_tokens": resp.usage.output_tokens,
        "model_calls": 1,
    });
    if let Some(c) = cost {
        usage["cost_usd"] = json!(c);
    }
    Ok((resp, usage))
}

fn provider_error(e: ProviderError) -> StepError {
    let message = e.to_string();
    if e.retryable() {
        StepError::retryable(e.code(), message)
    } else {
        StepError::fatal(e.code(), message)
    }
}

/// The JSON object or array in a model's answer (models wrap it in a code fence at times).
fn parse_json_answer(text: &str) -> Result<Value, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .unwrap_or(t)
        .trim();
    serde_json::from_str(t).map_err(|e| format!("The model's answer is not JSON: {e}"))
}

fn check_schema(schema: &Value, v: &Value) -> Result<(), String> {
    crate::runtime::schema::check(schema, v)
        .map_err(|m| format!("The model's answer does not match config.schema: {m}"))
}

#[cfg(test)]
mod tests {
    use super::parse_json_answer;
    use serde_json::json;

    #[test]
    fn json_answers_in_fences_parse() {
        assert_eq!(
            parse_json_answer("```json\n{\"a\":1}\n```"),
            Ok(json!({"a": 1}))
        );
        assert_eq!(parse_json_answer(" [1] "), Ok(json!([1])));
        assert!(parse_json_answer("sure! {").is_err());
    }
}
