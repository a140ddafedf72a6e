//! Minolith styleguide (routes fixed in surface-v1-knowledge.md).

use axum::http::{Method, StatusCode};
use canopy_services::knowledge::assets::*;
use canopy_services::knowledge::styleguide::*;

use crate::api::Api;

fn kind<K: ItemKind>(api: Api, list: &'static str, one: &'static str) -> Api {
    api.op::<DefineItem<K>>(Method::POST, list, StatusCode::CREATED)
        .op::<ListItems<K>>(Method::GET, list, StatusCode::OK)
        .op::<GetItem<K>>(Method::GET, one, StatusCode::OK)
        .op::<UpdateItem<K>>(Method::PATCH, one, StatusCode::OK)
        .op::<DeleteItem<K>>(Method::DELETE, one, StatusCode::OK)
}

pub fn routes() -> Api {
    let api = Api::new("styleguide")
        .op::<GetStyleguide>(Method::GET, "/v1/styleguide", StatusCode::OK)
        .op::<GetTokens>(Method::GET, "/v1/styleguide/tokens", StatusCode::OK)
        .op::<GetTokenSection>(
            Method::GET,
            "/v1/styleguide/tokens/{section}",
            StatusCode::OK,
        )
        .op::<DefineTokens>(
            Method::PUT,
            "/v1/styleguide/tokens/{section}",
            StatusCode::OK,
        )
        .op::<SearchStyleguide>(Method::GET, "/v1/styleguide/search", StatusCode::OK)
        .upload::<UploadAsset>("/v1/styleguide/assets")
        .op::<ListAssets>(Method::GET, "/v1/styleguide/assets", StatusCode::OK)
        .op::<GetAsset>(Method::GET, "/v1/styleguide/assets/{id}", StatusCode::OK)
        .op::<UpdateAsset>(Method::PATCH, "/v1/styleguide/assets/{id}", StatusCode::OK)
        .op::<DeleteAsset>(Method::DELETE, "/v1/styleguide/assets/{id}", StatusCode::OK)
        .download::<DownloadAsset>("/v1/styleguide/assets/{id}/download");
    let api = kind::<Component>(
        api,
        "/v1/styleguide/components",
        "/v1/styleguide/components/{id}",
    );
    let api = kind::<Pattern>(
        api,
        "/v1/styleguide/patterns",
        "/v1/styleguide/patterns/{id}",
    );
    kind::<Voice>(api, "/v1/styleguide/voice", "/v1/styleguide/voice/{id}")
}
