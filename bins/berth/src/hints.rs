//! Help beyond Docker's words: a hint after an error (on a terminal only, so scripted output
//! stays the docker CLI's), starting berthd when nothing listens, `berth system service`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use berth_api::client::{self, Client};

use crate::cli::Cli;

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `want`, if close enough to be a typo.
pub fn closest<'a>(want: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (distance(want, c), c))
        .filter(|(d, c)| *d <= 2.max(want.len() / 3) || c.starts_with(want))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn quoted_after<'a>(msg: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &msg[msg.find(marker)? + marker.len()..];
    Some(rest.trim().trim_end_matches('.'))
}

pub fn hint(cli: &Cli, e: &anyhow::Error) -> Option<String> {
    let msg = e.to_string();
    if let Some(client::Error::Connect { .. }) = e.downcast_ref::<client::Error>() {
        return Some("hint: start the daemon with `berth system service` (or `berthd &`), or point -H / BERTH_HOST at it".into());
    }
    let client = Client::new(&client::resolve_host(cli.host.as_deref())).ok()?;
    if let Some(name) = quoted_after(&msg, "No such container:").or_else(|| quoted_after(&msg, "No such object:")) {
        let list = client.container_list(true, None, false, &[]).ok()?;
        let names: Vec<String> = list.iter().flat_map(|c| c.names.iter().map(|n| n.trim_start_matches('/').to_owned())).collect();
        return Some(match closest(name, names.iter().map(String::as_str)) {
            Some(n) => format!("did you mean '{n}'? (see `berth ps -a`)"),
            None => "see `berth ps -a` for the containers there are".into(),
        });
    }
    if let Some(name) = quoted_after(&msg, "No such image:") {
        let imgs = client.image_list(false, false, &[]).ok()?;
        let tags: Vec<String> = imgs.iter().flat_map(|i| i.repo_tags.iter().cloned()).collect();
        return Some(match closest(name, tags.iter().map(String::as_str)) {
            Some(n) => format!("did you mean '{n}'? (see `berth images`)"),
            None => "see `berth images`; `berth load` or `berth import` bring images in".into(),
        });
    }
    None
}

fn berthd_binary() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.with_file_name("berthd");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("berthd")).find(|p| p.is_file())
}

/// Nothing listens on the default socket: as root, start berthd in the background and say so,
/// so that one command works on a fresh machine.
pub fn autostart_berthd() -> bool {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 || std::env::var_os("BERTH_NO_AUTOSTART").is_some() {
        return false;
    }
    let host = client::resolve_host(None);
    if host != client::DEFAULT_HOST {
        return false;
    }
    let Some(bin) = berthd_binary() else { return false };
    let log_path = "/var/log/berthd.log";
    let Ok(log) = std::fs::OpenOptions::new().create(true).append(true).open(log_path) else { return false };
    let Ok(log2) = log.try_clone() else { return false };
    let mut cmd = std::process::Command::new(&bin);
    cmd.stdin(std::process::Stdio::null()).stdout(log).stderr(log2);
    // Its own session: it must outlive this command and not get our terminal's signals.
    unsafe_setsid(&mut cmd);
    if cmd.spawn().is_err() {
        return false;
    }
    eprintln!("berth: berthd was not running; started {} in the background (log: {log_path})", bin.display());
    let Ok(c) = Client::new(&host) else { return false };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if c.ping().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn unsafe_setsid(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// `berth system service`: berthd in the foreground.
pub fn service(args: &[String]) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let bin = berthd_binary().ok_or_else(|| anyhow!("berthd not found beside berth or on PATH"))?;
    let err = std::process::Command::new(bin).args(args).exec();
    Err(anyhow!("exec berthd: {}", crate::io_msg(&err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let names = ["web", "database", "worker"];
        assert_eq!(closest("wbe", names.iter().copied()), Some("web"));
        assert_eq!(closest("databse", names.iter().copied()), Some("database"));
        assert_eq!(closest("zzzzzzzz", names.iter().copied()), None);
        assert_eq!(quoted_after("Error response from daemon: No such container: web2", "No such container:"), Some("web2"));
    }
}
