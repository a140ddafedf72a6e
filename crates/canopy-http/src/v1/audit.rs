//! Canopy's audit log.

use axum::http::{Method, StatusCode};
use canopy_services::governance::audit::ListAudit;

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("audit").op::<ListAudit>(Method::GET, "/v1/audit", StatusCode::OK)
}
