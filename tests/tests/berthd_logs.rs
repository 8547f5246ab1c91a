//! Container logs through the real docker CLI against a private berthd: json-file rotation
//! (bounded file count, gzip), reading and following across rotations, `--details` attrs, the
//! local driver, log-opt validation and daemon.json defaults. Root only.

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::poll;



fn wait_exit(d: &Berthd, name: &str) {
    assert_eq!(d.ok(&["wait", name]), "0");
}

fn container_dir(d: &Berthd, name: &str) -> (String, PathBuf) {
    let id = d.ok(&["inspect", "-f", "{{.Id}}", name]);
    let dir = d.data_root.join("containers").join(&id);
    (id, dir)
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.contains("log")).collect();
    v.sort();
    v
}

/// `line 0` .. `line n-1`, each on its own line.
fn numbered(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}

const WRITE_300: &str = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done";

#[test]
fn json_file_rotates_compresses_and_reads_across_rotations() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    // Plain rotation: 1 kB files, 3 of them: only the newest ~45 lines are kept.
    d.ok(&["run", "-d", "--name", "plain", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox", "sh", "-c", WRITE_300]);
    wait_exit(&d, "plain");
    let (id, dir) = container_dir(&d, "plain");
    assert_eq!(files(&dir), [format!("{id}-json.log"), format!("{id}-json.log.1"), format!("{id}-json.log.2")]);
    for f in files(&dir) {
        let len = std::fs::metadata(dir.join(&f)).unwrap().len();
        // Rotated at the first entry that finds the file at max-size: at most one entry over.
        assert!(len <= 1000 + 80, "{f}: {len} bytes");
    }
    let all = d.docker(&["logs", "plain"]).stdout;
    let first: usize = all.lines().next().unwrap().strip_prefix("line ").unwrap().parse().unwrap();
    assert!(first > 200, "old lines were dropped: starts at {first}");
    assert_eq!(all, numbered(first, 300), "every kept line once, in order, across the 3 files");
    // A tail longer than the live file reaches into the rotated ones.
    let live_lines = std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap().lines().count();
    let n = live_lines + 5;
    assert_eq!(d.docker(&["logs", "--tail", &n.to_string(), "plain"]).stdout, numbered(300 - n, 300));
    assert_eq!(d.docker(&["logs", "--tail", "3", "plain"]).stdout, numbered(297, 300));
    // Timestamps are Docker's fixed nine-digit form, and since/until select by them.
    let ts = d.docker(&["logs", "-t", "--tail", "2", "plain"]).stdout;
    let t0 = ts.lines().next().unwrap().split(' ').next().unwrap().to_owned();
    assert_eq!(t0.len(), "2026-11-23T13:45:01.123456789Z".len(), "{ts}");
    let since = d.docker(&["logs", "--since", &t0, "plain"]).stdout;
    assert!(since.ends_with(&numbered(298, 300)) && since.lines().count() >= 2, "{since}");

    // With compress: rotated files are valid gzip holding consecutive lines.
    d.ok(&["run", "-d", "--name", "gz", "--log-opt", "max-size=1k", "--log-opt", "max-file=4", "--log-opt", "compress=true", "busybox", "sh", "-c", WRITE_300]);
    wait_exit(&d, "gz");
    let (id, dir) = container_dir(&d, "gz");
    assert_eq!(files(&dir), [format!("{id}-json.log"), format!("{id}-json.log.1.gz"), format!("{id}-json.log.2.gz"), format!("{id}-json.log.3.gz")]);
    let mut from_files = String::new();
    for f in [".3.gz", ".2.gz", ".1.gz"] {
        let o = std::process::Command::new("gzip").arg("-dc").arg(dir.join(format!("{id}-json.log{f}"))).output().unwrap();
        assert!(o.status.success(), "gzip -dc {f}: {}", String::from_utf8_lossy(&o.stderr));
        from_files.push_str(&String::from_utf8(o.stdout).unwrap());
    }
    from_files.push_str(&std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap());
    let logged: String = from_files.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["log"].as_str().unwrap().to_owned()).collect();
    let first: usize = logged.lines().next().unwrap().strip_prefix("line ").unwrap().parse().unwrap();
    assert_eq!(logged, numbered(first, 300));
    assert_eq!(d.docker(&["logs", "gz"]).stdout, logged, "logs reads the .gz files in order");
    let n = logged.lines().count() - 2;
    assert_eq!(d.docker(&["logs", "--tail", &n.to_string(), "gz"]).stdout, numbered(300 - n, 300));

    // max-file=1 truncates: one file, the last lines.
    d.ok(&["run", "-d", "--name", "one", "--log-opt", "max-size=1k", "--log-opt", "max-file=1", "busybox", "sh", "-c", WRITE_300]);
    wait_exit(&d, "one");
    let (id, dir) = container_dir(&d, "one");
    assert_eq!(files(&dir), [format!("{id}-json.log")]);
    let kept = d.docker(&["logs", "one"]).stdout;
    let first: usize = kept.lines().next().unwrap().strip_prefix("line ").unwrap().parse().unwrap();
    assert!(first > 280 && kept == numbered(first, 300), "{kept}");
    d.ok(&["rm", "plain", "gz", "one"]);
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}

/// A follower started before a fast writer that rotates tiny files hundreds of times sees
/// every line exactly once, in order.
fn follow_exactly_once(d: &Berthd, name: &str, opts: &[&str]) {
    const N: usize = 20_000;
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(opts);
    let script = format!("sleep 1; seq 1 {N}; seq {} {}", N + 1, 2 * N);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.ok(&args);
    let mut follower = d.docker_cmd(&["logs", "-f", name]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = String::new();
    let mut stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    poll("the follower to end with the container", Duration::from_secs(60), || follower.try_wait().unwrap().map(|_| ()));
    let out = reader.join().unwrap();
    let want: String = (1..=2 * N).map(|i| format!("{i}\n")).collect();
    assert_eq!(d.docker(&["logs", name]).stdout, want, "{name}: logs after the end");
    let want: String = (1..=2 * N).map(|i| format!("{i}\n")).collect();
    if out != want {
        let got: Vec<&str> = out.lines().collect();
        let bad = got.iter().enumerate().find(|(i, l)| **l != (i + 1).to_string());
        panic!("follower of {name}: {} lines, first wrong at {bad:?}", got.len());
    }
    let mut dir = container_dir(d, name).1;
    if dir.join("local-logs").exists() {
        dir = dir.join("local-logs");
    }
    assert!(files(&dir).len() > 20, "the log rotated many times: {}", files(&dir).len());
}

#[test]
fn follow_across_rotations_is_exactly_once() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    follow_exactly_once(&d, "f-plain", &["--log-opt", "max-size=8k", "--log-opt", "max-file=400"]);
    follow_exactly_once(&d, "f-gz", &["--log-opt", "max-size=8k", "--log-opt", "max-file=400", "--log-opt", "compress=true"]);
    follow_exactly_once(&d, "f-local", &["--log-driver", "local", "--log-opt", "max-size=8k", "--log-opt", "max-file=400"]);
    d.ok(&["rm", "f-plain", "f-gz", "f-local"]);
    assert!(d.leaks().is_empty(), "{:?}", d.leaks());
}

#[test]
fn details_show_labels_env_and_tag() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    d.ok(&[
        "run", "--name", "det", "--label", "team=a b", "--label", "other=x", "-e", "STAGE=prod", "-e", "APP_X=1",
        "--log-opt", "labels=team,missing", "--log-opt", "env=STAGE", "--log-opt", "env-regex=^APP_", "--log-opt", "tag={{.Name}}/{{.ID}}",
        "busybox", "sh", "-c", "echo hello; echo oops >&2",
    ]);
    let (id, dir) = container_dir(&d, "det");
    let o = d.docker(&["logs", "--details", "det"]);
    let attrs = format!("APP_X=1,STAGE=prod,tag=det%2F{},team=a+b", &id[..12]);
    assert_eq!(o.stdout, format!("{attrs} hello\n"), "{o}");
    assert_eq!(o.stderr, format!("{attrs} oops\n"), "{o}");
    assert_eq!(d.docker(&["logs", "det"]).stdout, "hello\n", "attrs only with --details");
    let raw = std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap();
    let first = raw.lines().next().unwrap();
    assert!(first.starts_with(&format!("{{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"attrs\":{{\"APP_X\":\"1\",\"STAGE\":\"prod\",\"tag\":\"det/{}\",\"team\":\"a b\"}},\"time\":\"", &id[..12])), "{first}");
    // Without attrs, --details adds Docker's lone separator.
    d.ok(&["run", "--name", "plain", "busybox", "echo", "x"]);
    assert_eq!(d.docker(&["logs", "--details", "plain"]).stdout, " x\n");
    d.ok(&["rm", "det", "plain"]);
}

#[test]
fn local_driver_round_trip() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    d.ok(&["run", "--name", "loc", "--log-driver", "local", "busybox", "sh", "-c", "echo one; echo two >&2; printf 'no newline'"]);
    let (_, dir) = container_dir(&d, "loc");
    let file = dir.join("local-logs").join("container.log");
    let raw = std::fs::read(&file).unwrap();
    // Framing: length, LogEntry, the same length again; the first entry's source is stdout.
    let n = u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
    assert_eq!(&raw[4 + n..8 + n], &raw[..4]);
    assert_eq!(&raw[4..12], b"\x0a\x06stdout");
    let o = d.docker(&["logs", "loc"]);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("one\nno newline", "two\n"), "{o}");
    assert_eq!(d.docker(&["logs", "--tail", "1", "loc"]).stdout, "no newline");
    assert_eq!(d.docker(&["logs", "--tail", "2", "loc"]).stderr, "two\n");
    let t = d.docker(&["logs", "-t", "loc"]).stdout;
    assert!(t.starts_with("20") && t.contains("Z one\n"), "{t}");
    assert_eq!(d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "loc"]), r#"{"Type":"local","Config":{}}"#);
    assert_eq!(d.ok(&["inspect", "-f", "{{.LogPath}}", "loc"]), "");

    // Rotation and compression (its default) with reading across the files.
    d.ok(&["run", "--name", "locrot", "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox", "sh", "-c", WRITE_300]);
    let (_, dir) = container_dir(&d, "locrot");
    let mut names = files(&dir.join("local-logs"));
    names.retain(|n| !n.ends_with(".tmp"));
    assert_eq!(names, ["container.log", "container.log.1.gz", "container.log.2.gz"]);
    let all = d.docker(&["logs", "locrot"]).stdout;
    let first: usize = all.lines().next().unwrap().strip_prefix("line ").unwrap().parse().unwrap();
    assert_eq!(all, numbered(first, 300));
    assert_eq!(d.docker(&["logs", "--tail", "40", "locrot"]).stdout, numbered(260, 300));
    d.ok(&["rm", "loc", "locrot"]);
}

#[test]
fn bad_log_opts_are_refused_at_create() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    for (opts, msg) in [
        (vec!["--log-opt", "max-size=abc"], "invalid size: 'abc'"),
        (vec!["--log-opt", "max-sise=1m"], "unknown log opt 'max-sise' for json-file log driver"),
        (vec!["--log-opt", "max-file=0"], "max-file cannot be less than 1"),
        (vec!["--log-opt", "compress=maybe"], "strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        (vec!["--log-opt", "max-file=1", "--log-opt", "compress=true"], "compress cannot be true when max-file is less than 2 or max-size is not set"),
        (vec!["--log-opt", "env-regex=("], "error parsing regexp"),
        (vec!["--log-driver", "local", "--log-opt", "tag=x"], "unknown log opt 'tag' for log driver local"),
        (vec!["--log-driver", "local", "--log-opt", "max-file=1"], "compression cannot be enabled when max file count is 1"),
        (vec!["--log-driver", "syslog"], "logger: no log driver named 'syslog' is registered"),
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(&opts);
        args.extend_from_slice(&["busybox", "true"]);
        let o = d.docker(&args);
        assert_ne!(o.code, Some(0), "{opts:?}: {o}");
        assert!(o.stderr.contains(&format!("Error response from daemon: {msg}")), "{opts:?}: {o}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]), "", "nothing was created");
}

#[test]
fn log_config_defaults() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    // Berth's own default: json-file rotating at 20m over 5 files, shown as Docker shows options.
    let d = Berthd::with_busybox();
    d.ok(&["create", "--name", "c1", "busybox", "true"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "c1"]), r#"{"Type":"json-file","Config":{"max-file":"5","max-size":"20m"}}"#);
    d.ok(&["create", "--name", "c2", "--log-opt", "max-size=1m", "busybox", "true"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "c2"]), r#"{"Type":"json-file","Config":{"max-file":"5","max-size":"1m"}}"#);
    d.ok(&["rm", "c1", "c2"]);
    drop(d);

    // daemon.json log-opts apply to containers of the default driver; the container's win.
    let d = Berthd::start_with_daemon_json(r#"{"log-opts": {"max-size": "1k", "max-file": "2"}}"#);
    d.import_busybox("busybox:latest");
    d.ok(&["run", "--name", "r1", "busybox", "sh", "-c", WRITE_300]);
    assert_eq!(d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig.Config}}", "r1"]), r#"{"max-file":"2","max-size":"1k"}"#);
    let (id, dir) = container_dir(&d, "r1");
    assert_eq!(files(&dir), [format!("{id}-json.log"), format!("{id}-json.log.1")]);
    d.ok(&["create", "--name", "own", "--log-opt", "max-file=3", "busybox", "true"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig.Config}}", "own"]), r#"{"max-file":"3","max-size":"1k"}"#);
    d.ok(&["create", "--name", "loc", "--log-driver", "local", "busybox", "true"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "loc"]), r#"{"Type":"local","Config":{}}"#);
    d.ok(&["rm", "r1", "own", "loc"]);
    drop(d);

    // daemon.json log-driver: local by default.
    let d = Berthd::start_with_daemon_json(r#"{"log-driver": "local"}"#);
    d.import_busybox("busybox:latest");
    d.ok(&["run", "--name", "l1", "busybox", "echo", "hi"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "l1"]), "local");
    assert_eq!(d.docker(&["logs", "l1"]).stdout, "hi\n");
    assert_eq!(d.ok(&["info", "-f", "{{.LoggingDriver}}"]), "local");
    d.ok(&["rm", "l1"]);
}
