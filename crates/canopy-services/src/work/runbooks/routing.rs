//! Where a runbook run goes from its current step: pure functions over the frozen steps,
//! so the rules are tested without a database.
//!
//! - advance: check → `on_pass` (outcome `pass`, the default) or `on_fail` (outcome
//!   `fail`); branch → `routes[outcome]` (required; an unknown one is refused with the
//!   list); action → next by position (outcome `pass` or `fail` is only recorded); a gate
//!   cannot be advanced before its decision (`gate_pending`).
//! - skip: next by position (gates are decided, not skipped).
//! - fail: `on_fail` if the step has one, else the run fails.
//! - gate decision: approved → `on_pass`, rejected → `on_fail` or the run fails.
//!
//! Without a route the run goes to the next step by position; after the last step it is
//! completed.

use std::borrow::Borrow;

use canopy_core::{Code, Error};

use super::model::Step;

/// What is done to the current step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Advance { outcome: Option<String> },
    Skip,
    Fail,
    Gate { approved: bool },
}

/// The state the current step ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Completed,
    Skipped,
    Failed,
}

/// Where the run goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The step at this position becomes active.
    Step(usize),
    /// There is no step after the last one: the run is completed.
    Complete,
    /// A failure nothing routes: the run fails.
    FailRun,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub ended: Ended,
    /// The recorded outcome (`pass`, `fail`, a branch route, `approved`, `rejected`).
    pub outcome: Option<String>,
    pub next: Next,
}

fn position<S: Borrow<Step>>(steps: &[S], key: &str) -> Result<usize, Error> {
    steps
        .iter()
        .position(|s| s.borrow().key == key)
        .ok_or_else(|| Error::internal(format!("the run routes to `{key}`, which it lacks")))
}

fn by_position<S>(steps: &[S], current: usize) -> Next {
    if current + 1 < steps.len() {
        Next::Step(current + 1)
    } else {
        Next::Complete
    }
}

fn to<S: Borrow<Step>>(steps: &[S], current: usize, route: Option<&String>) -> Result<Next, Error> {
    match route {
        Some(k) => Ok(Next::Step(position(steps, k)?)),
        None => Ok(by_position(steps, current)),
    }
}

/// Decides the move `action` makes from the step at `current` (`steps`: the steps, or
/// references to them).
pub fn route<S: Borrow<Step>>(steps: &[S], current: usize, action: &Action) -> Result<Move, Error> {
    let step: &Step = steps
        .get(current)
        .ok_or_else(|| Error::internal("the current step is out of the run's steps"))?
        .borrow();
    let kind = step.kind.as_str();
    match action {
        Action::Advance { .. } if kind == "gate" => Err(Error::new(
            Code::GatePending,
            format!(
                "Step `{}` is a gate: decide it (approved or rejected) instead of advancing.",
                step.key
            ),
        )),
        Action::Advance { outcome } if kind == "branch" => {
            let routes: Vec<&String> = step.routes.keys().collect();
            let chosen = outcome.as_ref().and_then(|o| step.routes.get(o));
            let Some(target) = chosen else {
                let shown = routes.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>();
                let given = outcome
                    .as_deref()
                    .map_or("no outcome".to_owned(), |o| format!("`{o}`"));
                return Err(Error::validation(
                    "outcome",
                    format!(
                        "Step `{}` branches on its outcome; {given} is not one of {}.",
                        step.key,
                        shown.join(", ")
                    ),
                )
                .with_extra("routes", serde_json::json!(routes)));
            };
            Ok(Move {
                ended: Ended::Completed,
                outcome: outcome.clone(),
                next: Next::Step(position(steps, target)?),
            })
        }
        Action::Advance { outcome } => {
            let outcome = outcome.as_deref().unwrap_or("pass");
            let route = match outcome {
                "pass" => step.on_pass.as_ref(),
                "fail" => step.on_fail.as_ref(),
                other => {
                    return Err(Error::validation(
                        "outcome",
                        format!("A {kind} step's outcome is `pass` or `fail`, not `{other}`."),
                    )
                    .with_extra("routes", serde_json::json!(["pass", "fail"])));
                }
            };
            Ok(Move {
                ended: Ended::Completed,
                outcome: Some(outcome.to_owned()),
                next: to(steps, current, route)?,
            })
        }
        Action::Skip if kind == "gate" => Err(Error::new(
            Code::GatePending,
            format!(
                "Step `{}` is a gate: it is decided (approved or rejected), not skipped.",
                step.key
            ),
        )),
        Action::Skip => Ok(Move {
            ended: Ended::Skipped,
            outcome: None,
            next: by_position(steps, current),
        }),
        Action::Fail => Ok(Move {
            ended: Ended::Failed,
            outcome: Some("fail".into()),
            next: match &step.on_fail {
                Some(k) => Next::Step(position(steps, k)?),
                None => Next::FailRun,
            },
        }),
        Action::Gate { .. } if kind != "gate" => Err(Error::conflict(format!(
            "Step `{}` is a {kind} step, not a gate; there is nothing to decide.",
            step.key
        ))),
        Action::Gate { approved: true } => Ok(Move {
            ended: Ended::Completed,
            outcome: Some("approved".into()),
            next: to(steps, current, step.on_pass.as_ref())?,
        }),
        Action::Gate { approved: false } => Ok(Move {
            ended: Ended::Failed,
            outcome: Some("rejected".into()),
            next: match &step.on_fail {
                Some(k) => Next::Step(position(steps, k)?),
                None => Next::FailRun,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn step(key: &str, kind: &str) -> Step {
        Step {
            id: format!("rbs_{key}"),
            key: key.into(),
            title: key.into(),
            instructions: String::new(),
            kind: kind.into(),
            on_pass: None,
            on_fail: None,
            routes: BTreeMap::new(),
        }
    }

    /// prepare (action) → verify (check: fail → fix) → approve (gate: reject → rollback)
    /// → pick (branch: fast → done, slow → fix) → fix → rollback → done
    fn book() -> Vec<Step> {
        let mut verify = step("verify", "check");
        verify.on_fail = Some("fix".into());
        let mut approve = step("approve", "gate");
        approve.on_fail = Some("rollback".into());
        let mut pick = step("pick", "branch");
        pick.routes = BTreeMap::from([
            ("fast".into(), "done".into()),
            ("slow".into(), "fix".into()),
        ]);
        vec![
            step("prepare", "action"),
            verify,
            approve,
            pick,
            step("fix", "action"),
            step("rollback", "action"),
            step("done", "action"),
        ]
    }

    fn advance(o: Option<&str>) -> Action {
        Action::Advance {
            outcome: o.map(str::to_owned),
        }
    }

    #[test]
    fn actions_and_checks() {
        let b = book();
        assert_eq!(route(&b, 0, &advance(None)).unwrap().next, Next::Step(1));
        let pass = route(&b, 1, &advance(Some("pass"))).unwrap();
        assert_eq!(
            (pass.next, pass.outcome.as_deref()),
            (Next::Step(2), Some("pass"))
        );
        assert_eq!(
            route(&b, 1, &advance(Some("fail"))).unwrap().next,
            Next::Step(4)
        );
        assert_eq!(route(&b, 6, &advance(None)).unwrap().next, Next::Complete);
        let bad = route(&b, 0, &advance(Some("maybe"))).unwrap_err();
        assert_eq!(bad.code, Code::ValidationError);
    }

    #[test]
    fn check_without_on_fail_goes_on_by_position() {
        let b = vec![step("c", "check"), step("d", "action")];
        let m = route(&b, 0, &advance(Some("fail"))).unwrap();
        assert_eq!((m.ended, m.next), (Ended::Completed, Next::Step(1)));
    }

    #[test]
    fn branches_need_a_known_route() {
        let b = book();
        assert_eq!(
            route(&b, 3, &advance(Some("fast"))).unwrap().next,
            Next::Step(6)
        );
        assert_eq!(
            route(&b, 3, &advance(Some("slow"))).unwrap().next,
            Next::Step(4)
        );
        let e = route(&b, 3, &advance(Some("sideways"))).unwrap_err();
        assert_eq!(e.code, Code::ValidationError);
        assert!(e.message.contains("`fast`") && e.message.contains("`slow`"));
        assert_eq!(
            route(&b, 3, &advance(None)).unwrap_err().code,
            Code::ValidationError
        );
    }

    #[test]
    fn gates_wait_for_a_decision() {
        let b = book();
        assert_eq!(
            route(&b, 2, &advance(None)).unwrap_err().code,
            Code::GatePending
        );
        assert_eq!(
            route(&b, 2, &Action::Skip).unwrap_err().code,
            Code::GatePending
        );
        let yes = route(&b, 2, &Action::Gate { approved: true }).unwrap();
        assert_eq!((yes.ended, yes.next), (Ended::Completed, Next::Step(3)));
        let no = route(&b, 2, &Action::Gate { approved: false }).unwrap();
        assert_eq!((no.ended, no.next), (Ended::Failed, Next::Step(5)));
        let plain = vec![step("g", "gate")];
        let no = route(&plain, 0, &Action::Gate { approved: false }).unwrap();
        assert_eq!(no.next, Next::FailRun);
        assert_eq!(
            route(&b, 0, &Action::Gate { approved: true })
                .unwrap_err()
                .code,
            Code::Conflict
        );
    }

    #[test]
    fn skip_and_fail() {
        let b = book();
        let s = route(&b, 0, &Action::Skip).unwrap();
        assert_eq!((s.ended, s.next), (Ended::Skipped, Next::Step(1)));
        assert_eq!(route(&b, 1, &Action::Fail).unwrap().next, Next::Step(4));
        let f = route(&b, 0, &Action::Fail).unwrap();
        assert_eq!((f.ended, f.next), (Ended::Failed, Next::FailRun));
        assert_eq!(route(&b, 6, &Action::Skip).unwrap().next, Next::Complete);
    }
}
