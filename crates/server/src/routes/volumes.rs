//! /volumes/...

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::volume::{VolumeCreateRequest, VolumeList};

use super::{blocking, State as S};
use crate::error::ApiResult;
use crate::params::{self, flag, Query as Q};

pub fn routes() -> Router<S> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

async fn list(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    let volumes = blocking(move || e.volume_list(&filters)).await?;
    Ok(Json(VolumeList { volumes, warnings: Vec::new() }).into_response())
}

async fn create(State(e): State<S>, body: Bytes) -> ApiResult<Response> {
    let req: VolumeCreateRequest = params::json_body(&body)?;
    let v = blocking(move || e.volume_create(&req)).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn inspect(State(e): State<S>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(blocking(move || e.volume_inspect(&name)).await?).into_response())
}

async fn remove(State(e): State<S>, Path(name): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let force = flag(&q, "force");
    blocking(move || e.volume_remove(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    Ok(Json(blocking(move || e.volume_prune(&filters)).await?).into_response())
}
