//! `/containers/{id}/archive` (`docker cp`): HEAD stats a path, GET streams a tar of it, PUT
//! extracts a tar into a directory. The stat travels base64-encoded in
//! `X-Docker-Container-Path-Stat`, on HEAD and GET alike.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_engine::archive::{ExtractOptions, PathStat};

use super::{blocking, State as S};
use crate::error::{ApiError, ApiResult};
use crate::params::{flag, Query as Q};

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub fn routes() -> Router<S> {
    Router::new().route("/containers/{id}/archive", get(get_archive).head(head_archive).put(put_archive))
}

/// The `path` parameter; Docker's message when it is missing (its typo included).
fn path_of(q: &Q) -> ApiResult<String> {
    q.get("path").filter(|p| !p.is_empty()).cloned().ok_or_else(|| ApiError::bad_request("bad parameter: pathcannot be empty"))
}

async fn head_archive(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let stat = blocking(move || e.archive_stat(&id, &path)).await?;
    Ok(([(STAT_HEADER, stat.header_value())], StatusCode::OK).into_response())
}

/// The stat header goes out with the status line once the path is resolved; errors before
/// that are ordinary error responses, errors while streaming truncate the body.
async fn get_archive(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<PathStat, berth_engine::Error>>();
    let (mut w, body) = crate::streams::ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        let mut tx = Some(tx);
        let res = e.archive_get(
            &id,
            &path,
            &mut |st| {
                if let Some(t) = tx.take() {
                    let _ = t.send(Ok(st.clone()));
                }
            },
            &mut w,
        );
        if let Err(err) = res {
            match tx.take() {
                Some(t) => {
                    let _ = t.send(Err(err));
                }
                None => w.fail(std::io::Error::other(err.to_string())),
            }
        }
    });
    let stat = rx.await.map_err(|_| ApiError::new(500, "archive: the copy stopped unexpectedly"))??;
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], [(STAT_HEADER, stat.header_value())], body).into_response())
}

async fn put_archive(State(e): State<S>, Path(id): Path<String>, Query(q): Query<Q>, body: Body) -> ApiResult<Response> {
    let path = path_of(&q)?;
    let o = ExtractOptions { no_overwrite_dir_non_dir: flag(&q, "noOverwriteDirNonDir"), copy_uid_gid: flag(&q, "copyUIDGID") };
    let mut r = crate::streams::body_reader(body);
    blocking(move || {
        let res = e.archive_put(&id, &path, o, &mut r);
        if res.is_err() {
            // Read what the client is still sending (within reason), so that it gets to read
            // the error instead of a broken pipe.
            let _ = std::io::copy(&mut std::io::Read::take(&mut r, DRAIN_LIMIT), &mut std::io::sink());
        }
        res
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// How much of a refused upload is read before the connection is dropped instead.
const DRAIN_LIMIT: u64 = 256 << 20;
