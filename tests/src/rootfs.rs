//! The shared busybox rootfs: Debian's static busybox plus one symlink per
//! applet, minimal /etc, and the empty directories runtimes mount onto.
//!
//! Built once per target dir and reused by every test binary and benchmark,
//! so it must be safe when several processes race to build it.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where Debian's busybox-static installs the binary.
const BUSYBOX: &str = "/bin/busybox";

/// Bump when the recipe below changes, so cached rootfs dirs get rebuilt.
const RECIPE_VERSION: u32 = 1;

/// File at the rootfs root holding the recipe stamp. It also marks a dir as a
/// fixture rootfs (mkbundle only replaces rootfs dirs that carry it).
pub const ROOTFS_MARKER: &str = ".berth-fixture";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\n";

/// Empty dirs a container needs (mount points, home dirs, scratch), with modes.
const DIRS: &[(&str, u32)] = &[
    ("proc", 0o755),
    ("sys", 0o755),
    ("dev", 0o755),
    ("tmp", 0o1777),
    ("etc", 0o755),
    ("root", 0o700),
    ("home", 0o755),
    ("var", 0o755),
    ("var/tmp", 0o1777),
    ("run", 0o755),
    ("mnt", 0o755),
];

/// Path of the shared busybox rootfs (`<target dir>/berth-fixtures/busybox-rootfs`),
/// building it on first use. Treat it as read-only: every test shares it.
///
/// Panics with a hint if /bin/busybox is missing or not static.
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let fixtures = crate::target_dir().join("berth-fixtures");
            build_or_reuse(&fixtures).unwrap_or_else(|e| {
                panic!("building busybox rootfs under {}: {e}", fixtures.display())
            })
        })
        .clone()
}

/// Copy the shared busybox rootfs to `dst` (created; must not exist or be
/// empty), for tests that write into their rootfs.
pub fn copy_rootfs(dst: &Path) -> io::Result<()> {
    copy_tree(&busybox_rootfs(), dst)
}

/// The stamp identifies recipe and busybox binary, so either changing rebuilds.
fn expected_stamp() -> String {
    let meta = match fs::metadata(BUSYBOX) {
        Ok(m) => m,
        Err(e) => panic!("{BUSYBOX}: {e}: install busybox-static (apt-get install busybox-static)"),
    };
    check_static(Path::new(BUSYBOX));
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!(
        "berth busybox rootfs recipe {RECIPE_VERSION}\nbusybox {} {}\n",
        meta.len(),
        mtime.map(|d| d.as_nanos()).unwrap_or(0)
    )
}

/// A dynamically linked busybox (Debian's `busybox` package) would not run in
/// a rootfs without its libraries: fail early with the fix.
fn check_static(path: &Path) {
    let elf = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if has_interpreter(&elf) {
        panic!(
            "{} is dynamically linked: install busybox-static",
            path.display()
        );
    }
}

/// True if a 64-bit little-endian ELF has a PT_INTERP program header.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return false; // not ELF64 LE: don't guess
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let off = phoff + i * phentsize;
        elf.get(off..off + 4)
            .is_some_and(|b| u32::from_le_bytes(b.try_into().unwrap()) == PT_INTERP)
    })
}

fn is_current(rootfs: &Path, stamp: &str) -> bool {
    fs::read_to_string(rootfs.join(ROOTFS_MARKER)).is_ok_and(|s| s == stamp)
}

fn build_or_reuse(fixtures: &Path) -> io::Result<PathBuf> {
    let stamp = expected_stamp();
    let dest = fixtures.join("busybox-rootfs");
    if is_current(&dest, &stamp) {
        return Ok(dest);
    }
    fs::create_dir_all(fixtures)?;
    // Serialise builders across processes; the loser finds a current rootfs.
    let _lock = lock_file(&fixtures.join(".busybox-rootfs.lock"))?;
    if is_current(&dest, &stamp) {
        return Ok(dest);
    }
    // Build next to the destination so the final rename is atomic.
    let tmp = tempfile::Builder::new()
        .prefix(".busybox-rootfs.tmp")
        .tempdir_in(fixtures)?;
    build(tmp.path(), &stamp)?;
    if fs::symlink_metadata(&dest).is_ok() {
        // Stale (old recipe or busybox): move aside, then remove.
        let old = fixtures.join(format!(".busybox-rootfs.old-{}", std::process::id()));
        fs::rename(&dest, &old)?;
        let _ = fs::remove_dir_all(&old);
    }
    fs::rename(tmp.keep(), &dest)?;
    Ok(dest)
}

/// Exclusive flock held until the returned file is dropped.
fn lock_file(path: &Path) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a valid, owned fd.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

fn mkdir_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)?;
    // Explicit chmod: DirBuilder's mode is filtered by the umask.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn build(root: &Path, stamp: &str) -> io::Result<()> {
    // tempdir_in made the root 0700; a container's / must be traversable by nobody.
    mkdir_mode(root, 0o755)?;
    mkdir_mode(&root.join("bin"), 0o755)?;
    let busybox = root.join("bin/busybox");
    fs::copy(BUSYBOX, &busybox)?;
    fs::set_permissions(&busybox, fs::Permissions::from_mode(0o755))?;

    // Ask the copied binary itself, so the applet list matches what we ship.
    let out = Command::new(&busybox).arg("--list-full").output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "busybox --list-full failed: {:?}",
            out.status
        )));
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        let rel = Path::new(applet);
        let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if applet.is_empty() || !safe || rel == Path::new("bin/busybox") {
            continue;
        }
        let link = root.join(rel);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        // Relative target, so links resolve both inside the container and on the host.
        let depth = rel.components().count() - 1;
        let target = format!("{}bin/busybox", "../".repeat(depth));
        match symlink(&target, &link) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            r => r?,
        }
    }

    for (dir, mode) in DIRS {
        mkdir_mode(&root.join(dir), *mode)?;
    }
    fs::write(root.join("etc/passwd"), PASSWD)?;
    fs::write(root.join("etc/group"), GROUP)?;

    // Marker last: a rootfs is only "current" once complete.
    let mut marker = fs::File::create(root.join(ROOTFS_MARKER))?;
    marker.write_all(stamp.as_bytes())?;
    marker.sync_all()
}

/// Recursive copy keeping symlinks as symlinks and permission bits.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let ty = entry.file_type()?;
        if ty.is_symlink() {
            symlink(fs::read_link(&from)?, &to)?;
        } else if ty.is_dir() {
            copy_tree(&from, &to)?;
        } else if ty.is_file() {
            fs::copy(&from, &to)?;
        }
    }
    // After the contents, so a read-only or sticky dir mode can't block the copy.
    fs::set_permissions(dst, fs::metadata(src)?.permissions())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_has_shell_and_tools() {
        let root = busybox_rootfs();
        assert!(root.ends_with("berth-fixtures/busybox-rootfs"), "{root:?}");
        for tool in [
            "bin/busybox",
            "bin/sh",
            "bin/ls",
            "bin/true",
            "usr/bin/env",
            "sbin/ip",
        ] {
            assert!(root.join(tool).exists(), "{tool} missing from {root:?}");
        }
    }

    #[test]
    fn applet_symlinks_resolve_to_busybox() {
        let root = busybox_rootfs();
        let busybox = fs::canonicalize(root.join("bin/busybox")).unwrap();
        for applet in ["bin/sh", "usr/bin/env", "sbin/init", "linuxrc"] {
            let link = root.join(applet);
            assert!(
                fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink(),
                "{applet}"
            );
            let target = fs::read_link(&link).unwrap();
            assert!(
                target.is_relative(),
                "{applet} -> {target:?} should be relative"
            );
            assert_eq!(fs::canonicalize(&link).unwrap(), busybox, "{applet}");
        }
        // The shell really runs from the rootfs.
        let out = Command::new(root.join("bin/sh"))
            .args(["-c", "echo ok"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    }

    #[test]
    fn passwd_and_group_have_root_and_nobody() {
        let root = busybox_rootfs();
        let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd.lines().any(|l| l.starts_with("root:x:0:0:")),
            "{passwd}"
        );
        assert!(
            passwd
                .lines()
                .any(|l| l.starts_with("nobody:x:65534:65534:")),
            "{passwd}"
        );
        let group = fs::read_to_string(root.join("etc/group")).unwrap();
        assert!(group.lines().any(|l| l.starts_with("root:x:0:")), "{group}");
        assert!(
            group.lines().any(|l| l.starts_with("nobody:x:65534:")),
            "{group}"
        );
    }

    #[test]
    fn dirs_exist_with_modes() {
        let root = busybox_rootfs();
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(""), 0o755);
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("root"), 0o700);
        for d in ["proc", "sys", "dev", "etc", "home", "var", "run"] {
            assert!(root.join(d).is_dir(), "{d}");
        }
    }

    #[test]
    fn private_copy_is_independent() {
        let tmp = tempfile::tempdir().unwrap();
        let dst = tmp.path().join("rootfs");
        copy_rootfs(&dst).unwrap();
        assert!(fs::symlink_metadata(dst.join("bin/sh"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::metadata(dst.join("tmp")).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        fs::write(dst.join("etc/written"), "x").unwrap();
        assert!(!busybox_rootfs().join("etc/written").exists());
    }

    #[test]
    fn racing_builders_agree() {
        // Several threads building into a fresh dir at once must all succeed
        // and see the same complete rootfs.
        let tmp = tempfile::tempdir().unwrap();
        let fixtures = tmp.path().to_path_buf();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let f = fixtures.clone();
                std::thread::spawn(move || build_or_reuse(&f).unwrap())
            })
            .collect();
        for h in handles {
            let root = h.join().unwrap();
            assert!(is_current(&root, &expected_stamp()));
        }
        // A stale stamp triggers a rebuild in place.
        let root = fixtures.join("busybox-rootfs");
        fs::write(root.join(ROOTFS_MARKER), "old").unwrap();
        build_or_reuse(&fixtures).unwrap();
        assert!(is_current(&root, &expected_stamp()));
    }

    #[test]
    fn detects_dynamic_elf() {
        assert!(!has_interpreter(&fs::read(BUSYBOX).unwrap()));
        assert!(has_interpreter(&fs::read("/bin/ls").unwrap()));
    }
}
