//! The fixtures checked against the installed runc and crun: proves the
//! default bundle is a config real runtimes accept, and that the Runtime
//! helper drives a full lifecycle. Skipped (with a message) where a runtime
//! is not installed.

use std::time::Duration;

use crate::{unique_id, Bundle, Runtime};

fn system(name: &str) -> Option<Runtime> {
    let rt = Runtime::system(name);
    if rt.is_none() {
        eprintln!("skipping: {name} not installed");
    }
    rt
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_default_bundle(rt: &Runtime, oci_version: Option<&str>) {
    let mut bundle = Bundle::new();
    if let Some(v) = oci_version {
        bundle.config_mut()["ociVersion"] = v.into();
    }
    bundle.set_args(&[
        "sh",
        "-c",
        "echo hello; hostname; id -u; cat /proc/self/status | grep NoNewPrivs",
    ]);
    let out = rt.run(&unique_id("fx"), &bundle);
    assert_eq!(stdout(&out), "hello\nberth\n0\nNoNewPrivs:\t1\n");
}

#[test]
fn runc_runs_default_bundle() {
    if let Some(rt) = system("runc") {
        run_default_bundle(&rt, None);
    }
}

#[test]
fn crun_runs_default_bundle() {
    // On a hybrid cgroup host this also covers hiding /sys/fs/cgroup/unified.
    // Debian 12's crun 1.8.1 rejects ociVersion 1.2.0 ("unknown version
    // specified"); the rest of the default config is valid 1.1.
    if let Some(rt) = system("crun") {
        run_default_bundle(&rt, Some("1.1.0"));
    }
}

#[test]
fn runc_lifecycle_and_exec() {
    let Some(rt) = system("runc") else { return };
    let mut bundle = Bundle::new();
    bundle.set_args(&["sleep", "60"]);
    let id = unique_id("life");
    stdout(&rt.create(&id, &bundle));
    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert!(state["pid"].as_i64().unwrap() > 0);
    stdout(&rt.start(&id));
    rt.wait_status(&id, "running", Duration::from_secs(10));
    assert_eq!(
        stdout(&rt.exec(&id, &["sh", "-c", "echo $((6 * 7))"])),
        "42\n"
    );
    stdout(&rt.kill(&id, "KILL"));
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    stdout(&rt.delete(&id));
    assert!(
        !rt.state_output(&id).status.success(),
        "state after delete should fail"
    );
}

#[test]
fn runc_runs_as_nobody() {
    let Some(rt) = system("runc") else { return };
    let mut bundle = Bundle::new();
    bundle.set_user(65534, 65534).set_args(&[
        "sh",
        "-c",
        "id -u; id -g; ls / >/dev/null && echo ok",
    ]);
    assert_eq!(
        stdout(&rt.run(&unique_id("nobody"), &bundle)),
        "65534\n65534\nok\n"
    );
}

#[test]
fn runc_writes_private_rootfs() {
    let Some(rt) = system("runc") else { return };
    let mut bundle = Bundle::with_private_rootfs();
    bundle.config_mut()["root"]["readonly"] = false.into();
    bundle.set_args(&["sh", "-c", "echo written > /etc/marker"]);
    stdout(&rt.run(&unique_id("rw"), &bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.rootfs().join("etc/marker")).unwrap(),
        "written\n"
    );
}

#[test]
fn drop_force_deletes_leftover_containers() {
    let Some(rt) = system("runc") else { return };
    let mut bundle = Bundle::new();
    bundle.set_args(&["sleep", "60"]);
    let id = unique_id("leak");
    stdout(&rt.create(&id, &bundle));
    stdout(&rt.start(&id));
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let pidfd = crate::pidfd_open(pid).unwrap();
    drop(rt);
    assert!(
        crate::pidfd_wait(&pidfd, Some(Duration::from_secs(10))).unwrap(),
        "container init survived Runtime drop"
    );
}
