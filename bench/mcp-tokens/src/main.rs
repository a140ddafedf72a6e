//! `cargo run -p canopy-bench-mcp-tokens --release`: the token footprint of Canopy's MCP tool
//! list with the `o200k_base` tokenizer, for the tools seed 003 names (its reported figure is
//! 12,307 tokens for 61 tools) and for every tool. The list is built by the same function
//! `tools/list` serves from, with no selection; the count is of the compact JSON of the
//! `tools/list` result.

use canopy_http::mcp::tools_list_result;

/// The tools seed 003's table lists (its text says 61; the table names 63) (some services have not landed yet; those are skipped).
const SEED_003: &[&str] = &[
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
    "create_changelog_entry",
    "update_changelog_entry",
    "list_changelog_entries",
    "create_changelog_version",
    "publish_changelog_entry",
    "publish_changelog_version",
    "submit_feedback",
    "list_feedback",
    "get_feedback_item",
    "update_feedback_status",
    "add_feedback_note",
    "create_runbook",
    "list_runbooks",
    "start_run",
    "get_current_step",
    "advance_step",
    "skip_step",
    "fail_step",
    "pause_run",
    "list_runs",
    "bootstrap",
    "get_agent",
    "list_agents",
    "create_agent",
    "update_agent",
    "sync_agents",
    "browse_registry",
    "install_registry_agent",
    "get_styleguide",
    "get_tokens",
    "get_component",
    "define_tokens",
    "define_component",
    "define_pattern",
    "define_voice",
    "search_styleguide",
    "upload_asset",
    "get_asset",
    "list_assets",
    "get_my_tasks",
    "get_task",
    "create_task",
    "update_task_status",
    "add_task_note",
    "assign_task",
    "get_team_feed",
    "get_workflow",
    "upload_document",
    "list_documents",
    "get_document",
    "update_document",
    "delete_document",
];

fn main() {
    let config = canopy_services::Config::for_backend(canopy_store::Backend::Sqlite);
    let registry = canopy_http::mcp_tool_registry(&config);
    let bpe = match tiktoken_rs::o200k_base() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot load o200k_base: {e}");
            std::process::exit(1);
        }
    };
    let count = |v: &serde_json::Value| bpe.encode_with_special_tokens(&v.to_string()).len();
    // `--count FILE…`: the tokens of each file (for looking at parts of the listing).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--count") {
        for f in &args[2..] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            println!("{:>6}  {f}", bpe.encode_with_special_tokens(&text).len());
        }
        return;
    }

    let present: Vec<&str> = SEED_003
        .iter()
        .copied()
        .filter(|n| registry.get(n).is_some())
        .collect();
    let missing: Vec<&str> = SEED_003
        .iter()
        .copied()
        .filter(|n| registry.get(n).is_none())
        .collect();
    let seed = tools_list_result(&registry, Some(&present));
    let all = tools_list_result(&registry, None);

    if std::env::args().any(|a| a == "--per-tool") {
        println!("total  input output annot  name");
        for e in registry.entries() {
            let v: serde_json::Value = serde_json::from_str(&e.listing).unwrap_or_default();
            println!(
                "{:>5} {:>6} {:>6} {:>6}  {}",
                count(&v),
                count(&v["inputSchema"]),
                count(&v["outputSchema"]),
                count(&v["annotations"]),
                e.tool.info.name
            );
        }
    }
    if std::env::args().any(|a| a == "--dump") {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    println!("tokenizer: o200k_base (tiktoken-rs)");
    println!(
        "seed 003 tools present: {} of {} (not yet in Canopy: {})",
        present.len(),
        SEED_003.len(),
        missing.join(", ")
    );
    println!(
        "tools/list tokens, seed 003 tools present: {} (seed 003 reports 12,307 for its 61; target <= 6,000)",
        count(&seed)
    );
    println!(
        "tools/list tokens, all {} Canopy tools: {}",
        registry.len(),
        count(&all)
    );
}
