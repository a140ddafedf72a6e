//! Configuration of the built-in suspending kinds, `wait` and `approval`. Their behaviour
//! (a durable timer; a step waiting for a decision) lives in the state machine.

use serde_json::Value;

/// When a `wait` step started at `now` is due: `config.duration_ms` from now, or
/// `config.until` (RFC 3339 text or Unix milliseconds).
pub fn wait_duration(config: &Value, now: i64) -> Result<i64, String> {
    if let Some(d) = config.get("duration_ms") {
        let ms = d
            .as_u64()
            .ok_or("duration_ms must be a non-negative integer")?;
        let ms = i64::try_from(ms).map_err(|_| "duration_ms is too large")?;
        return Ok(now.saturating_add(ms));
    }
    match config.get("until") {
        Some(Value::String(s)) => canopy_core::time::parse_rfc3339(s)
            .ok_or_else(|| "until must be an RFC 3339 time".to_owned()),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| "until must be RFC 3339 text or Unix milliseconds".to_owned()),
        None => Err("a wait step needs config.duration_ms or config.until".to_owned()),
    }
}

/// What an approval does when nobody decides in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    Reject,
    Approve,
    Fail,
}

#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    pub prompt: Option<String>,
    pub timeout_ms: Option<i64>,
    pub on_timeout: OnTimeout,
}

impl ApprovalConfig {
    /// Reads `{prompt?, timeout_ms?, on_timeout?: reject|approve|fail}`; an error names the
    /// field.
    pub fn parse(config: &Value) -> Result<ApprovalConfig, (&'static str, String)> {
        let prompt = match config.get("prompt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(("prompt", "prompt must be text".to_owned())),
        };
        let timeout_ms = match config.get("timeout_ms") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| i64::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or((
                        "timeout_ms",
                        "timeout_ms must be a positive integer".to_owned(),
                    ))?,
            ),
        };
        let on_timeout = match config.get("on_timeout").and_then(Value::as_str) {
            None => OnTimeout::Reject,
            Some("reject") => OnTimeout::Reject,
            Some("approve") => OnTimeout::Approve,
            Some("fail") => OnTimeout::Fail,
            Some(other) => {
                return Err((
                    "on_timeout",
                    format!("on_timeout is reject, approve or fail, not `{other}`"),
                ));
            }
        };
        Ok(ApprovalConfig {
            prompt,
            timeout_ms,
            on_timeout,
        })
    }
}
