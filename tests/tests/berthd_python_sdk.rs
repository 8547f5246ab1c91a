//! berthd judged by the Python docker SDK (7.x).

use std::process::Command;
use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::run_with_timeout;

#[test]
fn python_sdk_runs_lists_removes() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let has_sdk = Command::new("python3").args(["-c", "import docker"]).status().is_ok_and(|s| s.success());
    if !has_sdk {
        eprintln!("skipped: the Python docker SDK is not installed (pip install docker)");
        return;
    }
    let d = Berthd::start();
    d.import_busybox("busybox:latest");
    let script = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
assert c.ping()
assert c.version()["ApiVersion"] == "1.47", c.version()
out = c.containers.run("busybox", ["sh", "-c", "echo hi; echo there"], remove=True)
assert out == b"hi\nthere\n", out
ctr = c.containers.run("busybox", ["sleep", "100"], detach=True, name="sdk", labels={"app": "t"})
ctr.reload()
assert ctr.status == "running", ctr.status
assert [x.name for x in c.containers.list(filters={"label": "app=t"})] == ["sdk"]
ctr.stop(timeout=1)
ctr.reload()
assert ctr.status == "exited", ctr.status
assert ctr.wait()["StatusCode"] in (137, 143)
ctr.remove()
try:
    c.containers.get("sdk")
    raise SystemExit("still there")
except docker.errors.NotFound:
    pass
try:
    c.containers.run("busybox", "true", cap_add=["NOPE"])
    raise SystemExit("bad capability accepted")
except docker.errors.APIError as e:
    assert e.status_code == 400, e
img = c.images.get("busybox")
assert "busybox:latest" in img.tags, img.tags
assert [i.id for i in c.images.list()] == [img.id]
info = c.info()
assert info["Images"] == 1 and info["OSType"] == "linux" and info["NCPU"] >= 1, info
assert "LayersSize" in c.df()
logs_ctr = c.containers.run("busybox", ["sh", "-c", "echo a; echo b >&2"], detach=True)
assert logs_ctr.wait()["StatusCode"] == 0
assert logs_ctr.logs(stdout=True, stderr=False) == b"a\n"
assert logs_ctr.logs(stdout=False, stderr=True) == b"b\n"
assert logs_ctr.attrs["Config"]["Image"] == "busybox"
logs_ctr.remove()
print("ok")
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(d.host());
    let o = run_with_timeout(cmd, None, Duration::from_secs(120));
    assert_eq!(o.stdout.trim(), "ok", "{o}\nberthd log:\n{}", d.log_tail(30));
}
