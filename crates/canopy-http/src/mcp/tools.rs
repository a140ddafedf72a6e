//! The tool registry: every operation a surface mounts, type-erased to `Value → Value`.
//!
//! [`crate::api::Api`] records a [`Tool`] beside each route it mounts, so an operation added
//! later is a tool with no MCP-specific code. [`Registry::build`] runs once at startup: it
//! drops duplicates (an operation mounted at two paths is one tool), renders each tool's
//! `tools/list` entry once (trimmed schemas, see [`super::schema`]) and remembers, per service,
//! which read tool to suggest before writing.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use canopy_core::{Error, Principal, Scopes};
use canopy_services::Services;
use canopy_services::op::{Meta, OpInfo, Operation, dispatch};
use serde_json::{Map, Value, json};

use super::schema;

/// What a type-erased tool call returns: the output as compact JSON text (rendered once; it
/// goes into the result twice, as text and as `structuredContent`).
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<String, Error>> + Send + 'a>>;
/// Deserializes the arguments into the operation's input and runs it through `dispatch`.
pub type CallFn = for<'a> fn(&'a Services, &'a Principal, Meta<'a>, Value) -> ToolFuture<'a>;

/// One operation as a tool.
#[derive(Clone)]
pub struct Tool {
    pub info: OpInfo,
    /// The service it belongs to (the mounting `Api`'s tag): what a read of it counts for.
    pub tag: &'static str,
    pub call: CallFn,
}

impl Tool {
    pub fn of<O: Operation>(info: OpInfo, tag: &'static str) -> Tool {
        Tool {
            info,
            tag,
            call: call_op::<O>,
        }
    }
}

fn call_op<'a, O: Operation>(
    svc: &'a Services,
    who: &'a Principal,
    meta: Meta<'a>,
    args: Value,
) -> ToolFuture<'a> {
    Box::pin(async move {
        // The same 422 naming the field as the REST door gives.
        let input: O::Input =
            serde_path_to_error::deserialize(args).map_err(|e| crate::api::input_error(e).0)?;
        let output = dispatch::<O>(svc, who, meta, input).await?;
        serde_json::to_string(&output).map_err(Error::from)
    })
}

/// A tool with its rendered listing.
pub struct Entry {
    pub tool: Tool,
    /// The compact JSON of its `tools/list` entry.
    pub listing: String,
    /// Whether its result is an object (returned as `structuredContent` too).
    pub structured: bool,
}

/// Tools always listed whatever the selection (seed 003).
pub const PROTECTED: &[&str] = &[
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

/// Every tool, in mounting order, and how to find one.
pub struct Registry {
    entries: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
    /// Service → the read tool to call before writing to it.
    read_first: HashMap<&'static str, &'static str>,
}

impl Registry {
    /// Builds the registry; `price` is the configured credit price of an operation.
    pub fn build(tools: Vec<Tool>, price: impl Fn(&str, u32) -> u32) -> Registry {
        let mut entries: Vec<Entry> = Vec::with_capacity(tools.len());
        let mut by_name = HashMap::new();
        let mut read_first: HashMap<&'static str, &'static str> = HashMap::new();
        for tool in tools {
            let name = tool.info.name;
            if by_name.contains_key(name) {
                continue;
            }
            if tool.info.hints.read_only {
                // A service's first read route is its overview (`get_context`,
                // `list_documents`, `get_styleguide`): what to read before writing to it.
                read_first.entry(tool.tag).or_insert(name);
            }
            let (listing, structured) = render(&tool.info, price(name, tool.info.credits));
            by_name.insert(name, entries.len());
            entries.push(Entry {
                tool,
                listing,
                structured,
            });
        }
        Registry {
            entries,
            by_name,
            read_first,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|i| &self.entries[*i])
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The read tool to suggest before writing to `service`.
    pub fn read_first(&self, service: &str) -> Option<&'static str> {
        self.read_first.get(service).copied()
    }

    /// The entries `tools/list` shows: those the caller's `scopes` may use, narrowed to
    /// `selection` (plus the protected tools) when it is non-empty; in registry order.
    pub fn selected<'a>(&'a self, selection: &[String], scopes: Scopes) -> Vec<&'a Entry> {
        self.entries
            .iter()
            .filter(|e| e.tool.info.scope.is_none_or(|s| scopes.allows(s)))
            .filter(|e| {
                let n = e.tool.info.name;
                selection.is_empty() || PROTECTED.contains(&n) || selection.iter().any(|s| s == n)
            })
            .collect()
    }
}

/// The description: the summary, plus the price of a write that costs credits.
fn description_of(info: &OpInfo, price: u32) -> String {
    let summary = schema::plain(info.summary);
    if info.hints.read_only || price == 0 {
        return summary;
    }
    let unit = if price == 1 { "credit" } else { "credits" };
    format!("{summary} Costs {price} {unit}.")
}

/// The `tools/list` entry of a tool, as compact JSON, and whether its result is an object.
fn render(info: &OpInfo, price: u32) -> (String, bool) {
    let mut t = Map::new();
    t.insert("name".into(), json!(info.name));
    // No `title`: it would only restate the name in words, and every reader pays for it.
    t.insert("description".into(), json!(description_of(info, price)));
    t.insert("inputSchema".into(), schema::input(&info.input_schema));
    // No `outputSchema`: see `schema::is_object` for why.
    let structured = schema::is_object(&info.output_schema);
    t.insert("annotations".into(), annotations(info.hints));
    (Value::Object(t).to_string(), structured)
}

/// The hints, without those that say what MCP assumes anyway (a reader of the list pays for
/// every key): MCP's defaults are readOnly false, destructive true, idempotent false,
/// openWorld true; destructive and idempotent mean nothing for a read-only tool. No
/// `openWorldHint`: the tools stay inside Canopy, but what they return was written by other
/// agents and people, so the cautious default is the honest one, and it costs nothing.
fn annotations(h: canopy_services::op::Hints) -> Value {
    let mut a = Map::new();
    if h.read_only {
        a.insert("readOnlyHint".into(), json!(true));
    } else {
        if !h.destructive {
            a.insert("destructiveHint".into(), json!(false));
        }
        if h.idempotent {
            a.insert("idempotentHint".into(), json!(true));
        }
    }
    Value::Object(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_leave_out_defaults() {
        use canopy_services::op::Hints;
        assert_eq!(annotations(Hints::READ), json!({"readOnlyHint": true}));
        assert_eq!(annotations(Hints::WRITE), json!({"destructiveHint": false}));
        assert_eq!(annotations(Hints::DESTROY), json!({"idempotentHint": true}));
    }

    #[test]
    fn each_service_suggests_its_overview_read() {
        let r = Registry::build(crate::protected().tools, |_, declared| declared);
        for (service, read) in [
            ("context", "get_context"),
            ("documents", "list_documents"),
            ("styleguide", "get_styleguide"),
            ("changelog", "list_changelog_entries"),
            ("feedback", "list_feedback"),
            ("agents", "list_agents"),
        ] {
            assert_eq!(r.read_first(service), Some(read), "{service}");
        }
        assert!(r.get("store_context").is_some());
        assert_eq!(
            r.entries()
                .iter()
                .filter(|e| e.tool.info.name == "get_context")
                .count(),
            1
        );
    }
}
