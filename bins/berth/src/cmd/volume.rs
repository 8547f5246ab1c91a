//! `volume create|ls|inspect|rm|prune`, printed as the docker CLI prints them.

use anyhow::{anyhow, Result};
use berth_api::volume::{Volume, VolumeCreateRequest};

use super::lifecycle::{confirm, filters};
use super::run::report_failures;
use crate::cli::volume::{VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumeRmArgs};
use crate::cli::{InspectArgs, PruneArgs};
use crate::format::json::Json;
use crate::format::units::human_size;
use crate::format::Format;
use crate::Ctx;

const DEFAULT: &str = "table {{.Driver}}\t{{.Name}}";
const HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];


pub fn create(c: &Ctx, a: &VolumeCreateArgs) -> Result<i32> {
    let name = match (&a.name, &a.volume) {
        (Some(n), Some(v)) if n != v => return Err(anyhow!("conflicting options: cannot specify a volume-name through both --name and as a positional arg")),
        (n, v) => n.clone().or_else(|| v.clone()).unwrap_or_default(),
    };
    let labels = super::key_values(&a.label, "label")?;
    let opts = super::key_values(&a.opt, "opt")?;
    let req = VolumeCreateRequest {
        name,
        driver: a.driver.clone(),
        driver_opts: (!opts.is_empty()).then_some(opts),
        labels: (!labels.is_empty()).then_some(labels),
    };
    println!("{}", c.client.volume_create(&req)?.name);
    Ok(0)
}

fn row(v: &Volume) -> Json {
    let s = Json::str;
    let labels = v.labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let usage = v.usage_data.unwrap_or(berth_api::volume::UsageData { size: -1, ref_count: -1 });
    Json::Obj(vec![
        ("Driver".into(), s(v.driver.clone())),
        ("Labels".into(), s(labels)),
        ("Links".into(), s(if usage.ref_count < 0 { "N/A".into() } else { usage.ref_count.to_string() })),
        ("Mountpoint".into(), s(v.mountpoint.clone())),
        ("Name".into(), s(v.name.clone())),
        ("Scope".into(), s(v.scope.clone())),
        ("Size".into(), s(if usage.size < 0 { "N/A".into() } else { human_size(usage.size as f64, 3) })),
    ])
}

pub fn ls(c: &Ctx, a: &VolumeLsArgs) -> Result<i32> {
    let mut list = c.client.volume_list(&filters(&a.filter)?)?.volumes;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    let custom = a.format.as_deref().filter(|f| !f.is_empty() && *f != "table");
    if a.quiet && custom.is_none() {
        let out: String = list.iter().map(|v| format!("{}\n", v.name)).collect();
        print!("{out}");
        return Ok(0);
    }
    let rows: Vec<Json> = list.iter().map(row).collect();
    let fmt = Format::parse(a.format.as_deref(), DEFAULT, HEADERS).map_err(|e| anyhow!(e))?;
    print!("{}", fmt.render(&rows, HEADERS).map_err(|e| anyhow!(e))?);
    Ok(0)
}

pub fn inspect(c: &Ctx, a: &VolumeInspectArgs) -> Result<i32> {
    let args = InspectArgs { format: a.format.clone(), size: false, kind: None, names: a.names.clone() };
    super::inspect::inspect(c, &args, Some("volume"))
}

pub fn rm(c: &Ctx, a: &VolumeRmArgs) -> Result<i32> {
    let mut failed = Vec::new();
    for v in &a.volumes {
        match c.client.volume_remove(v, a.force) {
            Ok(()) => println!("{v}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    report_failures(failed)
}

pub fn prune(c: &Ctx, a: &PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut f = filters(&a.filter)?;
    if a.all {
        f.push(("all".into(), "true".into()));
    }
    let r = c.client.volume_prune(&f)?;
    let mut out = String::new();
    if !r.volumes_deleted.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for v in &r.volumes_deleted {
            out.push_str(v);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("Total reclaimed space: {}\n", human_size(r.space_reclaimed as f64, 4)));
    print!("{out}");
    Ok(0)
}
