//! Credits and spending caps (seed 003 "Credits and Pricing", "Spending Caps").

use axum::http::{Method, StatusCode};
use canopy_services::governance::credits::{GetUsage, SetSpendingCap};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("usage")
        .op::<GetUsage>(Method::GET, "/v1/usage", StatusCode::OK)
        .op::<SetSpendingCap>(Method::PUT, "/v1/usage/cap", StatusCode::OK)
}
