//! `GET /containers/{id}/stats`: JSON samples streamed from the engine (one a second, or one
//! with `stream=false`), through a bounded channel so a slow client slows the sampler.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_engine::stats::StatsOptions;

use super::{blocking, State as S};
use crate::error::ApiResult;
use crate::params::{flag, Query as Q};

pub fn routes() -> Router<S> {
    Router::new().route("/containers/{id}/stats", get(stats))
}

/// Docker's `BoolValueOrDefault`: the default only when the parameter is absent.
fn flag_or(q: &Q, k: &str, default: bool) -> bool {
    if q.contains_key(k) {
        flag(q, k)
    } else {
        default
    }
}

async fn stats(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let o = StatsOptions { stream: flag_or(&q, "stream", true), one_shot: flag_or(&q, "one-shot", false) };
    {
        // An unknown container is a 404 before the stream starts.
        let (e, id) = (e.clone(), id.clone());
        blocking(move || e.get(&id)).await?;
    }
    let (mut w, body) = crate::streams::ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        // Ends when the client goes away (the next write fails) or the container is removed.
        if let Err(err) = e.stats_to(&id, o, &mut w) {
            w.fail(std::io::Error::other(err.to_string()));
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
