//! berth-server: the Docker Engine API over HTTP/1.1 on a unix socket, served from the engine.
//! Requests may carry a `/vX.YY` prefix (clients pin the version they negotiated); it is checked
//! and stripped before routing. Blocking engine calls run on tokio's blocking pool.

mod detach;
mod error;
mod hijack;
mod params;
mod routes;
mod streams;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, Uri};
use berth_engine::Engine;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

pub use axum::Router;
pub use error::ApiError;

fn version_tuple(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Strips `/vX.YY`; an unsupported version is refused as Docker refuses it.
fn strip_version(uri: &Uri) -> Result<Option<Uri>, String> {
    let path = uri.path();
    let Some(rest) = path.strip_prefix("/v") else { return Ok(None) };
    let (ver, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some(v) = version_tuple(ver) else { return Ok(None) };
    let max = version_tuple(berth_api::API_VERSION).unwrap_or_default();
    let min = version_tuple(berth_api::MIN_API_VERSION).unwrap_or_default();
    if v > max {
        return Err(format!("client version {ver} is too new. Maximum supported API version is {}", berth_api::API_VERSION));
    }
    if v < min {
        return Err(format!("client version {ver} is too old. Minimum supported API version is {}, please upgrade your client to a newer version", berth_api::MIN_API_VERSION));
    }
    let mut pq = tail.to_owned();
    if let Some(q) = uri.query() {
        pq.push('?');
        pq.push_str(q);
    }
    Ok(pq.parse().ok())
}

fn with_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static(berth_api::API_VERSION));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert("server", HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")));
    resp
}

/// The API's routes over the engine: build once, then serve any number of connections.
pub fn app(engine: Arc<Engine>) -> axum::Router {
    routes::router(engine)
}

/// Serves connections until the listener fails.
pub async fn serve(listener: tokio::net::UnixListener, engine: Arc<Engine>) -> std::io::Result<()> {
    let router = app(engine);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve_connection(stream, router.clone()));
    }
}

/// One client connection (a unix socket, or TLS over TCP): HTTP/1.1 with keep-alive and the
/// upgrades `attach` and `exec` use.
pub async fn serve_connection<IO>(io: IO, router: axum::Router)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        let router = router.clone();
        async move {
            match strip_version(req.uri()) {
                Ok(Some(u)) => *req.uri_mut() = u,
                Ok(None) => {}
                Err(msg) => return Ok::<_, Infallible>(with_headers(ApiError::bad_request(msg).into_response_body())),
            }
            let resp = router.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
            Ok(with_headers(resp))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await;
}

impl ApiError {
    fn into_response_body(self) -> Response<Body> {
        use axum::response::IntoResponse;
        let mut r = self.into_response();
        if r.status() == StatusCode::OK {
            *r.status_mut() = StatusCode::BAD_REQUEST;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        let u: Uri = "/v1.41/containers/json?all=1".parse().unwrap();
        assert_eq!(strip_version(&u).unwrap().unwrap(), "/containers/json?all=1");
        assert!(strip_version(&"/v9.99/info".parse().unwrap()).unwrap_err().contains("too new"));
        assert!(strip_version(&"/v1.12/info".parse().unwrap()).unwrap_err().contains("too old"));
        assert!(strip_version(&"/info".parse().unwrap()).unwrap().is_none());
        assert!(strip_version(&"/volumes/x".parse().unwrap()).unwrap().is_none());
    }
}
