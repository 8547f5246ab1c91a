//! Temporary OCI bundles: `config.json` (a runc-`spec`-like default, editable
//! as JSON) plus a root filesystem.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::rootfs::{busybox_rootfs, copy_rootfs};

/// Docker's default capability set (moby's oci/caps/defaults.go).
const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The default config.json: what `runc spec` writes (terminal off, hostname
/// "berth"), with Docker's capabilities and a cgroup namespace. `root_path`
/// is absolute or relative to the bundle dir.
pub fn default_config(root_path: &str) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DOCKER_CAPS,
                "effective": DOCKER_CAPS,
                "permitted": DOCKER_CAPS
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": root_path, "readonly": true },
        "hostname": "berth",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle in a temp dir, removed on drop (the shared rootfs never is).
///
/// Edits to the config are in memory until [`Bundle::write`], which also runs
/// automatically whenever the bundle's path is taken ([`Bundle::path`],
/// `AsRef<Path>`), so a runtime never sees a stale config.json.
pub struct Bundle {
    dir: TempDir,
    rootfs: PathBuf,
    config: Value,
    dirty: Cell<bool>,
}

impl Bundle {
    /// Default config over the shared busybox rootfs, by absolute path and
    /// read-only: cheap, but nothing may write to it.
    pub fn new() -> Self {
        let rootfs = busybox_rootfs();
        let root_path = rootfs.to_str().expect("rootfs path is UTF-8").to_string();
        Self::assemble(new_dir(), rootfs, default_config(&root_path))
    }

    /// Default config over a private copy at `<bundle>/rootfs` (root.path
    /// "rootfs", still mounted read-only unless the test flips
    /// `root.readonly`): for tests that write into the rootfs.
    pub fn with_private_rootfs() -> Self {
        let dir = new_dir();
        let rootfs = dir.path().join("rootfs");
        copy_rootfs(&rootfs)
            .unwrap_or_else(|e| panic!("copying rootfs to {}: {e}", rootfs.display()));
        Self::assemble(dir, rootfs, default_config("rootfs"))
    }

    fn assemble(dir: TempDir, rootfs: PathBuf, config: Value) -> Self {
        let bundle = Bundle {
            dir,
            rootfs,
            config,
            dirty: Cell::new(true),
        };
        bundle.write();
        bundle
    }

    /// The bundle dir (what `--bundle` takes). Flushes pending config edits.
    pub fn path(&self) -> &Path {
        if self.dirty.get() {
            self.write();
        }
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// The root filesystem: the shared one (read-only!) or the private copy.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut Value {
        self.dirty.set(true);
        &mut self.config
    }

    /// Write config.json now (panics on I/O errors: this is a test fixture).
    pub fn write(&self) {
        let path = self.config_path();
        let text = serde_json::to_string_pretty(&self.config).expect("config serialises");
        fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self.dirty.set(false);
    }

    /// `process.args`.
    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config_mut()["process"]["args"] = json!(args);
        self
    }

    /// Set `KEY=VALUE` in `process.env`, replacing an existing KEY.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        let env = self.config_mut()["process"]["env"]
            .as_array_mut()
            .expect("process.env is an array");
        let prefix = format!("{key}=");
        env.retain(|v| !v.as_str().is_some_and(|s| s.starts_with(&prefix)));
        env.push(json!(format!("{key}={value}")));
        self
    }

    /// `process.user.uid` / `gid`.
    pub fn set_user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.config_mut()["process"]["user"] = json!({ "uid": uid, "gid": gid });
        self
    }

    /// `process.cwd`.
    pub fn set_cwd(&mut self, cwd: &str) -> &mut Self {
        self.config_mut()["process"]["cwd"] = json!(cwd);
        self
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl AsRef<Path> for Bundle {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

fn new_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-bundle-")
        .tempdir()
        .expect("creating bundle temp dir");
    // tempdir is 0700; keep the bundle traversable for non-root container users.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle dir");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(b: &Bundle) -> Value {
        serde_json::from_str(&fs::read_to_string(b.path().join("config.json")).unwrap()).unwrap()
    }

    #[test]
    fn default_config_has_expected_fields() {
        let b = Bundle::new();
        let c = on_disk(&b);
        assert_eq!(c["ociVersion"], "1.2.0");
        assert_eq!(c["process"]["args"], json!(["sh"]));
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["process"]["cwd"], "/");
        assert_eq!(c["process"]["user"], json!({"uid": 0, "gid": 0}));
        assert_eq!(c["process"]["noNewPrivileges"], true);
        let env: Vec<&str> = c["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(env.iter().any(|e| e.starts_with("PATH=")) && env.contains(&"TERM=xterm"));
        for set in ["bounding", "effective", "permitted"] {
            let caps = c["process"]["capabilities"][set].as_array().unwrap();
            assert_eq!(caps.len(), DOCKER_CAPS.len(), "{set}");
            assert!(caps.contains(&json!("CAP_NET_BIND_SERVICE")), "{set}");
        }
        assert_eq!(
            c["process"]["rlimits"][0],
            json!({"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024})
        );
        assert_eq!(c["root"]["readonly"], true);
        assert_eq!(
            Path::new(c["root"]["path"].as_str().unwrap()),
            busybox_rootfs()
        );
        let dests: Vec<&str> = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
        assert!(c["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        assert!(c["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys")));
    }

    #[test]
    fn edits_are_flushed_when_path_is_taken() {
        let mut b = Bundle::new();
        b.set_args(&["echo", "hi"])
            .set_env("FOO", "1")
            .set_env("FOO", "2")
            .set_user(65534, 65534);
        b.config_mut()["hostname"] = json!("edited");
        let c = on_disk(&b);
        assert_eq!(c["process"]["args"], json!(["echo", "hi"]));
        let env = c["process"]["env"].as_array().unwrap();
        assert!(env.contains(&json!("FOO=2")) && !env.contains(&json!("FOO=1")));
        assert_eq!(c["process"]["user"]["uid"], 65534);
        assert_eq!(c["hostname"], "edited");
    }

    #[test]
    fn drop_removes_bundle_but_not_shared_rootfs() {
        let b = Bundle::new();
        let dir = b.path().to_path_buf();
        assert_eq!(b.rootfs(), busybox_rootfs());
        drop(b);
        assert!(!dir.exists());
        assert!(busybox_rootfs().join("bin/sh").exists());
    }

    #[test]
    fn private_rootfs_lives_in_bundle() {
        let b = Bundle::with_private_rootfs();
        assert_eq!(b.rootfs(), b.path().join("rootfs"));
        assert_eq!(b.config()["root"]["path"], "rootfs");
        assert!(b.rootfs().join("bin/busybox").is_file());
        let dir = b.path().to_path_buf();
        drop(b);
        assert!(!dir.exists());
    }
}
