//! /containers/...

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::container::{ContainerPruneResponse, WaitResponse};
use berth_api::container_config::ContainerCreateRequest;
use berth_engine::{ListOptions, WaitCondition};

use super::{blocking, State as S};
use crate::error::{ApiError, ApiResult};
use crate::params::{self, flag, int, Query as Q};

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub async fn create(State(e): State<S>, Query(q): Query<Q>, body: Bytes) -> ApiResult<Response> {
    let req: ContainerCreateRequest = params::json_body(&body)?;
    let name = q.get("name").cloned();
    let (config, host, net) = (req.config, req.host_config.unwrap_or_default(), req.networking_config.unwrap_or_default());
    let created = blocking(move || e.create_with_networks(name.as_deref(), config, host, &net)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": created.id, "Warnings": created.warnings }))).into_response())
}

pub async fn list(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let o = ListOptions {
        all: flag(&q, "all"),
        limit: int(&q, "limit")?.filter(|l| *l > 0).map(|l| l as usize),
        size: flag(&q, "size"),
        filters: params::filters(&q)?,
    };
    let v = blocking(move || e.list(&o)).await?;
    Ok(Json(v).into_response())
}

pub async fn inspect(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let size = flag(&q, "size");
    Ok(Json(blocking(move || e.inspect(&id, size)).await?).into_response())
}

pub async fn start(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    blocking(move || e.start(&id)).await?;
    Ok(no_content())
}

/// Docker's `t` (seconds; -1 waits forever) and `signal`.
fn stop_args(q: &Q) -> ApiResult<(Option<i64>, Option<String>)> {
    Ok((int(q, "t")?, q.get("signal").filter(|s| !s.is_empty()).cloned()))
}

pub async fn stop(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let (t, sig) = stop_args(&q)?;
    blocking(move || e.stop(&id, t, sig.as_deref())).await?;
    Ok(no_content())
}

pub async fn restart(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let (t, sig) = stop_args(&q)?;
    blocking(move || e.restart(&id, t, sig.as_deref())).await?;
    Ok(no_content())
}

pub async fn kill(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let sig = q.get("signal").cloned();
    blocking(move || e.kill(&id, sig.as_deref())).await?;
    Ok(no_content())
}

pub async fn pause(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    blocking(move || e.pause(&id)).await?;
    Ok(no_content())
}

pub async fn unpause(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    blocking(move || e.unpause(&id)).await?;
    Ok(no_content())
}

/// The status line goes out at once and the body when the condition holds: clients (the
/// docker CLI's `run`) start the container only after this request is accepted.
pub async fn wait(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let cond = WaitCondition::parse(q.get("condition").map(String::as_str).unwrap_or(""))?;
    let fut = e.wait(&id, cond)?;
    let stream = futures_util::stream::once(async move {
        let r: WaitResponse = fut.await;
        let mut v = serde_json::to_vec(&r).unwrap_or_default();
        v.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(v))
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

pub async fn remove(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let force = flag(&q, "force");
    if flag(&q, "link") {
        return Err(ApiError::bad_request("links are not supported"));
    }
    let volumes = flag(&q, "v");
    blocking(move || e.remove(&id, force, volumes)).await?;
    Ok(no_content())
}

pub async fn rename(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let name = q.get("name").cloned().unwrap_or_default();
    blocking(move || e.rename(&id, &name)).await?;
    Ok(no_content())
}

pub async fn top(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let args = q.get("ps_args").cloned().unwrap_or_default();
    Ok(Json(blocking(move || e.top(&id, &args)).await?).into_response())
}

pub async fn resize(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let h = int(&q, "h")?.unwrap_or(0);
    let w = int(&q, "w")?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(ApiError::bad_request("invalid terminal size"));
    }
    blocking(move || e.resize(&id, h as u16, w as u16)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn prune(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let filters = params::filters(&q)?;
    let (deleted, space) = blocking(move || e.prune_containers(&filters)).await?;
    Ok(Json(ContainerPruneResponse { containers_deleted: Some(deleted), space_reclaimed: space }).into_response())
}

pub async fn logs(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let o = berth_engine::logs::LogOptions {
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        timestamps: flag(&q, "timestamps"),
        details: flag(&q, "details"),
        tail: q.get("tail").filter(|t| !t.is_empty() && *t != "all").map(|t| t.parse::<usize>()).transpose().map_err(|_| ApiError::bad_request("invalid tail"))?,
        since: q.get("since").filter(|s| !s.is_empty() && *s != "0").cloned(),
        until: q.get("until").filter(|s| !s.is_empty() && *s != "0").cloned(),
    };
    if !o.stdout && !o.stderr {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let follow = flag(&q, "follow");
    let tty = {
        let (e, id) = (e.clone(), id.clone());
        blocking(move || e.get(&id)).await?.config.tty
    };
    let (mut w, body) = crate::streams::ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        if let Err(err) = e.logs_to(&id, &o, follow, &mut w) {
            w.fail(std::io::Error::other(err.to_string()));
        }
    });
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
}

pub async fn update(State(e): State<S>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let upd: berth_engine::update::UpdateConfig = params::json_body(&body)?;
    let warnings = blocking(move || e.update_container(&id, &upd)).await?;
    Ok(Json(berth_api::container::UpdateResponse { warnings }).into_response())
}

pub async fn changes(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    let list = blocking(move || e.changes(&id)).await?;
    let v: Vec<serde_json::Value> = list.into_iter().map(|(p, k)| serde_json::json!({ "Path": p, "Kind": k })).collect();
    Ok(Json(v).into_response())
}

pub async fn export(State(e): State<S>, Path(id): Path<String>) -> ApiResult<Response> {
    {
        let (e, id) = (e.clone(), id.clone());
        blocking(move || e.get(&id)).await?;
    }
    let (mut w, body) = crate::streams::ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        if let Err(err) = e.export(&id, &mut w) {
            w.fail(std::io::Error::other(err.to_string()));
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `POST /commit?container=...&repo=...&tag=...&comment=...&author=...&pause=...&changes=...`
pub async fn commit(State(e): State<S>, axum::extract::RawQuery(raw): axum::extract::RawQuery) -> ApiResult<Response> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let container = get("container").ok_or_else(|| ApiError::bad_request("container is required"))?;
    let q: Q = pairs.iter().cloned().collect();
    let req = berth_engine::CommitRequest {
        repo: get("repo"),
        tag: get("tag"),
        message: get("comment"),
        author: get("author"),
        changes: pairs.iter().filter(|(k, _)| k == "changes").map(|(_, v)| v.clone()).filter(|v| !v.is_empty()).collect(),
        pause: !q.contains_key("pause") || flag(&q, "pause"),
    };
    let id = blocking(move || e.commit(&container, &req)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id })).into_response()).into_response())
}
