//! berth-runc's runc command-line contract, as containerd and Docker drive it:
//! create/start/state/kill/delete with status transitions, run (foreground
//! exit codes, detached), exec and its options, ps, pause/resume, update,
//! spec, features, list, and the --log file. Every test uses its own --root
//! (the Runtime fixture) and force-deletes what it created.

mod runc_support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_e2e::{unique_id, Bundle, Runtime};
use runc_support::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

fn sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.set_args(&["sleep", "1000"]);
    b
}

/// create + start a `sleep 1000` container; returns its id.
fn running(rt: &Runtime, bundle: &Bundle, prefix: &str) -> String {
    let id = unique_id(prefix);
    ok(&rt.create(&id, bundle));
    ok(&rt.start(&id));
    rt.wait_status(&id, "running", T);
    id
}

#[test]
fn create_start_kill_delete_with_state_and_pid_file() {
    let rt = berth();
    let mut bundle = sleeper();
    bundle.config_mut()["annotations"] = json!({"org.example.key": "value", "b": "2"});
    let id = unique_id("life");
    let pid_file = bundle.path().join("init.pid");
    ok(&rt.create_with_pid_file(&id, &bundle, &pid_file));

    let st = rt.state(&id);
    let pid: i64 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["pid"], pid, "{st}");
    assert_eq!(st["status"], "created");
    let canon = fs::canonicalize(bundle.path()).unwrap();
    assert_eq!(Path::new(st["bundle"].as_str().unwrap()), canon);
    assert_eq!(
        Path::new(st["rootfs"].as_str().unwrap()),
        fs::canonicalize(bundle.rootfs()).unwrap()
    );
    assert!(is_rfc3339(st["created"].as_str().unwrap()), "{st}");
    assert_eq!(
        st["annotations"],
        json!({"org.example.key": "value", "b": "2"})
    );
    assert_eq!(st["owner"], "0");
    // The init waits for start: still berth-runc, not sleep.
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");

    ok(&rt.start(&id));
    rt.wait_status(&id, "running", T);
    assert!(
        wait_until(T, || fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "sleep")),
        "init did not exec sleep"
    );
    let again = fails(&rt.start(&id));
    assert!(again.contains("running"), "{again}");

    let refused = fails(&rt.delete(&id));
    assert!(
        refused.contains("running") && refused.contains("--force"),
        "{refused}"
    );
    assert_eq!(rt.state(&id)["status"], "running");

    ok(&rt.kill(&id, "KILL"));
    let st = rt.wait_status(&id, "stopped", T);
    assert_eq!(st["pid"], 0, "stopped container reports pid 0: {st}");
    let err = fails(&rt.kill(&id, "KILL"));
    assert!(
        err.contains("not running") || err.contains("stopped"),
        "{err}"
    );
    ok(&rt.delete(&id));
    let gone = fails(&rt.state_output(&id));
    assert!(gone.contains("does not exist"), "{gone}");
    assert!(!rt.root().join(&id).exists());
    assert_cgroup_gone(&format!("/berth/{id}"));
}

/// A stopped container whose recorded pid now belongs to another process must
/// stay "stopped", and kill/delete must not touch that process.
#[test]
fn stopped_container_survives_pid_reuse() {
    let rt = berth();
    let bundle = sleeper();
    let id = running(&rt, &bundle, "reuse");
    ok(&rt.kill(&id, "9"));
    rt.wait_status(&id, "stopped", T);

    let marker = unique_id("reused-pid");
    let mut other = KillOnDrop(
        Command::new("sh")
            .args(["-c", "sleep 60; : $0", &marker])
            .spawn()
            .unwrap(),
    );
    let state_file = rt.root().join(&id).join("state.json");
    let mut rec: Value = serde_json::from_slice(&fs::read(&state_file).unwrap()).unwrap();
    assert!(
        rec["pid"].as_i64().unwrap() > 0,
        "state.json keeps the init pid: {rec}"
    );
    rec["pid"] = json!(other.0.id());
    fs::write(&state_file, serde_json::to_vec(&rec).unwrap()).unwrap();

    let st = rt.state(&id);
    assert_eq!(
        (st["status"].as_str(), st["pid"].as_i64()),
        (Some("stopped"), Some(0)),
        "{st}"
    );
    fails(&rt.kill(&id, "KILL"));
    ok(&rt.delete(&id));
    std::thread::sleep(Duration::from_millis(50));
    let alive = other.0.try_wait().unwrap().is_none();
    assert!(
        alive,
        "kill/delete of a stopped container killed an unrelated process with the reused pid"
    );
}

#[test]
fn kill_takes_signal_numbers_and_names() {
    let rt = berth();
    // Three spellings of SIGKILL, one container each.
    let bundle = sleeper();
    for sig in ["9", "KILL", "SIGKILL"] {
        let id = running(&rt, &bundle, "killsig");
        ok(&rt.kill(&id, sig));
        rt.wait_status(&id, "stopped", T);
        ok(&rt.delete(&id));
    }
    // Non-fatal signals by number and name reach a handler in the init.
    let mut b = Bundle::new();
    b.set_args(&["sh", "-c", "trap 'echo usr1 >> /dev/shm/log' USR1; echo ready > /dev/shm/ready; while :; do sleep 0.05; done"]);
    let id = running(&rt, &b, "trap");
    assert!(wait_until(T, || rt
        .exec(&id, &["cat", "/dev/shm/ready"])
        .status
        .success()));
    // One at a time: a pending signal is not queued twice.
    for (n, sig) in ["10", "USR1", "SIGUSR1"].into_iter().enumerate() {
        ok(&rt.kill(&id, sig));
        let seen = wait_until(T, || {
            String::from_utf8_lossy(&rt.exec(&id, &["cat", "/dev/shm/log"]).stdout)
                .lines()
                .count()
                == n + 1
        });
        assert!(seen, "kill {sig} did not reach the USR1 handler");
    }
    let err = fails(&rt.kill(&id, "NOSUCHSIG"));
    assert!(err.to_lowercase().contains("signal"), "{err}");
    // Default signal is SIGTERM; pid 1 with no TERM handler ignores it.
    ok(&rt.cli(&["kill", &id]));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rt.state(&id)["status"], "running");
    ok(&rt.delete_force(&id));
}

/// Without a PID namespace, killing the init leaves its detached descendants
/// running; `kill --all` reaches every process in the container's cgroup.
#[test]
fn kill_all_reaches_every_process_in_the_cgroup() {
    let rt = berth();
    let mut b = Bundle::new();
    b.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.set_args(&[
        "sh",
        "-c",
        "setsid sh -c 'sleep 1000; true' & sleep 1000; true",
    ]);
    let id = running(&rt, &b, "killall");
    ok(&rt.cli(&["exec", "-d", &id, "sh", "-c", "sleep 1000; true"]));
    let procs = Path::new("/sys/fs/cgroup/pids/berth")
        .join(&id)
        .join("cgroup.procs");
    let count = || {
        fs::read_to_string(&procs)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(T, || count() >= 6),
        "expected 6 processes, cgroup has {}",
        count()
    );
    let ps: Vec<i64> =
        serde_json::from_str(&ok(&rt.cli(&["ps", "--format", "json", &id]))).unwrap();
    assert!(ps.len() >= 6, "{ps:?}");

    ok(&rt.cli(&["kill", "--all", &id, "KILL"]));
    assert!(
        wait_until(T, || count() == 0),
        "kill --all left {} processes",
        count()
    );
    rt.wait_status(&id, "stopped", T);
    ok(&rt.delete(&id));
    assert_cgroup_gone(&format!("/berth/{id}"));
}

#[test]
fn delete_force_in_every_state() {
    let rt = berth();
    let bundle = sleeper();
    // created
    let created = unique_id("dfc");
    ok(&rt.create(&created, &bundle));
    let pid = init_pid(&rt, &created);
    ok(&rt.delete_force(&created));
    assert!(
        wait_until(T, || is_zombie(pid)),
        "created init {pid} survived delete --force"
    );
    // running
    let run = running(&rt, &bundle, "dfr");
    let pid = init_pid(&rt, &run);
    ok(&rt.delete_force(&run));
    assert!(
        wait_until(T, || is_zombie(pid)),
        "running init {pid} survived delete --force"
    );
    // paused
    let paused = running(&rt, &bundle, "dfp");
    let pid = init_pid(&rt, &paused);
    ok(&rt.cli(&["pause", &paused]));
    assert_eq!(rt.state(&paused)["status"], "paused");
    let t0 = Instant::now();
    ok(&rt.delete_force(&paused));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "delete --force of a paused container took {:?}",
        t0.elapsed()
    );
    assert!(
        wait_until(T, || is_zombie(pid)),
        "paused init {pid} survived delete --force"
    );
    for id in [&created, &run, &paused] {
        fails(&rt.state_output(id));
        assert!(!rt.root().join(id).exists());
        assert_cgroup_gone(&format!("/berth/{id}"));
        // Already deleted: --force succeeds, plain delete does not.
        ok(&rt.delete_force(id));
    }
    ok(&rt.delete_force("never-existed"));
    let err = fails(&rt.delete("never-existed"));
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn run_propagates_exit_codes_and_detaches() {
    let rt = berth();
    let mut b = Bundle::new();
    b.set_args(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = unique_id("run7");
    let out = rt.run(&id, &b);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(stderr(&out).contains("err"));
    fails(&rt.state_output(&id)); // foreground run deletes the container
    assert_cgroup_gone(&format!("/berth/{id}"));

    // Killed by a signal: 128 + N.
    let bundle = sleeper();
    let id = unique_id("run137");
    let path = bundle.path().to_path_buf();
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| rt.run(&id, &path));
        assert!(
            wait_until(T, || rt.state_output(&id).status.success()
                && rt.state(&id)["status"] == "running"),
            "foreground run did not start"
        );
        ok(&rt.kill(&id, "KILL"));
        h.join().unwrap()
    });
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    fails(&rt.state_output(&id));

    // Detached.
    let id = unique_id("rund");
    let t0 = Instant::now();
    ok(&rt.cli(&[
        OsStr("run"),
        OsStr("-d"),
        OsStr("--bundle"),
        bundle.path().as_os_str(),
        OsStr(&id),
    ]));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(rt.state(&id)["status"], "running");
    ok(&rt.delete_force(&id));
}

#[allow(non_snake_case)]
fn OsStr(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

#[test]
fn exec_options_exit_codes_and_errors() {
    let rt = berth();
    let bundle = sleeper();
    let id = running(&rt, &bundle, "exec");
    let out = ok(&rt.cli(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "65534:65534",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g",
    ]));
    assert_eq!(out, "bar\n/tmp\n65534\n65534\n");
    // args after the id are the command's, even when they look like flags
    assert_eq!(ok(&rt.exec(&id, &["echo", "-e", "x"])), "x\n");
    assert_eq!(rt.exec(&id, &["sh", "-c", "exit 5"]).status.code(), Some(5));

    // --cap adds CAP_SYS_ADMIN (bit 21) to the effective set.
    let capeff = |out: String| {
        let hex = out.trim().rsplit(['\t', ' ']).next().unwrap().to_string();
        u64::from_str_radix(&hex, 16).unwrap()
    };
    let grep = ["sh", "-c", "grep CapEff /proc/self/status"];
    assert_eq!(capeff(ok(&rt.exec(&id, &grep))) & (1 << 21), 0);
    let mut args = vec!["exec", "--cap", "CAP_SYS_ADMIN", &id];
    args.extend(grep);
    assert_ne!(capeff(ok(&rt.cli(&args))) & (1 << 21), 0);

    // --process FILE
    let pfile = bundle.path().join("process.json");
    let mut process = bundle.config()["process"].clone();
    process["args"] = json!(["sh", "-c", "echo $PJ; pwd; exit 3"]);
    process["env"] = json!(["PATH=/bin", "PJ=from-process-json"]);
    process["cwd"] = json!("/etc");
    fs::write(&pfile, process.to_string()).unwrap();
    let out = rt.cli(&[
        OsStr("exec"),
        OsStr("--process"),
        pfile.as_os_str(),
        OsStr(&id),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-process-json\n/etc\n"
    );

    // Missing binary: runc's wording, which Docker maps to exit code 127.
    let err = fails(&rt.exec(&id, &["no-such-binary-xyz"]));
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let err = fails(&rt.cli(&["exec", "--cwd", "/does/not/exist", &id, "true"]));
    assert!(err.contains("/does/not/exist"), "{err}");

    // -d --pid-file: returns at once; the process shows in ps (json and table).
    let epid_file = bundle.path().join("exec.pid");
    let t0 = Instant::now();
    ok(&rt.cli(&[
        OsStr("exec"),
        OsStr("-d"),
        OsStr("--pid-file"),
        epid_file.as_os_str(),
        OsStr(&id),
        OsStr("sleep"),
        OsStr("999"),
    ]));
    assert!(t0.elapsed() < Duration::from_secs(5));
    let epid: i32 = fs::read_to_string(&epid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        fs::read_to_string(format!("/proc/{epid}/cmdline")).unwrap(),
        "sleep\0999\0"
    );
    let init = init_pid(&rt, &id);
    let pids: Vec<i32> =
        serde_json::from_str(&ok(&rt.cli(&["ps", "--format", "json", &id]))).unwrap();
    assert!(
        pids.contains(&init) && pids.contains(&epid),
        "{pids:?} lacks {init} or {epid}"
    );
    let table = ok(&rt.cli(&["ps", &id]));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .expect("PID column");
    let listed: Vec<i32> = lines
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect();
    assert!(listed.contains(&init) && listed.contains(&epid), "{table}");
    assert!(table.contains("sleep 999"), "{table}");

    // A stopped container cannot be exec'd into.
    ok(&rt.kill(&id, "KILL"));
    rt.wait_status(&id, "stopped", T);
    let err = fails(&rt.exec(&id, &["true"]));
    assert!(
        err.contains("stopped") || err.contains("not running"),
        "{err}"
    );
    ok(&rt.delete(&id));
}

#[test]
fn terminals_go_to_the_console_socket() {
    let rt = berth();
    // create with process.terminal
    let mut b = Bundle::new();
    b.config_mut()["process"]["terminal"] = json!(true);
    b.set_args(&["sh", "-c", "tty; echo created-tty; sleep 1000"]);
    let err = fails(&rt.create(&unique_id("notty"), &b));
    assert!(err.contains("console-socket"), "{err}");
    let sock = ConsoleSocket::new();
    let id = unique_id("tty");
    ok(&rt.cli(&[
        OsStr("create"),
        OsStr("--bundle"),
        b.path().as_os_str(),
        OsStr("--console-socket"),
        sock.path.as_os_str(),
        OsStr(&id),
    ]));
    let master = sock.recv_master();
    ok(&rt.start(&id));
    let text = read_pty(master, "created-tty");
    assert!(
        text.contains("/dev/pts/") && text.contains("created-tty"),
        "{text:?}"
    );

    // exec -t with --console-socket, in the foreground: exit code is the process's.
    let sock2 = ConsoleSocket::new();
    let out = rt.cli(&[
        OsStr("exec"),
        OsStr("-t"),
        OsStr("--console-socket"),
        sock2.path.as_os_str(),
        OsStr(&id),
        OsStr("sh"),
        OsStr("-c"),
        OsStr("tty; echo exec-tty; exit 4"),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = read_pty(sock2.recv_master(), "exec-tty");
    assert!(
        text.contains("/dev/pts/") && text.contains("exec-tty"),
        "{text:?}"
    );
    ok(&rt.delete_force(&id));
}

#[test]
fn pause_and_resume_freeze_the_cgroup() {
    let rt = berth();
    let bundle = sleeper();
    let id = running(&rt, &bundle, "pause");
    let freezer = |id: &str| cg_read("freezer", &format!("/berth/{id}"), "freezer.state");
    ok(&rt.cli(&["pause", &id]));
    assert_eq!(rt.state(&id)["status"], "paused");
    assert_eq!(freezer(&id), "FROZEN");
    let err = fails(&rt.cli(&["pause", &id]));
    assert!(err.contains("paused"), "{err}");
    ok(&rt.cli(&["resume", &id]));
    assert_eq!(rt.state(&id)["status"], "running");
    assert_eq!(freezer(&id), "THAWED");
    let err = fails(&rt.cli(&["resume", &id]));
    assert!(err.contains("running"), "{err}");
    assert_eq!(ok(&rt.exec(&id, &["echo", "alive"])), "alive\n");
    ok(&rt.delete_force(&id));
}

/// `update -r -` with the stdin closed after writing `json`.
fn update_stdin(rt: &Runtime, id: &str, json: &str) -> std::process::Output {
    let mut child = rt
        .command()
        .args(["update", "-r", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn update_changes_cgroup_limits() {
    let rt = berth();
    let bundle = sleeper();
    let id = running(&rt, &bundle, "update");
    let cg = format!("/berth/{id}");
    ok(&rt.cli(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "50000",
        &id,
    ]));
    assert_eq!(
        cg_read("memory", &cg, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cg_read("pids", &cg, "pids.max"), "20");
    assert_eq!(cg_read("cpu", &cg, "cpu.cfs_quota_us"), "50000");

    // Docker's shape on stdin; zero values mean "leave alone".
    let docker = r#"{"memory":{"limit":134217728,"reservation":0,"swap":268435456,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"pids":{"limit":30},"blockIO":{"weight":0}}"#;
    ok(&update_stdin(&rt, &id, docker));
    assert_eq!(cg_read("memory", &cg, "memory.limit_in_bytes"), "134217728");
    if Path::new("/sys/fs/cgroup/memory")
        .join(&cg[1..])
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            cg_read("memory", &cg, "memory.memsw.limit_in_bytes"),
            "268435456"
        );
    }
    assert_eq!(cg_read("pids", &cg, "pids.max"), "30");
    assert_eq!(
        cg_read("cpu", &cg, "cpu.cfs_quota_us"),
        "50000",
        "quota 0 must not reset the quota"
    );

    // -r FILE
    let file = bundle.path().join("resources.json");
    fs::write(&file, r#"{"pids":{"limit":40},"cpu":{"shares":512}}"#).unwrap();
    ok(&rt.cli(&[OsStr("update"), OsStr("-r"), file.as_os_str(), OsStr(&id)]));
    assert_eq!(cg_read("pids", &cg, "pids.max"), "40");
    assert_eq!(cg_read("cpu", &cg, "cpu.shares"), "512");
    // The limit is real: 40 processes at most.
    rt.exec(
        &id,
        &[
            "sh",
            "-c",
            "for i in $(seq 50); do sleep 1 & done 2>/dev/null; wait",
        ],
    );
    assert!(
        cg_read("pids", &cg, "pids.events").contains("max "),
        "pids.events missing"
    );
    assert_ne!(
        cg_read("pids", &cg, "pids.events"),
        "max 0",
        "no fork was refused at pids.max 40"
    );
    // Invalid update: error, nothing changed.
    let err = fails(&update_stdin(
        &rt,
        &id,
        r#"{"memory":{"limit":134217728,"swap":1000}}"#,
    ));
    assert!(err.contains("swap"), "{err}");
    assert_eq!(cg_read("memory", &cg, "memory.limit_in_bytes"), "134217728");
    ok(&rt.delete_force(&id));
}

#[test]
fn spec_writes_a_runnable_config_once() {
    let rt = berth();
    let b = Bundle::with_private_rootfs();
    fs::remove_file(b.config_path()).unwrap();
    let dir = b.path().to_path_buf();
    ok(&rt.cli(&[OsStr("spec"), OsStr("--bundle"), dir.as_os_str()]));
    let written = fs::read(dir.join("config.json")).unwrap();
    let mut spec: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["terminal"], true);
    let err = fails(&rt.cli(&[OsStr("spec"), OsStr("--bundle"), dir.as_os_str()]));
    assert!(err.contains("exists"), "{err}");
    assert_eq!(
        fs::read(dir.join("config.json")).unwrap(),
        written,
        "spec overwrote config.json"
    );

    // As written (terminal and all), with only the command changed, it runs.
    spec["process"]["args"] = json!(["sh", "-c", "echo spec-ok; hostname"]);
    fs::write(dir.join("config.json"), spec.to_string()).unwrap();
    let sock = ConsoleSocket::new();
    let id = unique_id("spec");
    ok(&rt.cli(&[
        OsStr("create"),
        OsStr("--bundle"),
        dir.as_os_str(),
        OsStr("--console-socket"),
        sock.path.as_os_str(),
        OsStr(&id),
    ]));
    let master = sock.recv_master();
    ok(&rt.start(&id));
    let text = read_pty(master, "berth");
    assert!(
        text.contains("spec-ok") && text.contains("berth"),
        "{text:?}"
    );
    rt.wait_status(&id, "stopped", T);
    ok(&rt.delete(&id));
}

#[test]
fn features_describe_the_runtime() {
    let rt = berth();
    let f: Value = serde_json::from_str(&ok(&rt.cli(&["features"]))).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let hooks = strs(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h.to_string()), "{h} missing from {hooks:?}");
    }
    let opts = strs(&f["mountOptions"]);
    for o in [
        "bind",
        "rbind",
        "ro",
        "rw",
        "nosuid",
        "nodev",
        "noexec",
        "rprivate",
        "tmpcopyup",
    ] {
        assert!(opts.contains(&o.to_string()), "{o} missing from {opts:?}");
    }
    let ns = strs(&f["linux"]["namespaces"]);
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.contains(&n.to_string()), "{n} missing from {ns:?}");
    }
    assert!(strs(&f["linux"]["capabilities"]).contains(&"CAP_SYS_ADMIN".to_string()));
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
}

#[test]
fn list_in_table_json_and_quiet_forms() {
    let rt = berth();
    assert_eq!(ok(&rt.cli(&["list", "-q"])), "");
    let bundle = sleeper();
    let a = unique_id("lsa");
    ok(&rt.create(&a, &bundle));
    let b = running(&rt, &bundle, "lsb");
    let mut ids = vec![a.clone(), b.clone()];
    ids.sort();
    let quiet: Vec<String> = ok(&rt.cli(&["list", "-q"]))
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(quiet, ids);

    let all: Value = serde_json::from_str(&ok(&rt.cli(&["list", "--format", "json"]))).unwrap();
    let status = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].clone())
    };
    assert_eq!(status(&a), Some(json!("created")));
    assert_eq!(status(&b), Some(json!("running")));

    let table = ok(&rt.cli(&["list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header = lines[0];
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(
            header.split_whitespace().any(|h| h == col),
            "{col} missing: {header}"
        );
    }
    // Columns line up: each row's bundle starts under the BUNDLE heading.
    let at = header.find("BUNDLE").unwrap();
    let canon = fs::canonicalize(bundle.path()).unwrap();
    for row in &lines[1..] {
        assert_eq!(
            row.find(canon.to_str().unwrap()),
            Some(at),
            "misaligned row:\n{table}"
        );
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(
            ids.contains(&cells[0].to_string()) && ["created", "running"].contains(&cells[2]),
            "{row}"
        );
    }
    ok(&rt.delete_force(&a));
    ok(&rt.delete_force(&b));
}

#[test]
fn log_file_gets_json_errors_for_containerd() {
    let rt = berth();
    let mut b = Bundle::new();
    b.config_mut()["root"]["path"] = json!("/nonexistent-rootfs-for-log-test");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let id = unique_id("log");
    let out = rt.cli(&[
        OsStr("--log"),
        log.as_os_str(),
        OsStr("--log-format"),
        OsStr("json"),
        OsStr("create"),
        OsStr("--bundle"),
        b.path().as_os_str(),
        OsStr(&id),
    ]);
    fails(&out);
    let text = fs::read_to_string(&log).expect("log file written");
    let line: Value = serde_json::from_str(text.lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(line["level"], "error");
    let msg = line["msg"].as_str().unwrap();
    assert!(msg.contains("/nonexistent-rootfs-for-log-test"), "{msg}");
    assert!(line["time"].as_str().is_some_and(is_rfc3339), "{line}");
    assert!(!rt.root().join(&id).exists());
    // Text format is logfmt-like.
    let tlog = dir.path().join("log.txt");
    fails(&rt.cli(&[
        OsStr("--log"),
        tlog.as_os_str(),
        OsStr("create"),
        OsStr("--bundle"),
        b.path().as_os_str(),
        OsStr(&id),
    ]));
    let text = fs::read_to_string(&tlog).unwrap();
    assert!(
        text.contains("level=error") && text.contains("nonexistent-rootfs-for-log-test"),
        "{text}"
    );
}
