//! `images`, `rmi`, `tag`, `history`, `image prune`: the docker CLI's rows and columns.

use anyhow::{anyhow, Result};
use berth_api::client::types::{ImageDeleteItem, ImageSummary};

use super::lifecycle::{confirm, filters, split_ref};
use super::ps::{ellipsis, trunc_id};
use super::run::report_failures;
use crate::cli::{HistoryArgs, ImagesArgs, PruneArgs, RmiArgs, SearchArgs, TagArgs};
use crate::format::json::Json;
use crate::format::units::{ago, go_time_string, human_size};
use crate::format::Format;
use crate::Ctx;

const DEFAULT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DEFAULT_DIGESTS: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// `docker.io/library/busybox` -> `busybox`: the familiar form Docker prints.
fn familiar(name: &str) -> &str {
    let n = name.strip_prefix("docker.io/").unwrap_or(name);
    n.strip_prefix("library/").filter(|r| !r.contains('/')).unwrap_or(n)
}

/// `repo:tag` -> (repo, tag), the tag after the last ':' that is not part of a host:port.
fn split_tag(r: &str) -> (String, String) {
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (familiar(repo).to_owned(), tag.to_owned()),
        _ => (familiar(r).to_owned(), "<none>".to_owned()),
    }
}

fn count_or_na(n: i64) -> String {
    if n < 0 {
        "N/A".into()
    } else {
        n.to_string()
    }
}

/// One row per tag (and per digest with --digests), as Docker's image context makes them.
fn rows(img: &ImageSummary, trunc: bool, digests: bool) -> Vec<Json> {
    let mut tags: Vec<(String, String)> = img.repo_tags.iter().filter(|t| *t != "<none>:<none>").map(|t| split_tag(t)).collect();
    tags.sort();
    let mut by_repo_digest: Vec<(String, String)> = img
        .repo_digests
        .iter()
        .filter(|d| *d != "<none>@<none>")
        .filter_map(|d| d.split_once('@').map(|(r, dg)| (familiar(r).to_owned(), dg.to_owned())))
        .collect();
    by_repo_digest.sort();
    let mut out: Vec<(String, String, String)> = Vec::new();
    for (repo, tag) in &tags {
        let ds: Vec<&String> = by_repo_digest.iter().filter(|(r, _)| r == repo).map(|(_, d)| d).collect();
        if !digests || ds.is_empty() {
            out.push((repo.clone(), tag.clone(), "<none>".into()));
        } else {
            out.extend(ds.into_iter().map(|d| (repo.clone(), tag.clone(), d.clone())));
        }
    }
    let mut digest_only: Vec<(String, String)> = by_repo_digest.iter().filter(|(r, _)| !tags.iter().any(|(t, _)| t == r)).cloned().collect();
    if !digests {
        digest_only.dedup_by(|a, b| a.0 == b.0);
    }
    for (repo, d) in digest_only {
        out.push((repo, "<none>".into(), if digests { d } else { "<none>".into() }));
    }
    if out.is_empty() {
        out.push(("<none>".into(), "<none>".into(), "<none>".into()));
    }
    let s = Json::str;
    out.into_iter()
        .map(|(repo, tag, digest)| {
            Json::Obj(vec![
                ("Containers".into(), s(count_or_na(img.containers))),
                ("CreatedAt".into(), s(go_time_string(img.created))),
                ("CreatedSince".into(), s(if img.created == 0 { "N/A".into() } else { ago(img.created) })),
                ("Digest".into(), s(digest)),
                ("ID".into(), s(if trunc { trunc_id(&img.id) } else { img.id.clone() })),
                ("Repository".into(), s(repo)),
                ("SharedSize".into(), s(if img.shared_size < 0 { "N/A".into() } else { human_size(img.shared_size as f64, 3) })),
                ("Size".into(), s(human_size(img.size as f64, 3))),
                ("Tag".into(), s(tag)),
                ("UniqueSize".into(), s(if img.shared_size < 0 { "N/A".into() } else { human_size((img.size - img.shared_size) as f64, 3) })),
                ("VirtualSize".into(), s(human_size(img.size as f64, 4))),
            ])
        })
        .collect()
}

pub fn images(c: &Ctx, a: &ImagesArgs) -> Result<i32> {
    let mut f = filters(&a.filter)?;
    if let Some(r) = &a.reference {
        f.push(("reference".into(), r.clone()));
    }
    let list = c.client.image_list(a.all, a.digests, &f)?;
    let trunc = !a.no_trunc;
    let all_rows: Vec<Json> = list.iter().flat_map(|i| rows(i, trunc, a.digests)).collect();
    let custom = a.format.as_deref().filter(|f| !f.is_empty() && *f != "table");
    if a.quiet && custom.is_none() {
        let mut out = String::new();
        for r in &all_rows {
            out.push_str(r.get("ID").and_then(Json::as_str).unwrap_or(""));
            out.push('\n');
        }
        print!("{out}");
        return Ok(0);
    }
    let default = if a.digests { DEFAULT_DIGESTS } else { DEFAULT };
    let fmt = Format::parse(a.format.as_deref(), default, HEADERS).map_err(|e| anyhow!(e))?;
    print!("{}", fmt.render(&all_rows, HEADERS).map_err(|e| anyhow!(e))?);
    Ok(0)
}

pub fn print_deleted(items: &[ImageDeleteItem]) {
    for d in items {
        if let Some(u) = &d.untagged {
            println!("Untagged: {u}");
        }
        if let Some(x) = &d.deleted {
            println!("Deleted: {x}");
        }
    }
}

pub fn rmi(c: &Ctx, a: &RmiArgs) -> Result<i32> {
    let mut failed = Vec::new();
    for n in &a.images {
        match c.client.image_remove(n, a.force, a.no_prune) {
            Ok(items) => print_deleted(&items),
            Err(e) => failed.push(e.to_string()),
        }
    }
    report_failures(failed)
}

pub fn tag(c: &Ctx, a: &TagArgs) -> Result<i32> {
    let (repo, tag) = split_ref(&a.target);
    c.client.image_tag(&a.source, &repo.unwrap_or_default(), tag.as_deref().unwrap_or(""))?;
    Ok(0)
}

const HISTORY_DEFAULT: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

fn rfc3339(unix: i64) -> String {
    crate::format::units::rfc3339_nano_fixed(unix, 0).replace(".000000000", "")
}

pub fn history(c: &Ctx, a: &HistoryArgs) -> Result<i32> {
    let items = c.client.image_history(&a.image)?;
    let trunc = !a.no_trunc;
    let s = Json::str;
    let rows: Vec<Json> = items
        .iter()
        .map(|h| {
            let id = if trunc && h.id != "<missing>" { trunc_id(&h.id) } else { h.id.clone() };
            let by = h.created_by.replace('\t', " ");
            Json::Obj(vec![
                ("Comment".into(), s(h.comment.clone())),
                ("CreatedAt".into(), s(rfc3339(h.created))),
                ("CreatedBy".into(), s(if trunc { ellipsis(&by, 45) } else { by })),
                ("CreatedSince".into(), s(if a.human { ago(h.created) } else { rfc3339(h.created) })),
                ("ID".into(), s(id)),
                ("Size".into(), s(if a.human { human_size(h.size as f64, 3) } else { h.size.to_string() })),
            ])
        })
        .collect();
    let custom = a.format.as_deref().filter(|f| !f.is_empty() && *f != "table");
    if a.quiet && custom.is_none() {
        for r in &rows {
            println!("{}", r.get("ID").and_then(Json::as_str).unwrap_or(""));
        }
        return Ok(0);
    }
    let fmt = Format::parse(a.format.as_deref(), HISTORY_DEFAULT, HISTORY_HEADERS).map_err(|e| anyhow!(e))?;
    print!("{}", fmt.render(&rows, HISTORY_HEADERS).map_err(|e| anyhow!(e))?);
    Ok(0)
}

pub fn prune(c: &Ctx, a: &PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut f = filters(&a.filter)?;
    f.push(("dangling".into(), if a.all { "false" } else { "true" }.into()));
    let r = c.client.image_prune(&f)?;
    if !r.images_deleted.is_empty() {
        println!("Deleted Images:");
        for d in &r.images_deleted {
            if let Some(u) = &d.untagged {
                println!("untagged: {u}");
            }
            if let Some(x) = &d.deleted {
                println!("deleted: {x}");
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(r.space_reclaimed as f64, 4));
    Ok(0)
}

const SEARCH_DEFAULT: &str = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";
const SEARCH_HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
];

/// One search result as the docker CLI's search context shows it.
fn search_row(r: &serde_json::Value, trunc: bool) -> Json {
    let s = Json::str;
    // Docker 25+ dropped IsAutomated (Docker Hub no longer has automated builds).
    let official = if r["is_official"].as_bool().unwrap_or(false) { "[OK]" } else { "" };
    let desc = r["description"].as_str().unwrap_or("").replace(['\n', '\r'], " ");
    Json::Obj(vec![
        ("Description".into(), s(if trunc { ellipsis(&desc, 45) } else { desc })),
        ("IsOfficial".into(), s(official.to_owned())),
        ("Name".into(), s(r["name"].as_str().unwrap_or("").to_owned())),
        ("StarCount".into(), s(r["star_count"].as_u64().unwrap_or(0).to_string())),
    ])
}

pub fn search(c: &Ctx, a: &SearchArgs) -> Result<i32> {
    let results = c.client.image_search(&a.term, a.limit, &filters(&a.filter)?)?;
    let rows: Vec<Json> = results.iter().map(|r| search_row(r, !a.no_trunc)).collect();
    let fmt = Format::parse(a.format.as_deref(), SEARCH_DEFAULT, SEARCH_HEADERS).map_err(|e| anyhow!(e))?;
    print!("{}", fmt.render(&rows, SEARCH_HEADERS).map_err(|e| anyhow!(e))?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag_and_dangling() {
        let img = ImageSummary {
            id: "sha256:466173a49e155e6d25c907711d678c0e".into(),
            repo_tags: vec!["busybox:latest".into(), "localhost:5000/app:1".into()],
            size: 1982430,
            created: 1,
            ..Default::default()
        };
        let r = rows(&img, true, false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].get("Repository").and_then(Json::as_str), Some("busybox"));
        assert_eq!(r[1].get("Repository").and_then(Json::as_str), Some("localhost:5000/app"));
        assert_eq!(r[0].get("Size").and_then(Json::as_str), Some("1.98MB"));
        let dangling = ImageSummary { id: "sha256:ab".into(), ..Default::default() };
        assert_eq!(rows(&dangling, true, false)[0].get("Tag").and_then(Json::as_str), Some("<none>"));
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar("docker.io/me/app"), "me/app");
    }
}
