//! Volumes and mounts against a private berthd, driven by the docker CLI (v28) and the berth
//! CLI: named and anonymous volumes, copy-up from the image, --volumes-from and the backup
//! pattern, option volumes (tmpfs), data that outlives containers and daemon restarts, bad
//! input refused before anything is created, and image symlinks that must not redirect a
//! mount onto the host. Root only.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::run_with_timeout;



fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Everything removed, then nothing left on the host.
fn teardown(d: &Berthd) {
    let ids = d.ok(&["ps", "-aq"]);
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.lines());
        d.ok(&args);
    }
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "{leaks:?}");
}

/// An image whose /data (a VOLUME) holds a file owned by 1000:1000 in a 0750 directory.
fn image_with_volume(d: &Berthd) {
    d.ok(&["run", "--name", "mk", "busybox", "sh", "-c", "mkdir -p /data/sub && echo image > /data/sub/f && chown -R 1000:1000 /data && chmod 750 /data"]);
    d.ok(&["commit", "--change", "VOLUME /data", "mk", "withvol"]);
    d.ok(&["rm", "mk"]);
}

#[test]
fn named_volumes_outlive_containers() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    assert_eq!(d.ok(&["volume", "create", "--label", "tier=db", "data"]), "data");
    // Data written by one container is read by the next; ro is enforced.
    d.ok(&["run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"]);
    assert_eq!(d.ok(&["run", "--rm", "-v", "data:/d:ro", "busybox", "cat", "/d/f"]), "kept");
    let ro = d.docker(&["run", "--rm", "-v", "data:/d:ro", "busybox", "touch", "/d/x"]);
    assert_ne!(ro.code, Some(0));
    assert!(ro.stderr.contains("Read-only file system"), "{ro}");
    // --mount type=volume, and a volume auto-created by name at run.
    assert_eq!(d.ok(&["run", "--rm", "--mount", "type=volume,source=data,target=/m,readonly", "busybox", "cat", "/m/f"]), "kept");
    d.ok(&["run", "--rm", "-v", "auto:/a", "busybox", "true"]);
    // A read-only root with a writable volume.
    let out = d.docker(&["run", "--rm", "--read-only", "-v", "data:/data", "busybox", "sh", "-c", "echo ok > /data/rw && touch /rootfile"]);
    assert!(out.stderr.contains("Read-only file system") && out.code == Some(1), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/rw"]), "ok");
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])), ["auto", "data"]);
    assert_eq!(d.ok(&["volume", "ls", "-q", "--filter", "label=tier=db"]), "data");
    assert_eq!(d.ok(&["volume", "inspect", "-f", "{{.Driver}} {{.Scope}} {{.Labels}}", "data"]), "local local map[tier:db]");
    let mountpoint = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]);
    assert!(mountpoint.starts_with(d.data_root.to_str().unwrap()) && mountpoint.ends_with("/volumes/data/_data"), "{mountpoint}");

    // In use: refused, with the container named; anonymous volumes go with `rm -v`, named
    // ones stay.
    let id = d.ok(&["run", "-d", "-v", "data:/data", "-v", "/scratch", "busybox", "sleep", "100"]);
    let rm = d.docker(&["volume", "rm", "data"]);
    assert_eq!(rm.code, Some(1));
    assert!(rm.stderr.contains(&format!("remove data: volume is in use - [{id}]")), "{rm}");
    let mounts = d.ok(&["inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}} {{.Driver}};{{end}}", &id]);
    assert!(mounts.contains("volume /data true local;") && mounts.contains("volume /scratch true local;"), "{mounts}");
    assert_eq!(d.ok(&["ps", "--filter", "volume=data", "-q", "--no-trunc"]), id);
    let anon = d.ok(&["inspect", "-f", "{{range .Mounts}}{{if eq .Destination \"/scratch\"}}{{.Name}}{{end}}{{end}}", &id]);
    assert_eq!(anon.len(), 64, "{anon}");
    assert_eq!(d.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]), "auto");
    d.ok(&["rm", "-fv", &id]);
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])), ["auto", "data"]);
    // --rm containers take their anonymous volumes along too.
    d.ok(&["run", "--rm", "-v", "/tmpvol", "busybox", "true"]);
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])), ["auto", "data"]);

    // Prune: anonymous only by default, all unused with --all; data of a used one stays.
    d.ok(&["create", "--name", "holder", "-v", "data:/data", "-v", "/anon", "busybox", "true"]);
    d.ok(&["rm", "holder"]);
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Volumes:\n") && pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])), ["auto", "data"]);
    d.ok(&["create", "--name", "user", "-v", "data:/data", "busybox", "true"]);
    let all = d.ok(&["volume", "prune", "-af"]);
    assert!(all.contains("auto") && !all.contains("data\n"), "{all}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "data");
    assert_eq!(d.ok(&["start", "-a", "user"]), "");
    assert_eq!(d.ok(&["run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"]), "kept");
    d.ok(&["rm", "user"]);
    assert_eq!(d.ok(&["volume", "rm", "data"]), "data");
    assert!(!std::path::Path::new(&mountpoint).exists(), "volume data left at {mountpoint}");
    let gone = d.docker(&["volume", "inspect", "data"]);
    assert!(gone.stderr.contains("no such volume"), "{gone}");
    assert_eq!(d.docker(&["volume", "rm", "-f", "data"]).code, Some(0));
    teardown(&d);
}

#[test]
fn copy_up_volumes_from_and_backup() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    image_with_volume(&d);
    // The image's VOLUME gets an anonymous volume filled with the image's content, owners and
    // modes kept.
    d.ok(&["create", "--name", "dbstore", "withvol", "sh", "-c", "echo more >> /data/sub/f"]);
    d.ok(&["start", "-a", "dbstore"]);
    let src = d.ok(&["inspect", "-f", "{{range .Mounts}}{{.Source}}{{end}}", "dbstore"]);
    let meta = std::fs::metadata(&src).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (1000, 1000, 0o750));
    assert_eq!(std::fs::read_to_string(format!("{src}/sub/f")).unwrap(), "image\nmore\n");
    // A second start keeps what the volume holds (copy-up happens once).
    d.ok(&["start", "-a", "dbstore"]);
    assert_eq!(std::fs::read_to_string(format!("{src}/sub/f")).unwrap(), "image\nmore\nmore\n");
    // nocopy: an empty volume over the image's directory.
    assert_eq!(d.ok(&["run", "--rm", "-v", "empty:/data:nocopy", "withvol", "ls", "-A", "/data"]), "");
    // --volumes-from, rw by default and ro on request.
    assert_eq!(d.ok(&["run", "--rm", "--volumes-from", "dbstore", "busybox", "cat", "/data/sub/f"]), "image\nmore\nmore");
    let ro = d.docker(&["run", "--rm", "--volumes-from", "dbstore:ro", "busybox", "touch", "/data/x"]);
    assert!(ro.stderr.contains("Read-only file system"), "{ro}");
    // The seeds' backup pattern.
    let backup = tempfile::tempdir().unwrap();
    let bind = format!("{}:/backup", backup.path().display());
    d.ok(&["run", "--rm", "--volumes-from", "dbstore", "-v", &bind, "busybox", "tar", "cf", "/backup/backup.tar", "/data"]);
    let list = Command::new("tar").arg("tf").arg(backup.path().join("backup.tar")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout), "data/\ndata/sub/\ndata/sub/f\n");
    // And restore into a fresh container's volume.
    d.ok(&["create", "--name", "dbstore2", "-v", "/data", "busybox", "true"]);
    d.ok(&["run", "--rm", "--volumes-from", "dbstore2", "-v", &bind, "busybox", "sh", "-c", "cd / && tar xf /backup/backup.tar"]);
    assert_eq!(d.ok(&["run", "--rm", "--volumes-from", "dbstore2", "busybox", "cat", "/data/sub/f"]), "image\nmore\nmore");
    d.ok(&["rm", "-v", "dbstore", "dbstore2"]);
    d.ok(&["volume", "rm", "empty"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    teardown(&d);
}

#[test]
fn cp_sees_the_running_containers_mounts() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let id = d.ok(&["run", "-d", "--hostname", "cphost", "-v", "cpvol:/vol", "busybox", "sleep", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.txt");
    std::fs::write(&f, "into the volume").unwrap();
    d.ok(&["cp", f.to_str().unwrap(), &format!("{id}:/vol/")]);
    let data = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "cpvol"]);
    assert_eq!(std::fs::read_to_string(format!("{data}/in.txt")).unwrap(), "into the volume");
    assert_eq!(d.ok(&["exec", &id, "cat", "/vol/in.txt"]), "into the volume");
    // Out of the volume and out of the /etc files Berth binds in.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    d.ok(&["exec", &id, "sh", "-c", "echo from-container > /vol/made"]);
    d.ok(&["cp", &format!("{id}:/vol/made"), out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("made")).unwrap(), "from-container\n");
    d.ok(&["cp", &format!("{id}:/etc/hostname"), out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("hostname")).unwrap(), "cphost\n");
    // Kernel filesystems are listed, never read or written: a copy of / ends, /proc stays.
    let all = Command::new("sh")
        .arg("-c")
        .arg(format!("docker cp {id}:/ - | tar -t | grep -c -e '^/proc/' -e '^/sys/' -e '^/vol/in.txt$'"))
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&all.stdout).trim(), "3", "{all:?}");
    let into_proc = d.docker(&["cp", f.to_str().unwrap(), &format!("{id}:/proc/")]);
    assert!(into_proc.stderr.contains("kernel filesystem"), "{into_proc}");
    d.ok(&["rm", "-f", &id]);
    d.ok(&["volume", "rm", "cpvol"]);
    teardown(&d);
}

#[test]
fn tmpfs_option_volumes_mount_while_used() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    d.ok(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m,mode=1770", "scratch"]);
    let data = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "scratch"]);
    let out = d.ok(&["run", "--rm", "-v", "scratch:/s", "busybox", "sh", "-c", "grep ' /s ' /proc/mounts; stat -c %a /s"]);
    assert!(out.contains("tmpfs /s tmpfs") && out.contains("size=2048k") && out.ends_with("1770"), "{out}");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(data.as_str()));
    assert!(!mounted, "the tmpfs stays mounted after its last user stopped");
    let bad = d.docker(&["volume", "create", "-o", "type=tmpfs", "-o", "bogus=1", "xx"]);
    assert!(bad.stderr.contains("invalid option: \"bogus\""), "{bad}");
    let bad = d.docker(&["volume", "create", "-o", "type=tmpfs", "yy"]);
    assert!(bad.stderr.contains("missing required option: \"device\""), "{bad}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "scratch");
    d.ok(&["volume", "rm", "scratch"]);
    teardown(&d);
}

#[test]
fn bad_mounts_change_nothing() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let cases: &[(&[&str], &str)] = &[
        (&["-v", "data:rel"], "invalid volume specification: 'data:rel': invalid mount path: 'rel' mount path must be absolute"),
        (&["-v", "b@d:/x"], "\"b@d\" includes invalid characters for a local volume name"),
        (&["--mount", "type=bind,source=/nonexistent/berth-vol-test,target=/x"], "bind source path does not exist: /nonexistent/berth-vol-test"),
        (&["-v", "one:/x", "-v", "two:/x"], "Duplicate mount point: /x"),
        (&["--volumes-from", "nosuchcontainer"], "No such container: nosuchcontainer"),
        (&["-v", "ok1:/a", "--volumes-from", "missing2"], "No such container: missing2"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let o = d.docker(&args);
        assert_ne!(o.code, Some(0), "{args:?}");
        assert!(o.stderr.contains(want), "{args:?}: want {want:?}\n{o}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]), "", "a failed create left a container");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "", "a failed create left a volume");
    teardown(&d);
}

#[test]
fn image_symlinks_cannot_redirect_mounts() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host").unwrap();
    let link = host.path().display().to_string();
    d.ok(&["run", "--name", "mk", "busybox", "ln", "-s", &link, "/evil"]);
    d.ok(&["commit", "--change", "VOLUME /evil", "mk", "evil"]);
    d.ok(&["rm", "mk"]);
    // Copy-up of /evil and the mount at /evil both resolve inside the rootfs.
    d.ok(&["run", "--rm", "evil", "sh", "-c", "echo pwned > /evil/x; ls /evil/"]);
    d.ok(&["run", "--rm", "-v", "vv:/evil", "evil", "sh", "-c", "echo pwned > /evil/y"]);
    let mut names: Vec<String> = std::fs::read_dir(host.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["secret"], "a container wrote to the host");
    assert_eq!(std::fs::read_to_string(host.path().join("secret")).unwrap(), "host");
    d.ok(&["volume", "rm", "vv"]);
    teardown(&d);
}

#[test]
fn volumes_survive_a_daemon_kill() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let mut d = Berthd::with_busybox();
    d.ok(&["run", "--rm", "-v", "keep:/k", "busybox", "sh", "-c", "echo 1 > /k/f"]);
    let id = d.ok(&["run", "-d", "-v", "keep:/k", "-v", "/anon", "busybox", "sleep", "100"]);
    d.kill9();
    d.launch();
    assert_eq!(d.ok(&["exec", &id, "cat", "/k/f"]), "1");
    assert_eq!(d.ok(&["volume", "ls", "-q", "--filter", "dangling=false"]).lines().count(), 2);
    let rm = d.docker(&["volume", "rm", "keep"]);
    assert!(rm.stderr.contains("volume is in use"), "{rm}");
    d.ok(&["rm", "-fv", &id]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "keep");
    d.ok(&["volume", "rm", "keep"]);
    teardown(&d);
}

#[test]
fn berth_cli_volume_commands_match_docker() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::with_busybox();
    let berth = berth_e2e::runtime_bin("berth");
    let run = |tool: &str, args: &[&str]| {
        let mut c = if tool == "docker" { d.docker_cmd(args) } else { Command::new(&berth) };
        if tool != "docker" {
            c.args(args).env("DOCKER_HOST", d.host());
        }
        let o = run_with_timeout(c, None, Duration::from_secs(30));
        (o.code, o.stdout, o.stderr)
    };
    for tool in ["docker", "berth"] {
        let (code, out, _) = run(tool, &["volume", "create", "--label", "a=b", &format!("{tool}-v")]);
        assert_eq!((code, out), (Some(0), format!("{tool}-v\n")));
    }
    for args in [
        &["volume", "ls"][..],
        &["volume", "ls", "-q"],
        &["volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}"],
        &["volume", "ls", "--filter", "name=docker"],
        &["volume", "inspect", "docker-v", "berth-v"],
        &["volume", "inspect", "-f", "{{.Name}} {{.Mountpoint}}", "berth-v"],
        &["volume", "rm", "nosuch"],
        &["system", "df"],
    ] {
        assert_eq!(run("docker", args), run("berth", args), "{args:?}");
    }
    // berth run with -v and --mount, read back through the docker CLI.
    let (code, _, err) = run("berth", &["run", "--rm", "-v", "berth-v:/d", "busybox", "sh", "-c", "echo via-berth > /d/f"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run("berth", &["run", "--rm", "--mount", "type=volume,src=berth-v,dst=/m,readonly", "busybox", "cat", "/m/f"]);
    assert_eq!((code, out.as_str()), (Some(0), "via-berth\n"), "{err}");
    assert_eq!(d.ok(&["run", "--rm", "-v", "berth-v:/d", "busybox", "cat", "/d/f"]), "via-berth");
    let (_, out, _) = run("berth", &["volume", "rm", "docker-v", "berth-v"]);
    assert_eq!(out, "docker-v\nberth-v\n");
    let (_, out, _) = run("berth", &["volume", "prune", "-af"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    teardown(&d);
}

#[test]
fn python_sdk_volumes() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    if !Command::new("python3").args(["-c", "import docker"]).status().is_ok_and(|s| s.success()) {
        eprintln!("skipped: the Python docker SDK is not installed");
        return;
    }
    let d = Berthd::with_busybox();
    let script = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
v = c.volumes.create("pyvol", labels={"k": "v"})
assert v.name == "pyvol" and v.attrs["Labels"] == {"k": "v"} and v.attrs["Driver"] == "local", v.attrs
out = c.containers.run("busybox", ["sh", "-c", "echo sdk > /d/f; cat /d/f"], volumes={"pyvol": {"bind": "/d", "mode": "rw"}}, remove=True)
assert out == b"sdk\n", out
out = c.containers.run("busybox", ["cat", "/d/f"], volumes=["pyvol:/d:ro"], remove=True)
assert out == b"sdk\n", out
assert [x.name for x in c.volumes.list(filters={"label": "k=v"})] == ["pyvol"]
ctr = c.containers.create("busybox", "true", volumes=["pyvol:/d"])
try:
    c.volumes.get("pyvol").remove()
    raise SystemExit("removed a volume in use")
except docker.errors.APIError as e:
    assert e.status_code == 409 and "volume is in use" in str(e), e
ctr.remove()
c.volumes.get("pyvol").remove()
try:
    c.volumes.get("pyvol")
    raise SystemExit("still there")
except docker.errors.NotFound:
    pass
r = c.volumes.prune()
assert r["VolumesDeleted"] == [] and r["SpaceReclaimed"] == 0, r
print("ok")
"#;
    let o = Command::new("python3").args(["-c", script]).arg(d.host()).output().expect("python3");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok", "{}\n{}", String::from_utf8_lossy(&o.stderr), d.log_tail(20));
    teardown(&d);
}
