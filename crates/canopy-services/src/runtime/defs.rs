//! Buds and branches as authored, and their translation into engine definitions.

use std::collections::HashMap;

use canopy_core::{BranchId, BudId, Code, Error};
use canopy_engine::{Definition, RetryPolicy, StepDef};
use canopy_store::runtime::DefRow;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The bud kinds of seed 000.
pub const BUD_KINDS: &[&str] = &[
    "llm",
    "agent",
    "http",
    "transform",
    "script",
    "tool",
    "approval",
    "wait",
];

/// The step id of a bud run (a bud runs as a one-step graph).
pub const BUD_STEP: &str = "bud";

/// `kind` column values.
pub const KIND_BUD: &str = "bud";
pub const KIND_BRANCH: &str = "branch";

/// A bud: one step definition.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BudSpec {
    /// Display name, 1–200 characters (may be omitted for an inline bud of a branch).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `llm`, `agent`, `http`, `transform`, `script`, `tool`, `approval` or `wait`.
    pub kind: String,
    /// Kind-specific settings (`{"jq": "…"}` for `transform`, `{"prompt", "timeout_ms",
    /// "on_timeout"}` for `approval`, `{"duration_ms"}` for `wait`).
    #[serde(default)]
    pub config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Longest one attempt may take, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
pub struct Retry {
    /// Attempts in all, the first included (1–20).
    pub max_attempts: u32,
    /// The wait before the second attempt; doubles after each.
    #[serde(default)]
    pub backoff_ms: u64,
}

/// A branch: a graph of buds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BranchSpec {
    /// Display name, 1–200 characters.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    pub steps: Vec<BranchStep>,
    /// The run's output: a mapping over the final context (`"=.steps.x.output"`); without
    /// one, the output of the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// One step of a branch: a bud by id (its current version when a run starts) or inline.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BranchStep {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bud_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bud: Option<BudSpec>,
    /// A mapping over the context (`"=.steps.fetch.output"`); the run input when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// jq over the context; false or null skips the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// jq yielding a list; the step runs once per element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
}

pub fn validate_name(name: &str, field: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(Error::validation(field, "A name is 1 to 200 characters."));
    }
    Ok(n.to_owned())
}

/// Checks a bud's own fields; `at` prefixes field names (`steps[2].bud.`).
pub fn check_bud(b: &BudSpec, at: &str) -> Result<(), Error> {
    if !BUD_KINDS.contains(&b.kind.as_str()) {
        return Err(Error::new(
            Code::InvalidType,
            format!(
                "The bud kind '{}' is not valid. Accepted values are: {}.",
                b.kind,
                BUD_KINDS.join(", ")
            ),
        )
        .with_field(format!("{at}kind")));
    }
    if !(b.config.is_object() || b.config.is_null()) {
        return Err(Error::validation(
            &format!("{at}config"),
            "config is a JSON object.",
        ));
    }
    if let Some(r) = b.retry
        && !(1..=20).contains(&r.max_attempts)
    {
        return Err(Error::validation(
            &format!("{at}retry.max_attempts"),
            "max_attempts is 1 to 20.",
        ));
    }
    for (name, schema) in [
        ("input_schema", &b.input_schema),
        ("output_schema", &b.output_schema),
    ] {
        if let Some(s) = schema {
            super::schema::valid_schema(s)
                .map_err(|m| Error::validation(&format!("{at}{name}"), format!("{name} is {m}")))?;
        }
    }
    check_config(&b.kind, &b.config, at)
}

/// Kind-specific checks that need no database: templates parse, scripts compile, the
/// settings a kind cannot run without are there.
fn check_config(kind: &str, c: &Value, at: &str) -> Result<(), Error> {
    let field = |f: &str| format!("{at}config.{f}");
    let text = |f: &str| -> Result<Option<&str>, Error> {
        match c.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::validation(&field(f), format!("{f} is text."))),
        }
    };
    let template = |f: &str| -> Result<(), Error> {
        if let Some(t) = text(f)? {
            canopy_runtime::template::check(t).map_err(|m| {
                Error::validation(&field(f), format!("{f} is not a valid template: {m}"))
            })?;
        }
        Ok(())
    };
    match kind {
        "llm" | "agent" => {
            template("prompt")?;
            template("system")?;
            if let Some(r) = text("response")?
                && r != "text"
                && r != "json"
            {
                return Err(Error::validation(
                    &field("response"),
                    "response is `text` or `json`.",
                ));
            }
            if let Some(s) = c.get("schema").filter(|s| !s.is_null()) {
                super::schema::valid_schema(s)
                    .map_err(|m| Error::validation(&field("schema"), format!("schema is {m}")))?;
            }
        }
        "http" => {
            if text("url")?.is_none() {
                return Err(Error::validation(&field("url"), "An http bud needs a url."));
            }
            template("url")?;
        }
        "script" => {
            let src = text("source")?
                .ok_or_else(|| Error::validation(&field("source"), "A script bud needs source."))?;
            canopy_runtime::script::check(src).map_err(|m| {
                Error::validation(
                    &field("source"),
                    format!("The script does not compile: {m}"),
                )
            })?;
        }
        "tool"
            if text("operation")?.is_none()
                && (text("server_url")?.is_none() || text("tool")?.is_none()) =>
        {
            return Err(Error::validation(
                &field("operation"),
                "A tool bud needs an operation, or a server_url and a tool.",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The engine step a bud becomes.
pub fn bud_step(id: &str, b: &BudSpec) -> StepDef {
    StepDef {
        id: id.to_owned(),
        kind: b.kind.clone(),
        config: if b.config.is_null() {
            Value::Object(Default::default())
        } else {
            b.config.clone()
        },
        retry: b.retry.map(|r| RetryPolicy {
            max_attempts: r.max_attempts,
            backoff_ms: r.backoff_ms,
        }),
        timeout_ms: b.timeout_ms,
        ..Default::default()
    }
}

/// The one-step graph of a bud run.
pub fn bud_definition(b: &BudSpec) -> Definition {
    Definition {
        steps: vec![bud_step(BUD_STEP, b)],
        output: None,
    }
}

/// The bud ids a branch names (database form), with the step index naming each.
pub fn referenced_buds(b: &BranchSpec) -> Result<Vec<(usize, String)>, Error> {
    let mut out = Vec::new();
    for (i, s) in b.steps.iter().enumerate() {
        match (&s.bud_id, &s.bud) {
            (Some(raw), None) => {
                let id = BudId::parse(raw).ok_or_else(|| {
                    Error::validation(
                        &format!("steps[{i}].bud_id"),
                        format!("Step `{}` names an unknown bud '{raw}'.", s.id),
                    )
                })?;
                out.push((i, id.db()));
            }
            (None, Some(_)) => {}
            _ => {
                return Err(Error::validation(
                    &format!("steps[{i}]"),
                    format!("Step `{}` needs exactly one of `bud_id` or `bud`.", s.id),
                ));
            }
        }
    }
    Ok(out)
}

/// The engine graph of a branch, with `bud_id` steps resolved through `buds` (database id →
/// that bud's current row). An id missing from `buds` is answered as a 422 naming the step.
pub fn branch_definition(
    b: &BranchSpec,
    buds: &HashMap<String, DefRow>,
) -> Result<Definition, Error> {
    let mut steps = Vec::with_capacity(b.steps.len());
    for (i, s) in b.steps.iter().enumerate() {
        let bud: BudSpec = match (&s.bud_id, &s.bud) {
            (Some(raw), _) => {
                let row = BudId::parse(raw)
                    .and_then(|id| buds.get(&id.db()))
                    .ok_or_else(|| {
                        Error::validation(
                            &format!("steps[{i}].bud_id"),
                            format!("Step `{}` names an unknown bud '{raw}'.", s.id),
                        )
                    })?;
                serde_json::from_str(&row.spec)?
            }
            (None, Some(inline)) => {
                check_bud(inline, &format!("steps[{i}].bud."))?;
                inline.clone()
            }
            (None, None) => {
                return Err(Error::validation(
                    &format!("steps[{i}]"),
                    format!("Step `{}` needs exactly one of `bud_id` or `bud`.", s.id),
                ));
            }
        };
        let mut step = bud_step(&s.id, &bud);
        step.input = s.input.clone();
        step.depends_on = s.depends_on.clone();
        step.when = s.when.clone();
        step.for_each = s.for_each.clone();
        step.continue_on_error = s.continue_on_error;
        steps.push(step);
    }
    let def = Definition {
        steps,
        output: b.output.clone(),
    };
    canopy_engine::validate::validate(&def)?;
    Ok(def)
}

/// The prefixed id of a definition row's database id.
pub fn show_id(kind: &str, db: &str) -> String {
    if kind == KIND_BUD {
        BudId::show(db)
    } else {
        BranchId::show(db)
    }
}
