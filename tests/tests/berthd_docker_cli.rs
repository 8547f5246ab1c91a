//! berthd judged by the real docker CLI (v28): the container lifecycle, errors and exit codes
//! as against Docker, and live restore across a kill -9 of the daemon. Root only.

use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::poll;



fn state(d: &Berthd, name: &str) -> String {
    d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name])
}

#[test]
fn system_endpoints() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::start();
    assert_eq!(d.ok(&["version", "--format", "{{.Server.APIVersion}}"]), berth_api_version());
    let info = d.ok(&["info", "--format", "{{.Driver}} {{.CgroupDriver}} {{.NCPU}} {{.OSType}}"]);
    assert!(info.ends_with("cgroupfs 2 linux") || info.contains("cgroupfs"), "{info}");
    d.import_busybox("busybox:latest");
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "busybox:latest");
    assert_eq!(d.ok(&["info", "--format", "{{.Images}}"]), "1");
}

fn berth_api_version() -> &'static str {
    "1.47"
}

#[test]
fn run_attached_output_and_exit_codes() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "out\n", "{o}");
    assert_eq!(o.stderr, "err\n", "{o}");
    assert_eq!(d.ok(&["ps", "-aq"]), "", "--rm removed the container");

    let o = d.docker(&["run", "--name", "three", "busybox", "sh", "-c", "exit 3"]);
    o.expect_code(3);
    assert_eq!(state(&d, "three"), "exited 3");
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("three Exited (3)"), "{ps}");

    // Not found: 127 like Docker, and the container stays with its error.
    let o = d.docker(&["run", "--name", "nf", "busybox", "no-such-command"]);
    o.expect_code(127);
    assert!(o.stderr.contains("executable file not found"), "{o}");

    // --rm with a failed start: removed, and the CLI does not hang.
    let before = d.ok(&["ps", "-aq"]);
    let o = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    o.expect_code(127);
    assert_eq!(d.ok(&["ps", "-aq"]), before);

    // stdin through attach.
    let o = d.docker_in(&["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"], Some(b"hello\n".to_vec()));
    o.expect_stdout("HELLO\n");

    let o = d.docker(&["logs", "three"]);
    o.expect_code(0);
    let o = d.docker(&["run", "--name", "logged", "busybox", "sh", "-c", "echo one; echo two >&2"]);
    o.expect_code(0);
    let o = d.docker(&["logs", "logged"]);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("one\n", "two\n"), "{o}");
    assert_eq!(d.ok(&["logs", "--tail", "1", "logged"]), "");
}

#[test]
fn detached_lifecycle() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let id = d.ok(&["run", "-d", "--name", "web", "busybox", "sleep", "1000"]);
    assert_eq!(id.len(), 64);
    assert_eq!(state(&d, "web"), "running 0");
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Command}} {{.Status}}"]);
    assert!(ps.starts_with("web \"sleep 1000\" Up"), "{ps}");
    let top = d.ok(&["top", "web"]);
    assert!(top.contains("sleep 1000"), "{top}");

    // Name conflicts and removal of a running container are refused as Docker refuses them.
    let o = d.docker(&["create", "--name", "web", "busybox"]);
    o.expect_code(1);
    assert!(o.stderr.contains("Conflict. The container name \"/web\" is already in use"), "{o}");
    let o = d.docker(&["rm", "web"]);
    o.expect_code(1);
    assert!(o.stderr.contains("cannot remove container \"/web\": container is running"), "{o}");

    d.ok(&["pause", "web"]);
    assert_eq!(state(&d, "web"), "paused 0");
    d.ok(&["unpause", "web"]);
    d.ok(&["stop", "-t", "1", "web"]);
    let st = state(&d, "web");
    assert!(st == "exited 137" || st == "exited 143", "{st}");
    d.ok(&["start", "web"]);
    assert_eq!(state(&d, "web"), "running 0");
    d.ok(&["restart", "-t", "0", "web"]);
    assert_eq!(state(&d, "web"), "running 0");
    // sleep as PID 1 has no handler: TERM is ignored, as under Docker; KILL is not.
    d.ok(&["kill", "-s", "TERM", "web"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(&d, "web"), "running 0");
    d.ok(&["kill", "web"]);
    poll("web to exit", Duration::from_secs(10), || (state(&d, "web") == "exited 137").then_some(()));
    d.ok(&["rename", "web", "web2"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.Name}}", &id[..12]]), "/web2");
    d.ok(&["rm", "web2"]);
    let o = d.docker(&["inspect", "web2"]);
    o.expect_code(1);
    assert!(o.stderr.contains("No such object: web2") || o.stderr.contains("No such container"), "{o}");

    let o = d.docker(&["run", "--cap-add", "NOPE", "busybox", "true"]);
    o.expect_code(125);
    assert_eq!(d.ok(&["ps", "-aq"]), "", "a refused create leaves nothing");

    // docker wait and restart policies.
    d.ok(&["run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1"]);
    poll("two restarts", Duration::from_secs(20), || {
        (d.ok(&["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky"]) == "2 exited").then_some(())
    });
    assert!(d.leaks().iter().all(|l| !l.starts_with("monitor")), "{:?}", d.leaks());
}

#[test]
fn containers_survive_daemon_kill9() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let mut d = Berthd::with_busybox();
    d.ok(&["run", "-d", "--name", "long", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 2; exit 7"]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "long"]);
    d.kill9();
    std::thread::sleep(Duration::from_secs(3));
    d.launch();
    assert_eq!(state(&d, "long"), "running 0");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Pid}}", "long"]), pid);
    assert_eq!(state(&d, "short"), "exited 7", "an exit while berthd was down is recorded");
    assert_eq!(d.ok(&["ps", "-a", "-q"]).lines().count(), 2, "no container lost or duplicated");
    d.ok(&["stop", "-t", "1", "long"]);
    d.ok(&["rm", "long", "short"]);
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[test]
fn diff_commit_export_update_events() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let since = d.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    d.ok(&["run", "--name", "fs", "busybox", "sh", "-c", "echo hi > /new; rm /bin/true; mkdir /tmp/d"]);
    let diff = d.ok(&["diff", "fs"]);
    for line in ["A /new", "C /bin", "D /bin/true", "A /tmp/d"] {
        assert!(diff.lines().any(|l| l == line), "{line} missing from\n{diff}");
    }
    let id = d.ok(&["commit", "-m", "msg", "-c", "CMD [\"cat\", \"/new\"]", "fs", "snap:1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&["run", "--rm", "snap:1"]), "hi");
    let hist = d.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "snap:1"]);
    assert!(hist.lines().next().is_some_and(|l| l.starts_with("sh -c echo hi") && l.ends_with("|msg")), "{hist}");
    let tar = d.dir.path().join("fs.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "fs"]);
    let list = std::process::Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(names.lines().any(|l| l.trim_start_matches("./") == "new"), "export lacks /new");
    assert!(!names.lines().any(|l| l.trim_start_matches("./") == "bin/true"), "export has a deleted file");

    // update on a running container reaches its cgroup.
    d.ok(&["run", "-d", "--name", "upd", "-m", "64m", "busybox", "sleep", "100"]);
    d.ok(&["update", "--memory", "100m", "upd"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "upd"]), "104857600");
    let o = d.docker(&["update", "--memory", "2GB", "upd"]);
    assert!(o.stderr.contains("Memory limit should be smaller than already set memoryswap limit"), "{o}");
    d.ok(&["update", "--memory", "2GB", "--memory-swap", "4GB", "upd"]);
    let cg = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/{}/{}/memory.limit_in_bytes",
        d.cgroup_parent,
        d.ok(&["inspect", "-f", "{{.Id}}", "upd"])
    ));
    if let Ok(v) = cg {
        assert_eq!(v.trim(), "2147483648");
    }
    d.ok(&["rm", "-f", "upd"]);

    // Events: what happened, filtered.
    // The CLI sends `until` in whole seconds: end the stream at the next one.
    let until = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    let ev = d.ok(&["events", "--since", "0", "--until", &until, "--filter", "container=fs", "--format", "{{.Action}}"]);
    let actions: Vec<&str> = ev.lines().collect();
    for a in ["create", "attach", "start", "die", "commit"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[test]
fn restart_always_after_host_reboot() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let mut d = Berthd::with_busybox();
    d.ok(&["run", "-d", "--name", "svc", "--restart", "always", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "oneshot", "busybox", "sleep", "1000"]);
    let old = d.ok(&["inspect", "-f", "{{.State.Pid}}", "svc"]);
    // A reboot: the daemon, every monitor and every container process die, /run is emptied.
    d.kill9();
    for pid in d.monitors() {
        berth_e2e::dockerd::signal(pid, "KILL");
    }
    berth_e2e::dockerd::signal(old.parse().unwrap(), "KILL");
    poll("monitors to go", Duration::from_secs(10), || d.monitors().is_empty().then_some(()));
    d.launch();
    poll("svc to come back", Duration::from_secs(10), || {
        (state(&d, "svc") == "running 0" && d.ok(&["inspect", "-f", "{{.State.Pid}}", "svc"]) != old).then_some(())
    });
    let st = state(&d, "oneshot");
    assert!(st.starts_with("exited"), "{st}");
    d.ok(&["rm", "-f", "svc", "oneshot"]);
}

/// kill -9 of berthd at arbitrary points of a run/stop/rm loop: after a restart every listed
/// container inspects, can be removed, and nothing is left on the host.
#[test]
fn kill9_during_lifecycle_leaves_a_consistent_state() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let mut d = Berthd::with_busybox();
    for round in 0..4u64 {
        let host = d.host();
        let cfg = d.dir.path().join("docker-config");
        let worker = std::thread::spawn(move || {
            for i in 0..40 {
                let name = format!("r{round}x{i}");
                let run = |args: &[&str]| {
                    let _ = std::process::Command::new("docker")
                        .args(args)
                        .env("DOCKER_HOST", &host)
                        .env("DOCKER_CONFIG", &cfg)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                };
                run(&["run", "-d", "--name", &name, "busybox", "sleep", "100"]);
                run(&["rm", "-f", &name]);
                run(&["run", "--rm", "busybox", "true"]);
            }
        });
        std::thread::sleep(Duration::from_millis(300 + round * 170));
        d.kill9();
        let _ = worker.join();
        d.launch();
        let ids = d.ok(&["ps", "-aq"]);
        for id in ids.split_whitespace() {
            d.ok(&["inspect", id]);
            d.ok(&["rm", "-f", id]);
        }
        assert_eq!(d.ok(&["ps", "-aq"]), "", "round {round}");
    }
    poll("monitors to exit", Duration::from_secs(10), || d.monitors().is_empty().then_some(()));
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}
