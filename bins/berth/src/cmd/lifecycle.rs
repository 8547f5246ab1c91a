//! Commands over existing containers: stop/restart, kill, rm, pause/unpause, wait, rename,
//! update, top, diff, commit, export, port, container prune.

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Result};
use berth_api::client::{CommitOptions, UpdateOptions};

use super::run::report_failures;
use crate::cli::{CommitArgs, Containers, ExportArgs, KillArgs, OneContainer, PortArgs, PruneArgs, RenameArgs, RmArgs, StopArgs, TopArgs, UpdateArgs};
use crate::format::table::TabWriter;
use crate::format::units::human_size;
use crate::{config, Ctx};

/// Runs `f` on each container, printing the name as given on success (Docker's output).
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), berth_api::client::Error>) -> Result<i32> {
    let mut failed = Vec::new();
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    report_failures(failed)
}

pub fn stop(c: &Ctx, a: &StopArgs, restart: bool) -> Result<i32> {
    let sig = a.signal.as_deref();
    each(&a.containers, |n| if restart { c.client.container_restart(n, a.timeout, sig) } else { c.client.container_stop(n, a.timeout, sig) })
}

pub fn kill(c: &Ctx, a: &KillArgs) -> Result<i32> {
    each(&a.containers, |n| c.client.container_kill(n, a.signal.as_deref()))
}

pub fn rm(c: &Ctx, a: &RmArgs) -> Result<i32> {
    each(&a.containers, |n| c.client.container_remove(n.trim_start_matches('/'), a.force, a.volumes))
}

pub fn pause(c: &Ctx, a: &Containers, on: bool) -> Result<i32> {
    each(&a.containers, |n| if on { c.client.container_pause(n) } else { c.client.container_unpause(n) })
}

pub fn wait(c: &Ctx, a: &Containers) -> Result<i32> {
    let mut failed = Vec::new();
    for n in &a.containers {
        match c.client.container_wait(n, "not-running").and_then(|w| w.result()) {
            Ok(r) => println!("{}", r.status_code),
            Err(e) => failed.push(e.to_string()),
        }
    }
    report_failures(failed)
}

pub fn rename(c: &Ctx, a: &RenameArgs) -> Result<i32> {
    let new = a.new_name.trim();
    if new.is_empty() {
        bail!("Error: neither old nor new names may be empty");
    }
    c.client.container_rename(&a.container, new)?;
    Ok(0)
}

pub fn update(c: &Ctx, a: &UpdateArgs) -> Result<i32> {
    if a.resources.is_empty() && a.restart.is_none() {
        bail!("you must provide one or more flags when using this command");
    }
    let u = UpdateOptions {
        resources: config::resources(&a.resources)?,
        restart_policy: a.restart.as_deref().map(config::restart_policy).transpose()?,
    };
    let mut failed = Vec::new();
    for n in &a.containers {
        match c.client.container_update(n, &u) {
            Ok(r) => {
                for w in r.warnings {
                    eprintln!("{w}");
                }
                println!("{n}");
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    report_failures(failed)
}

pub fn top(c: &Ctx, a: &TopArgs) -> Result<i32> {
    let args = a.ps_args.join(" ");
    let t = c.client.container_top(&a.container, (!args.is_empty()).then_some(args.as_str()))?;
    let mut w = TabWriter::new(20, 3);
    w.write(&t.titles.join("\t"));
    w.write("\n");
    for p in &t.processes {
        w.write(&p.join("\t"));
        w.write("\n");
    }
    print!("{}", w.finish());
    Ok(0)
}

pub fn diff(c: &Ctx, a: &OneContainer) -> Result<i32> {
    let mut out = String::new();
    for ch in c.client.container_changes(&a.container)? {
        let k = match ch.kind {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "?",
        };
        out.push_str(&format!("{k} {}\n", ch.path));
    }
    print!("{out}");
    Ok(0)
}

pub fn commit(c: &Ctx, a: &CommitArgs) -> Result<i32> {
    let (repo, tag) = match &a.reference {
        Some(r) => split_ref(r),
        None => (None, None),
    };
    let o = CommitOptions { repo, tag, comment: a.message.clone(), author: a.author.clone(), changes: a.change.clone(), pause: a.pause };
    println!("{}", c.client.container_commit(&a.container, &o)?);
    Ok(0)
}

/// `repo[:tag]` -> (repo, tag); a port in a registry host is not a tag.
pub fn split_ref(r: &str) -> (Option<String>, Option<String>) {
    if let Some((repo, _digest)) = r.split_once('@') {
        return (Some(repo.to_owned()), None);
    }
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (Some(repo.to_owned()), Some(tag.to_owned())),
        _ => (Some(r.to_owned()), None),
    }
}

/// Where a tar goes: `-o file`, else stdout unless it is a terminal (Docker refuses that).
pub fn tar_output(output: &Option<String>) -> Result<Box<dyn Write>> {
    match output.as_deref() {
        Some(p) if p != "-" => Ok(Box::new(std::fs::File::create(p).map_err(|e| anyhow!("failed to export container: {}", crate::io_msg(&e)))?)),
        _ => {
            if io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            Ok(Box::new(io::stdout()))
        }
    }
}

pub fn export(c: &Ctx, a: &ExportArgs) -> Result<i32> {
    let mut out = tar_output(&a.output)?;
    let mut r = c.client.container_export(&a.container)?;
    io::copy(&mut r.body, &mut out)?;
    out.flush()?;
    Ok(0)
}

pub fn port(c: &Ctx, a: &PortArgs) -> Result<i32> {
    let raw = c.client.container_inspect_raw(&a.container, false)?;
    let v: serde_json::Value = serde_json::from_slice(&raw)?;
    let ports = v["NetworkSettings"]["Ports"].as_object().cloned().unwrap_or_default();
    let want = a.port.as_deref().map(|p| if p.contains('/') { p.to_owned() } else { format!("{p}/tcp") });
    let mut lines = Vec::new();
    for (k, binds) in &ports {
        if want.as_deref().is_some_and(|w| w != k) {
            continue;
        }
        for b in binds.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let hp = b["HostPort"].as_str().unwrap_or("");
            let addr = if ip.contains(':') { format!("[{ip}]:{hp}") } else { format!("{ip}:{hp}") };
            lines.push(if want.is_some() { addr } else { format!("{k} -> {addr}") });
        }
    }
    if lines.is_empty() {
        if let Some(w) = want {
            bail!("Error: No public port '{w}' published for {}", a.container);
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

/// Docker's confirmation prompt; false unless the answer is y/yes.
pub fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = io::stdout().flush();
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub fn filters(list: &[String]) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|f| {
            f.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.to_owned())).ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))
        })
        .collect()
}

pub fn prune(c: &Ctx, a: &PruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let r = c.client.container_prune(&filters(&a.filter)?)?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(r.space_reclaimed as f64, 4));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split() {
        assert_eq!(split_ref("snap:1"), (Some("snap".into()), Some("1".into())));
        assert_eq!(split_ref("localhost:5000/app"), (Some("localhost:5000/app".into()), None));
        assert_eq!(split_ref("localhost:5000/app:v2"), (Some("localhost:5000/app".into()), Some("v2".into())));
    }
}
