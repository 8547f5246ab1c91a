//! `docker stats` and `docker cp` against a private berthd, judged by the docker CLI (v28), the
//! Python SDK and the raw API: Docker's JSON shapes and numbers, copies both ways for running
//! and stopped containers, ownership, and hostile symlinks planted in the container (pointing
//! out absolutely, climbing with `..`, symlinked parents, swapped in while copies run): the
//! host's files must never be read or written. Root only.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::{run_with_timeout, Out};



/// A shell pipeline with this daemon's docker environment (for `docker cp ... - | tar`).
fn sh(d: &Berthd, script: &str) -> Out {
    let mut c = Command::new("sh");
    c.args(["-c", script]).env("DOCKER_HOST", d.host()).env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
    run_with_timeout(c, None, Duration::from_secs(60))
}

/// `tar -tv` of what `docker cp CTR:PATH -` streams: "mode uid/gid name" per entry.
fn listing(d: &Berthd, src: &str) -> Vec<String> {
    let o = sh(d, &format!("docker cp {src} - | tar -tv --numeric-owner"));
    assert_eq!(o.code, Some(0), "{o}");
    o.stdout.lines().map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        format!("{} {} {}", f[0], f[1], f[5..].join(" "))
    }).collect()
}

/// Raw HTTP/1.1 GET on the daemon's socket: (status line, JSON lines of the body), reading
/// until `want` JSON lines came or the body ended.
fn get_json(d: &Berthd, path: &str, want: usize) -> (String, Vec<serde_json::Value>) {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: berth\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        let lines: Vec<serde_json::Value> = text.lines().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str(l).ok()).collect();
        if lines.len() >= want || Instant::now() > deadline {
            return (text.lines().next().unwrap_or_default().to_owned(), lines);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return (text.lines().next().unwrap_or_default().to_owned(), lines),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[test]
fn stats_cli_and_api_like_docker() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    d.ok(&["run", "-d", "--name", "busy", "-m", "64m", "busybox", "sh", "-c", "x=; while :; do x=$x.; done"]);
    d.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "1000"]);
    d.ok(&["create", "--name", "fresh", "busybox", "true"]);
    std::thread::sleep(Duration::from_millis(500));

    let table = d.ok(&["stats", "--no-stream", "busy"]);
    assert!(table.starts_with("CONTAINER ID") && table.contains("MEM USAGE / LIMIT") && table.contains("PIDS"), "{table}");
    let out = d.ok(&["stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}", "busy", "idle", "fresh"]);
    let row = |name: &str| -> Vec<String> {
        out.lines().find(|l| l.starts_with(&format!("{name}|"))).unwrap_or_else(|| panic!("no {name} in {out}")).split('|').map(str::to_owned).collect()
    };
    let pct = |s: &str| s.trim_end_matches('%').parse::<f64>().unwrap_or_else(|_| panic!("{s}"));
    let busy = row("busy");
    assert!(pct(&busy[1]) > 20.0, "a busy loop shows CPU: {out}");
    assert!(busy[2].ends_with(" / 64MiB") && !busy[2].starts_with("0B"), "memory used of the 64MiB limit: {out}");
    assert!(pct(&busy[3]) > 0.0 && pct(&busy[3]) < 100.0, "{out}");
    assert_eq!((busy[4].as_str(), busy[6].as_str()), ("0B / 0B", "1"), "no interface but lo; one process: {out}");
    let idle = row("idle");
    assert!(pct(&idle[1]) < 20.0 && idle[2].contains("iB / ") && !idle[2].ends_with("/ 0B"), "{out}");
    assert_eq!(row("fresh")[1..], ["0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0"], "{out}");

    // stream=false: two samples a second apart, the first as precpu_stats.
    let (status, v) = get_json(&d, "/v1.47/containers/busy/stats?stream=false", 1);
    assert!(status.contains("200"), "{status}");
    let s = &v[0];
    for k in ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name", "id"] {
        assert!(s.get(k).is_some(), "{k} missing in {s}");
    }
    assert_eq!(s["name"], "/busy");
    assert!(s.get("networks").is_none(), "loopback is not reported, as Docker: {s}");
    let (cpu, pre) = (&s["cpu_stats"], &s["precpu_stats"]);
    assert!(cpu["cpu_usage"]["total_usage"].as_u64() > pre["cpu_usage"]["total_usage"].as_u64() && pre["cpu_usage"]["total_usage"].as_u64() > Some(0), "{s}");
    assert!(cpu["system_cpu_usage"].as_u64() > pre["system_cpu_usage"].as_u64(), "{s}");
    assert!(cpu["online_cpus"].as_u64() >= Some(1));
    assert!(s["read"] != s["preread"] && s["preread"] != ZERO_TIME, "{s}");
    assert_eq!(s["memory_stats"]["limit"], 64 << 20);
    let mstats = &s["memory_stats"]["stats"];
    assert!(mstats.get("total_inactive_file").is_some() || mstats.get("inactive_file").is_some(), "v1 or v2 memory.stat keys: {mstats}");
    assert_eq!(s["pids_stats"]["current"], 1);

    // one-shot: a single sample, nothing before it.
    let (_, v) = get_json(&d, "/v1.47/containers/busy/stats?stream=false&one-shot=true", 1);
    assert_eq!((v[0]["preread"].as_str(), v[0]["precpu_stats"]["cpu_usage"]["total_usage"].as_u64()), (Some(ZERO_TIME), Some(0)));
    assert!(v[0]["cpu_stats"]["system_cpu_usage"].as_u64() > Some(0));

    // Streaming: one sample a second, each carrying the one before.
    let t0 = Instant::now();
    let (_, v) = get_json(&d, "/v1.47/containers/busy/stats", 3);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(t0.elapsed() >= Duration::from_millis(1800), "about a second apart: {:?}", t0.elapsed());
    for i in 1..3 {
        assert_eq!(v[i]["preread"], v[i - 1]["read"]);
        assert_eq!(v[i]["precpu_stats"], v[i - 1]["cpu_stats"]);
    }

    // Not running: Docker's empty sample, at once.
    let (_, v) = get_json(&d, "/v1.47/containers/fresh/stats?stream=false", 1);
    assert_eq!((v[0]["name"].as_str(), v[0]["read"].as_str(), &v[0]["memory_stats"]), (Some("/fresh"), Some(ZERO_TIME), &serde_json::json!({})));
    assert!(v[0]["blkio_stats"]["io_service_bytes_recursive"].is_null());
    let (status, v) = get_json(&d, "/v1.47/containers/nope/stats?stream=false", 1);
    assert!(status.contains("404") && v[0]["message"] == "No such container: nope", "{status} {v:?}");

    // A stopped container reads as zeros again.
    d.ok(&["stop", "-t", "0", "busy"]);
    let out = d.ok(&["stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy"]);
    assert_eq!(out, "0.00% 0B / 0B 0");
}

#[test]
fn python_sdk_stats_and_archive() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    if !Command::new("python3").args(["-c", "import docker"]).status().is_ok_and(|s| s.success()) {
        eprintln!("skipped: the Python docker SDK is not installed");
        return;
    }
    let d = Berthd::with_busybox();
    let script = r#"
import docker, io, sys, tarfile
c = docker.DockerClient(base_url=sys.argv[1])
ctr = c.containers.run("busybox", ["sleep", "100"], detach=True, name="py")
s = ctr.stats(stream=False)
for k in ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name", "id"]:
    assert k in s, (k, s)
assert s["name"] == "/py" and s["id"] == ctr.id, s
assert s["cpu_stats"]["online_cpus"] >= 1 and s["cpu_stats"]["system_cpu_usage"] > 0, s
assert s["precpu_stats"]["system_cpu_usage"] > 0, s
assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0, s
assert s["pids_stats"]["current"] == 1, s
one = ctr.stats(stream=False, one_shot=True)
assert one["preread"] == "0001-01-01T00:00:00Z", one
it = ctr.stats(stream=True, decode=True)
a = next(it); b = next(it)
assert b["preread"] == a["read"], (a, b)

buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w")
info = tarfile.TarInfo("hello.txt"); data = b"hi\n"; info.size = len(data)
info.uid = info.gid = 1234; info.mode = 0o640; info.mtime = 1600000000
t.addfile(info, io.BytesIO(data)); t.close()
assert ctr.put_archive("/tmp", buf.getvalue())
bits, stat = ctr.get_archive("/tmp/hello.txt")
assert stat["name"] == "hello.txt" and stat["size"] == 3 and stat["mode"] == 0o640, stat
assert stat["mtime"].startswith("2020-09-13T12:26:40"), stat
tar = tarfile.open(fileobj=io.BytesIO(b"".join(bits)))
m = tar.getmember("hello.txt")
assert (m.uid, m.gid, m.mode) == (1234, 1234, 0o640), (m.uid, m.gid, m.mode)
assert tar.extractfile(m).read() == b"hi\n"
try:
    ctr.get_archive("/nope")
    raise SystemExit("no error")
except docker.errors.NotFound as e:
    assert "Could not find the file /nope in container" in str(e), e
ctr.remove(force=True)
print("ok")
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(d.host());
    let o = run_with_timeout(cmd, None, Duration::from_secs(120));
    assert_eq!(o.stdout.trim(), "ok", "{o}\nberthd log:\n{}", d.log_tail(30));
}

/// A host tree to copy: a file owned by 1234:1234 (0640), a directory with a subdirectory.
fn host_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("dir/sub")).unwrap();
    std::fs::write(dir.join("file.txt"), "hello\n").unwrap();
    std::os::unix::fs::chown(dir.join("file.txt"), Some(1234), Some(1234)).unwrap();
    std::fs::set_permissions(dir.join("file.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(dir.join("dir/a"), "A\n").unwrap();
    std::fs::write(dir.join("dir/sub/b"), "B\n").unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
}

#[test]
fn cp_both_ways_running_and_stopped() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
    host_tree(&src);
    std::fs::create_dir(&out).unwrap();
    let s = |p: &Path| p.display().to_string();
    d.ok(&["run", "-d", "--name", "cpr", "busybox", "sleep", "1000"]);

    // Into a running container: a file (-a keeps its owner), a directory, a directory's content.
    d.ok(&["cp", "-a", &s(&src.join("file.txt")), "cpr:/tmp/"]);
    assert_eq!(listing(&d, "cpr:/tmp/file.txt"), ["-rw-r----- 1234/1234 file.txt"]);
    d.ok(&["cp", &s(&src.join("dir")), "cpr:/tmp/"]);
    d.ok(&["cp", &s(&src.join("empty")), "cpr:/tmp/existing"]);
    d.ok(&["cp", &format!("{}/.", s(&src.join("dir"))), "cpr:/tmp/existing"]);
    let names: Vec<String> = listing(&d, "cpr:/tmp/existing").iter().map(|l| l.rsplit(' ').next().unwrap().to_owned()).collect();
    assert_eq!(names, ["existing/", "existing/a", "existing/sub/", "existing/sub/b"], "dir/. copies the content");
    d.ok(&["cp", &s(&src.join("file.txt")), "cpr:/tmp/renamed.txt"]);
    assert_eq!(listing(&d, "cpr:/tmp/renamed.txt"), ["-rw-r----- 1234/1234 renamed.txt"]);

    // Out of it: a file, a directory, a directory's content, to stdout.
    d.ok(&["cp", "cpr:/tmp/file.txt", &s(&out)]);
    assert_eq!(std::fs::read_to_string(out.join("file.txt")).unwrap(), "hello\n");
    d.ok(&["cp", "cpr:/tmp/dir", &s(&out)]);
    assert_eq!(std::fs::read_to_string(out.join("dir/sub/b")).unwrap(), "B\n");
    d.ok(&["cp", "cpr:/tmp/dir/.", &s(&out.join("dot"))]);
    assert_eq!(std::fs::read_to_string(out.join("dot/a")).unwrap(), "A\n");
    d.ok(&["cp", "-a", "cpr:/tmp/file.txt", &s(&out.join("owned.txt"))]);
    let m = std::fs::metadata(out.join("owned.txt")).unwrap();
    // The CLI extracts as the invoking user whatever -a says (as with Docker); the mode stays.
    assert_eq!(m.mode() & 0o7777, 0o640);
    let o = d.docker(&["cp", "cpr:/nope", &s(&out)]);
    assert!(o.code != Some(0) && o.stderr.contains("Could not find the file /nope in container cpr"), "{o}");
    let o = d.docker(&["cp", &s(&src.join("file.txt")), "cpr:/tmp/file.txt/x"]);
    assert!(o.code != Some(0), "{o}");

    // A container that never ran, and one that ran and exited: the snapshot is mounted for
    // the copy, unmounted after.
    d.ok(&["create", "--name", "cps", "busybox", "cat", "/dir/a", "/file.txt"]);
    d.ok(&["cp", &s(&src.join("dir")), "cps:/"]);
    d.ok(&["cp", "-a", &s(&src.join("file.txt")), "cps:/"]);
    assert_eq!(listing(&d, "cps:/file.txt"), ["-rw-r----- 1234/1234 file.txt"]);
    d.ok(&["cp", "cps:/dir", &s(&out.join("from-created"))]);
    assert_eq!(std::fs::read_to_string(out.join("from-created/sub/b")).unwrap(), "B\n");
    let o = d.docker(&["start", "-a", "cps"]);
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "A\nhello\n"), "{o}");
    d.ok(&["run", "--name", "cpx", "busybox", "sh", "-c", "mkdir /made && echo made > /made/m"]);
    d.ok(&["cp", "cpx:/made", &s(&out)]);
    assert_eq!(std::fs::read_to_string(out.join("made/m")).unwrap(), "made\n");
    d.ok(&["cp", &s(&src.join("file.txt")), "cpx:/made/"]);
    assert_eq!(listing(&d, "cpx:/made"), ["drwxr-xr-x 0/0 made/", "-rw-r----- 1234/1234 made/file.txt", "-rw-r--r-- 0/0 made/m"]);
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.lines().any(|l| l.contains(&format!("{}/tmp/cp-", d.data_root.display()))), "scratch mounts are gone");

    // copyUIDGID with a container user: every entry owned by it.
    d.ok(&["run", "-d", "--name", "cpu", "-u", "1000:1001", "busybox", "sleep", "1000"]);
    d.ok(&["cp", "-a", &s(&src.join("file.txt")), "cpu:/tmp/"]);
    assert_eq!(listing(&d, "cpu:/tmp/file.txt"), ["-rw-r----- 1000/1001 file.txt"]);
    d.ok(&["cp", &s(&src.join("file.txt")), "cpu:/tmp/plain.txt"]);
    assert_eq!(listing(&d, "cpu:/tmp/plain.txt"), ["-rw-r----- 1234/1234 plain.txt"], "without -a: the archive's owner, as Docker");
}

/// What the container plants: links to the host's directory `host` (absolute, climbing with
/// `..`, a link to /, a symlinked parent). With `mirror`, the same path exists inside the
/// container, so the links lead somewhere there.
fn plant(host: &Path, mirror: bool) -> String {
    let h = host.display();
    let mk = if mirror { format!("mkdir -p {h} && ") } else { String::new() };
    format!("{mk}ln -s {h}/host-file /victim && ln -s ../../../../../../../..{h} /up && ln -s / /rootlink && ln -s {h} /parentlink && sleep 1000")
}

fn untouched(host: &Path) {
    assert_eq!(std::fs::read_to_string(host.join("host-file")).unwrap(), "host secret\n", "the host file was written");
    let mut names: Vec<String> = std::fs::read_dir(host).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["host-file", "marker"], "something was created in the host directory");
}

/// A tar from Python's tarfile: a link out, then a file written through it; and a `..` entry.
fn hostile_tar(host: &Path) -> (Vec<u8>, Vec<u8>) {
    let script = r#"
import io, sys, tarfile
def mk(entries):
    buf = io.BytesIO(); t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for name, link, data in entries:
        i = tarfile.TarInfo(name)
        if link is not None:
            i.type = tarfile.SYMTYPE; i.linkname = link
        else:
            i.size = len(data)
        t.addfile(i, io.BytesIO(data) if link is None else None)
    t.close(); return buf.getvalue()
a = mk([("esc", sys.argv[1], b""), ("esc/host-file", None, b"pwned by tar\n")])
b = mk([("../../../../../../.." + sys.argv[1] + "/host-file", None, b"pwned\n")])
sys.stdout.buffer.write(len(a).to_bytes(8, "big") + a + b)
"#;
    let o = Command::new("python3").args(["-c", script]).arg(host).output().expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n = u64::from_be_bytes(o.stdout[..8].try_into().unwrap()) as usize;
    (o.stdout[8..8 + n].to_vec(), o.stdout[8 + n..].to_vec())
}

#[test]
fn cp_hostile_symlinks_never_touch_the_host() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let host = tempfile::Builder::new().prefix("berth-cp-host-").tempdir_in("/tmp").unwrap();
    std::fs::write(host.path().join("host-file"), "host secret\n").unwrap();
    std::fs::write(host.path().join("marker"), "marker\n").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (payload, out) = (tmp.path().join("host-file"), tmp.path().join("out"));
    std::fs::write(&payload, "pwned\n").unwrap();
    std::fs::create_dir(&out).unwrap();
    let (p, o, h) = (payload.display().to_string(), out.display().to_string(), host.path().display().to_string());
    d.ok(&["run", "-d", "--name", "evil", "busybox", "sh", "-c", &plant(host.path(), false)]);
    d.ok(&["run", "-d", "--name", "mirror", "busybox", "sh", "-c", &plant(host.path(), true)]);
    std::thread::sleep(Duration::from_millis(300));

    for ctr in ["evil", "mirror"] {
        // Reads: the link itself comes out; following it stays in the container.
        d.ok(&["cp", &format!("{ctr}:/victim"), &format!("{o}/{ctr}-victim")]);
        assert_eq!(std::fs::read_link(out.join(format!("{ctr}-victim"))).unwrap(), host.path().join("host-file"));
        for src in ["/victim", "/up/host-file", &format!("/rootlink{h}/host-file"), "/parentlink/host-file", "/parentlink/marker", "/up/."] {
            let r = sh(&d, &format!("docker cp -L {ctr}:{src} - | tar -xO"));
            assert!(!r.stdout.contains("host secret") && !r.stdout.contains("marker"), "{ctr}:{src} read the host: {r}");
        }
        // Writes through every link.
        for dst in ["/victim", "/up/host-file", "/up/", &format!("/rootlink{h}/"), "/parentlink/", "/parentlink/host-file"] {
            let _ = d.docker(&["cp", &p, &format!("{ctr}:{dst}")]);
            untouched(host.path());
        }
        let (through_link, climbing) = hostile_tar(host.path());
        let r = d.docker_in(&["cp", "-", &format!("{ctr}:/tmp")], Some(through_link));
        untouched(host.path());
        if ctr == "mirror" {
            assert_eq!(r.code, Some(0), "{r}");
            let inside = sh(&d, &format!("docker cp {ctr}:{h}/host-file - | tar -xO"));
            assert_eq!(inside.stdout, "pwned by tar\n", "the write landed inside the container: {inside}");
        }
        let r = d.docker_in(&["cp", "-", &format!("{ctr}:/tmp")], Some(climbing));
        assert!(r.code != Some(0) && r.stderr.contains("is outside of"), "{r}");
        untouched(host.path());
    }
    let inside = sh(&d, &format!("docker cp mirror:{h}/host-file - | tar -xO"));
    assert!(inside.stdout.starts_with("pwned"), "{inside}");

    // A directory swapped for a link to / or to the host directory while copies run both
    // ways, over and over.
    let race = format!("race-{}", std::process::id());
    // Two loops: /r itself, and /s/sub below a directory that stays (swapped mid-walk).
    let loop_sh = format!(
        "mkdir -p /r.d/sub /s/sub && echo c > /r.d/f && echo c > /s/sub/f && \
         (while :; do mv /r.d /r; usleep 20000; mv /r /r.d; ln -s / /r; usleep 20000; rm /r; ln -s {h} /r; usleep 20000; rm /r; done) & \
         while :; do mv /s/sub /s/sub.d; ln -s {h} /s/sub; usleep 15000; rm /s/sub; mv /s/sub.d /s/sub; usleep 15000; done"
    );
    d.ok(&["run", "-d", "--name", "racer", "busybox", "sh", "-c", &loop_sh]);
    let drop = tmp.path().join("drop");
    std::fs::create_dir_all(drop.join("sub")).unwrap();
    std::fs::write(drop.join(&race), "x").unwrap();
    std::fs::write(drop.join("sub").join(&race), "x").unwrap();
    let (mut put_ok, mut get_ok) = (0, 0);
    for i in 0..40 {
        put_ok += usize::from(d.docker(&["cp", &format!("{}/.", drop.display()), "racer:/r"]).code == Some(0));
        put_ok += usize::from(d.docker(&["cp", &format!("{}/.", drop.display()), "racer:/s"]).code == Some(0));
        let r = sh(&d, &format!("mkdir -p {o}/race{i} {o}/races{i} && docker cp racer:/r/. {o}/race{i} && docker cp racer:/s/. {o}/races{i}"));
        get_ok += usize::from(r.code == Some(0));
        for got in [out.join(format!("race{i}")), out.join(format!("races{i}")), out.join(format!("races{i}/sub"))] {
            // A link that came out as a link points at the host here, locally: not a read.
            if std::fs::symlink_metadata(&got).is_ok_and(|m| m.file_type().is_symlink()) {
                continue;
            }
            assert!(!got.join("marker").exists() && !got.join("host-file").exists(), "read the host directory: {}", got.display());
        }
        assert!(!Path::new("/").join(&race).exists() && !Path::new("/sub").join(&race).exists(), "wrote into the host's /");
        untouched(host.path());
    }
    eprintln!("race: {put_ok}/80 copies in and {get_ok}/40 pairs out succeeded");
    assert!(d.docker(&["top", "racer"]).code == Some(0), "the racing container kept running");
}
