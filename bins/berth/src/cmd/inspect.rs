//! `inspect`: the daemon's JSON re-indented as the docker CLI does, or `-f` templates over it
//! (field order kept, so `{{json .Config}}` matches Docker's).

use anyhow::{anyhow, Result};
use berth_api::client;

use crate::cli::InspectArgs;
use crate::format::json::{indent, Json};
use crate::format::template::Template;
use crate::{Ctx, Exit};

/// Finds `name` as a container or an image (or only `kind`); the raw JSON or the error text.
fn lookup(c: &Ctx, name: &str, kind: Option<&str>, size: bool) -> Result<Result<Vec<u8>, String>> {
    let not_found = |e: &client::Error| e.is_not_found();
    match kind {
        Some("container") => match c.client.container_inspect_raw(name, size) {
            Err(e) if not_found(&e) => Ok(Err(e.to_string())),
            r => Ok(Ok(r?)),
        },
        Some("image") => match c.client.image_inspect_raw(name) {
            Err(e) if not_found(&e) => Ok(Err(e.to_string())),
            r => Ok(Ok(r?)),
        },
        Some("volume") => match c.client.volume_inspect_raw(name) {
            Err(e) if not_found(&e) => Ok(Err(e.to_string())),
            r => Ok(Ok(r?)),
        },
        Some("network") => match c.client.network_inspect_raw(name) {
            Err(e) if not_found(&e) => Ok(Err(e.to_string())),
            r => Ok(Ok(r?)),
        },
        Some(k) => Err(anyhow!("\"{k}\" is not a valid value for --type")),
        None => match c.client.container_inspect_raw(name, size) {
            Err(e) if not_found(&e) => match c.client.image_inspect_raw(name) {
                Err(e) if not_found(&e) => match c.client.volume_inspect_raw(name) {
                    Err(e) if not_found(&e) => match c.client.network_inspect_raw(name) {
                        Err(e) if not_found(&e) => Ok(Err(format!("Error: No such object: {name}"))),
                        r => Ok(Ok(r?)),
                    },
                    r => Ok(Ok(r?)),
                },
                r => Ok(Ok(r?)),
            },
            r => Ok(Ok(r?)),
        },
    }
}

pub fn inspect(c: &Ctx, a: &InspectArgs, kind: Option<&str>) -> Result<i32> {
    let kind = a.kind.as_deref().or(kind);
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}").map_err(|e| anyhow!(e))?),
        Some(f) => Some(Template::parse(f).map_err(|e| anyhow!("template parsing error: {e}"))?),
    };
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match lookup(c, n, kind, a.size)? {
            Ok(raw) => raws.push(raw),
            Err(e) => errors.push(e),
        }
    }
    let mut out = String::new();
    match &tmpl {
        None => {
            let mut all = b"[".to_vec();
            for (i, r) in raws.iter().enumerate() {
                if i > 0 {
                    all.push(b',');
                }
                all.extend_from_slice(r);
            }
            all.push(b']');
            out.push_str(&indent(&all, "    "));
            out.push('\n');
        }
        Some(t) => {
            for r in &raws {
                let v = Json::parse(r)?;
                match t.render(&v) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => {
                        print!("{out}");
                        return Err(anyhow!("template: :1: executing \"\" at <.>: {e}"));
                    }
                }
            }
        }
    }
    print!("{out}");
    if errors.is_empty() {
        return Ok(0);
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Err(Exit(1).into())
}
