//! OCI hooks through berth-runc: all six kinds run in order with the state
//! JSON on stdin; createContainer runs in the container's namespaces before
//! pivot_root (host paths still resolve), startContainer after it (its path is
//! the container's /bin/sh); a failing or timed-out create-time hook fails
//! `create` and leaves nothing behind; failing poststart/poststop only warn.

mod runc_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_e2e::{unique_id, Bundle, Runtime};
use runc_support::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

/// A hook running `/bin/sh -c SCRIPT` (host sh, or the container's for
/// startContainer), with `HOOKVAR=<kind>` in its environment.
fn sh_hook(kind: &str, script: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script],
        "env": ["PATH=/usr/bin:/bin", format!("HOOKVAR={kind}")]
    })
}

/// A hook that appends "<kind> <HOOKVAR> <stdin>" as one line to `log`.
fn logging_hook(kind: &str, log: &Path) -> Value {
    sh_hook(
        kind,
        &format!(
            "printf '%s %s %s\\n' {kind} \"$HOOKVAR\" \"$(cat)\" >> {}",
            log.display()
        ),
    )
}

/// The log as (kind, state) pairs; checks each line's HOOKVAR.
fn read_log(log: &Path) -> Vec<(String, Value)> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (kind, var, state) = (
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            assert_eq!(kind, var, "hook env not passed: {l}");
            let state: Value = serde_json::from_str(state)
                .unwrap_or_else(|e| panic!("hook {kind} got bad state ({e}): {l}"));
            (kind.to_string(), state)
        })
        .collect()
}

fn kinds(log: &[(String, Value)]) -> Vec<&str> {
    log.iter().map(|(k, _)| k.as_str()).collect()
}

/// A dir on the host, bind-mounted read-write at /hooklog in the container.
fn shared_log_dir(bundle: &mut Bundle) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mounts = bundle.config_mut()["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/hooklog", "type": "bind", "source": dir.path(), "options": ["rbind", "rw"]}));
    let log = dir.path().join("hooks.log");
    (dir, log)
}

#[test]
fn all_hooks_run_in_order_with_the_state_on_stdin() {
    let rt = berth();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "1000"]);
    let (_dir, log) = shared_log_dir(&mut b);
    let in_container = Path::new("/hooklog/hooks.log");
    // Slow, so that a poststart that does not wait for the program's exec shows up first.
    let mut slow_start_hook = logging_hook("startContainer", in_container);
    slow_start_hook["args"][2] = json!(format!(
        "sleep 0.3; {}",
        slow_start_hook["args"][2].as_str().unwrap()
    ));
    b.config_mut()["hooks"] = json!({
        "prestart": [logging_hook("prestart", &log)],
        "createRuntime": [logging_hook("createRuntime", &log)],
        "createContainer": [logging_hook("createContainer", &log)],
        "startContainer": [slow_start_hook],
        "poststart": [logging_hook("poststart", &log)],
        "poststop": [logging_hook("poststop", &log)],
    });
    let id = unique_id("hooks");
    ok(&rt.create(&id, &b));
    let pid = init_pid(&rt, &id);
    assert_eq!(
        kinds(&read_log(&log)),
        ["prestart", "createRuntime", "createContainer"]
    );
    ok(&rt.start(&id));
    rt.wait_status(&id, "running", T);
    assert!(
        wait_until(T, || read_log(&log).len() == 5),
        "start hooks: {:?}",
        kinds(&read_log(&log))
    );
    ok(&rt.kill(&id, "KILL"));
    rt.wait_status(&id, "stopped", T);
    ok(&rt.delete(&id));

    let entries = read_log(&log);
    assert_eq!(
        kinds(&entries),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let bundle_dir = fs::canonicalize(b.path()).unwrap();
    for (kind, st) in &entries {
        assert_eq!(st["id"], id.as_str(), "{kind}: {st}");
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap_or("")),
            bundle_dir,
            "{kind}: {st}"
        );
        assert!(st["ociVersion"].is_string(), "{kind}: {st}");
        let want = match kind.as_str() {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(st["status"], want, "{kind}: {st}");
        let p = st["pid"].as_i64().unwrap_or(-1);
        match kind.as_str() {
            // Run by the runtime on the host: the init's host pid.
            "prestart" | "createRuntime" | "poststart" => assert_eq!(p, pid as i64, "{kind}: {st}"),
            // Run by the init itself: its pid (runc gives the one in the container's PID namespace).
            "createContainer" | "startContainer" => {
                assert!(p == pid as i64 || p == 1, "{kind}: {st}")
            }
            _ => {}
        }
    }
}

/// Hooks receive their own args (args[0] is argv[0]) and nothing of the
/// runtime's environment.
#[test]
fn hooks_get_their_args_and_only_their_env() {
    let rt = berth();
    let mut b = Bundle::new();
    b.set_args(&["true"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    b.config_mut()["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["custom-argv0", "-c", format!("echo \"$(tr '\\0' ' ' < /proc/$$/cmdline)|$0|$ONLY|${{HOME:-nohome}}\" > {}", out.display()), "zero"],
        "env": ["ONLY=this"]
    }]});
    let id = unique_id("hookargs");
    ok(&rt.create(&id, &b));
    let text = fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("custom-argv0 -c "),
        "args[0] is not argv[0]: {text}"
    );
    assert!(text.ends_with(" zero |zero|this|nohome\n"), "{text}");
    ok(&rt.delete_force(&id));
}

/// After a failed create: no state, no cgroup, no process carrying `marker`,
/// no mount under the bundle.
fn assert_nothing_left(
    rt: &Runtime,
    id: &str,
    bundle: &Path,
    marker: &str,
    mounts_before: &[String],
) {
    let st = fails(&rt.state_output(id));
    assert!(st.contains("does not exist"), "{st}");
    assert!(!rt.root().join(id).exists(), "state dir left");
    assert_cgroup_gone(&format!("/berth/{id}"));
    assert_no_process(marker);
    assert_eq!(
        mounts_under(bundle),
        mounts_before,
        "mounts left under the bundle"
    );
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let rt = berth();
    let mut b = Bundle::with_private_rootfs();
    let marker = unique_id("crhook-marker");
    b.set_args(&["sh", "-c", "sleep 1000", &marker]);
    b.config_mut()["hooks"] = json!({
        "prestart": [sh_hook("prestart", "cat >/dev/null")],
        "createRuntime": [sh_hook("createRuntime", "echo hook-says-no >&2; exit 3")],
    });
    let before = mounts_under(b.path());
    let id = unique_id("crhook");
    let err = fails(&rt.create(&id, &b));
    assert!(
        err.contains("createRuntime") && err.contains("exit status 3"),
        "{err}"
    );
    assert_nothing_left(&rt, &id, b.path(), &id, &before);
    assert_no_process(&marker);
}

#[test]
fn failing_create_container_hook_fails_create_and_leaves_nothing() {
    let rt = berth();
    let mut b = Bundle::with_private_rootfs();
    b.set_args(&["sleep", "1000"]);
    b.config_mut()["hooks"] = json!({"createContainer": [sh_hook("createContainer", "exit 4")]});
    let before = mounts_under(b.path());
    let id = unique_id("cchook");
    let err = fails(&rt.create(&id, &b));
    assert!(
        err.contains("createContainer") && err.contains("exit status 4"),
        "{err}"
    );
    assert_nothing_left(&rt, &id, b.path(), &id, &before);
}

/// A startContainer hook that fails stops the container before the user's
/// program runs.
#[test]
fn failing_start_container_hook_keeps_the_program_from_running() {
    let rt = berth();
    let mut b = Bundle::new();
    let (_dir, log) = shared_log_dir(&mut b);
    b.set_args(&["sh", "-c", "echo program-ran >> /hooklog/hooks.log"]);
    b.config_mut()["hooks"] = json!({"startContainer": [sh_hook("startContainer", "exit 5")]});
    let id = unique_id("schook");
    ok(&rt.create(&id, &b));
    let _ = rt.start(&id);
    rt.wait_status(&id, "stopped", T);
    assert!(
        !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("program-ran"),
        "program ran despite the failed hook"
    );
    ok(&rt.delete(&id));
    assert_cgroup_gone(&format!("/berth/{id}"));
}

#[test]
fn hook_timeout_fails_create_quickly_and_kills_the_hook() {
    let rt = berth();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "1000"]);
    // A unique duration marks the hook's sleep, so it can be found if it leaks.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let sleep_arg = format!("5.{nanos:09}");
    let mut hook = sh_hook("prestart", &format!("sleep {sleep_arg}; true"));
    hook["timeout"] = json!(1);
    b.config_mut()["hooks"] = json!({"prestart": [hook]});
    let before = mounts_under(b.path());
    let id = unique_id("hooktimeout");
    let t0 = Instant::now();
    let err = fails(&rt.create(&id, &b));
    let took = t0.elapsed();
    assert!(
        err.contains("prestart") && err.contains("timed out"),
        "{err}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "create took {took:?} with a 1 s hook timeout"
    );
    assert_nothing_left(&rt, &id, b.path(), &id, &before);
    assert!(
        processes_with(&format!("sleep {sleep_arg}")).is_empty(),
        "the timed-out hook's child still runs"
    );
}

#[test]
fn failing_poststart_and_poststop_hooks_only_warn() {
    let rt = berth();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "1000"]);
    b.config_mut()["hooks"] = json!({
        "poststart": [sh_hook("poststart", "exit 6")],
        "poststop": [sh_hook("poststop", "exit 7")],
    });
    let id = unique_id("posthooks");
    ok(&rt.create(&id, &b));
    let out = rt.start(&id);
    ok(&out);
    let warn = stderr(&out);
    assert!(
        warn.contains("poststart") && warn.contains("exit status 6"),
        "{warn}"
    );
    assert_eq!(rt.state(&id)["status"], "running");
    let out = rt.delete_force(&id);
    ok(&out);
    let warn = stderr(&out);
    assert!(
        warn.contains("poststop") && warn.contains("exit status 7"),
        "{warn}"
    );
    fails(&rt.state_output(&id));
    assert_cgroup_gone(&format!("/berth/{id}"));
}
