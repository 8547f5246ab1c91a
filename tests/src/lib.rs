//! Shared fixtures for Berth's end-to-end tests and benchmarks.
//!
//! - [`busybox_rootfs`]: a busybox rootfs, built once per target dir and shared.
//! - [`Bundle`]: a temporary OCI bundle with a runc-`spec`-like default config.
//! - [`Runtime`]: drives any runc-compatible CLI (berth-runc, runc, crun) with a
//!   private `--root` state dir.
//! - [`runtime_bin`], [`unique_id`], [`target_dir`]: small helpers.

pub mod berthd;
mod bundle;
pub mod dockerd;
pub mod registry;
mod process;
mod rootfs;
mod runtime;
#[cfg(test)]
mod with_real_runtimes;

pub use bundle::{default_config, Bundle};
pub use process::{output_with_timeout, pidfd_open, pidfd_reap, pidfd_wait};
pub use rootfs::{busybox_rootfs, copy_rootfs, ROOTFS_MARKER};
pub use runtime::{
    find_in_path, hide_unified_cgroup2, runtime_bin, try_runtime_bin, unified_cgroup2_hybrid,
    Runtime,
};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Cargo's target dir: `$CARGO_TARGET_DIR`, else the nearest ancestor of the
/// running executable that cargo marked with CACHEDIR.TAG (covers
/// `build.target-dir` in cargo config), else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        // A relative CARGO_TARGET_DIR is relative to where cargo ran: the workspace.
        return if dir.is_absolute() {
            dir
        } else {
            workspace_dir().join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    workspace_dir().join("target")
}

/// The workspace root (this crate lives in `<workspace>/tests`).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// A container id unique across test threads and processes:
/// `<prefix>-<pid>-<counter>-<time>`, within runc's `[A-Za-z0-9_.-]+`.
pub fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Time bits guard against pid reuse across runs that share a state dir.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_differ_and_are_valid() {
        let a = unique_id("t");
        let b = unique_id("t");
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.starts_with("t-"));
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                "{id}"
            );
        }
    }

    #[test]
    fn target_dir_is_cargos() {
        let dir = target_dir();
        assert!(
            dir.join("CACHEDIR.TAG").is_file() || std::env::var_os("CARGO_TARGET_DIR").is_some(),
            "{dir:?}"
        );
    }
}
