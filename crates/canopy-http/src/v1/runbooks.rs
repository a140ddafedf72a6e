//! Minolith runbooks and their runs (routes fixed in surface-v1-work.md). The runs are the
//! engine's; `…/events` reads their entries of the engine's event log.

use axum::http::{Method, StatusCode};
use canopy_services::work::runbooks::control::{
    AdvanceStep, CancelRun, DecideGate, FailStep, PauseRun, ResumeRun, SkipStep,
};
use canopy_services::work::runbooks::runs::{
    GetCurrentStep, GetRun, ListRunEvents, ListRuns, StartRun,
};
use canopy_services::work::runbooks::templates::{
    CreateRunbook, DeleteRunbook, GetRunbook, ListRunbooks, UpdateRunbook,
};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("runbooks")
        .op::<CreateRunbook>(Method::POST, "/v1/runbooks", StatusCode::CREATED)
        .op::<ListRunbooks>(Method::GET, "/v1/runbooks", StatusCode::OK)
        .op::<ListRuns>(Method::GET, "/v1/runbooks/runs", StatusCode::OK)
        .op::<GetRun>(Method::GET, "/v1/runbooks/runs/{run_id}", StatusCode::OK)
        .op::<GetCurrentStep>(
            Method::GET,
            "/v1/runbooks/runs/{run_id}/current",
            StatusCode::OK,
        )
        .op::<ListRunEvents>(
            Method::GET,
            "/v1/runbooks/runs/{run_id}/events",
            StatusCode::OK,
        )
        .op::<AdvanceStep>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/advance",
            StatusCode::OK,
        )
        .op::<SkipStep>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/skip",
            StatusCode::OK,
        )
        .op::<FailStep>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/fail",
            StatusCode::OK,
        )
        .op::<PauseRun>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/pause",
            StatusCode::OK,
        )
        .op::<ResumeRun>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/resume",
            StatusCode::OK,
        )
        .op::<CancelRun>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/cancel",
            StatusCode::OK,
        )
        .op::<DecideGate>(
            Method::POST,
            "/v1/runbooks/runs/{run_id}/gate",
            StatusCode::OK,
        )
        .op::<GetRunbook>(Method::GET, "/v1/runbooks/{id}", StatusCode::OK)
        .op::<UpdateRunbook>(Method::PATCH, "/v1/runbooks/{id}", StatusCode::OK)
        .op::<DeleteRunbook>(Method::DELETE, "/v1/runbooks/{id}", StatusCode::OK)
        .op::<StartRun>(Method::POST, "/v1/runbooks/{id}/runs", StatusCode::CREATED)
}
