//! MCP at `/mcp` (issue 4): revisions, sessions across nodes, tool selection, scopes, the
//! write-without-read warning, credits and audit as over REST, resources and prompts.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both;
use crate::harness::{Backend, TestApp, assert_error, split};

/// The tools every selection lists (seed 003), of those that exist today.
const PROTECTED: &[&str] = &[
    "bootstrap",
    "store_context",
    "get_context",
    "update_context",
    "delete_context",
    "bulk_store_context",
    "bulk_update_context",
    "bulk_delete_context",
    "log_event",
    "get_recent_events",
    "list_tags",
    "list_scopes",
];

/// One POST to `/mcp` with `key` and extra headers.
async fn post(
    app: &TestApp,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut r = app
        .raw()
        .post(app.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    let res = r.send().await.unwrap();
    let h = res.headers().clone();
    let (s, v) = split(res).await;
    (s, h, v)
}

async fn rpc(
    app: &TestApp,
    key: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, HeaderMap, Value) {
    post(app, Some(key), headers, &body.to_string()).await
}

fn req(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A `tools/call` at 2026-07-28 (no session), answering the result.
async fn call(app: &TestApp, key: &str, extra: &[(&str, &str)], name: &str, args: Value) -> Value {
    let mut headers = vec![("mcp-protocol-version", "2026-07-28")];
    headers.extend_from_slice(extra);
    let (s, _, v) = rpc(
        app,
        key,
        &headers,
        req(1, "tools/call", json!({"name": name, "arguments": args})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["error"].is_null(), "{v}");
    v["result"].clone()
}

async fn tool_names(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> BTreeSet<String> {
    let mut headers = vec![("mcp-protocol-version", "2026-07-28")];
    headers.extend_from_slice(extra);
    // Every page: tools/list pages at 100 tools.
    let mut names = BTreeSet::new();
    let mut params = json!({});
    loop {
        let (s, _, v) = rpc(app, key, &headers, req(1, "tools/list", params)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        names.extend(
            v["result"]["tools"]
                .as_array()
                .unwrap_or_else(|| panic!("no tools: {v}"))
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        match v["result"]["nextCursor"].as_str() {
            Some(c) => params = json!({"cursor": c}),
            None => return names,
        }
    }
}

fn protected_and(extra: &[&str]) -> BTreeSet<String> {
    PROTECTED
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
}

both!(handshake_revisions_round_trip, |app: TestApp| async move {
    let k = app.admin_key.clone();
    for rev in ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] {
        let init = req(
            1,
            "initialize",
            json!({"protocolVersion": rev, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        );
        let (s, h, v) = rpc(&app, &k, &[], init).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["result"]["protocolVersion"], rev, "{v}");
        assert_eq!(v["result"]["serverInfo"]["name"], "canopy");
        assert!(v["result"]["capabilities"]["tools"].is_object(), "{v}");
        let sid = h["mcp-session-id"].to_str().unwrap().to_owned();
        assert_eq!(sid.len(), 64, "a 256-bit session id: {sid}");
        let sh = [
            ("mcp-session-id", sid.as_str()),
            ("mcp-protocol-version", rev),
        ];
        let (s, _, body) = post(
            &app,
            Some(&k),
            &sh,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(body, Value::String(String::new()), "202 has no body");

        let (s, _, list) = rpc(&app, &k, &sh, req(2, "tools/list", json!({}))).await;
        assert_eq!(s, StatusCode::OK);
        let tools = list["result"]["tools"].as_array().unwrap();
        let store = tools
            .iter()
            .find(|t| t["name"] == "store_context")
            .expect("store_context");
        assert!(
            store.get("title").is_none(),
            "no title restating the name: {store}"
        );
        assert_eq!(store["inputSchema"]["type"], "object");
        assert_eq!(
            store["inputSchema"]["required"],
            json!(["type", "title", "body"])
        );
        assert!(
            store["annotations"].get("openWorldHint").is_none(),
            "{store}"
        );
        assert_eq!(store["annotations"]["destructiveHint"], false);
        let get = tools.iter().find(|t| t["name"] == "get_context").unwrap();
        assert_eq!(get["annotations"]["readOnlyHint"], true);
        assert!(
            list["result"]["resultType"].is_null(),
            "handshake results carry no resultType"
        );

        let args = json!({"type": "rule", "title": format!("rule at {rev}"), "body": "b"});
        let (_, _, stored) = rpc(
            &app,
            &k,
            &sh,
            req(
                3,
                "tools/call",
                json!({"name": "store_context", "arguments": args}),
            ),
        )
        .await;
        assert_eq!(stored["result"]["isError"], false, "{stored}");
        let id = stored["result"]["structuredContent"]["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let text: Value =
            serde_json::from_str(stored["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text["data"]["id"], id, "the text content is the same JSON");
        let (_, _, read) = rpc(
            &app,
            &k,
            &sh,
            req(
                4,
                "tools/call",
                json!({"name": "get_context_entry", "arguments": {"id": id}}),
            ),
        )
        .await;
        assert_eq!(
            read["result"]["structuredContent"]["data"]["title"],
            format!("rule at {rev}")
        );

        // Ending the session: later requests naming it are 404, on any revision.
        let del = app
            .raw()
            .delete(app.url("/mcp"))
            .bearer_auth(&k)
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        let (s, _, v) = rpc(&app, &k, &sh, req(5, "ping", json!({}))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    }
    // An unknown revision gets the newest handshake revision.
    let (_, _, v) = rpc(&app, &k, &[], req(1, "initialize", json!({"protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))).await;
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
    // An unguessed session id is 404; so is one of another key.
    let (s, _, _) = rpc(
        &app,
        &k,
        &[("mcp-session-id", "nope")],
        req(1, "ping", json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, h, _) = rpc(&app, &k, &[], req(1, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))).await;
    let sid = h["mcp-session-id"].to_str().unwrap().to_owned();
    let (_, other) = app.key(&["read", "write", "mcp"], json!({})).await;
    let (s, _, _) = rpc(
        &app,
        &other,
        &[("mcp-session-id", &sid)],
        req(1, "ping", json!({})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another key's session is not found"
    );
    let (s, _, v) = rpc(
        &app,
        &k,
        &[("mcp-session-id", &sid)],
        req(1, "ping", json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["result"], json!({}));
});

both!(stateless_current_revision, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let modern = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "server/discover"),
    ];
    let (s, h, v) = rpc(
        &app,
        &k,
        &modern,
        req(
            1,
            "server/discover",
            json!({"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        h.get("mcp-session-id").is_none(),
        "no sessions at 2026-07-28"
    );
    let r = &v["result"];
    assert_eq!(
        r["supportedVersions"],
        json!([
            "2026-07-28",
            "2025-11-25",
            "2025-06-18",
            "2025-03-26",
            "2024-11-05"
        ])
    );
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["serverInfo"]["name"], "canopy");
    assert!(r["capabilities"]["resources"].is_object());

    let (_, _, list) = rpc(
        &app,
        &k,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ],
        req(2, "tools/list", json!({})),
    )
    .await;
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(list["result"]["cacheScope"], "private");
    assert_eq!(list["result"]["ttlMs"], 0);
    let first = list["result"]["tools"].as_array().unwrap().len();
    assert!(first <= 100, "a page holds at most 100 tools");
    let n = tool_names(&app, &k, &[]).await.len();
    let (_, info) = app.get("/mcp/info", &k).await;
    assert_eq!(
        info["tool_count"], n,
        "no selection: every tool, over all pages"
    );
    assert_eq!(
        list["result"]["nextCursor"].is_null(),
        n <= 100,
        "a next page exactly when more than 100 tools"
    );

    let stored = call(
        &app,
        &k,
        &[("mcp-method", "tools/call"), ("mcp-name", "store_context")],
        "store_context",
        json!({"type": "fact", "title": "stateless", "body": "b"}),
    )
    .await;
    assert_eq!(stored["isError"], false, "{stored}");
    assert_eq!(stored["resultType"], "complete");

    // Routing headers must agree with the body.
    let (s, _, v) = rpc(
        &app,
        &k,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
        ],
        req(3, "tools/list", json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert_eq!(v["id"], 3);
    let (s, _, v) = rpc(
        &app,
        &k,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-name", "get_context"),
        ],
        req(4, "tools/call", json!({"name": "list_tags"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(-32600)),
        "{v}"
    );
    // The header and params._meta must name the same revision.
    let (s, _, v) = rpc(
        &app,
        &k,
        &[("mcp-protocol-version", "2025-06-18")],
        req(
            5,
            "ping",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
        ),
    )
    .await;
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert_eq!(
        s,
        StatusCode::OK,
        "a 2025-06-18 request answers errors with 200"
    );
    // An unsupported revision is refused with the ones we speak.
    let (s, _, v) = rpc(
        &app,
        &k,
        &[("mcp-protocol-version", "2030-01-01")],
        req(6, "ping", json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], -32022);
    assert_eq!(v["error"]["data"]["supported"][0], "2026-07-28");
    // Unknown methods are 404 at this revision.
    let (s, _, v) = rpc(
        &app,
        &k,
        &[("mcp-protocol-version", "2026-07-28")],
        req(7, "no/such", json!({})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!(-32601))
    );
});

both!(protocol_errors, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let (s, _, v) = post(&app, Some(&k), &[], "{not json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(v["id"], Value::Null);
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        json!({"jsonrpc": "1.0", "id": 9, "method": "ping"}),
    )
    .await;
    assert_eq!(
        (v["error"]["code"].clone(), v["id"].clone()),
        (json!(-32600), json!(9)),
        "{v}"
    );
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]}),
    )
    .await;
    assert_eq!(v["error"]["code"], -32600, "{v}");
    let (_, _, v) = rpc(&app, &k, &[], req(2, "tools/frobnicate", json!({}))).await;
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(3, "tools/call", json!({"name": "no_such_tool"})),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_tool")
    );
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(
            4,
            "tools/call",
            json!({"name": "list_tags", "arguments": [1]}),
        ),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(5, "tools/list", json!({"cursor": "garbage"})),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // Batches exist at 2025-03-26 (and 2024-11-05) only.
    let batch = json!([req(1, "ping", json!({})), {"jsonrpc": "2.0", "method": "notifications/x"}, req(2, "no/such", json!({}))]);
    let (s, _, v) = rpc(
        &app,
        &k,
        &[("mcp-protocol-version", "2025-03-26")],
        batch.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(2),
        "two requests, two answers: {v}"
    );
    assert_eq!(v[0]["result"], json!({}));
    assert_eq!(v[1]["error"]["code"], -32601);
    let (_, _, v) = rpc(&app, &k, &[("mcp-protocol-version", "2025-06-18")], batch).await;
    assert_eq!(v["error"]["code"], -32600, "{v}");
    // Notifications alone: 202, no body.
    let (s, _, v) = post(
        &app,
        Some(&k),
        &[],
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}"#,
    )
    .await;
    assert_eq!((s, v), (StatusCode::ACCEPTED, Value::String(String::new())));
    // No SSE stream to open.
    let res = app
        .raw()
        .get(app.url("/mcp"))
        .bearer_auth(&k)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST, DELETE");
    // No key: 401 in the envelope, with the challenge header.
    let (s, h, v) = post(&app, None, &[], &req(1, "ping", json!({})).to_string()).await;
    assert_error(s, &v, 401, "unauthorized");
    assert_eq!(h["www-authenticate"], "Bearer");
    let (s, h, v) = post(
        &app,
        Some("not-a-key"),
        &[],
        &req(1, "ping", json!({})).to_string(),
    )
    .await;
    assert_error(s, &v, 401, "unauthorized");
    assert!(h.contains_key("www-authenticate"));
    // Info needs no key.
    let res = app.raw().get(app.url("/mcp/info")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, info) = split(res).await;
    assert_eq!(info["name"], "canopy");
    assert_eq!(info["transports"], json!(["streamable-http"]));
    assert_eq!(info["protocol_versions"][0], "2026-07-28");
    assert!(info["tool_count"].as_u64().unwrap() >= 45, "{info}");
    // Another site's page may not drive /mcp (DNS rebinding).
    let (s, _, _) = post(
        &app,
        Some(&k),
        &[("origin", "http://evil.example.com")],
        &req(1, "ping", json!({})).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
});

both!(selection_by_key_and_agent, |app: TestApp| async move {
    let admin = app.admin_key.clone();
    let all = tool_names(&app, &admin, &[]).await;
    assert!(
        all.len() >= 45
            && all.contains("create_changelog_entry")
            && all.contains("get_feedback_item")
    );
    let (_, key) = app
        .key(
            &["read", "write", "mcp"],
            json!({"mcp_tools": ["list_documents"]}),
        )
        .await;
    let listed = tool_names(&app, &key, &[]).await;
    assert_eq!(
        listed,
        protected_and(&["list_documents"]),
        "the key's mcp_tools plus the protected tools"
    );
    // Selection is not a boundary: an unlisted tool is still callable.
    let r = call(
        &app,
        &key,
        &[],
        "create_changelog_entry",
        json!({"title": "Shipped", "category": "added"}),
    )
    .await;
    assert_eq!(r["isError"], false, "{r}");
    // The agent's tools_allowed overrides the key's.
    let (s, a) = app
        .post(
            "/v1/agents",
            &admin,
            json!({"name": "triager", "tools_allowed": ["get_feedback_item"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let listed = tool_names(&app, &key, &[("x-minolith-agent", "triager")]).await;
    assert_eq!(listed, protected_and(&["get_feedback_item"]));
    let listed = tool_names(&app, &key, &[("x-canopy-agent", "triager")]).await;
    assert_eq!(listed, protected_and(&["get_feedback_item"]));
    // An agent with no tools_allowed leaves the key's selection.
    app.post("/v1/agents", &admin, json!({"name": "plain"}))
        .await;
    assert_eq!(
        tool_names(&app, &key, &[("x-minolith-agent", "plain")]).await,
        protected_and(&["list_documents"])
    );
    // An agent the project does not define is refused, as on REST.
    let (_, _, v) = rpc(
        &app,
        &key,
        &[("x-minolith-agent", "ghost")],
        req(1, "tools/list", json!({})),
    )
    .await;
    assert_eq!(v["error"]["code"], -32000, "{v}");
    assert_eq!(v["error"]["data"]["error"]["code"], "unknown_agent");
    let r = call(
        &app,
        &key,
        &[("x-minolith-agent", "ghost")],
        "list_tags",
        json!({}),
    )
    .await;
    assert_eq!(r["isError"], true);
    assert_eq!(r["structuredContent"]["error"]["code"], "unknown_agent");
});

both!(scopes_hold_on_tools_call, |app: TestApp| async move {
    let (_, reader) = app.key(&["read", "mcp"], json!({})).await;
    let r = call(
        &app,
        &reader,
        &[],
        "store_context",
        json!({"type": "fact", "title": "t", "body": "b"}),
    )
    .await;
    assert_eq!(r["isError"], true, "{r}");
    let env = &r["structuredContent"]["error"];
    assert_eq!(env["code"], "forbidden");
    assert!(
        env["docs"]
            .as_str()
            .unwrap()
            .ends_with("/docs/errors#forbidden")
    );
    let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text["error"], env, "the text is the same envelope");
    let (_, list) = app.get("/v1/context/entries", &app.admin_key).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was written"
    );
    let r = call(&app, &reader, &[], "get_context", json!({})).await;
    assert_eq!(r["isError"], false, "a read key reads: {r}");
    // tools/list shows what the key may use: no writes for a read key, admin tools for admins.
    let listed = tool_names(&app, &reader, &[]).await;
    assert!(
        listed.contains("get_context") && listed.contains("list_documents"),
        "{listed:?}"
    );
    assert!(
        !listed.contains("store_context") && !listed.contains("create_access_key"),
        "{listed:?}"
    );
    let admin = tool_names(&app, &app.admin_key, &[]).await;
    assert!(admin.contains("store_context") && admin.contains("create_access_key"));
    // Without the mcp scope there is no /mcp at all.
    let (_, no_mcp) = app.key(&["read", "write"], json!({})).await;
    let (s, _, v) = rpc(&app, &no_mcp, &[], req(1, "tools/list", json!({}))).await;
    assert_error(s, &v, 403, "forbidden");
    let (_, runner) = app.key(&["mcp.run", "read"], json!({})).await;
    let (s, _, _) = rpc(&app, &runner, &[], req(1, "ping", json!({}))).await;
    assert_eq!(s, StatusCode::OK, "mcp.run grants mcp");
});

fn warning(result: &Value) -> Option<String> {
    result["_meta"]["canopy/warning"]
        .as_str()
        .map(str::to_owned)
}

both!(write_without_read_warns, |app: TestApp| async move {
    let (_, key) = app.key(&["read", "write", "mcp"], json!({})).await;
    let entry = json!({"type": "fact", "title": "first", "body": "b"});
    let r = call(&app, &key, &[], "store_context", entry.clone()).await;
    assert_eq!(r["isError"], false, "the write still succeeds: {r}");
    let w = warning(&r).expect("a warning");
    assert!(w.contains("context") && w.contains("get_context"), "{w}");
    assert_eq!(r["content"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["content"][1]["text"], w);
    // Documents are another service: their write suggests their list.
    let doc = json!({"title": "d", "filename": "d.txt", "content": base64::engine::general_purpose::STANDARD.encode("hello")});
    let r = call(&app, &key, &[], "upload_document", doc).await;
    assert_eq!(r["isError"], false, "{r}");
    assert!(warning(&r).unwrap().contains("list_documents"));
    // Read, then write: no warning.
    call(&app, &key, &[], "get_context", json!({"limit": 5})).await;
    let r = call(
        &app,
        &key,
        &[],
        "store_context",
        json!({"type": "fact", "title": "second", "body": "b"}),
    )
    .await;
    assert_eq!(warning(&r), None, "{r}");
    assert_eq!(r["content"].as_array().unwrap().len(), 1);
    assert!(r["_meta"].get("canopy/warning").is_none());
    // Reads count per key and agent: the same key acting as an agent has read nothing yet.
    app.post("/v1/agents", &app.admin_key, json!({"name": "writer"}))
        .await;
    let agent = [("x-minolith-agent", "writer")];
    let r = call(
        &app,
        &key,
        &agent,
        "store_context",
        json!({"type": "fact", "title": "third", "body": "b"}),
    )
    .await;
    assert!(warning(&r).is_some(), "{r}");
    // A failed write carries no warning, only its error.
    let r = call(
        &app,
        &key,
        &agent,
        "store_context",
        json!({"type": "nope", "title": "x", "body": "b"}),
    )
    .await;
    assert_eq!(r["isError"], true);
    assert_eq!(warning(&r), None);
});

/// A server where storing context costs 2 credits.
async fn priced(backend: Backend) -> Option<TestApp> {
    TestApp::start(backend, |s| {
        s.rate_limit_per_minute = 100_000;
        s.prices.insert("store_context".into(), 2);
    })
    .await
}

async fn credits_and_audit(app: TestApp) {
    let k = app.admin_key.clone();
    let (s, rest) = app
        .post(
            "/v1/context/entries",
            &k,
            json!({"type": "fact", "title": "rest", "body": "b"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(u["data"]["project"]["used"], 2);
    let mcp = call(
        &app,
        &k,
        &[],
        "store_context",
        json!({"type": "fact", "title": "mcp", "body": "b"}),
    )
    .await;
    assert_eq!(mcp["isError"], false);
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(
        u["data"]["project"]["used"], 4,
        "MCP is charged as REST: {u}"
    );
    assert_eq!(
        u["data"]["by_action"],
        json!([{"action": "store_context", "count": 2, "credits": 4}])
    );
    // The price is in the tool's description.
    let (_, _, list) = rpc(&app, &k, &[], req(1, "tools/list", json!({}))).await;
    let store = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "store_context")
        .unwrap()
        .clone();
    assert!(
        store["description"]
            .as_str()
            .unwrap()
            .ends_with("Costs 2 credits."),
        "{store}"
    );
    // Both writes are audited alike, with their targets.
    let (_, log) = app
        .get("/v1/audit?action=store_context&limit=100", &k)
        .await;
    let rows = log["data"].as_array().unwrap();
    let row = |id: &Value| {
        rows.iter()
            .find(|r| &r["target"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no audit row for {id}: {log}"))
    };
    let (a, b) = (
        row(&rest["data"]["id"]),
        row(&mcp["structuredContent"]["data"]["id"]),
    );
    for r in [&a, &b] {
        assert_eq!(r["outcome"], "success");
        assert_eq!(r["action"], "store_context");
    }
    assert_eq!(a["key_id"], b["key_id"]);
    // Refused writes too: one over REST, one over MCP.
    app.post(
        "/v1/context/entries",
        &k,
        json!({"type": "nope", "title": "x", "body": "b"}),
    )
    .await;
    call(
        &app,
        &k,
        &[],
        "store_context",
        json!({"type": "nope", "title": "x", "body": "b"}),
    )
    .await;
    let (_, log) = app
        .get("/v1/audit?action=store_context&limit=100", &k)
        .await;
    let rejected = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "rejected")
        .count();
    assert_eq!(rejected, 2, "{log}");
    let (_, u) = app.get("/v1/usage", &k).await;
    assert_eq!(
        u["data"]["project"]["used"], 4,
        "refused writes cost nothing"
    );
    // The cap holds over MCP as a tool error.
    let res = app
        .req(
            reqwest::Method::PUT,
            "/v1/usage/cap",
            Some(&k),
            Some(json!({"cap": 5})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let r = call(
        &app,
        &k,
        &[],
        "store_context",
        json!({"type": "fact", "title": "over", "body": "b"}),
    )
    .await;
    assert_eq!(r["isError"], true);
    assert_eq!(
        r["structuredContent"]["error"]["code"],
        "spending_cap_exceeded"
    );
    assert_eq!(r["structuredContent"]["error"]["cap"], 5);
}

mod credits_and_audit_as_over_rest {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        credits_and_audit(priced(Backend::Sqlite).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match priced(Backend::Postgres).await {
            Some(app) => credits_and_audit(app).await,
            None => eprintln!("CANOPY_TEST_PG is not set: PostgreSQL variant not run"),
        }
    }
}

both!(
    validation_errors_name_the_field,
    |app: TestApp| async move {
        let k = app.admin_key.clone();
        let r = call(
            &app,
            &k,
            &[],
            "store_context",
            json!({"type": "fact", "body": "no title"}),
        )
        .await;
        assert_eq!(r["isError"], true);
        let e = &r["structuredContent"]["error"];
        assert_eq!(
            (e["code"].as_str(), e["field"].as_str()),
            (Some("validation_error"), Some("title")),
            "{r}"
        );
        let r = call(
            &app,
            &k,
            &[],
            "store_context",
            json!({"type": "rulez", "title": "t", "body": "b"}),
        )
        .await;
        let e = &r["structuredContent"]["error"];
        assert_eq!(
            (e["code"].as_str(), e["field"].as_str()),
            (Some("invalid_type"), Some("type")),
            "{r}"
        );
        assert_eq!(e["suggestion"], "Did you mean 'rule'?");
        let r = call(&app, &k, &[], "get_context", json!({"limit": "many"})).await;
        assert_eq!(r["structuredContent"]["error"]["field"], "limit", "{r}");
    }
);

both!(resources_and_prompts, |app: TestApp| async move {
    let k = app.admin_key.clone();
    let (_, e) = app
        .post(
            "/v1/context/entries",
            &k,
            json!({"type": "rule", "title": "Use UTC", "body": "Always UTC.", "tags": ["time"]}),
        )
        .await;
    let id = e["data"]["id"].as_str().unwrap().to_owned();
    let (_, _, v) = rpc(&app, &k, &[], req(1, "resources/list", json!({}))).await;
    let res = v["result"]["resources"].as_array().unwrap();
    let uri = format!("canopy://context/{id}");
    let it = res
        .iter()
        .find(|r| r["uri"] == uri.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(it["name"], "Use UTC");
    assert_eq!(it["mimeType"], "text/markdown");
    let (_, _, v) = rpc(&app, &k, &[], req(2, "resources/read", json!({"uri": uri}))).await;
    let c = &v["result"]["contents"][0];
    assert_eq!(c["mimeType"], "text/markdown");
    let text = c["text"].as_str().unwrap();
    assert!(
        text.starts_with("# Use UTC\n")
            && text.contains("Always UTC.")
            && text.contains("tags: time"),
        "{text}"
    );
    // Documents: text types as text.
    let content = base64::engine::general_purpose::STANDARD.encode("plain notes\n");
    let d = call(
        &app,
        &k,
        &[],
        "upload_document",
        json!({"title": "Notes", "filename": "notes.txt", "content": content}),
    )
    .await;
    let doc_id = d["structuredContent"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The next page (after the context entries) lists documents.
    let (_, _, first) = rpc(&app, &k, &[], req(3, "resources/list", json!({}))).await;
    let cursor = first["result"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, _, second) = rpc(
        &app,
        &k,
        &[],
        req(4, "resources/list", json!({"cursor": cursor})),
    )
    .await;
    let doc_uri = format!("canopy://documents/{doc_id}");
    assert!(
        second["result"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["uri"] == doc_uri.as_str() && r["name"] == "Notes"),
        "{second}"
    );
    assert!(second["result"]["nextCursor"].is_null());
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(5, "resources/read", json!({"uri": doc_uri})),
    )
    .await;
    assert_eq!(v["result"]["contents"][0]["text"], "plain notes\n", "{v}");
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(
            6,
            "resources/read",
            json!({"uri": "canopy://context/ctx_00000000000000000000000000000000"}),
        ),
    )
    .await;
    assert_eq!(v["error"]["code"], -32002, "{v}");
    let (_, _, v) = rpc(&app, &k, &[], req(7, "resources/templates/list", json!({}))).await;
    let templates: Vec<&str> = v["result"]["resourceTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uriTemplate"].as_str().unwrap())
        .collect();
    assert_eq!(
        templates,
        ["canopy://context/{id}", "canopy://documents/{id}"]
    );
    // Another project's entry is not readable through a project key.
    let other = app.client("Other").await;
    let (_, scoped) = app
        .key(&["read", "mcp"], json!({"project_id": other}))
        .await;
    let (_, _, v) = rpc(
        &app,
        &scoped,
        &[],
        req(
            8,
            "resources/read",
            json!({"uri": format!("canopy://context/{id}")}),
        ),
    )
    .await;
    assert_eq!(v["error"]["code"], -32002, "project isolation holds: {v}");

    // Agents as prompts.
    app.post("/v1/agents", &k, json!({"name": "reviewer", "role": "Reviews code", "prompt": "You review diffs carefully."})).await;
    let (_, _, v) = rpc(&app, &k, &[], req(9, "prompts/list", json!({}))).await;
    let p = v["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "reviewer")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(p["description"], "Reviews code");
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(10, "prompts/get", json!({"name": "reviewer"})),
    )
    .await;
    assert_eq!(v["result"]["messages"][0]["role"], "user");
    assert_eq!(
        v["result"]["messages"][0]["content"]["text"],
        "You review diffs carefully."
    );
    let (_, _, v) = rpc(
        &app,
        &k,
        &[],
        req(11, "prompts/get", json!({"name": "nobody"})),
    )
    .await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
});

/// A second Canopy node on the same database as `app` (PostgreSQL).
async fn second_node(app: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let prepared = canopy::prepare(&app.settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        let _ = canopy::serve(listener, prepared, stop, Duration::from_secs(2)).await;
    });
    (base, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_started_on_one_node_continues_on_another() {
    let Some(app) = TestApp::postgres().await else {
        eprintln!("CANOPY_TEST_PG is not set: the two-node session test needs PostgreSQL; not run");
        return;
    };
    let k = app.admin_key.clone();
    let (node_b, stop) = second_node(&app).await;
    let (_, h, v) = rpc(&app, &k, &[], req(1, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))).await;
    assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
    let sid = h["mcp-session-id"].to_str().unwrap().to_owned();
    let on_b = |body: Value| {
        app.raw()
            .post(format!("{node_b}/mcp"))
            .bearer_auth(&k)
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body)
            .send()
    };
    // A read on node A counts on node B.
    let (_, _, r) = rpc(
        &app,
        &k,
        &[("mcp-session-id", &sid)],
        req(
            2,
            "tools/call",
            json!({"name": "get_context", "arguments": {}}),
        ),
    )
    .await;
    assert_eq!(r["result"]["isError"], false);
    let (s, b) = split(on_b(req(3, "tools/call", json!({"name": "store_context", "arguments": {"type": "fact", "title": "from b", "body": "b"}}))).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "node B knows node A's session: {b}");
    assert_eq!(b["result"]["isError"], false, "{b}");
    assert!(
        b["result"]["_meta"].get("canopy/warning").is_none(),
        "the read on node A counts: {b}"
    );
    // Ended on node B, gone on node A.
    let del = app
        .raw()
        .delete(format!("{node_b}/mcp"))
        .bearer_auth(&k)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let (s, _, _) = rpc(
        &app,
        &k,
        &[("mcp-session-id", &sid)],
        req(4, "ping", json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_fixtures_serve_without_a_key_on_loopback_only() {
    let app = TestApp::start(Backend::Sqlite, |s| s.mcp_conformance_fixtures = true)
        .await
        .unwrap();
    let (s, _, v) = post(
        &app,
        None,
        &[],
        &req(1, "tools/call", json!({"name": "test_simple_text"})).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );
    let (_, _, v) = post(
        &app,
        None,
        &[],
        &req(2, "tools/list", json!({})).to_string(),
    )
    .await;
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"test_simple_text") && !names.contains(&"store_context"),
        "{names:?}"
    );
    // The normal tools are not there, and normal routes still need a key.
    let (s, _, _) = post(
        &app,
        None,
        &[],
        &req(3, "tools/call", json!({"name": "store_context"})).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let res = app
        .raw()
        .get(app.url("/v1/context/entries"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let mut settings = app.settings.clone();
    settings.bind = "0.0.0.0:8080".parse().unwrap();
    let err = canopy::prepare(&settings).await.err().expect("refused");
    assert_eq!(err.field.as_deref(), Some("bind"));
    settings.bind = "[::1]:8080".parse().unwrap();
    assert!(
        canopy::prepare(&settings).await.is_ok(),
        "IPv6 loopback is loopback"
    );
}

#[tokio::test]
async fn openapi_documents_the_mcp_routes() {
    let doc = canopy_http::openapi_document();
    assert!(
        doc["paths"]["/mcp"]["post"].is_object(),
        "{}",
        doc["paths"]["/mcp"]
    );
    assert!(doc["paths"]["/mcp"]["delete"].is_object());
    assert!(doc["paths"]["/mcp/info"]["get"].is_object());
}
