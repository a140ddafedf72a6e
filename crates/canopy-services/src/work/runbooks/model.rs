//! A runbook template's variables and steps: their shapes and the checks they pass before
//! they are stored. The same [`Step`] list, frozen, is what a run follows.

use std::collections::{BTreeMap, HashSet};

use canopy_core::suggest::parse_enum;
use canopy_core::{Error, RunbookStepId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const STEP_TYPES: &[&str] = &["action", "check", "gate", "branch"];
pub const MAX_STEPS: usize = 200;
pub const MAX_VARIABLES: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Variable {
    /// Used as `{name}` in steps.
    pub name: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A step as a client writes it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct StepInput {
    /// Unique; routes name steps by it.
    pub key: String,
    /// May use `{variable}`.
    pub title: String,
    /// Markdown; may use `{variable}`.
    #[serde(default)]
    pub instructions: String,
    /// action (default), check, gate, branch.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// check/gate: step key on pass/approval (default: next).
    pub on_pass: Option<String>,
    /// check/gate: step key on fail/rejection.
    pub on_fail: Option<String>,
    /// branch: `{outcome: step_key}`.
    pub routes: Option<BTreeMap<String, String>>,
}

/// A stored step (in the template, and frozen in each run's definition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// `rbs_…`
    pub id: String,
    pub key: String,
    pub title: String,
    pub instructions: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub on_pass: Option<String>,
    pub on_fail: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, String>,
}

/// Steps and variable names share the engine's step-id alphabet (keys become engine step ids).
fn check_name(field: &str, what: &str, s: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        return Ok(());
    }
    Err(Error::validation(
        field,
        format!("{what} is 1 to 64 letters, digits, `_` or `-`."),
    ))
}

pub fn check_variables(vars: &[Variable]) -> Result<Vec<Variable>, Error> {
    if vars.len() > MAX_VARIABLES {
        return Err(Error::validation(
            "variables",
            format!("A runbook has at most {MAX_VARIABLES} variables."),
        ));
    }
    let mut seen = HashSet::new();
    for (i, v) in vars.iter().enumerate() {
        let field = format!("variables[{i}].name");
        check_name(&field, "A variable name", &v.name)?;
        if !seen.insert(v.name.as_str()) {
            return Err(Error::validation(
                &field,
                format!("Two variables are named `{}`.", v.name),
            ));
        }
        let long = |s: &Option<String>| s.as_ref().is_some_and(|t| t.chars().count() > 2000);
        if long(&v.default) || long(&v.description) {
            return Err(Error::validation(
                &format!("variables[{i}]"),
                "A variable's default and description are at most 2,000 characters.",
            ));
        }
    }
    Ok(vars.to_vec())
}

/// Checks a step list and gives each step its `rbs_…` id: a key the runbook already had
/// keeps its id (`previous`), a new key gets a new one.
pub fn check_steps(input: &[StepInput], previous: &[Step]) -> Result<Vec<Step>, Error> {
    if input.is_empty() || input.len() > MAX_STEPS {
        return Err(Error::validation(
            "steps",
            format!("A runbook has 1 to {MAX_STEPS} steps."),
        ));
    }
    let mut keys = HashSet::new();
    for (i, s) in input.iter().enumerate() {
        let field = format!("steps[{i}].key");
        check_name(&field, "A step key", &s.key)?;
        if !keys.insert(s.key.as_str()) {
            return Err(Error::validation(
                &field,
                format!("Two steps have the key `{}`.", s.key),
            ));
        }
    }
    let mut out = Vec::with_capacity(input.len());
    for (i, s) in input.iter().enumerate() {
        let f = |name: &str| format!("steps[{i}].{name}");
        let title = s.title.trim();
        if title.is_empty() || title.chars().count() > 300 {
            return Err(Error::validation(
                &f("title"),
                "title must be 1 to 300 characters.",
            ));
        }
        if s.instructions.chars().count() > 50_000 {
            return Err(Error::validation(
                &f("instructions"),
                "instructions must be at most 50,000 characters.",
            ));
        }
        let kind = parse_enum(
            s.kind.as_deref().unwrap_or("action"),
            &f("type"),
            STEP_TYPES,
        )?;
        let target = |name: &str, key: &str| -> Result<(), Error> {
            if keys.contains(key) {
                return Ok(());
            }
            Err(Error::validation(
                &f(name),
                format!("`{key}` is not a step key of this runbook."),
            ))
        };
        let pass_fail = matches!(kind, "check" | "gate");
        for (name, v) in [("on_pass", &s.on_pass), ("on_fail", &s.on_fail)] {
            let Some(k) = v else { continue };
            if !pass_fail {
                return Err(Error::validation(
                    &f(name),
                    format!(
                        "Only check and gate steps route by {name}; a {kind} step goes on by position (a branch uses routes)."
                    ),
                ));
            }
            target(name, k)?;
        }
        let routes = s.routes.clone().unwrap_or_default();
        if kind == "branch" {
            if routes.is_empty() {
                return Err(Error::validation(
                    &f("routes"),
                    "A branch step needs routes: {outcome: step_key}.",
                ));
            }
            for (outcome, key) in &routes {
                check_name(&f("routes"), "An outcome", outcome)?;
                target("routes", key)?;
            }
        } else if !routes.is_empty() {
            return Err(Error::validation(
                &f("routes"),
                "Only branch steps have routes.",
            ));
        }
        let id = previous
            .iter()
            .find(|p| p.key == s.key)
            .map_or_else(|| RunbookStepId::new().to_string(), |p| p.id.clone());
        out.push(Step {
            id,
            key: s.key.clone(),
            title: title.to_owned(),
            instructions: s.instructions.clone(),
            kind: kind.to_owned(),
            on_pass: s.on_pass.clone(),
            on_fail: s.on_fail.clone(),
            routes,
        });
    }
    Ok(out)
}

/// Replaces each `{name}` whose name is a key of `vars` by its value; other braces stay as
/// written (an unset optional variable stays visible as its placeholder).
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if vars.contains_key(&after[..close]) => {
                out.push_str(&vars[&after[..close]]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &str, kind: &str) -> StepInput {
        StepInput {
            key: key.into(),
            title: key.into(),
            instructions: String::new(),
            kind: Some(kind.into()),
            on_pass: None,
            on_fail: None,
            routes: None,
        }
    }

    #[test]
    fn substitutes_known_placeholders_only() {
        let vars = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
        assert_eq!(
            substitute("deploy to {env} ({other}) {env}{", &vars),
            "deploy to prod ({other}) prod{"
        );
        assert_eq!(substitute("{{env}}", &vars), "{prod}");
    }

    #[test]
    fn steps_are_checked() {
        let ok = check_steps(&[step("a", "action"), step("b", "check")], &[]).unwrap();
        assert!(ok[0].id.starts_with("rbs_"));
        // Keys keep their ids across an update.
        let again = check_steps(&[step("b", "check")], &ok).unwrap();
        assert_eq!(again[0].id, ok[1].id);
        assert!(check_steps(&[step("a", "action"), step("a", "action")], &[]).is_err());
        let mut bad = step("a", "action");
        bad.on_pass = Some("a".into());
        assert!(check_steps(&[bad], &[]).is_err());
        let mut dangling = step("c", "check");
        dangling.on_fail = Some("nowhere".into());
        assert!(check_steps(&[dangling], &[]).is_err());
        assert!(check_steps(&[step("br", "branch")], &[]).is_err());
        assert!(check_steps(&[step("x", "teleport")], &[]).is_err());
    }
}
