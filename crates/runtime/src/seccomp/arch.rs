//! Architectures (ABIs) a filter can cover, and their syscall-name tables.
//!
//! Numbers come from the `syscalls` crate (generated from the kernel's tables), with the few
//! entries it lacks added here: the x32 ABI (derived from x86_64 per the kernel's
//! `syscall_64.tbl`: "common" entries are shared with the x32 bit set, "64" entries do not exist
//! on x32, and numbers 512..=547 are x32-only) and ARM's private syscalls (`__ARM_NR_BASE`).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

use oci_spec::runtime::Arch;

/// `__X32_SYSCALL_BIT`: x32 syscalls are x86_64 syscalls with this bit set in `nr`.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An ABI the compiler has a syscall table for. x86_64 and x32 share one `AUDIT_ARCH` value and
/// are told apart by [`X32_SYSCALL_BIT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Abi {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Riscv64,
    S390x,
    Ppc64le,
    Ppc64,
    Loongarch64,
}

const AUDIT_64BIT: u32 = 0x8000_0000;
const AUDIT_LE: u32 = 0x4000_0000;

impl Abi {
    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_64BIT | AUDIT_LE | 62, // EM_X86_64
            Abi::X86 => AUDIT_LE | 3,                              // EM_386
            Abi::Aarch64 => AUDIT_64BIT | AUDIT_LE | 183,          // EM_AARCH64
            Abi::Arm => AUDIT_LE | 40,                             // EM_ARM
            Abi::Riscv64 => AUDIT_64BIT | AUDIT_LE | 243,          // EM_RISCV
            Abi::S390x => AUDIT_64BIT | 22,                        // EM_S390
            Abi::Ppc64le => AUDIT_64BIT | AUDIT_LE | 21,           // EM_PPC64
            Abi::Ppc64 => AUDIT_64BIT | 21,
            Abi::Loongarch64 => AUDIT_64BIT | AUDIT_LE | 258, // EM_LOONGARCH
        }
    }

    /// Whether syscall arguments are 64 bits wide. For 32-bit ABIs only the low word of an
    /// argument is compared, and only the low 32 bits of a rule's value (as libseccomp does).
    pub(crate) fn args_64(self) -> bool {
        !matches!(self, Abi::X86 | Abi::X32 | Abi::Arm)
    }

    /// Byte order of the kernel filling `seccomp_data` (all ABIs a host runs share it).
    pub(crate) fn big_endian(self) -> bool {
        matches!(self, Abi::S390x | Abi::Ppc64)
    }

    /// The ABI this binary was built for, i.e. the one the container's processes normally use.
    pub(crate) fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(if cfg!(target_pointer_width = "32") { Abi::X32 } else { Abi::X86_64 })
        } else if cfg!(target_arch = "x86") {
            Some(Abi::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else if cfg!(target_arch = "arm") {
            Some(Abi::Arm)
        } else if cfg!(target_arch = "riscv64") {
            Some(Abi::Riscv64)
        } else if cfg!(target_arch = "s390x") {
            Some(Abi::S390x)
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Some(Abi::Ppc64le)
        } else if cfg!(target_arch = "powerpc64") {
            Some(Abi::Ppc64)
        } else if cfg!(target_arch = "loongarch64") {
            Some(Abi::Loongarch64)
        } else {
            None
        }
    }

    /// Maps a spec architecture to an ABI we have a table for (`None`: no table).
    pub(crate) fn from_oci(arch: Arch) -> Option<Abi> {
        Some(match arch {
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchX32 => Abi::X32,
            Arch::ScmpArchAarch64 => Abi::Aarch64,
            Arch::ScmpArchArm => Abi::Arm,
            Arch::ScmpArchRiscv64 => Abi::Riscv64,
            Arch::ScmpArchS390x => Abi::S390x,
            Arch::ScmpArchPpc64le => Abi::Ppc64le,
            Arch::ScmpArchPpc64 => Abi::Ppc64,
            Arch::ScmpArchLoongarch64 => Abi::Loongarch64,
            _ => return None,
        })
    }

    /// Whether a kernel of ABI `self` can run processes of `arch` (the native ABI plus its compat
    /// ABIs). Processes of any other architecture can never reach this host's filter, so rules
    /// for them are dropped: the filter behaves exactly as if they were there.
    pub(crate) fn host_runs(self, arch: Arch) -> bool {
        use Arch::*;
        match self {
            Abi::X86_64 | Abi::X32 => matches!(arch, ScmpArchX86_64 | ScmpArchX86 | ScmpArchX32),
            Abi::X86 => matches!(arch, ScmpArchX86),
            Abi::Aarch64 => matches!(arch, ScmpArchAarch64 | ScmpArchArm),
            Abi::Arm => matches!(arch, ScmpArchArm),
            Abi::Riscv64 => matches!(arch, ScmpArchRiscv64),
            Abi::S390x => matches!(arch, ScmpArchS390x | ScmpArchS390),
            Abi::Ppc64le => matches!(arch, ScmpArchPpc64le),
            Abi::Ppc64 => matches!(arch, ScmpArchPpc64 | ScmpArchPpc),
            Abi::Loongarch64 => matches!(arch, ScmpArchLoongarch64),
        }
    }

    /// The syscall number of `name` for this ABI, `None` if the ABI has no such syscall.
    pub(crate) fn resolve(self, name: &str) -> Option<u32> {
        match self {
            Abi::Arm => lookup(self, name).or_else(|| arm_private(name)),
            _ => lookup(self, name),
        }
    }
}

/// Builds a name -> number map from one of the `syscalls` crate's `Sysno` enums. (The crate's
/// own `iter()` stops before the last entry, so walk the number range instead.)
macro_rules! sysno_table {
    ($sysno:ty) => {{
        let (first, last) = (<$sysno>::first().id() as usize, <$sysno>::last().id() as usize);
        let mut t = Table::with_capacity_and_hasher(last - first + 1, Default::default());
        for s in (first..=last).filter_map(<$sysno>::new) {
            t.insert(s.name(), s.id() as u32);
        }
        t
    }};
}

/// FNV-1a: syscall names are short and trusted, and std's SipHash costs more than the lookup.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Syscall names -> numbers of one ABI.
type Table = HashMap<&'static str, u32, BuildHasherDefault<Fnv>>;

fn table(abi: Abi) -> &'static Table {
    static TABLES: [OnceLock<Table>; 9] = [const { OnceLock::new() }; 9];
    let (slot, build): (usize, fn() -> Table) = match abi {
        Abi::X86_64 => (0, || sysno_table!(syscalls::x86_64::Sysno)),
        Abi::X32 => (8, x32_table),
        Abi::X86 => (1, || sysno_table!(syscalls::x86::Sysno)),
        Abi::Aarch64 => (2, || sysno_table!(syscalls::aarch64::Sysno)),
        Abi::Arm => (3, || sysno_table!(syscalls::arm::Sysno)),
        Abi::Riscv64 => (4, || sysno_table!(syscalls::riscv64::Sysno)),
        Abi::S390x => (5, || sysno_table!(syscalls::s390x::Sysno)),
        Abi::Ppc64le | Abi::Ppc64 => (6, || sysno_table!(syscalls::powerpc64::Sysno)),
        Abi::Loongarch64 => (7, || sysno_table!(syscalls::loongarch64::Sysno)),
    };
    TABLES[slot].get_or_init(build)
}

fn lookup(abi: Abi, name: &str) -> Option<u32> {
    table(abi).get(name).copied()
}

/// x86_64 syscalls marked "64" in the kernel's `syscall_64.tbl`: absent from the x32 ABI.
const X86_64_ONLY: &[&str] = &[
    "_sysctl", "create_module", "epoll_ctl_old", "epoll_wait_old", "execve", "execveat",
    "get_kernel_syms", "get_robust_list", "get_thread_area", "getsockopt", "io_setup", "io_submit",
    "ioctl", "kexec_load", "move_pages", "mq_notify", "nfsservctl", "preadv", "preadv2",
    "process_vm_readv", "process_vm_writev", "ptrace", "pwritev", "pwritev2", "query_module",
    "readv", "recvfrom", "recvmmsg", "recvmsg", "rt_sigaction", "rt_sigpending", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sendmmsg", "sendmsg",
    "set_robust_list", "set_thread_area", "setsockopt", "sigaltstack", "timer_create", "uselib",
    "vmsplice", "vserver", "waitid", "writev",
];

/// x32-only numbers (512..=547 without the x32 bit), from `syscall_64.tbl`.
const X32_ONLY: &[(&str, u32)] = &[
    ("execve", 520), ("execveat", 545), ("get_robust_list", 531), ("getsockopt", 542),
    ("io_setup", 543), ("io_submit", 544), ("ioctl", 514), ("kexec_load", 528),
    ("move_pages", 533), ("mq_notify", 527), ("preadv", 534), ("preadv2", 546),
    ("process_vm_readv", 539), ("process_vm_writev", 540), ("ptrace", 521), ("pwritev", 535),
    ("pwritev2", 547), ("readv", 515), ("recvfrom", 517), ("recvmmsg", 537), ("recvmsg", 519),
    ("rt_sigaction", 512), ("rt_sigpending", 522), ("rt_sigqueueinfo", 524), ("rt_sigreturn", 513),
    ("rt_sigtimedwait", 523), ("rt_tgsigqueueinfo", 536), ("sendmmsg", 538), ("sendmsg", 518),
    ("set_robust_list", 530), ("setsockopt", 541), ("sigaltstack", 525), ("timer_create", 526),
    ("vmsplice", 532), ("waitid", 529), ("writev", 516),
];

fn x32_table() -> Table {
    let mut t = table(Abi::X86_64).clone();
    for name in X86_64_ONLY {
        t.remove(name);
    }
    for &(name, nr) in X32_ONLY {
        t.insert(name, nr);
    }
    for nr in t.values_mut() {
        *nr |= X32_SYSCALL_BIT;
    }
    t
}

/// ARM private syscalls (`__ARM_NR_BASE` = 0x0f0000) and the `sync_file_range2` alias, which the
/// crate's ARM table lacks.
fn arm_private(name: &str) -> Option<u32> {
    Some(match name {
        "breakpoint" => 0x0f0001,
        "cacheflush" => 0x0f0002,
        "usr26" => 0x0f0003,
        "usr32" => 0x0f0004,
        "set_tls" => 0x0f0005,
        "get_tls" => 0x0f0006,
        "sync_file_range2" => 341,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_x32_tables_complete() {
        let mut nrs: Vec<u32> = X32_ONLY.iter().map(|e| e.1).collect();
        nrs.sort();
        assert_eq!(nrs, (512..=547).collect::<Vec<_>>());
        // Every x32-only syscall replaces a 64-only one.
        assert!(X32_ONLY.iter().all(|e| X86_64_ONLY.contains(&e.0)));
        for e in X86_64_ONLY {
            assert!(lookup(Abi::X86_64, e).is_some(), "{e} is not an x86_64 syscall");
        }
    }
}
