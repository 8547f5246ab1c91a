//! OCI hooks: each runs with the container state on stdin, its own args and env, and an optional
//! timeout after which it is killed.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

#[allow(deprecated)] // prestart is deprecated in the spec but still used by Docker and others.
pub fn list(hooks: Option<&Hooks>, kind: Kind) -> Vec<Hook> {
    let Some(h) = hooks else { return vec![] };
    let v = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    v.clone().unwrap_or_default()
}

/// Runs every hook of `kind` in order; the first failure stops and is returned.
pub fn run(hooks: Option<&Hooks>, kind: Kind, state_json: &[u8]) -> Result<()> {
    for h in list(hooks, kind) {
        run_one(&h, kind, state_json)?;
    }
    Ok(())
}

/// `state_json` with `pid` and `status` replaced: the init runs createContainer ("creating") and
/// startContainer ("created") hooks with its own pid, which the parent did not know yet.
pub fn state_with(state_json: &[u8], pid: i32, status: &str) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["pid"] = pid.into();
            v["status"] = status.into();
            serde_json::to_vec(&v).unwrap_or_else(|_| state_json.to_vec())
        }
        Err(_) => state_json.to_vec(),
    }
}

pub fn run_one(h: &Hook, kind: Kind, state_json: &[u8]) -> Result<()> {
    let path = h.path().to_string_lossy().into_owned();
    let err = |reason: String| Error::Hook { kind: kind.name().into(), path: path.clone(), reason };
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    // Its own process group, so that a timeout kills what the hook started too.
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| err(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error (EPIPE).
        let _ = stdin.write_all(state_json);
    }
    let deadline = h.timeout().filter(|t| *t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait().map_err(|e| err(format!("wait: {e}")))? {
            Some(s) => break s,
            None => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // SAFETY: kill takes integers; the group is the hook's (process_group(0)).
                    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(err(format!("timed out after {}s", h.timeout().unwrap_or(0))));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    if status.success() {
        Ok(())
    } else if let Some(sig) = status.signal() {
        Err(err(format!("killed by signal {sig}")))
    } else {
        Err(err(format!("exit status {}", status.code().unwrap_or(-1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn state_on_stdin_args_and_env() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}; echo \"$X\" >> {}"],"env":["X=42"]}}"#,
            out.display(),
            out.display()
        ));
        run_one(&h, Kind::Poststart, br#"{"id":"c"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}42\n");
    }

    #[test]
    fn failure_and_timeout_are_reported() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","exit 3"]}"#);
        let e = run_one(&h, Kind::Prestart, b"{}").unwrap_err().to_string();
        assert!(e.contains("prestart") && e.contains("exit status 3"), "{e}");
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let t0 = Instant::now();
        let e = run_one(&h, Kind::CreateRuntime, b"{}").unwrap_err().to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(4));
        let h = hook(r#"{"path":"/nonexistent/hook"}"#);
        assert!(run_one(&h, Kind::Poststop, b"{}").unwrap_err().to_string().contains("start"));
    }
}
