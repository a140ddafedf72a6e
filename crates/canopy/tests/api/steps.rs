//! Step kinds that reach out (issue 5 §2–§3): `llm` and `agent` against scripted
//! OpenAI-compatible and Anthropic servers with encrypted per-client credentials, `http` with
//! its SSRF guard, `script` with its limits, `tool` (Canopy operations and external MCP
//! servers), usage and cost, and `input_schema` checks on run requests.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, assert_error};
use crate::sink::Sink;

/// Runs a test body with a sink, on SQLite and (when `CANOPY_TEST_PG` is set) PostgreSQL; the
/// server may reach the sink's port and nothing else private; `gpt-test` has a price.
macro_rules! with_sink {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn go(backend: Backend) {
                let sink = Sink::start().await;
                let allow = sink.allow();
                let app = TestApp::start(backend, move |s| {
                    s.rate_limit_per_minute = 100_000;
                    s.outbound.allow_hosts = vec![allow];
                    s.model_prices.set(
                        "gpt-test",
                        canopy_runtime::providers::Price {
                            input_per_mtok_usd: 1_000_000.0,
                            output_per_mtok_usd: 2_000_000.0,
                        },
                    );
                })
                .await;
                match app {
                    Some(app) => ($body)(app, sink).await,
                    None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                go(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("CANOPY_TEST_PG").is_err() {
                    eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run");
                    return;
                }
                go(Backend::Postgres).await
            }
        }
    };
}

/// A client with a key that may run its buds; answers (client id, key).
async fn client_and_key(app: &TestApp) -> (String, String) {
    let client = app.client("Steps").await;
    let (_, key) = app
        .key(
            &["read", "runtime", "bud.run"],
            json!({"project_id": client}),
        )
        .await;
    (client, key)
}

/// Creates a bud, assigns it to `client`, runs it synchronously; answers the run.
async fn run_bud(app: &TestApp, client: &str, key: &str, bud: Value, input: Value) -> Value {
    let admin = &app.admin_key;
    let (s, b) = app.post("/v1/admin/buds", admin, bud).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap();
    let (s, a) = app
        .post(
            &format!("/v1/admin/clients/{client}/buds/{id}/assign"),
            admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (s, r) = app
        .post(
            &format!("/v1/clients/{client}/buds/{id}/run"),
            key,
            json!({"input": input, "timeout_ms": 20000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["run"].clone()
}

with_sink!(
    llm_steps_use_encrypted_client_credentials,
    |app: TestApp, sink: Sink| async move {
        let (client, key) = client_and_key(&app).await;
        let admin = app.admin_key.clone();
        let secret = "sk-test-secret-4242424242";
        let path = format!("/v1/admin/clients/{client}/providers/openai/credentials");
        let (s, c) = app
        .post(&path, &admin, json!({"api_key": secret, "base_url": format!("{}/v1", sink.base), "default_model": "gpt-test"}))
        .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(
            (
                c["provider"].as_str(),
                c["kind"].as_str(),
                c["api_key_set"].as_bool()
            ),
            (Some("openai"), Some("openai"), Some(true))
        );
        assert!(!c.to_string().contains(secret), "{c}");
        let (s, list) = app
            .get(&format!("/v1/admin/clients/{client}/providers"), &admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains(secret));

        // A streamed call with a rendered prompt; usage and cost land on the step and the run.
        let run = run_bud(
        &app,
        &client,
        &key,
        json!({"name": "Greeter", "kind": "llm", "config": {
            "provider": "openai", "prompt": "Say hi to {{ input.name }}", "system": "Be brief.", "stream": true
        }}),
        json!({"name": "Ada"}),
    )
    .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"]["text"], "hello from gpt-test", "{run}");
        assert_eq!(run["output"]["provider"], "openai");
        assert_eq!(run["usage"]["input_tokens"], 7, "{run}");
        assert_eq!(run["usage"]["output_tokens"], 3);
        // 7 × $1 + 3 × $2 per token at the test's (absurd) price.
        assert_eq!(run["usage"]["cost_usd"].as_f64(), Some(13.0), "{run}");
        assert_eq!(run["steps"][0]["usage"]["input_tokens"], 7);
        let calls = sink.model_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].1, format!("Bearer {secret}"));
        let body = calls[0].2.to_string();
        assert!(body.contains("Say hi to Ada"), "{body}");
        assert!(body.contains("Be brief."), "{body}");

        // The key is not stored in the clear anywhere the database keeps it.
        if app.settings.database_url.is_none() {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(&app.settings.data_dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_file() {
                    bytes.extend(std::fs::read(p).unwrap());
                }
            }
            assert!(!bytes.is_empty());
            let needle = secret.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the key is in the data dir in the clear"
            );
        } else {
            let pool = sqlx::PgPool::connect(app.settings.database_url.as_deref().unwrap())
                .await
                .unwrap();
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT api_key_sealed FROM provider_credentials")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            assert_eq!(rows.len(), 1);
            assert!(!rows[0].0.contains(secret));
            let dump: (String,) =
                sqlx::query_as("SELECT string_agg(t::text, ' ') FROM provider_credentials t")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert!(!dump.0.contains(secret));
            pool.close().await;
        }

        // Removing the client's credentials: the next run fails its step with provider_not_configured.
        let (s, d) = app.delete(&path, &admin).await;
        assert_eq!(s, StatusCode::OK, "{d}");
        let (s, d) = app.delete(&path, &admin).await;
        assert_error(s, &d, 404, "not_found");
        let run = run_bud(
        &app,
        &client,
        &key,
        json!({"name": "Greeter 2", "kind": "llm", "config": {"provider": "openai", "prompt": "hi"}}),
        json!({}),
    )
    .await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["error"]["code"], "provider_not_configured", "{run}");
        assert_eq!(sink.model_calls().len(), 1, "no call without credentials");

        // Org-wide credentials apply to every client without its own.
        let (s, c) = app
            .post(
                "/v1/admin/providers/anthropic/credentials",
                &admin,
                json!({"api_key": "ant-key-1", "base_url": format!("{}/anthropic", sink.base)}),
            )
            .await;
        assert_eq!(
            (s, c["kind"].as_str()),
            (StatusCode::OK, Some("anthropic")),
            "{c}"
        );
        let run = run_bud(
        &app,
        &client,
        &key,
        json!({"name": "Claude", "kind": "llm", "config": {"provider": "anthropic", "model": "claude-test", "prompt": "hi", "response": "text"}}),
        json!({}),
    )
    .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"]["text"], "hello from claude-test");
        assert_eq!(sink.model_calls()[1].1, "ant-key-1");
        // No price for claude-test: tokens are counted, the cost is left out.
        assert_eq!(run["usage"]["input_tokens"], 7);
        assert!(run["usage"].get("cost_usd").is_none(), "{run}");

        // Bad credentials input changes nothing.
        let (s, e) = app.post(&path, &admin, json!({"api_key": ""})).await;
        assert_error(s, &e, 422, "invalid_input");
        let (s, e) = app
            .post(
                &format!("/v1/admin/clients/{client}/providers/builtin/credentials"),
                &admin,
                json!({"api_key": "x"}),
            )
            .await;
        assert_error(s, &e, 422, "invalid_input");
    }
);

with_sink!(
    agent_tool_loops_over_mcp_and_operations,
    |app: TestApp, sink: Sink| async move {
        let (client, key) = client_and_key(&app).await;
        let admin = app.admin_key.clone();
        for (provider, base) in [
            ("openai", format!("{}/v1", sink.base)),
            ("anthropic", format!("{}/anthropic", sink.base)),
        ] {
            let (s, c) = app
                .post(
                    &format!("/v1/admin/clients/{client}/providers/{provider}/credentials"),
                    &admin,
                    json!({"api_key": "k", "base_url": base, "default_model": "m-1"}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{c}");
        }
        // OpenAI format, streamed, with an external MCP server's tool.
        let run = run_bud(
            &app,
            &client,
            &key,
            json!({"name": "Echo agent", "kind": "agent", "config": {
                "provider": "openai", "prompt": "use the tool", "stream": true,
                "tools": [{"server_url": format!("{}/mcp", sink.base)}]
            }}),
            json!({}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"]["turns"], 2, "{run}");
        assert_eq!(run["output"]["tool_calls"][0]["name"], "echo");
        assert_eq!(
            run["output"]["text"], "done: {\"echo\":{\"text\":\"ping\"}}",
            "{run}"
        );
        assert_eq!(run["usage"]["input_tokens"], 14, "two model calls: {run}");
        // The second request carried the tool result under the tool call's id.
        let calls = sink.model_calls();
        let second = &calls[1].2;
        let msgs = second["messages"].as_array().unwrap();
        let tool_msg = msgs
            .iter()
            .find(|m| m["role"] == "tool")
            .expect("tool message");
        assert_eq!(tool_msg["tool_call_id"], "call_a");
        assert_eq!(sink.seen.lock().unwrap().mcp_calls.len(), 1);

        // Anthropic format with a Canopy operation as the tool: it runs as the client.
        let run = run_bud(
            &app,
            &client,
            &key,
            json!({"name": "Changelog agent", "kind": "agent", "config": {
                "provider": "anthropic", "prompt": "list", "tools": ["list_changelog_entries"]
            }}),
            json!({}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(
            run["output"]["tool_calls"][0]["name"],
            "list_changelog_entries"
        );
        assert_eq!(run["output"]["tool_calls"][0]["is_error"], false, "{run}");
        let text = run["output"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("done: ") && text.contains("\"data\":[]"),
            "{text}"
        );
        let calls = sink.model_calls();
        let last = &calls.last().unwrap().2;
        let blocks = last["messages"].as_array().unwrap().last().unwrap()["content"].clone();
        assert_eq!(blocks[0]["type"], "tool_result", "{last}");
        assert_eq!(blocks[0]["tool_use_id"], "toolu_1");

        // The builtin provider needs nothing configured and says where its answer came from.
        let run = run_bud(
            &app,
            &client,
            &key,
            json!({"name": "Offline", "kind": "llm", "config": {"prompt": "ping {{ input.x }}"}}),
            json!({"x": 1}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"]["provider"], "builtin");
        assert!(
            run["output"]["text"]
                .as_str()
                .unwrap()
                .starts_with("[builtin]"),
            "{run}"
        );
    }
);

with_sink!(
    http_steps_refuse_private_targets,
    |app: TestApp, sink: Sink| async move {
        let (client, key) = client_and_key(&app).await;
        let run = run_bud(
            &app,
            &client,
            &key,
            json!({"name": "Post", "kind": "http", "config": {
                "method": "POST", "url": format!("{}/hit/{{{{ input.name }}}}", sink.base),
                "body": {"n": "{{ input.n }}"}
            }}),
            json!({"name": "a", "n": 5}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"]["status"], 200);
        assert_eq!(run["output"]["body"]["got"], json!({"n": "5"}), "{run}");
        assert_eq!(sink.hits("a"), 1);
        let keys = sink.seen.lock().unwrap().keys.clone();
        let run_id = run["id"].as_str().unwrap();
        assert!(
            keys.keys()
                .any(|k| k.starts_with(run_id) || k.contains(&run_id[4..])),
            "{keys:?}"
        );

        // Loopback on another port, the metadata address, a private range: refused, nothing sent.
        for url in [
            "http://127.0.0.1:9/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://[::1]:9/",
        ] {
            let run = run_bud(
                &app,
                &client,
                &key,
                json!({"name": format!("Bad {url}"), "kind": "http", "config": {"url": url}}),
                json!({}),
            )
            .await;
            assert_eq!(run["status"], "failed", "{url}: {run}");
            assert_eq!(run["error"]["code"], "ssrf_refused", "{url}: {run}");
        }
    }
);

with_sink!(
    script_and_tool_steps,
    |app: TestApp, _sink: Sink| async move {
        let (client, key) = client_and_key(&app).await;
        let run = run_bud(
        &app,
        &client,
        &key,
        json!({"name": "Sum", "kind": "script", "config": {"source": "let t = 0; for x in input.xs { t += x; } #{total: t}"}}),
        json!({"xs": [1, 2, 3]}),
    )
    .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"], json!({"total": 6}));

        // An endless loop is stopped by the operation limit.
        let run = run_bud(
            &app,
            &client,
            &key,
            json!({"name": "Spin", "kind": "script", "config": {"source": "loop { }"}}),
            json!({}),
        )
        .await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["error"]["code"], "script_limit", "{run}");

        // A script that does not compile is refused when authored, naming the field.
        let (s, e) = app
            .post(
                "/v1/admin/buds",
                &app.admin_key,
                json!({"name": "Broken", "kind": "script", "config": {"source": "let = ;"}}),
            )
            .await;
        assert_error(s, &e, 422, "invalid_input");
        assert_eq!(e["error"]["field"], "config.source", "{e}");

        // A tool step calls a Canopy operation as the run's client.
        let run = run_bud(
            &app,
            &client,
            &key,
            json!({"name": "Note", "kind": "tool", "config": {
                "operation": "create_changelog_entry",
                "arguments": {"title": "Shipped {{ input.what }}", "category": "added"}
            }}),
            json!({"what": "steps"}),
        )
        .await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let entry_id = run["output"]["data"]["id"].as_str().unwrap().to_owned();
        let (_, reader) = app.key(&["read"], json!({"project_id": client})).await;
        let (s, got) = app
            .get(&format!("/v1/changelog/entries/{entry_id}"), &reader)
            .await;
        assert_eq!(s, StatusCode::OK, "{got}");
        assert_eq!(got["data"]["title"], "Shipped steps");
        // An operation the run may not use (admin scope) fails the step.
        let run = run_bud(
        &app,
        &client,
        &key,
        json!({"name": "Sneaky", "kind": "tool", "config": {"operation": "list_clients", "arguments": {}}}),
        json!({}),
    )
    .await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["error"]["code"], "tool_error", "{run}");
    }
);

with_sink!(
    input_schema_is_checked_before_running,
    |app: TestApp, _sink: Sink| async move {
        let (client, key) = client_and_key(&app).await;
        let admin = app.admin_key.clone();
        let (s, b) = app
        .post("/v1/admin/buds", &admin, json!({"name": "Typed", "kind": "transform", "config": {"jq": ".input.n + 1"},
            "input_schema": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}))
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["id"].as_str().unwrap();
        app.post(
            &format!("/v1/admin/clients/{client}/buds/{id}/assign"),
            &admin,
            json!({}),
        )
        .await;
        let run_path = format!("/v1/clients/{client}/buds/{id}/run");
        let (s, e) = app
            .post(&run_path, &key, json!({"input": {"n": "two"}}))
            .await;
        assert_error(s, &e, 422, "invalid_input");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("/n"),
            "{e}"
        );
        let (s, e) = app.post(&run_path, &key, json!({"input": {}})).await;
        assert_error(s, &e, 422, "invalid_input");
        // Nothing ran.
        let (_, runs) = app.get(&format!("/v1/clients/{client}/runs"), &key).await;
        assert_eq!(runs["data"].as_array().unwrap().len(), 0, "{runs}");
        let (s, r) = app.post(&run_path, &key, json!({"input": {"n": 2}})).await;
        assert_eq!((s, &r["run"]["output"]), (StatusCode::OK, &json!(3)), "{r}");
        // A schema that is not one is refused when authored.
        let (s, e) = app
            .post(
                "/v1/admin/buds",
                &admin,
                json!({"name": "Bad", "kind": "transform", "input_schema": {"type": "nonsense"}}),
            )
            .await;
        assert_error(s, &e, 422, "invalid_input");
        assert_eq!(e["error"]["field"], "input_schema");
    }
);

#[allow(dead_code)]
fn unused(_: Value) {}
