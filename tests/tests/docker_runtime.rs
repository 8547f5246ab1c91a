//! Acceptance test: the real Docker engine runs containers on the runtime under
//! test (`berth-runc`), registered as `dockerd --add-runtime berth=<path>`.
//!
//! The stack is Debian's docker.io: `dockerd` 20.10, the `containerd` it starts
//! and manages, and `containerd-shim-runc-v2`, which is what invokes the
//! runtime's runc-compatible CLI (create/start/exec/kill/pause/resume/update/
//! ps/delete). A busybox image is built from the host's static busybox and
//! imported (no registry, no network). These scenarios then run real `docker`
//! commands against it: run + exit codes + stdio, errors for missing/non-executable
//! commands, `--read-only`, `--cap-drop ALL`, `--memory` (limit and OOM kill),
//! `--pids-limit`, `exec`, `update`, `pause`/`unpause`, `stop`, `kill`, and
//! interactive `run -it` / `exec -it` shells driven through tmux. Two more
//! check that image archives travel both ways between Docker and Berth's image
//! store (`berth_image::store::ImageStore`): `docker save` -> `ImageStore::load`,
//! and `ImageStore::import` + `save` -> `docker load` -> `docker run`.
//!
//! Runtime under test: `$BERTH_DOCKER_RUNTIME` if set, else the newest
//! `berth-runc` in `<target>/{debug,release}`. To check the harness itself
//! against runc:
//!
//! ```text
//! BERTH_DOCKER_RUNTIME=/usr/sbin/runc cargo test -p berth-e2e --test docker_runtime -- --nocapture
//! ```
//!
//! Other environment settings:
//! - `BERTH_DOCKER_SCENARIOS=echo,exec,...`: run only these scenarios (names in
//!   [`SCENARIOS`]).
//! - `BERTH_DOCKER_TRACE=1`: register a wrapper that logs every runtime call
//!   (argv, plus the JSON piped to `update --resources -`) and print the log.
//! - `BERTH_DOCKER_CLI`: the docker client to use (default `/usr/bin/docker`,
//!   the one packaged with dockerd, else `docker` on PATH).
//! - `BERTH_DOCKER_STORAGE_DRIVER`: the storage driver to use (default: try
//!   overlay2, then vfs).
//! - `BERTH_DOCKER_DEBUG=1`: `dockerd --debug`. `BERTH_DOCKER_KEEP=1`: keep the
//!   temp dir (data root, logs).
//!
//! Design. A single `#[test]` runs every scenario as a sub-step against one
//! private daemon. libtest has no global teardown hook, so a daemon kept in a
//! `static` would never be stopped. Here a guard owns the daemon, and its
//! `Drop` tears everything down even if the test panics. Each scenario runs
//! under `catch_unwind`, so one failure doesn't hide the others, and the test
//! fails at the end if any scenario failed. If the test process is killed
//! outright (so `Drop` never runs), dockerd still gets SIGTERM through
//! `PR_SET_PDEATHSIG` (`setpriv --pdeathsig TERM`) and stops its containers
//! and containerd itself. (The daemon guard and its teardown live in
//! `berth_e2e::dockerd`, shared with `berth-image-bench`.)
//!
//! Isolation. Everything lives under one temp dir: `--data-root`,
//! `--exec-root` (which also holds the managed containerd's state, root and
//! sockets), `--pidfile`, `-H unix://…`, the daemon config file (so
//! `/etc/docker/daemon.json` isn't read, and `key.json` isn't written to
//! `/etc/docker`), and the client config (`DOCKER_CONFIG`). There's no network
//! (`--bridge=none`, `--iptables=false`, containers run `--network none`). The
//! daemon uses the cgroupfs driver (no systemd here), with a unique
//! `--cgroup-parent`. Teardown removes containers, stops dockerd, kills any
//! process still referring to the temp dir or still in the cgroup parent, and
//! unmounts anything left under the temp dir. It then removes the cgroup
//! parent in every hierarchy, and any stale shim sockets or `/run` dirs that
//! dockerd or containerd created, then checks that nothing is left.
//!
//! Skips (prints `SKIP:` and passes) only if a binary is missing (dockerd,
//! containerd, containerd-shim-runc-v2, docker), if the test isn't running as
//! root, or if dockerd can't start on this host (its log tail is printed).
//! Every other problem fails the test.

use std::collections::BTreeSet;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use berth_e2e::dockerd::{
    cgroup_v1, env_nonempty, find_exe, is_executable, poll, reap_stale_runs, report_problems,
    run_with_timeout, sh_quote, HostTools, Out, RUNTIME_NAME, SYS_PATH,
};
use berth_image::store::ImageStore;
use berth_image::Reference;

/// The image every scenario runs.
const IMAGE: &str = "berth-test/busybox:latest";
/// Limit for waits inside scenarios (log lines, tty prompts, state changes).
const WAIT: Duration = Duration::from_secs(15);
/// Scenarios that would start after this much total scenario time are not run
/// (and count as failed). A passing run needs about 15 s.
const BUDGET: Duration = Duration::from_secs(90);

type Scenario = fn(&Daemon);

/// Every scenario, in run order. Names are what `BERTH_DOCKER_SCENARIOS` selects.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("echo", scenario_echo),
    ("exit-code", scenario_exit_code),
    ("stdio", scenario_stdio),
    ("read-only", scenario_read_only),
    ("cap-drop", scenario_cap_drop),
    ("memory", scenario_memory),
    ("pids", scenario_pids),
    ("exec", scenario_exec),
    ("update", scenario_update),
    ("pause", scenario_pause),
    ("stop", scenario_stop),
    ("kill", scenario_kill),
    ("tty-run", scenario_tty_run),
    ("tty-exec", scenario_tty_exec),
    ("image-save-load", scenario_image_save_load),
    (
        "image-load-berth-archive",
        scenario_image_load_berth_archive,
    ),
];

#[test]
fn docker_engine_runs_containers_on_berth_runtime() {
    let t0 = Instant::now();
    let tools = match HostTools::find() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIP docker_runtime: {why}");
            return;
        }
    };
    let runtime = runtime_under_test();
    eprintln!("docker_runtime: runtime under test: {}", runtime.display());
    reap_stale_runs();
    eprintln!(
        "docker_runtime: dockerd {}, docker CLI {}",
        tools.dockerd.display(),
        tools.docker.display()
    );

    let drivers: Vec<String> = match env_nonempty("BERTH_DOCKER_STORAGE_DRIVER") {
        Some(d) => vec![d],
        None => vec!["overlay2".into(), "vfs".into()],
    };
    let mut daemon = None;
    for driver in &drivers {
        let mut d = Daemon(berth_e2e::dockerd::Daemon::new(&tools, &runtime, driver));
        match d.launch() {
            Ok(()) => {
                daemon = Some(d);
                break;
            }
            Err(why) => {
                eprintln!(
                    "docker_runtime: dockerd (storage driver {driver}) did not start: {why}\n\
                     --- dockerd log tail ---\n{}\n--- end ---",
                    d.log_tail(40)
                );
                report_problems(&d.teardown());
            }
        }
    }
    let Some(mut daemon) = daemon else {
        eprintln!("SKIP docker_runtime: dockerd cannot start on this host (tried {drivers:?}); see log above");
        return;
    };
    eprintln!(
        "docker_runtime: dockerd up in {:.1?} (storage driver {}, dir {})",
        t0.elapsed(),
        daemon.storage_driver,
        daemon.dir.display()
    );

    // Setup steps are not scenarios: if they fail, nothing else can run.
    daemon.check_runtime_registered();
    let t = Instant::now();
    daemon.import_busybox_image();
    eprintln!("docker_runtime: imported {IMAGE} in {:.1?}", t.elapsed());

    let selected = env_nonempty("BERTH_DOCKER_SCENARIOS").map(|s| {
        s.split(',')
            .map(|n| n.trim().to_string())
            .collect::<BTreeSet<_>>()
    });
    if let Some(sel) = &selected {
        let unknown: Vec<_> = sel
            .iter()
            .filter(|n| !SCENARIOS.iter().any(|(name, _)| name == n))
            .collect();
        assert!(
            unknown.is_empty(),
            "unknown scenario(s) {unknown:?} in BERTH_DOCKER_SCENARIOS"
        );
    }

    let mut results = Vec::new();
    let scenarios_start = Instant::now();
    for (name, scenario) in SCENARIOS {
        if selected.as_ref().is_some_and(|s| !s.contains(*name)) {
            continue;
        }
        if scenarios_start.elapsed() > BUDGET {
            // A hanging runtime makes every docker call wait for CMD_TIMEOUT;
            // don't spend that on every remaining scenario.
            eprintln!("--- scenario {name}: NOT RUN (time budget of {BUDGET:?} used up)");
            results.push((*name, false, Duration::ZERO));
            continue;
        }
        eprintln!("--- scenario {name}");
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| scenario(&daemon)));
        let elapsed = t.elapsed();
        let passed = outcome.is_ok();
        if !passed {
            daemon.remove_all_containers();
        }
        eprintln!(
            "--- scenario {name}: {} ({elapsed:.1?})",
            if passed { "ok" } else { "FAILED" }
        );
        results.push((*name, passed, elapsed));
    }

    let failed: Vec<&str> = results.iter().filter(|r| !r.1).map(|r| r.0).collect();
    if !failed.is_empty() {
        eprintln!(
            "--- dockerd log tail ---\n{}\n--- end ---",
            daemon.log_tail(80)
        );
    }
    daemon.print_trace();

    let t = Instant::now();
    let problems = daemon.teardown();
    eprintln!("docker_runtime: teardown in {:.1?}", t.elapsed());
    report_problems(&problems);

    eprintln!("docker_runtime summary (runtime {}):", runtime.display());
    for (name, passed, elapsed) in &results {
        eprintln!(
            "  {:<24} {:<6} {elapsed:>8.1?}",
            name,
            if *passed { "ok" } else { "FAILED" }
        );
    }
    eprintln!("  total {:.1?}", t0.elapsed());

    assert!(
        failed.is_empty(),
        "docker_runtime: failed scenarios: {failed:?} (details above)"
    );
    assert!(
        problems.is_empty(),
        "docker_runtime: teardown left things behind: {problems:#?}"
    );
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// `docker run --rm IMG echo hi` prints exactly "hi".
fn scenario_echo(d: &Daemon) {
    let out = d.run_rm(&[], &["echo", "hi"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "hi\n", "stdout of echo\n{out}");
}

/// The container's exit code becomes `docker run`'s. A missing command gives
/// 127 and a non-executable one 126: dockerd derives these from the runtime's
/// error text ("no such file or directory" / "permission denied"), which
/// reaches it through the runtime's `--log` JSON and the shim.
fn scenario_exit_code(d: &Daemon) {
    d.run_rm(&[], &["sh", "-c", "exit 3"]).expect_code(3);
    d.run_rm(&[], &["true"]).expect_code(0);
    d.run_rm(&[], &["false"]).expect_code(1);

    let out = d.run_rm(&[], &["/nonexistent"]);
    out.expect_code(127);
    assert!(
        out.stderr.contains("no such file or directory"),
        "stderr of a missing command\n{out}"
    );
    let out = d.run_rm(&[], &["/etc/passwd"]);
    out.expect_code(126);
    assert!(
        out.stderr.contains("permission denied"),
        "stderr of a non-executable command\n{out}"
    );
}

/// Non-tty stdio: `run -i` passes stdin through, and keeps stdout and stderr apart.
fn scenario_stdio(d: &Daemon) {
    let out = d.docker_in(
        &[
            "run",
            "-i",
            "--rm",
            "--runtime",
            RUNTIME_NAME,
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "cat; echo to-stderr >&2",
        ],
        b"hello-stdin\nline2\n",
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "hello-stdin\nline2\n", "stdout\n{out}");
    assert_eq!(out.stderr, "to-stderr\n", "stderr\n{out}");

    // Without -i the container's stdin is empty (not the CLI's).
    let out = d.docker_in(
        &[
            "run",
            "--rm",
            "--runtime",
            RUNTIME_NAME,
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "cat; echo eof",
        ],
        b"must-not-arrive\n",
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "eof\n", "stdout\n{out}");
}

/// `--read-only` rootfs: writes fail with EROFS, while `--tmpfs /tmp` stays writable.
fn scenario_read_only(d: &Daemon) {
    d.run_rm(&[], &["sh", "-c", "touch /x && echo wrote"])
        .expect_stdout("wrote\n");

    let out = d.run_rm(&["--read-only"], &["touch", "/x"]);
    assert_ne!(
        out.code,
        Some(0),
        "touch / in a --read-only container succeeded\n{out}"
    );
    assert!(out.code.is_some(), "{out}");
    assert!(
        out.stderr.contains("Read-only file system"),
        "expected EROFS\n{out}"
    );

    d.run_rm(
        &["--read-only", "--tmpfs", "/tmp"],
        &["sh", "-c", "touch /tmp/y && echo wrote"],
    )
    .expect_stdout("wrote\n");
}

/// `--cap-drop ALL`: chown (CAP_CHOWN) fails and the effective set is empty;
/// the default set allows it; `--cap-add CHOWN` gives it back.
fn scenario_cap_drop(d: &Daemon) {
    let chown = "touch /tmp/f && chown nobody /tmp/f && stat -c %u /tmp/f";
    d.run_rm(&["--tmpfs", "/tmp"], &["sh", "-c", chown])
        .expect_stdout("65534\n");

    let out = d.run_rm(
        &["--tmpfs", "/tmp", "--cap-drop", "ALL"],
        &["sh", "-c", chown],
    );
    assert_eq!(out.code, Some(1), "chown with --cap-drop ALL\n{out}");
    assert!(
        out.stderr.contains("Operation not permitted"),
        "expected EPERM\n{out}"
    );

    let cap_eff = |extra: &[&str]| {
        let out = d.run_rm(extra, &["grep", "^CapEff:", "/proc/self/status"]);
        out.expect_code(0);
        out.stdout
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let default = cap_eff(&[]);
    assert_ne!(
        default, "0000000000000000",
        "default capabilities are empty"
    );
    assert_eq!(
        cap_eff(&["--cap-drop", "ALL"]),
        "0000000000000000",
        "--cap-drop ALL"
    );

    d.run_rm(
        &["--tmpfs", "/tmp", "--cap-drop", "ALL", "--cap-add", "CHOWN"],
        &["sh", "-c", chown],
    )
    .expect_stdout("65534\n");
}

/// `--memory 64m`: the container's own memory cgroup has a 64 MiB limit, the
/// container is in the cgroup dockerd asked for, and going over the limit gets
/// the container OOM-killed (exit 137, OOMKilled).
fn scenario_memory(d: &Daemon) {
    let out = d.run_rm(
        &["--memory", "64m"],
        &["sh", "-c",
          "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
           cat /proc/self/cgroup"],
    );
    out.expect_code(0);
    assert_eq!(
        out.stdout.lines().next(),
        Some("67108864"),
        "memory limit seen inside\n{out}"
    );
    if cgroup_v1("memory") {
        // cgroup v1: docker keeps the host cgroup namespace, so the full path shows.
        let want = format!("/{}/", d.cgroup_parent);
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains(":memory:") && l.contains(&want)),
            "container not in a memory cgroup under {want}\n{out}"
        );
    }

    // 200M buffer: over the 64M limit, and over the default memory+swap limit (128M).
    let id = d.run_detached(
        &["--memory", "64m"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
    );
    let code = d.ok(&["wait", &id]);
    assert_eq!(code.trim(), "137", "exit code of an over-limit container");
    assert_eq!(d.inspect(&id, "{{.State.OOMKilled}}"), "true", "OOMKilled");
    d.ok(&["rm", &id]);
}

/// `--pids-limit 20`: pids.max reads 20 and a fork loop stops short at the limit.
fn scenario_pids(d: &Daemon) {
    let script = "read m < /sys/fs/cgroup/pids/pids.max 2>/dev/null || read m < /sys/fs/cgroup/pids.max; \
                  echo max=$m; \
                  (i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo spawned-all) 2>/dev/null; \
                  read c < /sys/fs/cgroup/pids/pids.current 2>/dev/null || read c < /sys/fs/cgroup/pids.current; \
                  echo current=$c";
    let out = d.run_rm(&["--pids-limit", "20"], &["sh", "-c", script]);
    out.expect_code(0);
    assert!(out.stdout.contains("max=20\n"), "pids.max\n{out}");
    assert!(
        !out.stdout.contains("spawned-all"),
        "40 background processes started despite --pids-limit 20\n{out}"
    );
    let current: u32 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("current="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pids.current in output\n{out}"));
    assert!(
        (10..=20).contains(&current),
        "pids.current={current} (limit 20)\n{out}"
    );

    // Control: without the limit the same loop completes.
    let out = d.run_rm(&[], &["sh", "-c", script]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("spawned-all"),
        "fork loop without a limit\n{out}"
    );
}

/// `docker exec` into a detached container: output, exit codes, user/cwd/env
/// from the process spec, the container's pid namespace, stdin, a missing
/// binary, and `docker top` (the runtime's `ps`).
fn scenario_exec(d: &Daemon) {
    let id = d.run_detached(&[], &["sleep", "1000"]);
    assert_eq!(
        d.inspect(&id, "{{.HostConfig.Runtime}}"),
        RUNTIME_NAME,
        "container runtime"
    );
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "running");

    d.docker(&["exec", &id, "echo", "in-exec"])
        .expect_stdout("in-exec\n");
    d.docker(&["exec", &id, "sh", "-c", "exit 7"])
        .expect_code(7);
    d.docker(&[
        "exec",
        "-u",
        "65534",
        "-w",
        "/tmp",
        "-e",
        "FOO=bar",
        &id,
        "sh",
        "-c",
        "echo $(id -u) $PWD $FOO",
    ])
    .expect_stdout("65534 /tmp bar\n");

    // Same pid namespace as the container: PID 1 is the sleep.
    let out = d.docker(&["exec", &id, "cat", "/proc/1/cmdline"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout.replace('\0', " ").trim(),
        "sleep 1000",
        "PID 1 seen by exec\n{out}"
    );

    let out = d.docker_in(&["exec", "-i", &id, "cat"], b"exec-stdin\n");
    out.expect_code(0);
    assert_eq!(out.stdout, "exec-stdin\n", "{out}");

    // (docker 20.10's CLI prints this error on stdout)
    let out = d.docker(&["exec", &id, "/nonexistent"]);
    out.expect_code(126);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("no such file or directory"),
        "error output of a missing exec binary\n{out}"
    );

    let out = d.docker(&["top", &id]);
    out.expect_code(0);
    assert!(out.stdout.contains("sleep 1000"), "docker top\n{out}");

    // The container is still fine after all that.
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "running");
    d.ok(&["rm", "-f", &id]);
}

/// `docker update` of a running container (runtime `update --resources -`):
/// new memory and pids limits, seen inside and in the host cgroup dockerd chose.
fn scenario_update(d: &Daemon) {
    let id = d.run_detached(
        &["--memory", "64m", "--pids-limit", "20"],
        &["sleep", "1000"],
    );
    let read_limits = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
                       cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    d.docker(&["exec", &id, "sh", "-c", read_limits])
        .expect_stdout("67108864\n20\n");

    d.ok(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "30",
        &id,
    ]);
    d.docker(&["exec", &id, "sh", "-c", read_limits])
        .expect_stdout("134217728\n30\n");

    let host = d.container_cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max");
    let value =
        fs::read_to_string(&host).unwrap_or_else(|e| panic!("reading {}: {e}", host.display()));
    assert_eq!(value.trim(), "134217728", "host-side {}", host.display());
    d.ok(&["rm", "-f", &id]);
}

/// `docker pause`: status paused, the cgroup frozen, the process really stops
/// making progress, exec refused; `unpause`: running and progressing again.
fn scenario_pause(d: &Daemon) {
    let id = d.run_detached(
        &[],
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /count; usleep 20000; done",
        ],
    );
    let pid = d.container_pid(&id);
    let counter = PathBuf::from(format!("/proc/{pid}/root/count"));
    let read = || -> u64 {
        poll("a value in the container's /count", WAIT, || {
            fs::read_to_string(&counter)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
    };
    let start = read();
    poll("the counter to advance before pausing", WAIT, || {
        (read() > start).then_some(())
    });

    d.ok(&["pause", &id]);
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "paused");
    let freezer = if cgroup_v1("freezer") {
        (
            d.container_cgroup_file(&id, "freezer", "freezer.state", ""),
            "FROZEN",
        )
    } else {
        (d.container_cgroup_file(&id, "", "", "cgroup.freeze"), "1")
    };
    let state = fs::read_to_string(&freezer.0)
        .unwrap_or_else(|e| panic!("reading {}: {e}", freezer.0.display()));
    assert_eq!(state.trim(), freezer.1, "{}", freezer.0.display());
    let frozen_at = read();
    thread::sleep(Duration::from_millis(400));
    assert_eq!(read(), frozen_at, "counter advanced while paused");

    let out = d.docker(&["exec", &id, "true"]);
    assert_ne!(
        out.code,
        Some(0),
        "exec into a paused container succeeded\n{out}"
    );
    assert!(
        out.stderr.contains("paused"),
        "exec refusal should say paused\n{out}"
    );

    d.ok(&["unpause", &id]);
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "running");
    poll("the counter to advance after unpausing", WAIT, || {
        (read() > frozen_at).then_some(())
    });
    d.ok(&["rm", "-f", &id]);
}

/// `docker stop`: PID 1 `sleep` has no SIGTERM handler (so the signal is
/// ignored), so stop falls back to SIGKILL after the timeout (exit 137). The
/// stopped container can be started again under the same id. A shell that
/// traps SIGTERM exits promptly with its own code.
fn scenario_stop(d: &Daemon) {
    let id = d.run_detached(&[], &["sleep", "1000"]);
    let t = Instant::now();
    d.ok(&["stop", "-t", "2", &id]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "stop -t 2 took only {took:?}: SIGTERM was not ignored?"
    );
    assert!(took < Duration::from_secs(15), "stop -t 2 took {took:?}");
    assert_eq!(
        d.inspect(&id, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );

    // Restart after stop: create again with the same id, so runtime state must be gone.
    d.ok(&["start", &id]);
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "running");
    d.docker(&["exec", &id, "echo", "restarted"])
        .expect_stdout("restarted\n");
    d.ok(&["rm", "-f", &id]);

    let id = d.run_detached(
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    d.wait_for_log(&id, "ready");
    let t = Instant::now();
    d.ok(&["stop", "-t", "20", &id]);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "graceful stop took {took:?}: SIGTERM not delivered?"
    );
    assert_eq!(
        d.inspect(&id, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert!(
        d.logs(&id).contains("got-term"),
        "trap output missing: {:?}",
        d.logs(&id)
    );
    d.ok(&["rm", &id]);
}

/// `docker kill -s USR1` reaches the container's PID 1 (it keeps running);
/// a plain `docker kill` (SIGKILL) ends it with 137.
fn scenario_kill(d: &Daemon) {
    let id = d.run_detached(
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    );
    d.wait_for_log(&id, "ready");
    d.ok(&["kill", "-s", "USR1", &id]);
    d.wait_for_log(&id, "got-usr1");
    assert_eq!(
        d.inspect(&id, "{{.State.Status}}"),
        "running",
        "after SIGUSR1"
    );

    d.ok(&["kill", &id]);
    let code = d.ok(&["wait", &id]);
    assert_eq!(code.trim(), "137", "exit code after docker kill");
    assert_eq!(
        d.inspect(&id, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    d.ok(&["rm", &id]);
}

/// `docker run -it IMG sh` in a real terminal (tmux): the shell computes,
/// has a pty, and its exit ends the session with its exit code.
fn scenario_tty_run(d: &Daemon) {
    d.tty_shell(
        "run",
        &[
            "run",
            "-it",
            "--rm",
            "--runtime",
            RUNTIME_NAME,
            "--network",
            "none",
            IMAGE,
            "sh",
        ],
        5,
    );
}

/// `docker exec -it ID sh` in a real terminal, the same way.
fn scenario_tty_exec(d: &Daemon) {
    let id = d.run_detached(&[], &["sleep", "1000"]);
    d.tty_shell("exec", &["exec", "-it", &id, "sh"], 6);
    // The exec's exit leaves the container alone.
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "running");
    d.ok(&["rm", "-f", &id]);
}

/// Docker -> Berth: `docker save` of the test image loads into a Berth image store
/// with its tag, Docker's image ID, its config, and its layer unpacked.
fn scenario_image_save_load(d: &Daemon) {
    let dir = d.dir.join("image-save-load");
    fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("docker-save.tar");
    d.ok(&["save", IMAGE, "-o", &archive.display().to_string()]);
    let docker_id = d.ok(&["image", "inspect", "-f", "{{.Id}}", IMAGE]);
    let docker_config = d.ok(&["image", "inspect", "-f", "{{json .Config}}", IMAGE]);
    let docker_config: serde_json::Value = serde_json::from_str(&docker_config).unwrap();

    let store = ImageStore::open(&dir.join("berth")).expect("opening a Berth image store");
    let loaded = store
        .load(fs::File::open(&archive).unwrap())
        .expect("ImageStore::load of docker save's archive");
    assert_eq!(loaded.len(), 1, "images loaded: {loaded:?}");
    assert_eq!(loaded[0].id.to_string(), docker_id.trim(), "image ID");
    let tags: Vec<String> = loaded[0].tags.iter().map(|t| t.familiar_string()).collect();
    assert_eq!(tags, [IMAGE], "tags of the loaded image");

    let inspect = store.inspect(IMAGE).expect("inspecting the loaded image");
    assert_eq!(
        inspect["Id"].as_str(),
        Some(docker_id.trim()),
        "{inspect:#}"
    );
    assert_eq!(
        docker_config["Cmd"],
        serde_json::json!(["sh"]),
        "{docker_config:#}"
    );
    for key in ["Cmd", "Env"] {
        assert_eq!(
            inspect["Config"][key], docker_config[key],
            "Config.{key}: Berth {inspect:#}"
        );
    }

    // The layer is unpacked: a container snapshot of the image has /bin/busybox.
    let layers = store.snapshotter().layers().unwrap();
    assert_eq!(layers.len(), 1, "layer snapshots: {layers:?}");
    let snap = "image-save-load";
    store
        .snapshotter()
        .prepare(snap, Some(&layers[0].chain_id))
        .unwrap();
    let target = dir.join("mnt");
    fs::create_dir_all(&target).unwrap();
    {
        let _mounted = store.snapshotter().mount(snap, &target).unwrap();
        let busybox =
            fs::metadata(target.join("bin/busybox")).expect("/bin/busybox in the snapshot");
        assert!(
            busybox.is_file() && busybox.mode() & 0o111 != 0,
            "{busybox:?}"
        );
    }
    store.snapshotter().remove(snap).unwrap();
    drop(store);
    let _ = fs::remove_dir_all(&dir);
}

/// Berth -> Docker: an image made by `ImageStore::import` (a plain, then a
/// gzip-compressed layer) and written by `ImageStore::save` is accepted by
/// `docker load`, keeps its ID, and runs its CMD.
fn scenario_image_load_berth_archive(d: &Daemon) {
    let dir = d.dir.join("image-load-berth");
    fs::create_dir_all(&dir).unwrap();
    let store = ImageStore::open(&dir.join("berth")).expect("opening a Berth image store");
    let rootfs = berth_e2e::busybox_rootfs();
    for (tag, tar_flags) in [
        ("berth-made/busybox:1", "-cf"),
        ("berth-made/busybox:gz", "-czf"),
    ] {
        let mut tar = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .args([tar_flags, "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning tar");
        let reference = Reference::parse_normalized(tag).unwrap();
        let id = store
            .import(
                tar.stdout.take().unwrap(),
                &[r#"CMD ["echo","hello-from-berth"]"#.to_string()],
                None,
                Some(&reference),
            )
            .expect("ImageStore::import");
        assert!(tar.wait().unwrap().success(), "tar of the rootfs failed");

        let archive = dir.join("berth-save.tar");
        store
            .save(&[tag.to_string()], fs::File::create(&archive).unwrap())
            .expect("ImageStore::save");
        let layer_magic = archive_layer_head(&archive);
        assert_eq!(
            layer_magic.starts_with(&[0x1f, 0x8b]),
            tar_flags == "-czf",
            "layer of {tag} in Berth's archive starts with {layer_magic:02x?}"
        );
        let out = d.docker_t(
            &["load", "-i", &archive.display().to_string()],
            None,
            Duration::from_secs(60),
        );
        out.expect_code(0);
        assert!(out.stdout.contains(tag), "docker load output\n{out}");
        assert_eq!(
            d.ok(&["image", "inspect", "-f", "{{.Id}}", tag]).trim(),
            id.to_string(),
            "Docker's ID for the image Berth saved"
        );
        d.docker(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME_NAME,
            "--network",
            "none",
            tag,
        ])
        .expect_stdout("hello-from-berth\n");
        d.ok(&["rmi", tag]);
        let _ = fs::remove_file(&archive);
    }
    drop(store);
    let _ = fs::remove_dir_all(&dir);
}

/// The first bytes of the (only) layer blob in a `docker save`-style archive.
fn archive_layer_head(archive: &Path) -> Vec<u8> {
    let extract = |member: &str| {
        let out = Command::new("tar")
            .arg("-xOf")
            .arg(archive)
            .arg(member)
            .output()
            .expect("running tar");
        assert!(out.status.success(), "tar -xOf {member}: {out:?}");
        out.stdout
    };
    let manifest: serde_json::Value = serde_json::from_slice(&extract("manifest.json")).unwrap();
    let layer = manifest[0]["Layers"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no layer in manifest.json: {manifest}"))
        .to_string();
    extract(&layer).into_iter().take(4).collect()
}

/// The shared private daemon (`berth_e2e::dockerd`), plus this test's own helpers.
struct Daemon(berth_e2e::dockerd::Daemon);

impl Deref for Daemon {
    type Target = berth_e2e::dockerd::Daemon;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Daemon {
    /// The daemon lists `berth` with the path we gave it.
    fn check_runtime_registered(&self) {
        let out = self.docker(&["info", "--format", "{{json .Runtimes}}"]);
        out.expect_code(0);
        let want = format!(
            "\"{RUNTIME_NAME}\":{{\"path\":\"{}\"",
            self.registered.display()
        );
        assert!(
            out.stdout.contains(&want),
            "dockerd does not list runtime {want}\n{out}"
        );
        let out = self.docker(&["info", "--format", "{{.CgroupDriver}}"]);
        assert_eq!(out.stdout.trim(), "cgroupfs", "{out}");
    }

    /// Builds a busybox rootfs and imports it with `docker import`.
    ///
    /// (Could use the shared `berth_e2e::busybox_rootfs()` fixture instead of
    /// the private builder: it makes the same tree.)
    fn import_busybox_image(&self) {
        let rootfs = self.dir.join("rootfs");
        build_busybox_rootfs(&rootfs);
        let mut tar = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .args(["-cf", "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning tar");
        // The official busybox image's config, so image-save-load has a Cmd and Env to compare.
        let mut import = self.docker_cmd(&[
            "import",
            "--change",
            &format!("ENV PATH={SYS_PATH}"),
            "--change",
            r#"CMD ["sh"]"#,
            "-",
            IMAGE,
        ]);
        import.stdin(tar.stdout.take().unwrap());
        let out = run_with_timeout(import, None, Duration::from_secs(120));
        let tar_status = tar.wait().expect("waiting for tar");
        assert!(
            tar_status.success(),
            "tar of the rootfs failed: {tar_status}"
        );
        out.expect_code(0);
        let _ = fs::remove_dir_all(&rootfs);
        let out = self.docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            IMAGE,
        ]);
        out.expect_code(0);
    }

    /// `docker run --rm --runtime berth --network none <extra> IMAGE <cmd>`.
    fn run_rm(&self, extra: &[&str], cmd: &[&str]) -> Out {
        let mut args = vec![
            "run",
            "--rm",
            "--runtime",
            RUNTIME_NAME,
            "--network",
            "none",
        ];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    /// `docker run -d …`; returns the container id.
    #[track_caller]
    fn run_detached(&self, extra: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--runtime", RUNTIME_NAME, "--network", "none"];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let id = self.ok(&args).trim().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a container id: {id:?}"
        );
        id
    }

    #[track_caller]
    fn inspect(&self, id: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, id])
            .trim()
            .to_string()
    }

    #[track_caller]
    fn logs(&self, id: &str) -> String {
        let out = self.docker(&["logs", id]);
        out.expect_code(0);
        out.stdout + &out.stderr
    }

    #[track_caller]
    fn wait_for_log(&self, id: &str, needle: &str) {
        poll(&format!("{needle:?} in the logs of {id}"), WAIT, || {
            self.logs(id).contains(needle).then_some(())
        });
    }

    #[track_caller]
    fn container_pid(&self, id: &str) -> u32 {
        let pid = self.inspect(id, "{{.State.Pid}}");
        pid.parse()
            .ok()
            .filter(|p| *p > 0)
            .unwrap_or_else(|| panic!("bad pid {pid:?} for {id}"))
    }

    /// A file in the container's cgroup on the host: with the cgroupfs driver
    /// and our `--cgroup-parent`, `/<parent>/<id>` in each hierarchy.
    fn container_cgroup_file(
        &self,
        id: &str,
        v1_controller: &str,
        v1_file: &str,
        v2_file: &str,
    ) -> PathBuf {
        if !v1_controller.is_empty() && cgroup_v1(v1_controller) {
            Path::new("/sys/fs/cgroup")
                .join(v1_controller)
                .join(&self.cgroup_parent)
                .join(id)
                .join(v1_file)
        } else {
            Path::new("/sys/fs/cgroup")
                .join(&self.cgroup_parent)
                .join(id)
                .join(v2_file)
        }
    }

    // --- interactive shells under tmux -------------------------------------

    /// Runs `docker <args>` (a `-it` shell) in a detached tmux session, checks
    /// that it evaluates `echo $((6*7))`, runs on a pty, and that `exit <code>`
    /// ends the session with `code` as docker's exit status.
    fn tty_shell(&self, name: &str, docker_args: &[&str], exit_code: i32) {
        let tmux = self
            .tmux
            .as_deref()
            .expect("tmux is needed for the -it scenarios (apt install tmux)");
        let session = Tmux {
            bin: tmux.to_path_buf(),
            sock: self.dir.join("tmux.sock"),
            name: format!("tty-{name}"),
        };
        let rc_file = self.dir.join(format!("tty-{name}.rc"));
        let _ = fs::remove_file(&rc_file);

        let mut line = format!(
            "DOCKER_CONFIG={} {} -H unix://{}",
            sh_quote(&self.dir.join("cli").display().to_string()),
            sh_quote(&self.docker_cli.display().to_string()),
            sh_quote(&self.sock.display().to_string())
        );
        for a in docker_args {
            line.push(' ');
            line.push_str(&sh_quote(a));
        }
        line.push_str(&format!(
            "; echo $? > {}",
            sh_quote(&rc_file.display().to_string())
        ));
        session.start(&line);

        session.wait_for("the shell prompt", |pane| {
            pane.lines().any(|l| l.starts_with("/ #"))
        });
        session.send("echo $((6*7))");
        session.wait_for("42 from the shell", |pane| {
            pane.lines().any(|l| l.trim() == "42")
        });
        session.send("tty");
        session.wait_for("a /dev/pts tty", |pane| {
            pane.lines().any(|l| l.trim().starts_with("/dev/pts/"))
        });
        session.send(&format!("exit {exit_code}"));
        session.wait_exited();
        let rc = fs::read_to_string(&rc_file).unwrap_or_else(|e| {
            panic!(
                "no exit status from docker ({e}); screen:\n{}",
                session.pane()
            )
        });
        assert_eq!(
            rc.trim(),
            exit_code.to_string(),
            "exit status of `docker {}`; screen:\n{}",
            docker_args.join(" "),
            session.pane()
        );
    }

    fn print_trace(&self) {
        let Some(log) = &self.trace_log else { return };
        let text = fs::read_to_string(log).unwrap_or_default();
        let tasks = self
            .dir
            .join("exec/containerd/daemon/io.containerd.runtime.v2.task/moby");
        let text = text
            .replace(&tasks.display().to_string(), "$TASKS")
            .replace(&self.dir.display().to_string(), "$TMP");
        eprintln!(
            "--- runtime invocations ({RUNTIME_NAME} = {}; $TMP = {}, $TASKS = {}) ---\n{}--- end ---",
            self.runtime.display(),
            self.dir.display(),
            tasks.display(),
            shorten_ids(&text)
        );
    }
}

/// A tmux session on a private server socket. Panes stay after their command
/// exits (`remain-on-exit`), so a failed `docker` leaves its error on screen.
struct Tmux {
    bin: PathBuf,
    sock: PathBuf,
    name: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Out {
        let mut c = Command::new(&self.bin);
        c.args(["-f", "/dev/null", "-S"])
            .arg(&self.sock)
            .args(args)
            .stdin(Stdio::null());
        run_with_timeout(c, None, Duration::from_secs(10))
    }

    fn start(&self, shell_line: &str) {
        self.cmd(&[
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "new-session",
            "-d",
            "-s",
            &self.name,
            "-x",
            "120",
            "-y",
            "40",
            shell_line,
        ])
        .expect_code(0);
    }

    fn exists(&self) -> bool {
        self.cmd(&["has-session", "-t", &self.name]).code == Some(0)
    }

    /// The session's command is still running.
    fn alive(&self) -> bool {
        let out = self.cmd(&["display-message", "-p", "-t", &self.name, "#{pane_dead}"]);
        out.code == Some(0) && out.stdout.trim() == "0"
    }

    /// The whole pane, scrollback included.
    fn pane(&self) -> String {
        self.cmd(&[
            "capture-pane",
            "-p",
            "-J",
            "-S",
            "-",
            "-E",
            "-",
            "-t",
            &self.name,
        ])
        .stdout
    }

    /// Types `text` literally, then Enter.
    fn send(&self, text: &str) {
        self.cmd(&["send-keys", "-t", &self.name, "-l", text])
            .expect_code(0);
        self.cmd(&["send-keys", "-t", &self.name, "Enter"])
            .expect_code(0);
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let pane = self.pane();
            if done(&pane) {
                return;
            }
            if !self.alive() {
                panic!(
                    "the command in tmux session {} ended while waiting for {what}; screen:\n{}",
                    self.name,
                    self.pane()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what} in tmux session {}; screen:\n{pane}",
                    self.name
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exited(&self) {
        let deadline = Instant::now() + WAIT;
        while self.alive() {
            if Instant::now() > deadline {
                panic!(
                    "tmux session {}: command still running {WAIT:?} after exit; screen:\n{}",
                    self.name,
                    self.pane()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if self.exists() {
            self.cmd(&["kill-session", "-t", &self.name]);
        }
    }
}

// ---------------------------------------------------------------------------
// Runtime, image
// ---------------------------------------------------------------------------

/// `$BERTH_DOCKER_RUNTIME`, else the newest built berth-runc.
fn runtime_under_test() -> PathBuf {
    if let Some(p) = env_nonempty("BERTH_DOCKER_RUNTIME") {
        let path = PathBuf::from(&p);
        let path = if path.is_absolute() {
            path
        } else {
            find_exe(&p).unwrap_or(path)
        };
        assert!(
            is_executable(&path),
            "BERTH_DOCKER_RUNTIME={p}: not an executable file"
        );
        return fs::canonicalize(&path).unwrap_or(path);
    }
    let target = target_dir();
    let candidates: Vec<PathBuf> = ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("berth-runc"))
        .collect();
    candidates
        .iter()
        .filter(|p| is_executable(p))
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "build berth-runc first (cargo build -p berth-runc), or set BERTH_DOCKER_RUNTIME=/usr/sbin/runc \
                 to test the harness; looked for {candidates:?}"
            )
        })
}

/// `$CARGO_TARGET_DIR`, else the ancestor of this test binary that cargo marked
/// with CACHEDIR.TAG, else `<workspace>/target`.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    if let Some(dir) = env_nonempty("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace.join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    workspace.join("target")
}

/// A busybox rootfs: Debian's static /bin/busybox, one symlink per applet
/// (`busybox --list-full`), /etc/passwd and /etc/group with root and nobody,
/// and the usual empty mount-point dirs.
fn build_busybox_rootfs(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        is_executable(busybox),
        "/bin/busybox missing (apt install busybox-static)"
    );
    for (dir, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("proc", 0o755),
        ("sys", 0o755),
        ("dev", 0o755),
        ("run", 0o755),
        ("var", 0o755),
        ("home", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::copy(busybox, root.join("bin/busybox")).expect("copying /bin/busybox");
    fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(busybox)
        .arg("--list-full")
        .output()
        .expect("busybox --list-full");
    assert!(list.status.success(), "busybox --list-full failed");
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let link = root.join(applet.trim_start_matches('/'));
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        if fs::symlink_metadata(&link).is_err() {
            symlink("/bin/busybox", &link)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
    assert!(root.join("bin/sh").exists(), "busybox has no sh applet?");
}

/// Replaces 64-hex-digit ids with their first 12 digits, for readable traces.
fn shorten_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        if run == 64 {
            out.extend(&chars[i..i + 12]);
            i += 64;
        } else if run > 0 {
            out.extend(&chars[i..i + run]);
            i += run;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
