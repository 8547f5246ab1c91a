//! `version`, `info`, `events`, `system df`, `system prune`.

use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use berth_api::client::JsonLines;

use super::lifecycle::{confirm, filters};
use crate::cli::{DfArgs, EventsArgs, FormatOnly, PruneArgs};
use crate::format::json::Json;
use crate::format::table::TabWriter;
use crate::format::template::Template;
use crate::format::units::{ago, bytes_size, get_timestamp, human_size, rfc3339_nano_fixed};
use crate::Ctx;

fn template(f: &str) -> Result<Template> {
    let f = if f == "json" { "{{json .}}" } else { f };
    Template::parse(f).map_err(|e| anyhow!("template parsing error: {e}"))
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn client_version() -> Json {
    let s = Json::str;
    Json::Obj(vec![
        ("Platform".into(), Json::Obj(vec![("Name".into(), s("Berth"))])),
        ("Version".into(), s(env!("CARGO_PKG_VERSION"))),
        ("APIVersion".into(), s(berth_api::API_VERSION)),
        ("DefaultAPIVersion".into(), s(berth_api::API_VERSION)),
        ("GitCommit".into(), s(option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"))),
        ("GoVersion".into(), s("")),
        ("Os".into(), s(std::env::consts::OS)),
        ("Arch".into(), s(arch())),
        ("BuildTime".into(), s("")),
        ("Context".into(), s("default")),
    ])
}

pub fn version(c: &Ctx, a: &FormatOnly) -> Result<i32> {
    let client = client_version();
    let server = c.client.version_raw().map(|b| Json::parse(&b)).map_err(anyhow::Error::from);
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let server = server?;
        let all = Json::Obj(vec![("Client".into(), client), ("Server".into(), server?)]);
        println!("{}", template(f)?.render(&all).map_err(|e| anyhow!(e))?);
        return Ok(0);
    }
    let g = |j: &Json, k: &str| j.get(k).map(|v| match v {
        Json::Str(s) => s.clone(),
        o => o.to_compact(),
    }).unwrap_or_default();
    // Docker's version template through a (20, 1) tabwriter.
    let mut w = TabWriter::new(20, 1);
    let mut t = String::new();
    let _ = writeln!(t, "Client: Berth\n Version:\t{}\n API version:\t{}\n Git commit:\t{}\n OS/Arch:\t{}/{}\n Context:\tdefault", g(&client, "Version"), berth_api::API_VERSION, g(&client, "GitCommit"), std::env::consts::OS, arch());
    match server {
        Ok(Ok(sv)) => {
            let name = sv.get("Platform").map(|p| g(p, "Name")).unwrap_or_default();
            let _ = writeln!(t, "\nServer: {name}");
            let comps = match sv.get("Components") {
                Some(Json::Arr(a)) => a.clone(),
                _ => vec![],
            };
            for comp in comps {
                let d = comp.get("Details").cloned().unwrap_or_default();
                let _ = writeln!(t, " {}:", g(&comp, "Name"));
                let _ = writeln!(t, "  Version:\t{}", g(&comp, "Version"));
                if g(&comp, "Name") == "Engine" {
                    let _ = writeln!(t, "  API version:\t{} (minimum version {})", g(&d, "ApiVersion"), g(&d, "MinAPIVersion"));
                    let _ = writeln!(t, "  Git commit:\t{}\n  Built:\t{}\n  OS/Arch:\t{}/{}\n  Experimental:\t{}", g(&d, "GitCommit"), g(&d, "BuildTime"), g(&d, "Os"), g(&d, "Arch"), g(&sv, "Experimental"));
                }
            }
            w.write(&t);
            print!("{}", w.finish());
            Ok(0)
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => {
            w.write(&t);
            print!("{}", w.finish());
            Err(e)
        }
    }
}

pub fn info(c: &Ctx, a: &FormatOnly) -> Result<i32> {
    let raw = c.client.info_raw()?;
    let v = Json::parse(&raw)?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        println!("{}", template(f)?.render(&v).map_err(|e| anyhow!(e))?);
        return Ok(0);
    }
    let g = |k: &str| match v.get(k) {
        Some(Json::Str(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(o) => o.to_compact(),
    };
    let mut o = String::new();
    let _ = writeln!(o, "Client: Berth\n Version:    {}\n Context:    default\n Debug Mode: false\n\nServer:", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(o, " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}", g("Containers"), g("ContainersRunning"), g("ContainersPaused"), g("ContainersStopped"));
    let _ = writeln!(o, " Images: {}\n Server Version: {}\n Storage Driver: {}", g("Images"), g("ServerVersion"), g("Driver"));
    if let Some(Json::Arr(ds)) = v.get("DriverStatus") {
        for d in ds {
            if let Json::Arr(kv) = d {
                let s = |i: usize| kv.get(i).and_then(Json::as_str).unwrap_or("").to_owned();
                let _ = writeln!(o, "  {}: {}", s(0), s(1));
            }
        }
    }
    let _ = writeln!(o, " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}", g("LoggingDriver"), g("CgroupDriver"), g("CgroupVersion"));
    let runtimes = match v.get("Runtimes") {
        Some(Json::Obj(m)) => m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    };
    let _ = writeln!(o, " Runtimes: {runtimes}\n Default Runtime: {}\n Init Binary: {}", g("DefaultRuntime"), g("InitBinary"));
    if let Some(Json::Arr(so)) = v.get("SecurityOptions") {
        let _ = writeln!(o, " Security Options:");
        for s in so.iter().filter_map(Json::as_str) {
            let name = s.split(',').find_map(|kv| kv.strip_prefix("name=")).unwrap_or(s);
            let _ = writeln!(o, "  {name}");
        }
    }
    let mem = v.get("MemTotal").and_then(Json::as_i64).unwrap_or(0);
    let _ = writeln!(o, " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}", g("KernelVersion"), g("OperatingSystem"), g("OSType"), g("Architecture"), g("NCPU"), bytes_size(mem as f64));
    let _ = writeln!(o, " Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n Experimental: {}\n Live Restore Enabled: {}", g("Name"), g("ID"), g("DockerRootDir"), g("Debug"), g("ExperimentalBuild"), g("LiveRestoreEnabled"));
    print!("{o}");
    if let Some(Json::Arr(ws)) = v.get("Warnings") {
        for w in ws.iter().filter_map(Json::as_str) {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

/// Docker's `prettyPrintEvent`.
fn pretty_event(ev: &Json) -> String {
    let nano = ev.get("timeNano").and_then(Json::as_i64).unwrap_or(0);
    let secs = ev.get("time").and_then(Json::as_i64).unwrap_or(0);
    let mut out = String::new();
    if nano != 0 {
        out.push_str(&rfc3339_nano_fixed(nano.div_euclid(1_000_000_000), nano.rem_euclid(1_000_000_000) as u32));
        out.push(' ');
    } else if secs != 0 {
        out.push_str(&rfc3339_nano_fixed(secs, 0));
        out.push(' ');
    }
    let s = |k: &str| ev.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    let actor = ev.get("Actor").cloned().unwrap_or_default();
    let _ = write!(out, "{} {} {}", s("Type"), s("Action"), actor.get("ID").and_then(Json::as_str).unwrap_or(""));
    if let Some(Json::Obj(attrs)) = actor.get("Attributes") {
        if !attrs.is_empty() {
            let mut kv: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
            kv.sort();
            let _ = write!(out, " ({})", kv.join(", "));
        }
    }
    out
}

pub fn events(c: &Ctx, a: &EventsArgs) -> Result<i32> {
    let ts = |v: &Option<String>| v.as_deref().map(get_timestamp).transpose().map_err(|e| anyhow!(e));
    let tmpl = a.format.as_deref().filter(|f| !f.is_empty()).map(template).transpose()?;
    let r = c.client.events(ts(&a.since)?.as_deref(), ts(&a.until)?.as_deref(), &filters(&a.filter)?)?;
    super::stream::ignore_sigpipe();
    let mut lines = JsonLines::new(r.body);
    let mut out = std::io::stdout();
    while let Some(raw) = lines.next_raw()? {
        let ev = Json::parse(raw)?;
        let line = match &tmpl {
            Some(t) => t.render(&ev).map_err(|e| anyhow!(e))?,
            None => pretty_event(&ev),
        };
        use std::io::Write;
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(0)
}

fn pct(part: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", human_size(part as f64, 4), part * 100 / total)
    } else {
        human_size(part as f64, 4)
    }
}

pub fn df(c: &Ctx, a: &DfArgs) -> Result<i32> {
    let v = Json::parse(&c.client.system_df_raw()?)?;
    let arr = |k: &str| match v.get(k) {
        Some(Json::Arr(a)) => a.clone(),
        _ => vec![],
    };
    let (images, containers, volumes) = (arr("Images"), arr("Containers"), arr("Volumes"));
    let i64_of = |j: &Json, k: &str| j.get(k).and_then(Json::as_i64).unwrap_or(0);
    let layers = v.get("LayersSize").and_then(Json::as_i64).unwrap_or(0);
    let active_imgs = images.iter().filter(|i| i64_of(i, "Containers") > 0).count();
    let used: i64 = images
        .iter()
        .filter(|i| i64_of(i, "Containers") > 0 && i64_of(i, "SharedSize") >= 0)
        .map(|i| i64_of(i, "Size") - i64_of(i, "SharedSize"))
        .sum();
    let running = |c: &Json| matches!(c.get("State").and_then(Json::as_str), Some("running" | "paused"));
    let csize: i64 = containers.iter().map(|c| i64_of(c, "SizeRw")).sum();
    let creclaim: i64 = containers.iter().filter(|c| !running(c)).map(|c| i64_of(c, "SizeRw")).sum();
    let usage = |v: &Json, k: &str| v.get("UsageData").and_then(|u| u.get(k)).and_then(Json::as_i64).unwrap_or(0);
    let vsize: i64 = volumes.iter().map(|v| usage(v, "Size").max(0)).sum();
    let vreclaim: i64 = volumes.iter().filter(|v| usage(v, "RefCount") == 0).map(|v| usage(v, "Size").max(0)).sum();
    let vactive = volumes.iter().filter(|v| usage(v, "RefCount") > 0).count();
    let s = |x: String| Json::Str(x);
    let row = |t: &str, total: usize, active: usize, size: String, recl: String| {
        Json::Obj(vec![
            ("Type".into(), s(t.to_owned())),
            ("TotalCount".into(), s(total.to_string())),
            ("Active".into(), s(active.to_string())),
            ("Size".into(), s(size)),
            ("Reclaimable".into(), s(recl)),
        ])
    };
    let rows = vec![
        row("Images", images.len(), active_imgs, human_size(layers as f64, 4), pct(layers - used, layers)),
        row("Containers", containers.len(), containers.iter().filter(|c| running(c)).count(), human_size(csize as f64, 4), pct(creclaim, csize)),
        row("Local Volumes", volumes.len(), vactive, human_size(vsize as f64, 4), pct(vreclaim, vsize)),
        row("Build Cache", 0, 0, "0B".into(), "0B".into()),
    ];
    let headers = &[("Type", "TYPE"), ("TotalCount", "TOTAL"), ("Active", "ACTIVE"), ("Size", "SIZE"), ("Reclaimable", "RECLAIMABLE")];
    if !a.verbose {
        let fmt = crate::format::Format::parse(a.format.as_deref(), "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", headers).map_err(|e| anyhow!(e))?;
        print!("{}", fmt.render(&rows, headers).map_err(|e| anyhow!(e))?);
        return Ok(0);
    }
    let mut w = TabWriter::default();
    w.write("Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n");
    for i in &images {
        let tags = match i.get("RepoTags") {
            Some(Json::Arr(t)) if !t.is_empty() => t.iter().filter_map(Json::as_str).map(str::to_owned).collect(),
            _ => vec!["<none>:<none>".to_owned()],
        };
        let shared = i64_of(i, "SharedSize");
        let na = |x: i64| if shared < 0 { "N/A".to_owned() } else { human_size(x as f64, 3) };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
            let id = super::ps::trunc_id(i.get("Id").and_then(Json::as_str).unwrap_or(""));
            let _ = writeln!(w_buf(&mut w), "{repo}\t{tag}\t{id}\t{}\t{}\t{}\t{}\t{}", ago(i64_of(i, "Created")), human_size(i64_of(i, "Size") as f64, 3), na(shared), na(i64_of(i, "Size") - shared), i64_of(i, "Containers"));
        }
    }
    w.write("\nContainers space usage:\n\nCONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for ct in &containers {
        let g = |k: &str| ct.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
        let names = match ct.get("Names") {
            Some(Json::Arr(n)) => n.iter().filter_map(Json::as_str).map(|x| x.trim_start_matches('/')).collect::<Vec<_>>().join(","),
            _ => String::new(),
        };
        let cmd = super::ps::go_quote(&super::ps::ellipsis(&g("Command"), 20));
        let local = match ct.get("Mounts") {
            Some(Json::Arr(m)) => m.iter().filter(|m| m.get("Driver").and_then(Json::as_str) == Some("local")).count(),
            _ => 0,
        };
        let _ = writeln!(w_buf(&mut w), "{}\t{}\t{cmd}\t{local}\t{}\t{}\t{}\t{names}", super::ps::trunc_id(&g("Id")), g("Image"), human_size(i64_of(ct, "SizeRw") as f64, 3), ago(i64_of(ct, "Created")), g("Status"));
    }
    w.write("\nLocal Volumes space usage:\n\nVOLUME NAME\tLINKS\tSIZE\n");
    for v in &volumes {
        let name = v.get("Name").and_then(Json::as_str).unwrap_or("");
        let _ = writeln!(w_buf(&mut w), "{name}\t{}\t{}", usage(v, "RefCount"), human_size(usage(v, "Size") as f64, 3));
    }
    w.write("\nBuild cache usage: 0B\n\nCACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n");
    print!("{}", w.finish());
    Ok(0)
}

/// Lets `writeln!` append to a TabWriter.
fn w_buf(w: &mut TabWriter) -> TabBuf<'_> {
    TabBuf(w)
}

struct TabBuf<'a>(&'a mut TabWriter);

impl std::fmt::Write for TabBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s);
        Ok(())
    }
}

pub fn prune(c: &Ctx, a: &PruneArgs) -> Result<i32> {
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - {}\n",
        if a.all { "all images without at least one container associated to them" } else { "all dangling images" }
    );
    if !a.force && !confirm(&warning) {
        return Ok(0);
    }
    let f = filters(&a.filter)?;
    let cr = c.client.container_prune(&f)?;
    let deleted = cr.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    let mut fi = f.clone();
    fi.push(("dangling".into(), if a.all { "false" } else { "true" }.into()));
    let ir = c.client.image_prune(&fi)?;
    if !ir.images_deleted.is_empty() {
        println!("Deleted Images:");
        for d in &ir.images_deleted {
            if let Some(u) = &d.untagged {
                println!("untagged: {u}");
            }
            if let Some(x) = &d.deleted {
                println!("deleted: {x}");
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size((cr.space_reclaimed + ir.space_reclaimed) as f64, 4));
    Ok(0)
}
