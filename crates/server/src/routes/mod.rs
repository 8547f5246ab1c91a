//! The route table.

mod archive;
mod containers;
mod exec;
mod images;
mod networks;
mod registry;
mod stats;
mod system;
mod volumes;

use std::sync::Arc;

use axum::routing::{delete, get, post};
use axum::Router;
use berth_engine::Engine;

use crate::error::{ApiError, ApiResult};

pub type State = Arc<Engine>;

/// Runs a blocking engine call off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, berth_engine::Error> + Send + 'static) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(500, format!("internal error: {e}"))),
    }
}

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}/export", get(containers::export))
        .route("/commit", post(containers::commit))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(crate::hijack::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}", delete(containers::remove))
        .route("/images/json", get(images::list))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route("/images/create", post(images::create))
        .route("/auth", post(registry::auth))
        .route("/images/search", get(registry::search))
        .route("/images/{*rest}", get(images::get_dispatch).post(images::post_dispatch).delete(images::remove))
        .route("/system/df", get(system::df))
        .merge(stats::routes())
        .merge(archive::routes())
        .merge(exec::routes())
        .merge(volumes::routes())
        .merge(networks::routes())
        .fallback(|uri: axum::http::Uri| async move { ApiError::not_found(format!("page not found: {}", uri.path())) })
        .with_state(engine)
}
