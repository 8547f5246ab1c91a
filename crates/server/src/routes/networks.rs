//! /networks/...

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::network::{NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest};

use super::{blocking, State as S};
use crate::error::ApiResult;
use crate::params::{self, Query as Q};

pub fn routes() -> Router<S> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

async fn list(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    Ok(Json(blocking(move || e.network_list(&filters)).await?).into_response())
}

async fn create(State(e): State<S>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = params::json_body(&body)?;
    let id = blocking(move || e.network_create(&req)).await?;
    Ok((StatusCode::CREATED, Json(NetworkCreateResponse { id, warning: String::new() })).into_response())
}

async fn inspect(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(blocking(move || e.network_inspect(&id)).await?).into_response())
}

async fn remove(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    blocking(move || e.network_remove(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    Ok(Json(blocking(move || e.network_prune(&filters)).await?).into_response())
}

async fn connect(State(e): State<S>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkConnectRequest = params::json_body(&body)?;
    blocking(move || e.network_connect(&id, &req)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(State(e): State<S>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: NetworkDisconnectRequest = params::json_body(&body)?;
    blocking(move || e.network_disconnect(&id, &req)).await?;
    Ok(StatusCode::OK.into_response())
}
