//! Helpers for the runc_{rootfs,mounts,namespaces,process} end-to-end tests: run a busybox
//! `sh -c` script in a container and pick `key=value` lines out of its output, create containers
//! to inspect from the host, check that a refused spec left nothing behind, parse mountinfo, and
//! make host mounts that are undone on drop. Included with `mod runc_script;`.

#![allow(dead_code)] // each test binary uses a different subset

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_e2e::{output_with_timeout, unique_id, Bundle, Runtime};
use serde_json::{json, Value};

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `run [FLAGS] --bundle B ID` through `cmd` (a `Runtime::command()`, possibly customised); the
/// container is force-deleted afterwards in case `run` stopped half-way.
pub fn run_cmd(rt: &Runtime, mut cmd: Command, bundle: &Bundle, flags: &[&str]) -> Output {
    let id = unique_id("e2e");
    cmd.arg("run")
        .args(flags)
        .arg("--bundle")
        .arg(bundle.path())
        .arg(&id);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(30));
    let _ = rt.delete_force(&id);
    out
}

/// Runs `sh -c script` in a container of `bundle` (foreground `run`), asserts it exited 0 and
/// returns its stdout.
pub fn run_sh(bundle: &mut Bundle, script: &str) -> String {
    run_sh_with(bundle, script, &[])
}

/// Like [`run_sh`], with extra `run` flags (e.g. `--no-pivot`).
pub fn run_sh_with(bundle: &mut Bundle, script: &str, flags: &[&str]) -> String {
    bundle.set_args(&["sh", "-c", script]);
    run_ok_with(bundle, flags)
}

/// Runs the bundle's process as is, asserts it exited 0, returns stdout.
pub fn run_ok(bundle: &Bundle) -> String {
    run_ok_with(bundle, &[])
}

fn run_ok_with(bundle: &Bundle, flags: &[&str]) -> String {
    let rt = Runtime::berth();
    let out = run_cmd(&rt, rt.command(), bundle, flags);
    assert!(
        out.status.success(),
        "{}",
        describe("container failed", &out)
    );
    text(&out.stdout)
}

/// The value after `key=` (or `key:`, as in /proc/self/status) on the first line that starts
/// with it, trimmed.
pub fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(['=', ':'])))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}= line in container output:\n{out}"))
}

/// Creates (not starts) a container and returns its init pid, for inspection through /proc.
pub fn create(rt: &Runtime, id: &str, bundle: &Bundle) -> i32 {
    let out = rt.create(id, bundle);
    assert!(out.status.success(), "{}", describe("create failed", &out));
    let pid = rt.state(id)["pid"].as_i64().expect("pid in state") as i32;
    assert!(pid > 0, "created container has no pid");
    pid
}

/// Asserts `create` of `bundle` fails with stderr containing every one of `want`, and that it
/// left no state dir and no cgroup behind.
pub fn assert_refused(bundle: &Bundle, want: &[&str]) {
    let rt = Runtime::berth();
    let id = unique_id("refused");
    let out = rt.create(&id, bundle);
    assert!(
        !out.status.success(),
        "{}",
        describe("create should have failed", &out)
    );
    let err = text(&out.stderr);
    for w in want {
        assert!(err.contains(w), "error does not mention {w:?}: {err}");
    }
    assert_nothing_left(&rt, &id);
}

pub fn assert_nothing_left(rt: &Runtime, id: &str) {
    assert!(
        !rt.root().join(id).exists(),
        "state dir of {id} left behind"
    );
    for h in fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok())
    {
        let cg = h.path().join("berth").join(id);
        assert!(!cg.exists(), "cgroup {} left behind", cg.display());
    }
}

pub fn namespaces(b: &mut Bundle) -> &mut Vec<Value> {
    b.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces array")
}

/// readlink /proc/<pid>/ns/<kind> (`pid` may be "self").
pub fn host_ns(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

pub fn add_mount(b: &mut Bundle, m: Value) {
    b.config_mut()["mounts"]
        .as_array_mut()
        .expect("mounts array")
        .push(m);
}

/// A tmpfs on /mnt (empty in the image), under which tests put their mount points: the shared
/// rootfs must not be written to, and the runtime creates missing mount points.
pub fn mnt_tmpfs(b: &mut Bundle, options: Value) {
    add_mount(
        b,
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": options}),
    );
}

/// One line of /proc/<pid>/mountinfo.
pub struct MountLine {
    /// Field 4: the mount's root within its filesystem.
    pub root: String,
    /// Field 6: per-mount options (ro, nosuid, ...).
    pub options: String,
    /// The optional fields (shared:N, master:N), space-separated.
    pub optional: String,
    pub fstype: String,
    /// Superblock options (size=, mode=, ...).
    pub super_options: String,
}

/// The topmost mount at `point`, if any.
pub fn mount_at(mountinfo: &str, point: &str) -> Option<MountLine> {
    mountinfo.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        if f.get(4) != Some(&point) {
            return None;
        }
        let mut post = post.split(' ');
        Some(MountLine {
            root: f[3].to_string(),
            options: f[5].to_string(),
            optional: f[6..].join(" "),
            fstype: post.next().unwrap_or("").to_string(),
            super_options: post.nth(1).unwrap_or("").to_string(),
        })
    })
}

pub fn must_mount_at(mountinfo: &str, point: &str) -> MountLine {
    mount_at(mountinfo, point)
        .unwrap_or_else(|| panic!("nothing mounted at {point} in the container:\n{mountinfo}"))
}

pub fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL in path")
}

/// A mount made on the host by a test, detached (with everything under it) on drop.
pub struct HostMount(pub PathBuf);

impl HostMount {
    pub fn tmpfs(at: &Path) -> HostMount {
        fs::create_dir_all(at).unwrap();
        let (src, dst, ty) = (c"tmpfs", cpath(at), c"tmpfs");
        // SAFETY: valid C strings; null data.
        let r =
            unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
        assert_eq!(
            r,
            0,
            "mount tmpfs on {}: {}",
            at.display(),
            std::io::Error::last_os_error()
        );
        HostMount(at.to_path_buf())
    }

    pub fn set_propagation(&self, flag: libc::c_ulong) {
        let dst = cpath(&self.0);
        // SAFETY: valid C string; null source, type and data.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                dst.as_ptr(),
                std::ptr::null(),
                flag,
                std::ptr::null(),
            )
        };
        assert_eq!(
            r,
            0,
            "propagation of {}: {}",
            self.0.display(),
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let dst = cpath(&self.0);
        // SAFETY: valid C string.
        unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    }
}
