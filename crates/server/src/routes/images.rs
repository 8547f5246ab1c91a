//! /images/... Image names contain slashes (`localhost:5000/app:1`), so the routes under
//! /images/{name} are matched here by their last segment.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_image::store::{DeleteResponse, ListFilters};

use super::{blocking, State as S};
use crate::error::{ApiError, ApiResult};
use crate::params::{self, flag, Query as Q};
use crate::streams::{body_reader, ChannelWriter};

fn delete_json(d: &[DeleteResponse]) -> serde_json::Value {
    d.iter()
        .map(|x| match x {
            DeleteResponse::Untagged(s) => serde_json::json!({ "Untagged": s }),
            DeleteResponse::Deleted(s) => serde_json::json!({ "Deleted": s }),
        })
        .collect()
}

pub async fn list(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let f = params::filters(&q)?;
    let mut lf = ListFilters::default();
    for (k, vals) in f {
        match k.as_str() {
            "dangling" => lf.dangling = vals.first().map(|v| v == "true" || v == "1"),
            "reference" => lf.reference = vals,
            "label" => lf.label = vals,
            "before" => lf.before = vals.into_iter().next(),
            "since" => lf.since = vals.into_iter().next(),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        }
    }
    let mut v = serde_json::to_value(blocking(move || Ok(e.images.list(&lf)?)).await?).unwrap_or_default();
    if let Some(a) = v.as_array_mut() {
        for img in a {
            img["Containers"] = serde_json::json!(img["Containers"].as_i64().unwrap_or(-1));
        }
    }
    Ok(Json(v).into_response())
}

pub async fn load(State(e): State<S>, Query(q): Query<Q>, body: Body) -> ApiResult<Response> {
    // `quiet` only silences progress bars, which a local load does not draw.
    let _ = flag(&q, "quiet");
    let reader = body_reader(body);
    let loaded = blocking(move || e.load_images(reader)).await?;
    let mut out = Vec::new();
    for l in loaded {
        let lines: Vec<String> = if l.tags.is_empty() {
            vec![format!("Loaded image ID: {}\n", l.id)]
        } else {
            l.tags.iter().map(|t| format!("Loaded image: {}\n", t.familiar_string())).collect()
        };
        for line in lines {
            out.extend(serde_json::to_vec(&serde_json::json!({ "stream": line })).unwrap_or_default());
            out.push(b'\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

async fn save(e: S, names: Vec<String>) -> ApiResult<Response> {
    // Resolve first so that a bad name is a clean 404, not a truncated tar.
    for n in &names {
        let e = e.clone();
        let n = n.clone();
        blocking(move || Ok(e.images.meta().resolve(&n)?)).await?;
    }
    let (mut w, body) = ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        if let Err(err) = e.save_images(&names, &mut w) {
            w.fail(std::io::Error::other(err.to_string()));
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

pub async fn save_many(State(e): State<S>, axum::extract::RawQuery(raw): axum::extract::RawQuery) -> ApiResult<Response> {
    // `names` repeats: ?names=a&names=b.
    let names: Vec<String> = url_pairs(raw.as_deref().unwrap_or("")).into_iter().filter(|(k, _)| k == "names").map(|(_, v)| v).collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no images named"));
    }
    save(e, names).await
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// Splits `name/json` etc. into (image name, action).
fn split_action(rest: &str) -> (&str, &str) {
    match rest.rsplit_once('/') {
        Some((name, action)) if matches!(action, "json" | "history" | "get" | "tag" | "push") => (name, action),
        _ => (rest, ""),
    }
}

pub async fn get_dispatch(State(e): State<S>, Path(rest): Path<String>, Query(_q): Query<Q>) -> ApiResult<Response> {
    let (name, action) = split_action(&rest);
    let name = name.to_owned();
    match action {
        "json" => Ok(Json(blocking(move || Ok(e.images.inspect(&name)?)).await?).into_response()),
        "history" => Ok(Json(blocking(move || Ok(e.images.history(&name)?)).await?).into_response()),
        "get" => save(e, vec![name]).await,
        _ => Err(ApiError::not_found(format!("page not found: GET /images/{rest}"))),
    }
}

pub async fn post_dispatch(State(e): State<S>, method: Method, headers: HeaderMap, Path(rest): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let (name, action) = split_action(&rest);
    let name = name.to_owned();
    match action {
        "push" => super::registry::push(e, &headers, name, q.get("tag").cloned()).await,
        "tag" => {
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_default();
            if repo.is_empty() {
                return Err(ApiError::bad_request("repository name must have at least one component"));
            }
            blocking(move || e.tag_image(&name, &repo, &tag)).await?;
            Ok(axum::http::StatusCode::CREATED.into_response())
        }
        _ => Err(ApiError::not_found(format!("page not found: {method} /images/{rest}"))),
    }
}

pub async fn remove(State(e): State<S>, Path(name): Path<String>, Query(q): Query<Q>) -> ApiResult<Response> {
    let force = flag(&q, "force");
    let out = blocking(move || e.remove_image(&name, force)).await?;
    Ok(Json(delete_json(&out)).into_response())
}

pub async fn prune(State(e): State<S>, Query(q): Query<Q>) -> ApiResult<Response> {
    let f = params::filters(&q)?;
    let all = f.get("dangling").and_then(|v| v.first()).is_some_and(|v| v == "false" || v == "0");
    let report = blocking(move || Ok(e.images.prune(all)?)).await?;
    Ok(Json(serde_json::json!({
        "ImagesDeleted": if report.deleted.is_empty() { serde_json::Value::Null } else { delete_json(&report.deleted) },
        "SpaceReclaimed": report.space_reclaimed,
    }))
    .into_response())
}

/// `POST /images/create`: `fromSrc=-` imports the body as a filesystem tarball (`docker
/// import`); `fromImage` pulls from a registry (`registry.rs`).
pub async fn create(State(e): State<S>, headers: HeaderMap, axum::extract::RawQuery(raw): axum::extract::RawQuery, body: Body) -> ApiResult<Response> {
    let pairs = url_pairs(raw.as_deref().unwrap_or(""));
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let changes: Vec<String> = pairs.iter().filter(|(k, _)| k == "changes").map(|(_, v)| v.clone()).collect();
    match (get("fromSrc"), get("fromImage")) {
        (Some(src), _) if src == "-" => {
            let tag = match get("repo") {
                Some(repo) => {
                    let t = get("tag").map(|t| format!("{repo}:{t}")).unwrap_or(repo);
                    Some(berth_image::Reference::parse_normalized(&t)?)
                }
                None => None,
            };
            let message = get("message");
            let reader = body_reader(body);
            let id = blocking(move || {
                let id = e.images.import(reader, &changes, message.as_deref(), tag.as_ref())?;
                e.events.emit("image", "import", &id.to_string(), Default::default());
                Ok(id)
            })
            .await?;
            let line = serde_json::json!({ "status": id.to_string() });
            Ok(([(header::CONTENT_TYPE, "application/json")], format!("{line}\n")).into_response())
        }
        (Some(src), _) => Err(ApiError::bad_request(format!("importing from a URL ({src}) is not supported: pipe the file with `import -`"))),
        (None, Some(img)) => super::registry::pull(e, &headers, img, get("tag"), get("platform")).await,
        (None, None) => Err(ApiError::bad_request("fromImage or fromSrc is required")),
    }
}
