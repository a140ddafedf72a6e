//! `/openapi.json` (OpenAPI 3.1), `/docs` and `/docs/errors`, generated from the mounted
//! routes and the error table, so they cannot drift from what the server does.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse};
use canopy_core::Code;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::api::{Media, RouteDoc, snake_case};

/// Builds the document from the route records.
pub fn document(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    let mut components = Map::new();
    components.insert("ErrorEnvelope".into(), error_schema());
    for r in routes {
        let path_params: Vec<String> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        let path_fields: Vec<String> = path_params.iter().map(|p| snake_case(p)).collect();
        let mut input = hoist(r.info.input_schema.clone(), &mut components);
        let output = hoist(r.info.output_schema.clone(), &mut components);
        if let Some(props) = input.get_mut("properties").and_then(Value::as_object_mut) {
            for f in &path_fields {
                props.remove(f);
            }
        }
        if let Some(req) = input.get_mut("required").and_then(Value::as_array_mut) {
            req.retain(|v| {
                !v.as_str()
                    .is_some_and(|s| path_fields.iter().any(|f| f == s))
            });
        }

        let mut params: Vec<Value> = path_params
            .iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let has_body = matches!(r.method, Method::POST | Method::PUT | Method::PATCH);
        if !has_body {
            let required: Vec<&str> = input
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = input.get("properties").and_then(Value::as_object) {
                for (name, schema) in props {
                    let mut p = json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema});
                    if let Some(d) = schema.get("description") {
                        p["description"] = d.clone();
                    }
                    params.push(p);
                }
            }
        }
        let mut op = json!({
            "operationId": r.info.name,
            "summary": r.info.summary,
            "tags": [r.tag],
            "parameters": params,
            "responses": {
                r.status.as_u16().to_string(): {"description": "Success", "content": {"application/json": {"schema": output}}},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
            },
            "x-canopy-scope": r.info.scope.map(|s| s.as_str()),
            "x-canopy-credits": r.info.credits,
        });
        if r.media == Media::Upload {
            // Multipart carries the file as a binary part; JSON callers send base64 `content`.
            let mut form = input.clone();
            if let Some(props) = form.get_mut("properties").and_then(Value::as_object_mut) {
                props.remove("content");
                props.insert(
                    "file".into(),
                    json!({"type": "string", "format": "binary", "description": "The file. Its type is decided from the content."}),
                );
            }
            op["requestBody"] = json!({"required": true, "content": {
                "multipart/form-data": {"schema": form},
                "application/json": {"schema": input},
            }});
        } else if has_body {
            op["requestBody"] =
                json!({"required": false, "content": {"application/json": {"schema": input}}});
        }
        if r.media == Media::Download {
            op["responses"][r.status.as_u16().to_string()] = json!({
                "description": "The file's bytes, as an attachment, with its stored MIME type.",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            });
        }
        if r.media == Media::JsonOrAccepted {
            op["responses"]["202"] = json!({
                "description": "Accepted: the work goes on (asked async, or past its timeout); the same body, with the state so far.",
                "content": {"application/json": {"schema": op["responses"][r.status.as_u16().to_string()]["content"]["application/json"]["schema"].clone()}},
            });
        }
        if r.media == Media::EventStream {
            let code = r.status.as_u16().to_string();
            op["responses"][&code]["description"] = json!(
                "JSON, or with `Accept: text/event-stream` server-sent events (`id` = seq, `event` = type, `data` = the event; resume with `Last-Event-ID`)."
            );
            op["responses"][&code]["content"]["text/event-stream"] =
                json!({"schema": {"type": "string"}});
        }
        if r.public {
            op["security"] = json!([]);
        }
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.as_str().to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Canopy",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One self-hosted server for the Stackmint, StackBilt Architect, Stagent and Minolith agent-platform APIs.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}, {"accessKey": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key or a JWT from POST /api/auth/token."},
                "accessKey": {"type": "apiKey", "in": "header", "name": "X-Access-Key"},
            },
        },
    })
}

/// Moves a schema's `$defs` into `components/schemas` and points its `$ref`s there.
fn hoist(mut schema: Value, components: &mut Map<String, Value>) -> Value {
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, def) in defs {
            let def = rewrite_refs(def);
            components.entry(name).or_insert(def);
        }
    }
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    rewrite_refs(schema)
}

fn rewrite_refs(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| match (k.as_str(), &v) {
                    ("$ref", Value::String(s)) => (
                        k,
                        Value::String(s.replace("#/$defs/", "#/components/schemas/")),
                    ),
                    _ => (k, rewrite_refs(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "docs"],
            "properties": {
                "code": {"type": "string", "enum": Code::ALL.iter().map(|c| c.as_str()).chain(["rate_limited", "invalid_input"]).collect::<Vec<_>>()},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "suggestion": {"type": "string"},
                "docs": {"type": "string", "format": "uri"},
            },
        }},
    })
}

pub async fn openapi_json(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Json(st.spec.as_ref().clone()),
    )
}

pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

pub async fn errors_page() -> Html<String> {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=utf-8><title>Canopy error codes</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
         code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}h2{margin-top:2rem}</style></head><body>\
         <h1>Error codes</h1><p>Every error has the envelope <code>{\"error\": {\"code\", \"message\", \"field\"?, \
         \"suggestion\"?, \"docs\"}}</code>. The Stackmint routes send <code>rate_limited</code> for \
         <code>rate_limit_exceeded</code> and <code>invalid_input</code> for <code>validation_error</code>.</p>",
    );
    for c in Code::ALL {
        html.push_str(&format!(
            "<h2 id=\"{0}\"><code>{0}</code> <small>HTTP {1}</small></h2><p>{2}</p>",
            c.as_str(),
            c.status().as_u16(),
            escape(c.about())
        ));
    }
    html.push_str("</body></html>");
    Html(html)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
