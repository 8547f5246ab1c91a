//! `POST /containers/{id}/attach`: Docker's hijacked connection. The HTTP connection is
//! upgraded (101) and then carries the container's output and its stdin, relayed to and from
//! the container's monitor. Clients that do not ask for the upgrade get the output as the
//! response body instead. `logs=1` sends what the log already holds first.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::AttachRequest;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult};
use crate::params::{flag, Query as Q};
use crate::routes::{blocking, State as S};

/// The container's log so far, framed as the attach stream frames output.
async fn past_logs(e: &S, id: &str, want: AttachRequest) -> Vec<u8> {
    if !want.stdout && !want.stderr {
        return Vec::new();
    }
    let (e, id) = (e.clone(), id.to_owned());
    let o = berth_engine::logs::LogOptions { stdout: want.stdout, stderr: want.stderr, ..Default::default() };
    blocking(move || {
        let mut out = Vec::new();
        e.logs_to(&id, &o, false, &mut out)?;
        Ok(out)
    })
    .await
    .unwrap_or_default()
}

pub async fn attach(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>, mut req: Request) -> ApiResult<Response> {
    let want = AttachRequest { stdin: flag(&q, "stdin"), stdout: flag(&q, "stdout"), stderr: flag(&q, "stderr") };
    let (stream, logs) = (flag(&q, "stream"), flag(&q, "logs"));
    let keys = crate::detach::parse(q.get("detachKeys").map_or("", String::as_str)).map_err(ApiError::bad_request)?;
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let tty = {
        let (e, id) = (e.clone(), id.clone());
        blocking(move || e.get(&id)).await?.config.tty
    };
    // Registered before answering: a client that starts the container right after this
    // response must not miss its first output.
    let pending = if stream {
        let (e, id) = (e.clone(), id.clone());
        Some(blocking(move || e.attach(&id, want)).await?)
    } else {
        None
    };
    let past = if logs { past_logs(&e, &id, want).await } else { Vec::new() };
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    if !upgrade {
        // Output only, as the body.
        let body = async_stream_body(past, pending);
        return Ok(([(header::CONTENT_TYPE, ct)], body).into_response());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut client = TokioIo::new(upgraded);
        if !past.is_empty() && client.write_all(&past).await.is_err() {
            return;
        }
        let Some(pending) = pending else {
            let _ = client.shutdown().await;
            return;
        };
        let Ok(Ok(std_stream)) = pending.await else { return };
        if std_stream.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(monitor) = tokio::net::UnixStream::from_std(std_stream) else { return };
        crate::detach::session(client, monitor, keys).await;
    });
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, ct)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp");
    Ok(resp.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

type Pending = tokio::sync::oneshot::Receiver<berth_engine::Result<std::os::unix::net::UnixStream>>;

/// The past logs, then the monitor's output until it closes.
fn async_stream_body(past: Vec<u8>, pending: Option<Pending>) -> Body {
    let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(past)) });
    let rest = futures_util::stream::once(async move {
        let s = pending?.await.ok()?.ok()?;
        s.set_nonblocking(true).ok()?;
        let s = tokio::net::UnixStream::from_std(s).ok()?;
        Some(tokio_util::io::ReaderStream::new(s))
    });
    use futures_util::StreamExt;
    let rest = rest.filter_map(|x| async move { x }).flatten();
    Body::from_stream(first.chain(rest))
}
