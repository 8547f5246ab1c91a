//! Docker (moby) seccomp profiles -> OCI `LinuxSeccomp`, the way Docker does it for one
//! container: keep the `archMap` entry of the host architecture (plus its sub-architectures),
//! and keep each `syscalls[]` entry only if its `includes` all hold and no `excludes` holds for
//! the container's bounding capabilities, the architecture and the running kernel.

use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSyscall,
};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Docker's default seccomp profile (moby/profiles `seccomp/default.json`, Apache-2.0), in
/// Docker's own format: pass it to [`docker_default_profile`].
pub const DOCKER_DEFAULT_PROFILE_JSON: &str = include_str!("docker-default.json");

/// The capabilities Docker gives a container by default.
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<std::path::PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// This host's architecture in Docker's (Go's `GOARCH`) spelling, e.g. `amd64`, `arm64`.
pub fn native_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "x86") {
        "386"
    } else if cfg!(target_arch = "arm") {
        "arm"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64"
    } else if cfg!(target_arch = "s390x") {
        "s390x"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "ppc64le"
    } else if cfg!(target_arch = "powerpc64") {
        "ppc64"
    } else if cfg!(target_arch = "loongarch64") {
        "loong64"
    } else {
        std::env::consts::ARCH
    }
}

/// Accepts Go or Rust/uname spellings and returns Go's.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i386" | "i686" => "386",
        "powerpc64le" => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// moby's `nativeToSeccomp`.
fn seccomp_arch_name(go_arch: &str) -> Option<&'static str> {
    Some(match go_arch {
        "386" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "mipsle" => "SCMP_ARCH_MIPSEL",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

fn cap_name(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    if c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// The running kernel's (major, minor, patch), from uname(2).
fn kernel_version() -> Option<(u32, u32, u32)> {
    // SAFETY: uname fills the zeroed struct; release is NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    parse_version(release.to_str().ok()?)
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let patch = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

/// Converts a Docker seccomp profile (`json`, e.g. Docker's default profile) into the OCI
/// `linux.seccomp` Docker would give a container whose bounding set is `caps` (`CHOWN` or
/// `CAP_CHOWN`) on architecture `arch` (`amd64`/`x86_64`, `arm64`/`aarch64`, ...; see
/// [`native_arch`]). `minKernel` conditions are checked against the running kernel.
pub fn docker_default_profile(json: &str, caps: &[&str], arch: &str) -> Result<LinuxSeccomp> {
    convert(json, caps, arch, kernel_version())
}

pub(crate) fn convert(
    json: &str,
    caps: &[&str],
    arch: &str,
    kernel: Option<(u32, u32, u32)>,
) -> Result<LinuxSeccomp> {
    let err = |m: String| Error::Seccomp(format!("docker seccomp profile: {m}"));
    let p: Profile = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
    let arch = go_arch(arch);
    let caps: Vec<String> = caps.iter().map(|c| cap_name(c)).collect();
    let has_cap = |c: &String| caps.contains(&cap_name(c));
    let kernel_at_least = |min: &str| -> Result<bool> {
        let want = parse_version(min).ok_or_else(|| err(format!("bad minKernel {min:?}")))?;
        Ok(kernel.is_some_and(|k| k >= want))
    };
    let parse_arch = |a: &str| Arch::from_str(a).map_err(|_| err(format!("unknown architecture {a}")));

    let arch_map = p.arch_map.as_deref().unwrap_or(&[]);
    let listed = p.architectures.as_deref().unwrap_or(&[]);
    if !arch_map.is_empty() && !listed.is_empty() {
        return Err(err("both architectures and archMap are set".into()));
    }
    let mut arches = Vec::new();
    if !arch_map.is_empty() {
        if let Some(native) = seccomp_arch_name(arch) {
            for m in arch_map.iter().filter(|m| m.architecture == native) {
                arches.push(parse_arch(&m.architecture)?);
                for s in m.sub_architectures.iter().flatten() {
                    arches.push(parse_arch(s)?);
                }
            }
        }
    } else {
        for a in listed {
            arches.push(parse_arch(a)?);
        }
    }

    let mut syscalls = Vec::new();
    'calls: for (i, call) in p.syscalls.unwrap_or_default().into_iter().enumerate() {
        let names = match (call.name, call.names) {
            (Some(_), Some(n)) if !n.is_empty() => {
                return Err(err(format!("syscalls[{i}] sets both name and names")))
            }
            (Some(n), _) => vec![n],
            (None, n) => n.unwrap_or_default(),
        };
        if let Some(ex) = &call.excludes {
            if ex.arches.iter().flatten().any(|a| a == arch)
                || ex.caps.iter().flatten().any(has_cap)
            {
                continue;
            }
            if let Some(min) = &ex.min_kernel {
                if kernel_at_least(min)? {
                    continue;
                }
            }
        }
        if let Some(inc) = &call.includes {
            let arches = inc.arches.as_deref().unwrap_or(&[]);
            if !arches.is_empty() && !arches.iter().any(|a| a == arch) {
                continue;
            }
            for c in inc.caps.iter().flatten() {
                if !has_cap(c) {
                    continue 'calls;
                }
            }
            if let Some(min) = &inc.min_kernel {
                if !kernel_at_least(min)? {
                    continue;
                }
            }
        }
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(call.action);
        s.set_errno_ret(call.errno_ret);
        s.set_args(call.args);
        syscalls.push(s);
    }

    let mut out = LinuxSeccomp::default();
    out.set_default_action(p.default_action);
    out.set_default_errno_ret(p.default_errno_ret);
    out.set_architectures((!arches.is_empty()).then_some(arches));
    out.set_flags(p.flags);
    out.set_listener_path(p.listener_path);
    out.set_listener_metadata(p.listener_metadata);
    out.set_syscalls(Some(syscalls));
    Ok(out)
}
