//! Stackmint clients (seed 000 §4, §7).

use axum::http::{Method, StatusCode};
use canopy_services::tenancy::clients::{
    ArchiveClient, CreateClient, GetClient, ListClients, UpdateClient,
};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("clients")
        .op::<ListClients>(Method::GET, "/v1/clients", StatusCode::OK)
        .op::<GetClient>(Method::GET, "/v1/clients/{clientId}", StatusCode::OK)
        .op::<CreateClient>(Method::POST, "/v1/admin/clients", StatusCode::CREATED)
        .op::<UpdateClient>(
            Method::PATCH,
            "/v1/admin/clients/{clientId}",
            StatusCode::OK,
        )
        .op::<ArchiveClient>(
            Method::DELETE,
            "/v1/admin/clients/{clientId}",
            StatusCode::OK,
        )
}
