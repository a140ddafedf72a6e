//! Minolith agents (seed 003; routes fixed in surface-v1-work.md).

use axum::http::{Method, StatusCode};
use canopy_services::agents::{
    BrowseRegistry, CreateAgent, DeleteAgent, GetAgent, GetRegistryAgent, InstallRegistryAgent,
    ListAgents, SyncAgents, UpdateAgent,
};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("agents")
        .op::<CreateAgent>(Method::POST, "/v1/agents", StatusCode::CREATED)
        .op::<ListAgents>(Method::GET, "/v1/agents", StatusCode::OK)
        .op::<SyncAgents>(Method::POST, "/v1/agents/sync", StatusCode::OK)
        .op::<BrowseRegistry>(Method::GET, "/v1/agents/registry", StatusCode::OK)
        .op::<GetRegistryAgent>(Method::GET, "/v1/agents/registry/{id}", StatusCode::OK)
        .op::<InstallRegistryAgent>(
            Method::POST,
            "/v1/agents/registry/{id}/install",
            StatusCode::CREATED,
        )
        .op::<GetAgent>(Method::GET, "/v1/agents/{id}", StatusCode::OK)
        .op::<UpdateAgent>(Method::PATCH, "/v1/agents/{id}", StatusCode::OK)
        .op::<DeleteAgent>(Method::DELETE, "/v1/agents/{id}", StatusCode::OK)
}
