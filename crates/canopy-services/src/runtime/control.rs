//! Run control for a client's runs (beyond cancel and approve, in [`super::runs`]): pause,
//! resume, retry one failed step, recover a failed run. Each is one engine transaction;
//! the semantics are the engine's (docs/engine.md, "Run control").

use canopy_core::{Error, Scope};
use schemars::JsonSchema;
use serde::Deserialize;

use super::runs::{RunIdInput, control};
use super::view::RunView;
use crate::op::{Cx, Hints, Operation};

pub struct PauseRun;
impl Operation for PauseRun {
    const NAME: &'static str = "pause_client_run";
    const SUMMARY: &'static str =
        "Pause a run: steps executing finish, no new step starts until it is resumed.";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::UPDATE;
    type Input = RunIdInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &input.client_id, &input.run_id, |e, id| async move {
            e.pause(id).await
        })
        .await
    }
}

pub struct ResumeRun;
impl Operation for ResumeRun {
    const NAME: &'static str = "resume_client_run";
    const SUMMARY: &'static str =
        "Resume a paused run: the steps that became ready meanwhile start.";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::WRITE;
    type Input = RunIdInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &input.client_id, &input.run_id, |e, id| async move {
            e.resume(id).await
        })
        .await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RetryStepInput {
    pub client_id: String,
    pub run_id: String,
    /// The failed (or cancelled) step of the failed run to run again.
    pub step_id: String,
}

pub struct RetryRunStep;
impl Operation for RetryRunStep {
    const NAME: &'static str = "retry_client_run_step";
    const SUMMARY: &'static str = "Retry a failed step of a failed run with a fresh retry budget; the run goes on from there.";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::WRITE;
    type Input = RetryStepInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let step = input.step_id;
        control(cx, &input.client_id, &input.run_id, |e, id| async move {
            e.retry_step(id, &step).await
        })
        .await
    }
}

pub struct RecoverRun;
impl Operation for RecoverRun {
    const NAME: &'static str = "recover_client_run";
    const SUMMARY: &'static str = "Recover a failed run: rerun every failed step and recompute everything that depends on one.";
    const SCOPE: Option<Scope> = Some(Scope::Runtime);
    const HINTS: Hints = Hints::WRITE;
    type Input = RunIdInput;
    type Output = RunView;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        control(cx, &input.client_id, &input.run_id, |e, id| async move {
            e.recover(id).await
        })
        .await
    }
}
