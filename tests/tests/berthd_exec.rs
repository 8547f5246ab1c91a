//! `docker exec` and healthchecks through berthd, judged by the docker CLI (v28), a real
//! terminal (tmux) and the Python SDK: output, exit codes and errors as against Docker.
//! Root only.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::{poll, run_with_timeout};
use berth_e2e::{find_in_path, unique_id};



fn inspect(d: &Berthd, fmt: &str, name: &str) -> String {
    d.ok(&["inspect", "-f", fmt, name])
}

/// `docker events` between `since` (unix seconds) and now.
fn events(d: &Berthd, since: u64, filter: &str) -> String {
    let until = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    d.ok(&["events", "--since", &since.to_string(), "--until", &until, "--filter", filter, "--format", "{{.Action}} {{.Actor.Attributes.name}}"])
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn exec_output_exit_codes_env_user_workdir() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let t0 = now_secs();
    d.ok(&["run", "-d", "--name", "ctr", "-e", "FROM_RUN=1", "busybox", "sleep", "1000"]);
    assert_eq!(d.ok(&["exec", "ctr", "echo", "hi"]), "hi");
    let o = d.docker(&["exec", "ctr", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    o.expect_code(5);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("out\n", "err\n"), "{o}");

    // Not found: 127 and Docker's OCI error; not executable: 126.
    let o = d.docker(&["exec", "ctr", "no-such-command"]);
    o.expect_code(127);
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(
        all.contains("OCI runtime exec failed: exec failed: unable to start container process: exec: \"no-such-command\": executable file not found in $PATH"),
        "{o}"
    );
    let o = d.docker(&["exec", "ctr", "/etc"]);
    o.expect_code(126);

    // The environment: the daemon's defaults, the container's, then -e and --env-file.
    let env = d.ok(&["exec", "ctr", "env"]);
    for want in ["PATH=/usr/local/sbin:", "HOSTNAME=", "FROM_RUN=1", "HOME=/root"] {
        assert!(env.lines().any(|l| l.starts_with(want)), "{want} missing in\n{env}");
    }
    assert!(!env.contains("TERM="), "no TERM without a tty:\n{env}");
    assert_eq!(d.ok(&["exec", "-e", "A=b c", "-e", "FROM_RUN=2", "ctr", "sh", "-c", "echo $A $FROM_RUN"]), "b c 2");
    let env_file = d.dir.path().join("env.list");
    std::fs::write(&env_file, "FROM_FILE=yes\n# comment\n").unwrap();
    assert_eq!(d.ok(&["exec", "--env-file", env_file.to_str().unwrap(), "ctr", "sh", "-c", "echo $FROM_FILE"]), "yes");

    // -w and -u (numeric, then a name from the container's /etc/passwd, with its HOME).
    assert_eq!(d.ok(&["exec", "-w", "/tmp", "ctr", "pwd"]), "/tmp");
    assert_eq!(d.ok(&["exec", "-u", "1000:1001", "ctr", "id"]), "uid=1000 gid=1001 groups=1001");
    d.ok(&["exec", "ctr", "sh", "-c", "echo 'app:x:1234:1235:App:/home/app:/bin/sh' >> /etc/passwd; mkdir -p /home/app"]);
    assert_eq!(d.ok(&["exec", "-u", "app", "ctr", "sh", "-c", "id -u; id -g; echo $HOME"]), "1234\n1235\n/home/app");
    let o = d.docker(&["exec", "-u", "nobody-here", "ctr", "true"]);
    assert_ne!(o.code, Some(0), "{o}");
    assert!(format!("{}{}", o.stdout, o.stderr).contains("unable to find user nobody-here"), "{o}");

    // Capabilities: the container's, or the host's whole bounding set with --privileged.
    let caps = |args: &[&str]| -> u64 {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["ctr", "sh", "-c", "grep CapEff /proc/self/status"]);
        let line = d.ok(&a);
        u64::from_str_radix(line.split_whitespace().last().unwrap(), 16).unwrap()
    };
    let (plain, privileged) = (caps(&[]), caps(&["--privileged"]));
    assert_eq!(plain, 0xa80425fb, "Docker's default capabilities");
    assert!(privileged & plain == plain && privileged.count_ones() > plain.count_ones() + 10, "{privileged:x}");

    // stdin with -i; -d runs in the background.
    let o = d.docker_in(&["exec", "-i", "ctr", "cat"], Some(b"x\ny\n".to_vec()));
    o.expect_stdout("x\ny\n");
    let o = d.docker_in(&["exec", "-i", "ctr", "tr", "a-z", "A-Z"], Some(b"hello".to_vec()));
    o.expect_stdout("HELLO");
    d.ok(&["exec", "-d", "ctr", "sh", "-c", "sleep 0.3; echo done > /tmp/flag"]);
    poll("the detached exec", Duration::from_secs(10), || (d.docker(&["exec", "ctr", "cat", "/tmp/flag"]).stdout == "done\n").then_some(()));

    // A running exec is listed in the container's ExecIDs.
    d.ok(&["exec", "-d", "ctr", "sleep", "30"]);
    let ids = inspect(&d, "{{json .ExecIDs}}", "ctr");
    assert!(ids.starts_with("[\"") && ids.len() > 60, "{ids}");

    // Events: Docker's actions, with the command.
    let ev = events(&d, t0, "event=exec_create");
    assert!(ev.lines().any(|l| l == "exec_create: echo hi ctr"), "{ev}");
    let ev = events(&d, t0, "event=exec_die");
    assert!(ev.lines().filter(|l| *l == "exec_die ctr").count() >= 5, "{ev}");

    // Refused on a paused or stopped container, with Docker's messages.
    d.ok(&["pause", "ctr"]);
    let o = d.docker(&["exec", "ctr", "true"]);
    o.expect_code(1);
    assert!(o.stderr.contains("Container ctr is paused, unpause the container before exec"), "{o}");
    d.ok(&["unpause", "ctr"]);
    d.ok(&["stop", "-t", "0", "ctr"]);
    let id = inspect(&d, "{{.Id}}", "ctr");
    let o = d.docker(&["exec", "ctr", "true"]);
    o.expect_code(1);
    assert!(o.stderr.contains(&format!("container {id} is not running")), "{o}");
    d.ok(&["rm", "ctr"]);
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}

/// The exec API where the CLI does not reach: unknown ids, a second start, inspect's shape.
#[test]
fn exec_api_errors_and_inspect() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    d.ok(&["run", "-d", "--name", "ctr", "busybox", "sleep", "1000"]);
    let script = r#"
import docker, sys
api = docker.APIClient(base_url=sys.argv[1])
try:
    api.exec_inspect("nosuchexec")
    raise SystemExit("found")
except docker.errors.NotFound as e:
    assert "No such exec instance: nosuchexec" in str(e), e
e = api.exec_create("ctr", ["sh", "-c", "exit 3"], user="7", workdir="/tmp", privileged=True)
i = api.exec_inspect(e["Id"])
assert i["Running"] is False and i["ExitCode"] is None, i
assert i["ProcessConfig"] == {"tty": False, "entrypoint": "sh", "arguments": ["-c", "exit 3"], "privileged": True, "user": "7"}, i
assert api.exec_start(e["Id"]) == b""
i = api.exec_inspect(e["Id"])
assert i["ExitCode"] == 3 and i["Running"] is False and i["Pid"] > 0, i
try:
    api.exec_start(e["Id"])
    raise SystemExit("started twice")
except docker.errors.APIError as x:
    assert x.status_code == 409 and "has already run" in str(x), x
try:
    api.exec_create("ctr", [])
    raise SystemExit("empty command accepted")
except docker.errors.APIError as x:
    assert x.status_code == 400 and "No exec command specified" in str(x), x
# 409 on a paused container, at create and at start; then on a stopped one.
late = api.exec_create("ctr", ["true"])
api.pause("ctr")
for call in (lambda: api.exec_create("ctr", ["true"]), lambda: api.exec_start(late["Id"])):
    try:
        call()
        raise SystemExit("exec in a paused container")
    except docker.errors.APIError as x:
        assert x.status_code == 409 and "is paused, unpause the container before exec" in str(x), x
api.unpause("ctr")
api.stop("ctr", timeout=0)
cid = api.inspect_container("ctr")["Id"]
try:
    api.exec_start(late["Id"])
    raise SystemExit("exec in a stopped container")
except docker.errors.APIError as x:
    assert x.status_code == 409 and ("container %s is not running" % cid) in str(x), x
print("ok")
"#;
    python(&d, script);
}

fn python(d: &Berthd, script: &str) {
    let has_sdk = Command::new("python3").args(["-c", "import docker"]).status().is_ok_and(|s| s.success());
    if !has_sdk {
        eprintln!("skipped: the Python docker SDK is not installed (pip install docker)");
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(d.host());
    let o = run_with_timeout(cmd, None, Duration::from_secs(120));
    assert_eq!(o.stdout.trim(), "ok", "{o}\nberthd log:\n{}", d.log_tail(30));
}

#[test]
fn python_sdk_exec_run() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let script = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
ctr = c.containers.run("busybox", ["sleep", "1000"], detach=True, name="sdk")
r = ctr.exec_run("sh -c 'echo hi; echo err >&2; exit 3'")
assert r.exit_code == 3 and r.output == b"hi\nerr\n", r
r = ctr.exec_run(["sh", "-c", "echo $X"], environment={"X": "from-sdk"}, workdir="/tmp")
assert (r.exit_code, r.output) == (0, b"from-sdk\n"), r
r = ctr.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
assert r.output == (b"out\n", b"err\n"), r
r = ctr.exec_run("tty", tty=True)
assert r.output.startswith(b"/dev/pts/"), r
r = ctr.exec_run("no-such-thing")
assert r.exit_code == 127 and b"executable file not found" in r.output, r
ctr.remove(force=True)
print("ok")
"#;
    python(&d, script);
}

#[test]
fn exec_into_a_container_that_survived_a_daemon_kill9() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let mut d = Berthd::with_busybox();
    d.ok(&["run", "-d", "--name", "long", "busybox", "sleep", "1000"]);
    d.kill9();
    d.launch();
    assert_eq!(d.ok(&["exec", "long", "sh", "-c", "echo alive; tr '\\0' ' ' < /proc/1/cmdline"]), "alive\nsleep 1000");
    d.docker(&["exec", "long", "sh", "-c", "exit 4"]).expect_code(4);
    d.ok(&["rm", "-f", "long"]);
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let session = unique_id("exec");
        let ok = Command::new("tmux").args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "30", cmd]).status().expect("run tmux");
        assert!(ok.success(), "tmux new-session failed");
        Tmux { session }
    }

    fn send(&self, keys: &str) {
        let ok = Command::new("tmux").args(["send-keys", "-t", &self.session, keys, "Enter"]).status().unwrap();
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, want: &str, secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(want) {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(secs), "waiting for {want:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

#[test]
fn exec_it_shell_in_a_real_terminal() {
    if !berth_e2e::berthd::can_run() || find_in_path("tmux").is_none() {
        eprintln!("skipped: needs root and tmux");
        return;
    }
    let d = Berthd::with_busybox();
    d.ok(&["run", "-d", "--name", "ctr", "busybox", "sleep", "1000"]);
    let cmd = format!(
        "DOCKER_HOST={} DOCKER_CONFIG={} docker exec -it ctr sh; echo EXITED=$?; sleep 30",
        d.host(),
        d.dir.path().join("docker-config").display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("/ #", 15);
    t.send("echo $((6*7)); tty; stty size; echo $TERM");
    let s = t.wait_for("xterm", 10);
    assert!(s.contains("42") && s.contains("/dev/pts/"), "{s}");
    // The terminal's size reached the exec's pty.
    assert!(s.contains("30 120") || s.contains("29 120"), "{s}");
    t.send("exit 3");
    t.wait_for("EXITED=3", 10);
}

#[test]
fn healthchecks_status_ps_filters_events() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let mut d = Berthd::with_busybox();
    let t0 = now_secs();
    let status = |d: &Berthd, name: &str| inspect(d, "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name);
    d.ok(&["run", "-d", "--name", "ok", "--health-cmd", "echo probing; true", "--health-interval", "200ms", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "bad", "--health-cmd", "false", "--health-retries", "2", "--health-interval", "200ms", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "slow", "--health-cmd", "false", "--health-interval", "5s", "--health-start-period", "1m", "--health-start-interval", "200ms", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "hang", "--health-cmd", "echo partial; sleep 5", "--health-timeout", "300ms", "--health-interval", "200ms", "--health-retries", "1", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "none", "--no-healthcheck", "busybox", "sleep", "1000"]);
    d.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "1000"]);
    assert_eq!(status(&d, "slow"), "starting");
    poll("ok healthy", Duration::from_secs(15), || (status(&d, "ok") == "healthy").then_some(()));
    poll("bad unhealthy", Duration::from_secs(15), || (status(&d, "bad") == "unhealthy").then_some(()));
    poll("hang unhealthy", Duration::from_secs(15), || (status(&d, "hang") == "unhealthy").then_some(()));
    // Asked early: the daemon's event backlog is bounded and probes are frequent here.
    let ev = events(&d, t0, "event=health_status");
    assert!(ev.lines().any(|l| l == "health_status: healthy ok"), "{ev}");
    assert!(ev.lines().any(|l| l == "health_status: unhealthy bad"), "{ev}");
    assert!(!ev.contains("slow"), "{ev}");

    let log = inspect(&d, "{{json .State.Health}}", "ok");
    let v: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(v["FailingStreak"], 0, "{v}");
    let entry = &v["Log"][0];
    assert_eq!((entry["ExitCode"].as_i64(), entry["Output"].as_str()), (Some(0), Some("probing\n")), "{v}");
    assert!(entry["Start"].as_str().unwrap() <= entry["End"].as_str().unwrap(), "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    let v: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .State.Health}}", "bad")).unwrap();
    assert!(v["FailingStreak"].as_i64().unwrap() >= 2 && v["Log"].as_array().unwrap().len() == 5, "{v}");
    assert_eq!(v["Log"][4]["ExitCode"], 1, "{v}");
    let v: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .State.Health}}", "hang")).unwrap();
    assert_eq!(v["Log"][0]["ExitCode"], -1, "{v}");
    assert_eq!(v["Log"][0]["Output"], "Health check exceeded timeout (300ms): partial\n", "{v}");
    // Failures within the start period do not count.
    let v: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .State.Health}}", "slow")).unwrap();
    assert_eq!((v["Status"].as_str(), v["FailingStreak"].as_i64()), (Some("starting"), Some(0)), "{v}");
    assert!(v["Log"].as_array().unwrap().len() >= 3, "{v}");
    assert_eq!(inspect(&d, "{{json .State.Health}}", "none"), "null");
    assert_eq!(inspect(&d, "{{json .State.Health}}", "plain"), "null");

    // ps: the STATUS column and the health filter.
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    for (name, suffix) in [("ok", "(healthy)"), ("bad", "(unhealthy)"), ("slow", "(health: starting)")] {
        let line = ps.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default();
        assert!(line.starts_with(&format!("{name} Up ")) && line.ends_with(suffix), "{ps}");
    }
    assert!(ps.lines().any(|l| l.starts_with("plain Up ") && !l.contains('(')), "{ps}");
    let names = |filter: &str| {
        let mut v: Vec<String> = d.ok(&["ps", "--filter", filter, "--format", "{{.Names}}"]).lines().map(String::from).collect();
        v.sort();
        v.join(" ")
    };
    assert_eq!(names("health=healthy"), "ok");
    assert_eq!(names("health=unhealthy"), "bad hang");
    assert_eq!(names("health=starting"), "slow");
    assert_eq!(names("health=none"), "none plain");
    let o = d.docker(&["ps", "--filter", "health=sick"]);
    assert!(o.stderr.contains("Unrecognised filter value for health: sick"), "{o}");


    // Probes stop with the container and start again with it.
    for n in ["bad", "slow", "hang", "none", "plain"] {
        d.ok(&["rm", "-f", n]);
    }
    d.ok(&["stop", "-t", "0", "ok"]);
    let n = inspect(&d, "{{len .State.Health.Log}}", "ok");
    let count = |d: &Berthd| events(d, t0, "event=exec_start").lines().count();
    let before = count(&d);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(count(&d), before, "no probe of a stopped container");
    assert_eq!(inspect(&d, "{{len .State.Health.Log}}", "ok"), n);
    d.ok(&["start", "ok"]);
    assert_eq!(status(&d, "ok"), "starting");
    poll("ok healthy again", Duration::from_secs(15), || (status(&d, "ok") == "healthy").then_some(()));

    // A daemon restart keeps the status, and the probes go on.
    d.kill9();
    d.launch();
    assert_eq!(status(&d, "ok"), "healthy");
    let before = count(&d);
    poll("probes after the restart", Duration::from_secs(15), || (count(&d) > before + 1).then_some(()));
    d.ok(&["rm", "-f", "ok"]);
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}

/// A raw hijacked attach or exec start on the socket: the request line, then (after the 101
/// answer) the stream. Returns the connection, positioned after the response headers.
fn hijack(d: &Berthd, method_path: &str, body: &str) -> std::os::unix::net::UnixStream {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    write!(
        s,
        "{method_path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "connection closed in the headers: {}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s
}

/// Reads until `want` shows up (the container's echo), so a detach does not race the output.
fn read_until(s: &mut std::os::unix::net::UnixStream, want: &str) {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut b = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(want) {
        let n = s.read(&mut b).expect("read");
        assert!(n > 0, "closed before {want:?}: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&b[..n]);
    }
}

/// Reads until EOF; a detach closes the connection.
fn read_to_eof(s: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("the daemon closes the stream on detach");
    out
}

#[test]
fn detach_keys_on_the_daemon_side() {
    use std::io::Write;
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    // Default keys on attach (TTY): echo works, ctrl-p ctrl-q ends the attach, the container runs on.
    let id = d.ok(&["run", "-dit", "busybox", "cat"]);
    let mut s = hijack(&d, &format!("POST /containers/{id}/attach?stream=1&stdin=1&stdout=1"), "");
    s.write_all(b"hello\n").unwrap();
    read_until(&mut s, "hello");
    s.write_all(b"\x10").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    s.write_all(b"\x11").unwrap();
    read_to_eof(&mut s);
    assert_eq!(inspect(&d, "{{.State.Running}}", &id), "true");
    // Custom keys; a lone ctrl-p is passed on as typed.
    let mut s = hijack(&d, &format!("POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,x"), "");
    s.write_all(b"again\x10\n").unwrap();
    read_until(&mut s, "again^P");
    s.write_all(b"\x01x").unwrap();
    read_to_eof(&mut s);
    assert_eq!(inspect(&d, "{{.State.Running}}", &id), "true");
    let bad = std::process::Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "--unix-socket", d.socket.to_str().unwrap(), "-X", "POST"])
        .arg(format!("http://berth/containers/{id}/attach?stream=1&stdin=1&detachKeys=ctrl-1"))
        .output()
        .unwrap();
    let bad = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(bad.contains("Invalid detach keys (ctrl-1) provided") && bad.ends_with("400"), "{bad}");
    // Exec: the keys the exec was created with.
    let create = r#"{"AttachStdin":true,"AttachStdout":true,"Tty":true,"DetachKeys":"ctrl-e","Cmd":["cat"]}"#;
    let out = std::process::Command::new("curl")
        .args(["-s", "--unix-socket", d.socket.to_str().unwrap(), "-X", "POST", "-H", "Content-Type: application/json", "-d", create])
        .arg(format!("http://berth/containers/{id}/exec"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exec_id = v["Id"].as_str().unwrap().to_owned();
    let mut s = hijack(&d, &format!("POST /exec/{exec_id}/start"), r#"{"Detach":false,"Tty":true}"#);
    s.write_all(b"in exec\n").unwrap();
    read_until(&mut s, "in exec");
    s.write_all(b"\x05").unwrap();
    read_to_eof(&mut s);
    assert_eq!(inspect(&d, "{{.State.Running}}", &id), "true");
    d.ok(&["rm", "-f", &id]);
}
