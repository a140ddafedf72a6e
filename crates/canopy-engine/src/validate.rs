//! Checks a graph before it runs. Each problem names the offending place in `field`
//! (`steps[2].depends_on`), so a surface can answer 422 pointing at the step.

use std::collections::{HashMap, VecDeque};

use canopy_core::Error;
use serde_json::Value;

use crate::expr;
use crate::model::Definition;

/// Most steps in one graph.
pub const MAX_STEPS: usize = 500;

pub fn validate(def: &Definition) -> Result<(), Error> {
    if def.steps.is_empty() {
        return Err(Error::validation("steps", "A run needs at least one step."));
    }
    if def.steps.len() > MAX_STEPS {
        return Err(Error::validation(
            "steps",
            format!("A graph has at most {MAX_STEPS} steps."),
        ));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in def.steps.iter().enumerate() {
        let ok = !s.id.is_empty()
            && s.id.len() <= 64
            && s.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(Error::validation(
                &format!("steps[{i}].id"),
                "A step id is 1 to 64 letters, digits, `_` or `-`.",
            ));
        }
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(Error::validation(
                &format!("steps[{i}].id"),
                format!("Two steps have the id `{}`.", s.id),
            ));
        }
        if s.kind.is_empty() {
            return Err(Error::validation(
                &format!("steps[{i}].kind"),
                "A step needs a kind.",
            ));
        }
    }
    for (i, s) in def.steps.iter().enumerate() {
        for d in &s.depends_on {
            if !index.contains_key(d.as_str()) {
                return Err(Error::validation(
                    &format!("steps[{i}].depends_on"),
                    format!(
                        "Step `{}` depends on `{d}`, which is not a step of this graph.",
                        s.id
                    ),
                ));
            }
            if d == &s.id {
                return Err(Error::validation(
                    &format!("steps[{i}].depends_on"),
                    format!("Step `{}` depends on itself.", s.id),
                ));
            }
        }
        check_step(i, s)?;
    }
    if let Some(i) = first_in_cycle(def, &index) {
        return Err(Error::validation(
            &format!("steps[{i}].depends_on"),
            format!("Step `{}` is part of a dependency cycle.", def.steps[i].id),
        ));
    }
    if let Some(out) = &def.output {
        expr::check_mapping(out).map_err(|m| Error::validation("output", m))?;
    }
    Ok(())
}

fn check_step(i: usize, s: &crate::model::StepDef) -> Result<(), Error> {
    let field = |f: &str| format!("steps[{i}].{f}");
    if let Some(w) = &s.when {
        expr::check(w).map_err(|m| Error::validation(&field("when"), m))?;
    }
    if let Some(f) = &s.for_each {
        expr::check(f).map_err(|m| Error::validation(&field("for_each"), m))?;
        if s.kind == "approval" {
            return Err(Error::validation(
                &field("for_each"),
                "An approval step cannot fan out; put it after the fan-out instead.",
            ));
        }
    }
    if let Some(m) = &s.input {
        expr::check_mapping(m).map_err(|m| Error::validation(&field("input"), m))?;
    }
    if let Some(r) = &s.retry
        && r.max_attempts == 0
    {
        return Err(Error::validation(
            &field("retry.max_attempts"),
            "max_attempts counts the first attempt too, so it is at least 1.",
        ));
    }
    if s.timeout_ms == Some(0) {
        return Err(Error::validation(
            &field("timeout_ms"),
            "timeout_ms must be positive.",
        ));
    }
    match s.kind.as_str() {
        "transform" => {
            if let Some(j) = s.config.get("jq") {
                let code = j.as_str().ok_or_else(|| {
                    Error::validation(&field("config.jq"), "jq must be a string.")
                })?;
                expr::check(code).map_err(|m| Error::validation(&field("config.jq"), m))?;
            }
        }
        "wait" => {
            crate::builtin::wait_duration(&s.config, 0)
                .map_err(|m| Error::validation(&field("config"), m))?;
        }
        "approval" => {
            crate::builtin::ApprovalConfig::parse(&s.config)
                .map_err(|(f, m)| Error::validation(&field(&format!("config.{f}")), m))?;
        }
        _ => {}
    }
    if !matches!(s.config, Value::Null | Value::Object(_)) {
        return Err(Error::validation(
            &field("config"),
            "config must be an object.",
        ));
    }
    Ok(())
}

/// Kahn's algorithm leaves the steps on a cycle and those behind one; pruning, in turn, the
/// left steps nothing left depends on keeps only the ones on a cycle.
fn first_in_cycle(def: &Definition, index: &HashMap<&str, usize>) -> Option<usize> {
    let n = def.steps.len();
    let mut indegree: Vec<usize> = def.steps.iter().map(|s| s.depends_on.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in def.steps.iter().enumerate() {
        for d in &s.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                dependents[j].push(i);
            }
        }
    }
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(j) = queue.pop_front() {
        for &i in &dependents[j] {
            indegree[i] -= 1;
            if indegree[i] == 0 {
                queue.push_back(i);
            }
        }
    }
    let mut left: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
    loop {
        let prune: Vec<usize> = (0..n)
            .filter(|&i| left[i] && !dependents[i].iter().any(|&k| left[k]))
            .collect();
        if prune.is_empty() {
            break;
        }
        for i in prune {
            left[i] = false;
        }
    }
    (0..n).find(|&i| left[i])
}
