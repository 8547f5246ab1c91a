//! `docker exec`: /containers/{id}/exec, /exec/{id}/start (a hijacked stream like attach),
//! /exec/{id}/json, /exec/{id}/resize.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_api::exec::{ExecCreateRequest, ExecStartRequest};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::{blocking, State as S};
use crate::error::{ApiError, ApiResult};
use crate::params::{self, int, Query as Q};

pub fn routes() -> Router<S> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

async fn create(State(e): State<S>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let req: ExecCreateRequest = params::json_body(&body)?;
    let exec_id = blocking(move || e.exec_create(&id, &req)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": exec_id }))).into_response())
}

/// Docker's order: the checks that answer with an HTTP error, then the upgrade, then the
/// process; an error starting it (command not found...) goes down the stream as text, and
/// the client reads the exit code (127, 126) from the exec's inspect. The process is started
/// while the upgrade's answer is on its way.
async fn start(State(e): State<S>, Path(id): Path<String>, mut req: Request) -> ApiResult<Response> {
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20).await.map_err(|err| ApiError::bad_request(err.to_string()))?;
    let sr: ExecStartRequest = params::json_body(&body)?;
    let tty = {
        let (e, id) = (e.clone(), id.clone());
        blocking(move || e.exec_begin(&id)).await?
    };
    let console = sr.console_size.clone();
    let keys = {
        let (e, id) = (e.clone(), id.clone());
        blocking(move || e.exec_detach_keys(&id)).await?
    };
    if sr.detach {
        blocking(move || e.exec_run(&id, console.as_deref(), true).map(drop)).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let run = tokio::task::spawn_blocking(move || e.exec_run(&id, console.as_deref(), false));
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let started = run.await;
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut client = TokioIo::new(upgraded);
        match started {
            Ok(Ok(std_stream)) => {
                if std_stream.set_nonblocking(true).is_err() {
                    return;
                }
                let Ok(monitor) = tokio::net::UnixStream::from_std(std_stream) else { return };
                crate::detach::session(client, monitor, keys).await;
            }
            Ok(Err(err)) => {
                let text = format!("{err}\r\n");
                let mut frame = Vec::new();
                if !tty {
                    frame.extend_from_slice(&[1, 0, 0, 0]);
                    frame.extend_from_slice(&(text.len() as u32).to_be_bytes());
                }
                frame.extend_from_slice(text.as_bytes());
                let _ = client.write_all(&frame).await;
                let _ = client.shutdown().await;
            }
            Err(_) => {}
        }
    });
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let status = if upgrade { StatusCode::SWITCHING_PROTOCOLS } else { StatusCode::OK };
    let mut resp = Response::builder().status(status).header(header::CONTENT_TYPE, ct);
    if upgrade {
        resp = resp.header(header::CONNECTION, "Upgrade").header(header::UPGRADE, "tcp");
    }
    Ok(resp.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

async fn inspect(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(blocking(move || e.exec_inspect(&id)).await?).into_response())
}

async fn resize(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let h = int(&q, "h")?.unwrap_or(0);
    let w = int(&q, "w")?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(ApiError::bad_request("invalid terminal size"));
    }
    blocking(move || e.exec_resize(&id, h as u16, w as u16)).await?;
    Ok(StatusCode::OK.into_response())
}
