//! Stackmint's runtime routes (seed 000 §4–§7): admin authoring and assignment of buds and
//! branches, and the client routes that run them and read their runs.
//!
//! A run request answers 200 with the finished run, or 202 when it goes on (async, or a sync
//! run past its `timeout_ms`): the operation's output says which (`RunAnswer::accepted`), and
//! [`Api::op_with`] turns that into the status. The events route is SSE
//! ([`super::run_events`]).

use axum::http::{Method, StatusCode};
use canopy_services::runtime::assign::{AssignBranch, AssignBud, UnassignBranch, UnassignBud};
use canopy_services::runtime::authoring::{
    CreateBranch, CreateBud, DeleteBranch, DeleteBud, GetBranch, GetBud, ListBranches, ListBuds,
    UpdateBranch, UpdateBud,
};
use canopy_services::runtime::client_tools::{InvokeClientTool, ListClientTools};
use canopy_services::runtime::control::{PauseRun, RecoverRun, ResumeRun, RetryRunStep};
use canopy_services::runtime::credentials::{
    DeleteClientCredentials, DeleteOrgCredentials, ListClientCredentials, ListOrgCredentials,
    SetClientCredentials, SetOrgCredentials,
};
use canopy_services::runtime::runs::{
    ApproveRun, CancelRun, GetRun, ListClientBranches, ListClientBuds, ListRuns, RunAnswer,
    RunBranch, RunBud,
};

use crate::api::Api;

fn run_status(a: &RunAnswer) -> Option<StatusCode> {
    Some(if a.accepted {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    })
}

pub fn routes() -> Api {
    Api::new("runtime")
        // Authoring (admin).
        .op::<CreateBud>(Method::POST, "/v1/admin/buds", StatusCode::CREATED)
        .op::<ListBuds>(Method::GET, "/v1/admin/buds", StatusCode::OK)
        .op::<GetBud>(Method::GET, "/v1/admin/buds/{budId}", StatusCode::OK)
        .op::<UpdateBud>(Method::PUT, "/v1/admin/buds/{budId}", StatusCode::OK)
        .op::<DeleteBud>(Method::DELETE, "/v1/admin/buds/{budId}", StatusCode::OK)
        .op::<CreateBranch>(Method::POST, "/v1/admin/branches", StatusCode::CREATED)
        .op::<ListBranches>(Method::GET, "/v1/admin/branches", StatusCode::OK)
        .op::<GetBranch>(Method::GET, "/v1/admin/branches/{branchId}", StatusCode::OK)
        .op::<UpdateBranch>(Method::PUT, "/v1/admin/branches/{branchId}", StatusCode::OK)
        .op::<DeleteBranch>(
            Method::DELETE,
            "/v1/admin/branches/{branchId}",
            StatusCode::OK,
        )
        // Assignment (admin).
        .op::<AssignBranch>(
            Method::POST,
            "/v1/admin/clients/{clientId}/branches/{branchId}/assign",
            StatusCode::OK,
        )
        .op::<UnassignBranch>(
            Method::DELETE,
            "/v1/admin/clients/{clientId}/branches/{branchId}/assign",
            StatusCode::OK,
        )
        .op::<AssignBud>(
            Method::POST,
            "/v1/admin/clients/{clientId}/buds/{budId}/assign",
            StatusCode::OK,
        )
        .op::<UnassignBud>(
            Method::DELETE,
            "/v1/admin/clients/{clientId}/buds/{budId}/assign",
            StatusCode::OK,
        )
        // Provider credentials (admin): per client (seed 000 §7) and org-wide.
        .op::<SetClientCredentials>(
            Method::POST,
            "/v1/admin/clients/{clientId}/providers/{providerId}/credentials",
            StatusCode::OK,
        )
        .op::<DeleteClientCredentials>(
            Method::DELETE,
            "/v1/admin/clients/{clientId}/providers/{providerId}/credentials",
            StatusCode::OK,
        )
        .op::<ListClientCredentials>(
            Method::GET,
            "/v1/admin/clients/{clientId}/providers",
            StatusCode::OK,
        )
        .op::<SetOrgCredentials>(
            Method::POST,
            "/v1/admin/providers/{providerId}/credentials",
            StatusCode::OK,
        )
        .op::<DeleteOrgCredentials>(
            Method::DELETE,
            "/v1/admin/providers/{providerId}/credentials",
            StatusCode::OK,
        )
        .op::<ListOrgCredentials>(Method::GET, "/v1/admin/providers", StatusCode::OK)
        // Client routes.
        .op::<ListClientBranches>(
            Method::GET,
            "/v1/clients/{clientId}/branches",
            StatusCode::OK,
        )
        .op::<ListClientBuds>(Method::GET, "/v1/clients/{clientId}/buds", StatusCode::OK)
        .op_with::<RunBranch>(
            Method::POST,
            "/v1/clients/{clientId}/branches/{branchId}/run",
            StatusCode::OK,
            run_status,
        )
        .op_with::<RunBud>(
            Method::POST,
            "/v1/clients/{clientId}/buds/{budId}/run",
            StatusCode::OK,
            run_status,
        )
        .op::<ListRuns>(Method::GET, "/v1/clients/{clientId}/runs", StatusCode::OK)
        .op::<GetRun>(
            Method::GET,
            "/v1/clients/{clientId}/runs/{runId}",
            StatusCode::OK,
        )
        .op::<CancelRun>(
            Method::POST,
            "/v1/clients/{clientId}/runs/{runId}/cancel",
            StatusCode::OK,
        )
        .op::<ApproveRun>(
            Method::POST,
            "/v1/clients/{clientId}/runs/{runId}/approve",
            StatusCode::OK,
        )
        .op::<PauseRun>(
            Method::POST,
            "/v1/clients/{clientId}/runs/{runId}/pause",
            StatusCode::OK,
        )
        .op::<ResumeRun>(
            Method::POST,
            "/v1/clients/{clientId}/runs/{runId}/resume",
            StatusCode::OK,
        )
        .op::<RetryRunStep>(
            Method::POST,
            "/v1/clients/{clientId}/runs/{runId}/retry",
            StatusCode::OK,
        )
        .op::<RecoverRun>(
            Method::POST,
            "/v1/clients/{clientId}/runs/{runId}/recover",
            StatusCode::OK,
        )
        // The client MCP layer (seed 000 §8); the protocol endpoint is `crate::mcp`'s.
        .op::<ListClientTools>(
            Method::GET,
            "/v1/clients/{clientId}/mcp/tools",
            StatusCode::OK,
        )
        .op::<InvokeClientTool>(
            Method::POST,
            "/v1/clients/{clientId}/mcp/tools/{toolId}/invoke",
            StatusCode::OK,
        )
        .merge(super::run_events::routes())
}
