//! `berth ps`: the docker CLI's container listing: same columns, truncation, quoting,
//! relative times, sizes, `-q`, `--no-trunc`, `--filter` and `--format` (table, template,
//! json).

use anyhow::{anyhow, Result};
use berth_api::container::ContainerSummary;

use super::lifecycle::filters;
use crate::cli::PsArgs;
use crate::format::json::Json;
use crate::format::units::{ago, go_time_string, human_size};
use crate::format::Format;
use crate::Ctx;

const DEFAULT: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
];

/// `stringid.TruncateID`: the hex part, 12 characters.
pub fn trunc_id(id: &str) -> String {
    let id = id.split_once(':').map(|x| x.1).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn ports(c: &ContainerSummary) -> String {
    let mut out: Vec<String> = c
        .ports
        .iter()
        .map(|p| {
            let private = p["PrivatePort"].as_i64().unwrap_or(0);
            let proto = p["Type"].as_str().unwrap_or("tcp");
            match p["PublicPort"].as_i64() {
                Some(public) if public > 0 => {
                    let ip = p["IP"].as_str().unwrap_or("");
                    let ip = if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() };
                    format!("{ip}:{public}->{private}/{proto}")
                }
                _ => format!("{private}/{proto}"),
            }
        })
        .collect();
    out.dedup();
    out.join(", ")
}

/// One row's fields, as the docker CLI's container context computes them.
fn row(c: &ContainerSummary, trunc: bool) -> Json {
    let id = if trunc { trunc_id(&c.id) } else { c.id.clone() };
    let mut image = if c.image.is_empty() { "<no image>".to_owned() } else { c.image.clone() };
    if trunc && trunc_id(&c.image_id) == trunc_id(&image) && image.starts_with("sha256:") {
        image = trunc_id(&image);
    } else if trunc {
        // A digest reference shows without its digest.
        if let Some((name, _)) = image.split_once('@') {
            image = name.to_owned();
        }
    }
    let command = go_quote(&if trunc { ellipsis(&c.command, 20) } else { c.command.clone() });
    let names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.trim_start_matches('/'))
        .filter(|n| !trunc || !n.contains('/'))
        .map(str::to_owned)
        .collect();
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() { m.source.as_str() } else { m.name.as_str() };
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_owned()
            }
        })
        .collect();
    let local_volumes = c.mounts.iter().filter(|m| m.driver == "local").count();
    let mut networks: Vec<String> = c.network_settings["Networks"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    networks.sort();
    let size = {
        let srw = human_size(c.size_rw.unwrap_or(0) as f64, 3);
        match c.size_root_fs {
            Some(v) if v > 0 => format!("{srw} (virtual {})", human_size(v as f64, 3)),
            _ => srw,
        }
    };
    let s = Json::str;
    Json::Obj(vec![
        ("Command".into(), s(command)),
        ("CreatedAt".into(), s(go_time_string(c.created))),
        ("ID".into(), s(id)),
        ("Image".into(), s(image)),
        ("Labels".into(), s(labels.join(","))),
        ("LocalVolumes".into(), s(local_volumes.to_string())),
        ("Mounts".into(), s(mounts.join(","))),
        ("Names".into(), s(names.join(","))),
        ("Networks".into(), s(networks.join(","))),
        ("Platform".into(), Json::Null),
        ("Ports".into(), s(ports(c))),
        ("RunningFor".into(), s(ago(c.created))),
        ("Size".into(), s(size)),
        ("State".into(), s(c.state.clone())),
        ("Status".into(), s(c.status.clone())),
        // Not a field of the JSON form: backs `{{.Label "key"}}`.
        ("Label".into(), Json::Obj(c.labels.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect())),
    ])
}

pub fn ps(c: &Ctx, a: &PsArgs) -> Result<i32> {
    let custom = a.format.as_deref().filter(|f| !f.is_empty() && *f != "table");
    let size = a.size || custom.is_some_and(|f| f.contains(".Size"));
    let limit = if a.latest { Some(1) } else { Some(a.last).filter(|n| *n != -1) };
    let list = c.client.container_list(a.all, limit, size, &filters(&a.filter)?)?;
    let trunc = !a.no_trunc;
    if a.quiet && custom.is_none() {
        let mut out = String::with_capacity(list.len() * 13);
        for ct in &list {
            out.push_str(if trunc { &ct.id[..ct.id.len().min(12)] } else { &ct.id });
            out.push('\n');
        }
        print!("{out}");
        return Ok(0);
    }
    let default = if a.size { format!("{DEFAULT}\t{{{{.Size}}}}") } else { DEFAULT.to_owned() };
    let fmt = Format::parse(a.format.as_deref(), &default, HEADERS).map_err(|e| anyhow!(e))?;
    let rows: Vec<Json> = list
        .iter()
        .map(|ct| {
            let mut r = row(ct, trunc);
            if matches!(fmt, Format::Json) {
                if let Json::Obj(m) = &mut r {
                    m.retain(|(k, _)| k != "Label");
                }
            }
            r
        })
        .collect();
    print!("{}", fmt.render(&rows, HEADERS).map_err(|e| anyhow!(e))?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_text_helpers() {
        assert_eq!(trunc_id("sha256:466173a49e155e6d25c9"), "466173a49e15");
        assert_eq!(ellipsis("sh -c 'echo out; echo err >&2'", 20), "sh -c 'echo out; ec…");
        assert_eq!(go_quote("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
    }

    #[test]
    fn rows_have_the_cli_fields() {
        let c = ContainerSummary {
            id: "7c1556a68d5c337460234facc8b6d2e5".into(),
            names: vec!["/web".into()],
            image: "busybox".into(),
            command: "sleep 1000".into(),
            state: "running".into(),
            status: "Up 2 seconds".into(),
            ..Default::default()
        };
        let r = row(&c, true);
        assert_eq!(r.get("ID").and_then(Json::as_str), Some("7c1556a68d5c"));
        assert_eq!(r.get("Command").and_then(Json::as_str), Some("\"sleep 1000\""));
        assert_eq!(r.get("Size").and_then(Json::as_str), Some("0B"));
    }
}
