//! Access keys, usage and token exchange (seed 001 "Admin Endpoints", "Token Exchange").

use axum::http::{Method, StatusCode};
use canopy_services::tenancy::keys::{
    CreateAccessKey, GetAccessKey, GetKeyUsage, ListAccessKeys, RevokeAccessKey, RotateAccessKey,
};
use canopy_services::tenancy::session::{ExchangeToken, WhoAmI};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("access keys")
        .op::<CreateAccessKey>(Method::POST, "/api/admin/access-keys", StatusCode::CREATED)
        .op::<ListAccessKeys>(Method::GET, "/api/admin/access-keys", StatusCode::OK)
        .op::<GetAccessKey>(Method::GET, "/api/admin/access-keys/{id}", StatusCode::OK)
        .op::<RevokeAccessKey>(
            Method::POST,
            "/api/admin/access-keys/{id}/revoke",
            StatusCode::OK,
        )
        .op::<RotateAccessKey>(
            Method::POST,
            "/api/admin/access-keys/{id}/rotate",
            StatusCode::OK,
        )
        .op::<GetKeyUsage>(Method::GET, "/api/admin/usage/{keyId}", StatusCode::OK)
        .merge(
            Api::new("auth")
                .op::<WhoAmI>(Method::GET, "/api/auth/me", StatusCode::OK)
                .op::<ExchangeToken>(Method::POST, "/api/auth/token", StatusCode::OK),
        )
}
