//! The client MCP layer (seed 000 §8): a client's branches and buds as tools over REST
//! (`/v1/clients/{c}/mcp/tools`, `…/invoke`) and over MCP (`/v1/clients/{c}/mcp`); naming,
//! schemas, results, runs, input checks, scopes and client visibility.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both;
use crate::harness::{TestApp, assert_error, split};

/// A client with a branch (two transform steps) and two buds assigned: `Greet` with an input
/// and an output schema, `Broken` whose jq always fails. Another client, and keys.
struct Setup {
    client: String,
    branch_id: String,
    greet_id: String,
    /// `mcp.run` on the client.
    runner: String,
    /// `mcp` only on the client.
    lister: String,
    /// `mcp.run` on the other client.
    stranger: String,
}

async fn created(app: &TestApp, path: &str, body: Value) -> String {
    let (s, v) = app.post(path, &app.admin_key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn assign(app: &TestApp, client: &str, what: &str, id: &str) {
    let path = format!("/v1/admin/clients/{client}/{what}/{id}/assign");
    let (s, v) = app.post(&path, &app.admin_key, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn setup(app: &TestApp) -> Setup {
    let branch_id = created(
        app,
        "/v1/admin/branches",
        json!({
            "name": "Double it",
            "description": "Doubles n and wraps it.",
            "steps": [
                {"id": "double", "bud": {"kind": "transform", "config": {"jq": ".input.n * 2"}}},
                {"id": "wrap", "bud": {"kind": "transform", "config": {"jq": "{result: .steps.double.output}"}}, "depends_on": ["double"]}
            ]
        }),
    )
    .await;
    let greet_id = created(
        app,
        "/v1/admin/buds",
        json!({
            "name": "Greet",
            "kind": "transform",
            "config": {"jq": "{greeting: (\"hello \" + .input.name)}"},
            "input_schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            "output_schema": {"type": "object", "properties": {"greeting": {"type": "string"}}}
        }),
    )
    .await;
    let broken_id = created(
        app,
        "/v1/admin/buds",
        json!({"name": "Broken", "kind": "transform", "config": {"jq": "error(\"boom\")"}}),
    )
    .await;
    let client = app.client("Acme").await;
    let other = app.client("Other").await;
    assign(app, &client, "branches", &branch_id).await;
    assign(app, &client, "buds", &greet_id).await;
    assign(app, &client, "buds", &broken_id).await;
    let (_, runner) = app.key(&["mcp.run"], json!({"project_id": client})).await;
    let (_, lister) = app.key(&["mcp"], json!({"project_id": client})).await;
    let (_, stranger) = app.key(&["mcp.run"], json!({"project_id": other})).await;
    Setup {
        client,
        branch_id,
        greet_id,
        runner,
        lister,
        stranger,
    }
}

fn tool<'a>(tools: &'a Value, name: &str) -> &'a Value {
    tools
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no tool {name} in {tools}"))
}

both!(rest_lists_and_invokes, |app: TestApp| async move {
    let s = setup(&app).await;
    let c = format!("/v1/clients/{}/mcp/tools", s.client);

    let (st, list) = app.get(&c, &s.lister).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let tools = &list["data"];
    assert_eq!(tools.as_array().map(Vec::len), Some(3), "{list}");
    let branch = tool(tools, "double_it");
    assert_eq!(
        (branch["id"].as_str(), branch["kind"].as_str()),
        (Some(s.branch_id.as_str()), Some("branch")),
        "{branch}"
    );
    assert_eq!(branch["title"], "Double it");
    assert_eq!(branch["description"], "Doubles n and wraps it.");
    assert_eq!(branch["inputSchema"], json!({"type": "object"}));
    assert!(branch.get("outputSchema").is_none(), "{branch}");
    let greet = tool(tools, "greet");
    assert_eq!(greet["id"], s.greet_id.as_str());
    assert_eq!(greet["inputSchema"]["required"], json!(["name"]), "{greet}");
    assert_eq!(
        greet["outputSchema"]["properties"]["greeting"]["type"],
        "string"
    );
    assert_eq!(tool(tools, "broken")["kind"], "bud");

    // By name: the output as structuredContent and as JSON text, with the run.
    let (st, r) = app
        .post(
            &format!("{c}/greet/invoke"),
            &s.runner,
            json!({"arguments": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"], json!({"greeting": "hello Ada"}));
    let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, json!({"greeting": "hello Ada"}));
    assert_eq!(r["content"][0]["type"], "text");
    assert_eq!(r["run_status"], "succeeded");
    let run_id = r["run_id"].as_str().unwrap().to_owned();
    assert!(run_id.starts_with("run_"), "{r}");
    let (st, run) = app
        .get(
            &format!("/v1/clients/{}/runs/{run_id}", s.client),
            &app.admin_key,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{run}");
    assert_eq!(
        (run["status"].as_str(), run["bud_id"].as_str()),
        (Some("succeeded"), Some(s.greet_id.as_str())),
        "{run}"
    );
    assert_eq!(run["input"], json!({"name": "Ada"}));

    // By id: the branch.
    let (st, r) = app
        .post(
            &format!("{c}/{}/invoke", s.branch_id),
            &s.runner,
            json!({"arguments": {"n": 4}, "timeout_ms": 20000}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["structuredContent"], json!({"result": 8}), "{r}");
    let (_, run) = app
        .get(
            &format!(
                "/v1/clients/{}/runs/{}",
                s.client,
                r["run_id"].as_str().unwrap()
            ),
            &app.admin_key,
        )
        .await;
    assert_eq!(run["branch_id"], s.branch_id.as_str(), "{run}");

    // Arguments against the input schema: 422, and no run.
    let (st, b) = app
        .post(
            &format!("{c}/greet/invoke"),
            &s.runner,
            json!({"arguments": {"name": 5}}),
        )
        .await;
    assert_error(st, &b, 422, "invalid_input");
    let (st, b) = app
        .post(&format!("{c}/greet/invoke"), &s.runner, json!({}))
        .await;
    assert_error(st, &b, 422, "invalid_input");
    let (_, runs) = app
        .get(&format!("/v1/clients/{}/runs", s.client), &app.admin_key)
        .await;
    assert_eq!(runs["data"].as_array().map(Vec::len), Some(2), "{runs}");

    // A failing bud: a result with isError, not an HTTP error.
    let (st, r) = app
        .post(&format!("{c}/broken/invoke"), &s.runner, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (r["isError"].as_bool(), r["run_status"].as_str()),
        (Some(true), Some("failed")),
        "{r}"
    );
    assert!(r.get("structuredContent").is_none(), "{r}");
    let err: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(err["error"]["code"].is_string(), "{r}");

    // Unknown tools.
    let (st, b) = app
        .post(&format!("{c}/nope/invoke"), &s.runner, json!({}))
        .await;
    assert_error(st, &b, 404, "bud_not_found");
    let (st, b) = app
        .post(
            &format!("{c}/brn_0190f0e0a0b07c3d8e9f0a1b2c3d4e5f/invoke"),
            &s.runner,
            json!({}),
        )
        .await;
    assert_error(st, &b, 404, "branch_not_found");
});

both!(rest_scopes_and_visibility, |app: TestApp| async move {
    let s = setup(&app).await;
    let c = format!("/v1/clients/{}/mcp/tools", s.client);
    // `mcp` lists but cannot invoke.
    let (st, b) = app
        .post(
            &format!("{c}/greet/invoke"),
            &s.lister,
            json!({"arguments": {"name": "x"}}),
        )
        .await;
    assert_error(st, &b, 403, "forbidden");
    // `read` alone cannot list.
    let (_, reader) = app.key(&["read"], json!({"project_id": s.client})).await;
    let (st, b) = app.get(&c, &reader).await;
    assert_error(st, &b, 403, "forbidden");
    // Another client's key sees no such client.
    let (st, b) = app.get(&c, &s.stranger).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    let (st, b) = app
        .post(
            &format!("{c}/greet/invoke"),
            &s.stranger,
            json!({"arguments": {"name": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    // Nothing ran.
    let (_, runs) = app
        .get(&format!("/v1/clients/{}/runs", s.client), &app.admin_key)
        .await;
    assert_eq!(runs["data"].as_array().map(Vec::len), Some(0), "{runs}");
});

/// One JSON-RPC POST to a client's MCP endpoint.
async fn rpc(
    app: &TestApp,
    client: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    let mut r = app
        .raw()
        .post(app.url(&format!("/v1/clients/{client}/mcp")))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    let res = r.send().await.unwrap();
    let h = res.headers().clone();
    let (s, v) = split(res).await;
    (s, h, v)
}

fn req(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

both!(
    mcp_endpoint_handshake_list_call,
    |app: TestApp| async move {
        let s = setup(&app).await;
        let c = s.client.as_str();

        let (st, h, init) = rpc(
        &app,
        c,
        &s.runner,
        &[],
        req(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        ),
    )
    .await;
        assert_eq!(st, StatusCode::OK, "{init}");
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        let session = h["mcp-session-id"].to_str().unwrap().to_owned();
        let hs = [
            ("mcp-session-id", session.as_str()),
            ("mcp-protocol-version", "2025-06-18"),
        ];
        let (st, _, _) = rpc(
            &app,
            c,
            &s.runner,
            &hs,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let (_, _, pong) = rpc(&app, c, &s.runner, &hs, req(2, "ping", json!({}))).await;
        assert_eq!(pong["result"], json!({}), "{pong}");

        // tools/list: the client's tools, not the operations of /mcp.
        let (st, _, list) = rpc(&app, c, &s.runner, &hs, req(3, "tools/list", json!({}))).await;
        assert_eq!(st, StatusCode::OK, "{list}");
        let tools = &list["result"]["tools"];
        let mut names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["broken", "double_it", "greet"], "{list}");
        let greet = tool(tools, "greet");
        assert_eq!(greet["inputSchema"]["required"], json!(["name"]), "{greet}");
        assert_eq!(greet["outputSchema"]["type"], "object", "{greet}");
        assert_eq!(greet["_meta"]["canopy/id"], s.greet_id.as_str());
        assert!(greet.get("id").is_none(), "{greet}");

        // tools/call: a success, with the run.
        let (_, _, r) = rpc(
            &app,
            c,
            &s.runner,
            &hs,
            req(
                4,
                "tools/call",
                json!({"name": "greet", "arguments": {"name": "Bo"}}),
            ),
        )
        .await;
        let res = &r["result"];
        assert_eq!(res["isError"], false, "{r}");
        assert_eq!(res["structuredContent"], json!({"greeting": "hello Bo"}));
        let run_id = res["_meta"]["canopy/run_id"].as_str().unwrap();
        let (st, run) = app
            .get(&format!("/v1/clients/{c}/runs/{run_id}"), &app.admin_key)
            .await;
        assert_eq!(
            (st, run["status"].as_str()),
            (StatusCode::OK, Some("succeeded"))
        );

        // A failing bud: isError, the run's error as text.
        let (_, _, r) = rpc(
            &app,
            c,
            &s.runner,
            &hs,
            req(5, "tools/call", json!({"name": "broken", "arguments": {}})),
        )
        .await;
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert_eq!(r["result"]["_meta"]["canopy/run_status"], "failed", "{r}");

        // Bad arguments: an isError result carrying the envelope.
        let (_, _, r) = rpc(
            &app,
            c,
            &s.runner,
            &hs,
            req(6, "tools/call", json!({"name": "greet", "arguments": {}})),
        )
        .await;
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert_eq!(
            r["result"]["structuredContent"]["error"]["code"], "invalid_input",
            "{r}"
        );

        // Protocol failures: JSON-RPC errors.
        let (_, _, r) = rpc(&app, c, &s.runner, &hs, req(7, "resources/list", json!({}))).await;
        assert_eq!(r["error"]["code"], -32601, "{r}");
        let (_, _, r) = rpc(
            &app,
            c,
            &s.runner,
            &hs,
            req(
                8,
                "tools/call",
                json!({"name": "store_context", "arguments": {}}),
            ),
        )
        .await;
        assert_eq!(r["error"]["code"], -32602, "{r}");

        // The stateless revision, by tool id.
        let (st, _, r) = rpc(
            &app,
            c,
            &s.runner,
            &[("mcp-protocol-version", "2026-07-28")],
            req(
                9,
                "tools/call",
                json!({"name": s.branch_id, "arguments": {"n": 5}}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(
            r["result"]["structuredContent"],
            json!({"result": 10}),
            "{r}"
        );
        assert_eq!(r["result"]["resultType"], "complete", "{r}");
    }
);

both!(
    mcp_endpoint_scopes_and_visibility,
    |app: TestApp| async move {
        let s = setup(&app).await;
        let c = s.client.as_str();
        let modern = [("mcp-protocol-version", "2026-07-28")];
        // `mcp` lists; its tools/call is an isError result naming the missing scope.
        let (st, _, list) = rpc(&app, c, &s.lister, &modern, req(1, "tools/list", json!({}))).await;
        assert_eq!(st, StatusCode::OK, "{list}");
        assert_eq!(list["result"]["tools"].as_array().map(Vec::len), Some(3));
        let (_, _, r) = rpc(
            &app,
            c,
            &s.lister,
            &modern,
            req(
                2,
                "tools/call",
                json!({"name": "greet", "arguments": {"name": "x"}}),
            ),
        )
        .await;
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert_eq!(
            r["result"]["structuredContent"]["error"]["code"], "forbidden",
            "{r}"
        );
        // Another client's key: 404 before any JSON-RPC.
        let (st, _, b) = rpc(
            &app,
            c,
            &s.stranger,
            &modern,
            req(3, "tools/list", json!({})),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
        // No mcp scope: 403; no key: 401 with a Bearer challenge.
        let (_, reader) = app.key(&["read"], json!({"project_id": c})).await;
        let (st, _, b) = rpc(&app, c, &reader, &modern, req(4, "tools/list", json!({}))).await;
        assert_error(st, &b, 403, "forbidden");
        let res = app
            .raw()
            .post(app.url(&format!("/v1/clients/{c}/mcp")))
            .header("content-type", "application/json")
            .body(req(5, "ping", json!({})).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        // Nothing ran.
        let (_, runs) = app
            .get(&format!("/v1/clients/{c}/runs"), &app.admin_key)
            .await;
        assert_eq!(runs["data"].as_array().map(Vec::len), Some(0), "{runs}");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_the_client_mcp_layer() {
    let app = TestApp::sqlite().await;
    let (_, spec) = split(
        app.req(reqwest::Method::GET, "/openapi.json", None, None)
            .await,
    )
    .await;
    let paths = &spec["paths"];
    assert_eq!(
        paths["/v1/clients/{clientId}/mcp/tools"]["get"]["operationId"],
        "list_client_tools"
    );
    let invoke = &paths["/v1/clients/{clientId}/mcp/tools/{toolId}/invoke"]["post"];
    assert_eq!(invoke["operationId"], "invoke_client_tool");
    assert_eq!(invoke["x-canopy-scope"], "mcp.run");
    let endpoint = &paths["/v1/clients/{clientId}/mcp"]["post"];
    assert_eq!(endpoint["operationId"], "client_mcp", "{endpoint}");
    assert_eq!(endpoint["parameters"][0]["name"], "clientId", "{endpoint}");
}

both!(
    names_collide_and_runs_outlive_the_timeout,
    |app: TestApp| async move {
        let s = setup(&app).await;
        // A second `Greet` (newer): the older keeps `greet`, this one gets its id's tail.
        let twin = created(
            &app,
            "/v1/admin/buds",
            json!({"name": "greet!", "kind": "transform", "config": {"jq": "\"twin\""}}),
        )
        .await;
        assign(&app, &s.client, "buds", &twin).await;
        // A branch held at an approval: still going when the invoke's timeout passes.
        let gated = created(
        &app,
        "/v1/admin/branches",
        json!({"name": "Held", "steps": [{"id": "gate", "bud": {"kind": "approval", "config": {"prompt": "Go?"}}}]}),
    )
    .await;
        assign(&app, &s.client, "branches", &gated).await;

        let c = format!("/v1/clients/{}/mcp/tools", s.client);
        let (_, list) = app.get(&c, &s.runner).await;
        let tools = &list["data"];
        assert_eq!(tool(tools, "greet")["id"], s.greet_id.as_str(), "{list}");
        let hex: String = twin.chars().filter(char::is_ascii_hexdigit).collect();
        let twin_name = format!("greet_{}", &hex[hex.len() - 8..]);
        assert_eq!(tool(tools, &twin_name)["id"], twin.as_str(), "{list}");

        // A string output is the text itself, with no structuredContent.
        let (st, r) = app
            .post(&format!("{c}/{twin_name}/invoke"), &s.runner, json!({}))
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["content"][0]["text"], "twin", "{r}");
        assert!(r.get("structuredContent").is_none(), "{r}");

        let (st, r) = app
            .post(
                &format!("{c}/held/invoke"),
                &s.runner,
                json!({"timeout_ms": 300}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        let run_id = r["run_id"].as_str().unwrap();
        assert_eq!(
            (r["isError"].as_bool(), r["run_status"].as_str()),
            (Some(false), Some("waiting")),
            "{r}"
        );
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(run_id) && text.contains("still"), "{r}");
        let (_, run) = app
            .get(
                &format!("/v1/clients/{}/runs/{run_id}", s.client),
                &app.admin_key,
            )
            .await;
        assert_eq!(run["status"], "waiting", "{run}");
    }
);
