//! Registry operations: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`,
//! `POST /auth`. Pulls and pushes stream Docker's JSON progress messages; a failure before the
//! first message is an HTTP error (what `docker pull` shows as "Error response from daemon"),
//! a later one the stream's last message.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_registry::progress::{self, Sink};
use berth_registry::AuthConfig;
use tokio::sync::mpsc;

use super::{blocking, State as S};
use crate::error::{ApiError, ApiResult};

/// The credentials of the X-Registry-Auth header, if any.
pub fn header_auth(headers: &HeaderMap) -> ApiResult<Option<AuthConfig>> {
    match headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) {
        Some(h) => AuthConfig::from_header(h).map_err(|e| ApiError::new(e.http_status(), e.to_string())),
        None => Ok(None),
    }
}

fn line(v: &serde_json::Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// Runs `f` on the blocking pool and streams what it reports.
async fn progress_stream<F>(f: F) -> ApiResult<Response>
where
    F: FnOnce(Sink<'_>) -> Result<(), berth_engine::Error> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<Bytes, ApiError>>();
    tokio::task::spawn_blocking(move || {
        let out = tx.clone();
        let sink = move |v: serde_json::Value| {
            let _ = out.send(Ok(line(&v)));
        };
        if let Err(e) = f(&sink) {
            let _ = tx.send(Err(ApiError::from(e)));
        }
    });
    let first = match rx.recv().await {
        None => Bytes::new(),
        Some(Err(e)) => return Err(e),
        Some(Ok(b)) => b,
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = match rx.recv().await? {
            Ok(b) => b,
            Err(e) => line(&progress::error(&e.message)),
        };
        Some((Ok::<_, std::io::Error>(item), rx))
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::once(async move { Ok(first) }), rest);
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

/// `POST /images/create?fromImage=NAME&tag=TAG|DIGEST&platform=...`.
pub async fn pull(e: S, headers: &HeaderMap, image: String, tag: Option<String>, platform: Option<String>) -> ApiResult<Response> {
    let auth = header_auth(headers)?;
    let r = berth_engine::registry::pull_reference(&image, tag.as_deref()).map_err(ApiError::from)?;
    progress_stream(move |sink| e.pull_image(&r, platform.as_deref(), auth, sink).map(|_| ())).await
}

/// `POST /images/{name}/push?tag=TAG`.
pub async fn push(e: S, headers: &HeaderMap, name: String, tag: Option<String>) -> ApiResult<Response> {
    let auth = header_auth(headers)?;
    let full = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name,
    };
    // No tag: every tag of the repository (`push --all-tags`).
    let r = berth_image::Reference::parse_normalized_named(&full)?;
    progress_stream(move |sink| e.push_image(&r, auth, sink).map(|_| ())).await
}

/// `GET /images/search?term=&limit=&filters=`.
pub async fn search(State(e): State<S>, headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<crate::params::Query>) -> ApiResult<Response> {
    let auth = header_auth(&headers)?;
    let term = q.get("term").cloned().unwrap_or_default();
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(l.parse::<u32>().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?),
        None => None,
    };
    let f = crate::params::filters(&q)?;
    let mut official = None;
    let mut stars = None;
    for (k, vals) in f {
        let v = vals.into_iter().next().unwrap_or_default();
        match k.as_str() {
            "is-official" => official = Some(matches!(v.as_str(), "true" | "1")),
            "stars" => stars = Some(v.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid filter 'stars={v}'")))?),
            "is-automated" => {}
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let out = blocking(move || e.search_images(&term, limit, official, stars, auth)).await?;
    Ok(Json(out).into_response())
}

/// `POST /auth`: checks the credentials with the registry.
pub async fn auth(State(e): State<S>, Json(mut a): Json<AuthConfig>) -> ApiResult<Response> {
    a.expand_auth();
    blocking(move || e.login(a)).await?;
    Ok(Json(serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": "" })).into_response())
}
