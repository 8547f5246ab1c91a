//! `POST /containers/{id}/attach`: Docker's hijacked connection. The HTTP connection is
//! upgraded (101) and then carries the container's output and its stdin, relayed to and from
//! the container's monitor.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::AttachRequest;
use hyper_util::rt::TokioIo;

use crate::error::{ApiError, ApiResult};
use crate::params::{flag, Query as Q};
use crate::routes::State as S;

pub async fn attach(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>, mut req: Request) -> ApiResult<Response> {
    if !flag(&q, "stream") && flag(&q, "logs") {
        return Err(ApiError::new(501, "attach with logs=1 and without stream is not implemented yet in Berth"));
    }
    let want = AttachRequest { stdin: flag(&q, "stdin"), stdout: flag(&q, "stdout"), stderr: flag(&q, "stderr") };
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let tty = {
        let e = e.clone();
        let id = id.clone();
        crate::routes::blocking(move || e.get(&id)).await?.config.tty
    };
    // Registered before answering: a client that starts the container right after this
    // response must not miss its first output.
    let pending = {
        let e = e.clone();
        crate::routes::blocking(move || e.attach(&id, want)).await?
    };
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut client = TokioIo::new(upgraded);
        let Ok(Ok(std_stream)) = pending.await else { return };
        if std_stream.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(mut monitor) = tokio::net::UnixStream::from_std(std_stream) else { return };
        let _ = tokio::io::copy_bidirectional(&mut client, &mut monitor).await;
    });
    let status = if upgrade { StatusCode::SWITCHING_PROTOCOLS } else { StatusCode::OK };
    let mut resp = Response::builder().status(status).header(header::CONTENT_TYPE, ct);
    if upgrade {
        resp = resp.header(header::CONNECTION, "Upgrade").header(header::UPGRADE, "tcp");
    }
    Ok(resp.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}
