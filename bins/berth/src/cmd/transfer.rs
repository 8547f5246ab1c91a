//! Moving images in and out: `save`, `load`, `import`, `pull`, `push`. On a terminal,
//! progress bars (per layer for pull/push, bytes/speed/ETA for uploads and downloads); plain
//! lines otherwise, so CI logs stay readable.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use berth_api::client::types::JsonMessage;
use berth_api::client::{self, Client, JsonLines, Response};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::lifecycle::{split_ref, tar_output};
use crate::cli::{ImportArgs, LoadArgs, PullArgs, PushArgs, SaveArgs};
use crate::Ctx;

fn progress_on() -> bool {
    io::stderr().is_terminal()
}

fn bytes_bar(total: Option<u64>, what: &str) -> ProgressBar {
    if !progress_on() {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => {
            let pb = ProgressBar::new(t);
            pb.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            pb
        }
        None => {
            let pb = ProgressBar::new_spinner();
            pb.set_style(ProgressStyle::with_template("{prefix} {spinner} {bytes} {bytes_per_sec}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        }
    };
    pb.set_prefix(what.to_owned());
    pb
}

/// Counts what flows through into a progress bar.
struct Counted<R> {
    inner: R,
    pb: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pb.inc(n as u64);
        Ok(n)
    }
}

/// Where an archive comes from: a file (size known) or stdin (refused if a terminal).
fn tar_input(path: Option<&str>, what: &str) -> Result<(Box<dyn Read>, Option<u64>)> {
    match path {
        Some(p) if p != "-" => {
            let f = std::fs::File::open(p).map_err(|e| anyhow!("open {p}: {}", crate::io_msg(&e)))?;
            let len = f.metadata().ok().map(|m| m.len());
            Ok((Box::new(f), len))
        }
        _ => {
            if io::stdin().is_terminal() {
                bail!("requested {what} from stdin, but stdin is empty");
            }
            Ok((Box::new(io::stdin()), None))
        }
    }
}

pub fn save(c: &Ctx, a: &SaveArgs) -> Result<i32> {
    let mut out = tar_output(&a.output)?;
    let mut r = c.client.image_save(&a.images)?;
    let pb = if a.output.is_some() { bytes_bar(None, "Saving") } else { ProgressBar::hidden() };
    io::copy(&mut Counted { inner: &mut r.body, pb: pb.clone() }, &mut out)?;
    out.flush()?;
    pb.finish_and_clear();
    Ok(0)
}

pub fn load(c: &Ctx, a: &LoadArgs) -> Result<i32> {
    let (input, len) = tar_input(a.input.as_deref(), "load")?;
    let pb = if a.quiet { ProgressBar::hidden() } else { bytes_bar(len, "Loading") };
    super::stream::ignore_sigpipe();
    let mut counted = Counted { inner: input, pb: pb.clone() };
    let r = c.client.image_load(&mut counted, a.quiet)?;
    pb.finish_and_clear();
    print_messages(r)?;
    Ok(0)
}

pub fn import(c: &Ctx, a: &ImportArgs) -> Result<i32> {
    if a.source.starts_with("http://") || a.source.starts_with("https://") {
        bail!("importing from a URL is not supported by Berth yet: download it and pass the file (or -)");
    }
    let (input, len) = tar_input(Some(a.source.as_str()), "import")?;
    let (repo, tag) = match &a.reference {
        Some(r) => split_ref(r),
        None => (None, None),
    };
    let pb = bytes_bar(len, "Importing");
    super::stream::ignore_sigpipe();
    let mut counted = Counted { inner: input, pb: pb.clone() };
    let r = c.client.image_import(&mut counted, repo.as_deref(), tag.as_deref(), a.message.as_deref(), &a.change)?;
    pb.finish_and_clear();
    print_messages(r)?;
    Ok(0)
}

/// Prints a JSON message stream's text (`stream`, `status`), failing on its first error.
fn print_messages(r: Response) -> Result<()> {
    let mut lines = JsonLines::new(r.body);
    while let Some(m) = lines.next_message::<JsonMessage>()? {
        if let Some(e) = m.error_detail.map(|d| d.message).filter(|s| !s.is_empty()).or(m.error) {
            bail!("{e}");
        }
        if !m.stream.is_empty() {
            print!("{}", m.stream);
        } else if !m.status.is_empty() {
            println!("{}", m.status);
        }
    }
    io::stdout().flush()?;
    Ok(())
}

/// `busybox` -> (`docker.io/library/busybox`, `latest`), as the docker CLI sends a pull.
fn normalize(image: &str) -> (String, Option<String>) {
    let (repo, tag) = match image.split_once('@') {
        Some((r, d)) => (r.to_owned(), Some(d.to_owned())),
        None => {
            let (r, t) = split_ref(image);
            (r.unwrap_or_default(), Some(t.unwrap_or_else(|| "latest".into())))
        }
    };
    let first = repo.split('/').next().unwrap_or("");
    let has_domain = repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        repo
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    (full, tag)
}

/// Renders a pull/push progress stream: bars per layer on a terminal, else one line per
/// message without the byte counts, as the docker CLI prints them: on stdout for `pull` and
/// `push`, on stderr for the pull of `run`/`create` (`to_stdout` false).
pub fn show_progress(r: Response, quiet: bool, to_stdout: bool) -> Result<(), client::Error> {
    let mut lines = JsonLines::new(r.body);
    let tty = progress_on() && !quiet;
    let multi = MultiProgress::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let style = ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    while let Some(m) = lines.next_message::<JsonMessage>()? {
        if let Some(e) = m.error_detail.map(|d| d.message).filter(|s| !s.is_empty()).or(m.error) {
            for b in bars.values() {
                b.abandon();
            }
            return Err(client::Error::Api { status: 500, message: e });
        }
        if quiet {
            continue;
        }
        if !tty || m.id.is_empty() {
            if !tty && m.progress_detail.total > 0 {
                continue;
            }
            let line = if m.id.is_empty() { m.status.clone() } else { format!("{}: {}", m.id, m.status) };
            if tty {
                let _ = multi.println(&line);
            } else if !line.is_empty() {
                if to_stdout {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            continue;
        }
        let pb = bars.entry(m.id.clone()).or_insert_with(|| {
            let pb = multi.add(ProgressBar::new(0));
            pb.set_style(style.clone());
            pb.set_prefix(m.id.clone());
            pb
        });
        pb.set_message(m.status.clone());
        if m.progress_detail.total > 0 {
            pb.set_length(m.progress_detail.total as u64);
            pb.set_position(m.progress_detail.current.max(0) as u64);
        }
        if matches!(m.status.as_str(), "Pull complete" | "Already exists" | "Pushed" | "Layer already exists" | "Download complete") {
            pb.finish();
        }
    }
    for b in bars.values() {
        b.finish();
    }
    Ok(())
}

/// Pulls `image` (run/create's missing image, `--pull always`).
pub fn pull_image(client: &Client, image: &str, platform: Option<&str>, quiet: bool) -> Result<(), client::Error> {
    let (name, tag) = normalize(image);
    let r = client.image_pull(&name, tag.as_deref(), platform)?;
    show_progress(r, quiet, false)
}

pub fn pull(c: &Ctx, a: &PullArgs) -> Result<i32> {
    let (name, tag) = normalize(&a.image);
    let tag = if a.all_tags { None } else { tag };
    let r = c.client.image_pull(&name, tag.as_deref(), a.platform.as_deref())?;
    show_progress(r, a.quiet, true)?;
    println!("{name}{}", tag.map(|t| if t.contains(':') { format!("@{t}") } else { format!(":{t}") }).unwrap_or_default());
    Ok(0)
}

pub fn push(c: &Ctx, a: &PushArgs) -> Result<i32> {
    let (repo, tag) = split_ref(&a.image);
    let r = c.client.image_push(&repo.unwrap_or_default(), tag.as_deref())?;
    show_progress(r, a.quiet, true)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_normalize() {
        assert_eq!(normalize("busybox"), ("docker.io/library/busybox".into(), Some("latest".into())));
        assert_eq!(normalize("me/app:1"), ("docker.io/me/app".into(), Some("1".into())));
        assert_eq!(normalize("localhost:5000/app"), ("localhost:5000/app".into(), Some("latest".into())));
    }
}
