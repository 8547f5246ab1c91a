//! `run`, `create`, `start` and `attach`: create (pulling a missing image), attach before
//! start so no output is lost, wait registered before start, then the container's exit code.

use std::io::Write;

use anyhow::{anyhow, Result};
use berth_api::client::{self, AttachOptions, Client};
use berth_api::container_config::ContainerCreateRequest;

use super::stream::{self, StreamEnd, StreamOpts};
use crate::cli::{AttachArgs, CreateArgs, RunArgs, StartArgs};
use crate::{config, term, Ctx, Exit};

/// Prints a `run`/`create` failure as the docker CLI does and gives its exit status.
fn fail(cmd: &str, msg: &str, code: i32) -> anyhow::Error {
    term::restore();
    let msg = msg.trim_end_matches('.');
    eprintln!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information");
    Exit(code).into()
}

/// Docker's `runStartContainerErr`: 127 not found, 126 cannot execute, else 125.
fn start_err_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") || msg.contains("system cannot find the file specified") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `busybox` -> `busybox:latest`, as the "Unable to find image" line names it.
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Creates the container; a missing image is pulled first (`--pull missing`), as Docker does.
fn create_container(c: &Ctx, req: &ContainerCreateRequest, name: Option<&str>, pull: &str, quiet: bool, platform: Option<&str>) -> Result<String, client::Error> {
    let image = req.config.image.clone();
    if pull == "always" {
        super::transfer::pull_image(&c.client, &image, platform, quiet)?;
    }
    let created = match c.client.container_create(name, req) {
        Err(e) if e.is_not_found() && e.to_string().contains("No such image") && pull != "never" => {
            eprintln!("Unable to find image '{}' locally", with_tag(&image));
            super::transfer::pull_image(&c.client, &image, platform, quiet)?;
            c.client.container_create(name, req)?
        }
        r => r?,
    };
    for w in &created.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

fn write_cidfile(path: &str, id: &str) -> Result<()> {
    if path.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|_| anyhow!("container ID file found, make sure the other container isn't running or delete {path}"))?;
    f.write_all(id.as_bytes())?;
    Ok(())
}

pub fn create(c: &Ctx, a: &CreateArgs) -> Result<i32> {
    let o = &a.opts;
    let (req, name) = config::build(o, false, o.tty.then(|| term::size(1)).flatten()).map_err(|e| fail("create", &e.to_string(), 125))?;
    let id = create_container(c, &req, name.as_deref(), &o.pull, o.quiet, o.platform.as_deref()).map_err(|e| fail("create", &e.to_string(), 125))?;
    write_cidfile(&req.host_config.as_ref().map(|h| h.container_id_file.clone()).unwrap_or_default(), &id).map_err(|e| fail("create", &e.to_string(), 125))?;
    println!("{id}");
    Ok(0)
}

pub fn run(c: &Ctx, a: &RunArgs) -> Result<i32> {
    let o = &a.opts;
    let tty_size = if o.tty { term::size(1) } else { None };
    let (req, name) = config::build(o, a.detach, tty_size).map_err(|e| fail("run", &e.to_string(), 125))?;
    let keys = stream::detach_keys(a.detach_keys.as_deref()).map_err(|e| fail("run", &e.to_string(), 125))?;
    let cfg = &req.config;
    if !a.detach && cfg.attach_stdin && cfg.tty && !term::is_tty(0) {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let id = create_container(c, &req, name.as_deref(), &o.pull, o.quiet, o.platform.as_deref()).map_err(|e| fail("run", &e.to_string(), 125))?;
    let cidfile = req.host_config.as_ref().map(|h| h.container_id_file.clone()).unwrap_or_default();
    write_cidfile(&cidfile, &id).map_err(|e| fail("run", &e.to_string(), 125))?;

    if a.detach {
        if let Err(e) = c.client.container_start(&id) {
            let msg = e.to_string();
            return Err(fail("run", &msg, start_err_code(&msg)));
        }
        println!("{id}");
        return Ok(0);
    }

    let attach = cfg.attach_stdin || cfg.attach_stdout || cfg.attach_stderr;
    let conn = if attach {
        let ao = AttachOptions { stdin: cfg.attach_stdin, stdout: cfg.attach_stdout, stderr: cfg.attach_stderr, logs: false, detach_keys: a.detach_keys.clone() };
        Some(c.client.container_attach(&id, &ao).map_err(|e| fail("run", &e.to_string(), 125))?)
    } else {
        None
    };
    let cond = if o.rm { "removed" } else { "next-exit" };
    let wait = c.client.container_wait(&id, cond).map_err(|e| fail("run", &e.to_string(), 125))?;
    setup_signals(&c.client, &id, cfg.tty, a.sig_proxy, false);
    if let Err(e) = c.client.container_start(&id) {
        let msg = e.to_string();
        if o.rm {
            // Docker's daemon removes an --rm container whose start failed; make sure of it.
            let _ = c.client.container_remove(&id, true, false);
        }
        return Err(fail("run", &msg, start_err_code(&msg)));
    }
    if cfg.tty {
        resize(&c.client, &id, false);
    }
    if let Some(h) = conn {
        let end = stream::relay(h, &StreamOpts { tty: cfg.tty, stdin: cfg.attach_stdin, detach_keys: keys })?;
        if end == StreamEnd::Detached {
            return Ok(0);
        }
    }
    exit_status(wait)
}

/// The container's exit code from a registered wait; a wait error is reported as Docker does.
fn exit_status(wait: client::WaitHandle) -> Result<i32> {
    let r = wait.result()?;
    if let Some(e) = r.error.filter(|e| !e.message.is_empty()) {
        term::restore();
        eprintln!("{}", e.message);
        return Ok(125);
    }
    Ok(r.status_code as i32)
}

/// Sends the terminal's size to the container (or exec) now.
pub fn resize(client: &Client, id: &str, exec: bool) {
    if let Some((h, w)) = term::size(1) {
        let _ = if exec { client.exec_resize(id, h, w) } else { client.container_resize(id, h, w) };
    }
}

/// WINCH -> resize with a TTY; with sig-proxy and no TTY, signals go to the container.
pub fn setup_signals(client: &Client, id: &str, tty: bool, sig_proxy: bool, exec: bool) {
    let winch: Option<Box<dyn Fn() + Send>> = if tty && term::is_tty(1) {
        let (cl, id) = (clone_client(client), id.to_owned());
        Some(Box::new(move || resize(&cl, &id, exec)))
    } else {
        None
    };
    let proxy: Option<Box<dyn Fn(i32) + Send>> = if sig_proxy && !tty && !exec {
        let (cl, id) = (clone_client(client), id.to_owned());
        Some(Box::new(move |sig| {
            let _ = cl.container_kill(&id, Some(&stream::signal_name(sig)));
        }))
    } else {
        None
    };
    stream::watch_signals(winch, proxy);
}

fn clone_client(c: &Client) -> Client {
    Client::new(c.host()).unwrap_or_else(|_| unreachable!("the host parsed once already"))
}

pub fn start(c: &Ctx, a: &StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            eprintln!("you cannot start and attach multiple containers at once");
            return Ok(1);
        }
        let name = &a.containers[0];
        let info = c.client.container_inspect(name)?;
        let tty = info.config.tty;
        let stdin = a.interactive && info.config.open_stdin;
        let keys = stream::detach_keys(a.detach_keys.as_deref())?;
        let ao = AttachOptions { stdin, stdout: true, stderr: true, logs: false, detach_keys: a.detach_keys.clone() };
        let h = c.client.container_attach(&info.id, &ao)?;
        let cond = if info.host_config.auto_remove { "removed" } else { "next-exit" };
        let wait = c.client.container_wait(&info.id, cond)?;
        setup_signals(&c.client, &info.id, tty, true, false);
        if let Err(e) = c.client.container_start(&info.id) {
            return Err(e.into());
        }
        if tty {
            resize(&c.client, &info.id, false);
        }
        if stream::relay(h, &StreamOpts { tty, stdin, detach_keys: keys })? == StreamEnd::Detached {
            return Ok(0);
        }
        return exit_status(wait);
    }
    let mut failed = Vec::new();
    for n in &a.containers {
        match c.client.container_start(n) {
            Ok(()) => println!("{n}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    report_failures(failed)
}

/// Docker prints every failure, then exits 1.
pub fn report_failures(failed: Vec<String>) -> Result<i32> {
    if failed.is_empty() {
        return Ok(0);
    }
    let last = failed.len() - 1;
    for (i, f) in failed.into_iter().enumerate() {
        if i == last {
            return Err(anyhow!(f));
        }
        eprintln!("{f}");
    }
    Ok(1)
}

pub fn attach(c: &Ctx, a: &AttachArgs) -> Result<i32> {
    let info = c.client.container_inspect(&a.container)?;
    if !info.state.running {
        return Err(anyhow!("You cannot attach to a stopped container, start it first"));
    }
    if info.state.paused {
        return Err(anyhow!("You cannot attach to a paused container, unpause it first"));
    }
    let tty = info.config.tty;
    let stdin = !a.no_stdin && info.config.open_stdin;
    if stdin && tty && !term::is_tty(0) {
        return Err(anyhow!("the input device is not a TTY"));
    }
    let keys = stream::detach_keys(a.detach_keys.as_deref())?;
    let ao = AttachOptions { stdin, stdout: true, stderr: true, logs: false, detach_keys: a.detach_keys.clone() };
    let wait = c.client.container_wait(&info.id, "not-running")?;
    let h = c.client.container_attach(&info.id, &ao)?;
    setup_signals(&c.client, &info.id, tty, a.sig_proxy, false);
    if tty {
        resize(&c.client, &info.id, false);
    }
    if stream::relay(h, &StreamOpts { tty, stdin, detach_keys: keys })? == StreamEnd::Detached {
        return Ok(0);
    }
    exit_status(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_exit_codes_and_names() {
        assert_eq!(start_err_code("exec: \"nosuch\": executable file not found in $PATH"), 127);
        assert_eq!(start_err_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_err_code("cgroup trouble"), 125);
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(with_tag("app:1"), "app:1");
    }
}
