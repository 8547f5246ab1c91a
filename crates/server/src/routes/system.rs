//! /_ping, /version, /info, /events, /system/df.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;

use super::{blocking, State as S};
use crate::error::{ApiError, ApiResult};
use crate::params::{self, Query as Q};

pub async fn ping() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")], "OK").into_response()
}

pub async fn version(State(e): State<S>) -> impl IntoResponse {
    Json(e.version())
}

pub async fn info(State(e): State<S>) -> ApiResult<impl IntoResponse> {
    Ok(Json(blocking(move || Ok(e.info())).await?))
}

/// Docker's time arguments: Unix seconds with an optional fraction, or RFC 3339.
fn nanos(s: &str) -> ApiResult<i64> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1e9) as i64);
    }
    berth_image::store::time::parse_rfc3339(s)
        .map(|secs| secs * 1_000_000_000)
        .ok_or_else(|| ApiError::bad_request(format!("invalid time: {s}")))
}

pub async fn events(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    let since = q.get("since").filter(|s| !s.is_empty()).map(|s| nanos(s)).transpose()?;
    let until = q.get("until").filter(|s| !s.is_empty()).map(|s| nanos(s)).transpose()?;
    let (past, rx) = e.events.subscribe(since.or(until.map(|_| 0)));
    let f2 = filters.clone();
    let keep = move |ev: &berth_api::event::Event| berth_engine::events::matches(ev, &f2) && until.is_none_or(|u| ev.time_nano <= u);
    let line = |ev: &berth_api::event::Event| -> Result<bytes::Bytes, std::io::Error> {
        let mut v = serde_json::to_vec(ev).unwrap_or_default();
        v.push(b'\n');
        Ok(bytes::Bytes::from(v))
    };
    let past: Vec<_> = past.iter().filter(|ev| keep(ev)).map(line).collect();
    let past = futures_util::stream::iter(past);
    let body = if let Some(u) = until {
        // Ends at `until`: the backlog, then live events until that time passes.
        let wait = std::time::Duration::from_nanos((u - now_nanos()).max(0) as u64);
        let live = live_events(rx, keep).take_until(tokio::time::sleep(wait));
        Body::from_stream(past.chain(live.map(move |ev| line(&ev))))
    } else {
        Body::from_stream(past.chain(live_events(rx, keep).map(move |ev| line(&ev))))
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn live_events(
    rx: tokio::sync::broadcast::Receiver<berth_api::event::Event>,
    keep: impl Fn(&berth_api::event::Event) -> bool + Send + 'static,
) -> impl futures_util::Stream<Item = berth_api::event::Event> + Send {
    futures_util::stream::unfold((rx, keep), |(mut rx, keep)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) if keep(&ev) => return Some((ev, (rx, keep))),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

pub async fn df(State(e): State<S>) -> ApiResult<impl IntoResponse> {
    let v = blocking(move || e.system_df()).await?;
    Ok(Json(v))
}
