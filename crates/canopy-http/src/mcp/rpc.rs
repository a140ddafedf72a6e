//! JSON-RPC 2.0 messages: telling requests, notifications and (client) responses apart, and
//! writing answers. Knows nothing of MCP methods.

use serde_json::{Map, Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// A Canopy error outside a tool call (`data` carries the error envelope).
pub const SERVER_ERROR: i64 = -32000;
/// `resources/read` of a URI that names nothing (MCP's code).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// A requested protocol revision this server does not speak (`data.supported` lists ours).
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// A protocol failure, answered as a JSON-RPC error.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_REQUEST, message)
    }

    /// The HTTP status of this error at the 2026-07-28 revision (earlier ones answer 200).
    pub fn modern_status(&self) -> u16 {
        match self.code {
            PARSE_ERROR | INVALID_REQUEST | INVALID_PARAMS | UNSUPPORTED_VERSION => 400,
            METHOD_NOT_FOUND => 404,
            _ => 200,
        }
    }
}

/// One message of a POST body.
#[derive(Debug)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
    },
    /// A client's answer to a request of ours.
    Response {
        id: Value,
        body: Value,
    },
    /// Not a JSON-RPC message; answered with −32600 (with its id when it had a usable one).
    Invalid {
        id: Value,
        why: String,
    },
}

fn usable_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// Sorts one decoded JSON value into a [`Message`].
pub fn classify(v: Value) -> Message {
    let Value::Object(mut m) = v else {
        return Message::Invalid {
            id: Value::Null,
            why: "A JSON-RPC message must be an object.".into(),
        };
    };
    let id = m.remove("id");
    let id_value = id.clone().filter(usable_id).unwrap_or(Value::Null);
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Message::Invalid {
            id: id_value,
            why: "\"jsonrpc\" must be \"2.0\".".into(),
        };
    }
    let method = match m.remove("method") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Message::Invalid {
                id: id_value,
                why: "\"method\" must be a string.".into(),
            };
        }
        None if m.contains_key("result") || m.contains_key("error") => {
            return Message::Response {
                id: id_value,
                body: Value::Object(m),
            };
        }
        None => {
            return Message::Invalid {
                id: id_value,
                why: "A request needs a \"method\".".into(),
            };
        }
    };
    let params = match m.remove("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Message::Invalid {
                id: id_value,
                why: "\"params\" must be an object.".into(),
            };
        }
    };
    match id {
        None => Message::Notification { method },
        Some(id) if usable_id(&id) => Message::Request { id, method, params },
        Some(_) => Message::Invalid {
            id: Value::Null,
            why: "\"id\" must be a string or an integer.".into(),
        },
    }
}

pub fn ok(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error(id: &Value, e: &RpcError) -> Value {
    let mut err = Map::new();
    err.insert("code".into(), json!(e.code));
    err.insert("message".into(), json!(e.message));
    if let Some(d) = &e.data {
        err.insert("data".into(), d.clone());
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(matches!(
            classify(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
            Message::Request { .. }
        ));
        assert!(matches!(
            classify(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            Message::Notification { .. }
        ));
        assert!(matches!(
            classify(json!({"jsonrpc": "2.0", "id": "s1", "result": {}})),
            Message::Response { .. }
        ));
        assert!(matches!(
            classify(json!({"jsonrpc": "1.0", "id": 1, "method": "ping"})),
            Message::Invalid {
                id: Value::Number(_),
                ..
            }
        ));
        assert!(matches!(
            classify(json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]})),
            Message::Invalid { .. }
        ));
        assert!(matches!(
            classify(json!({"jsonrpc": "2.0", "id": null, "method": "x"})),
            Message::Invalid { .. }
        ));
        assert!(matches!(classify(json!(3)), Message::Invalid { .. }));
    }
}
