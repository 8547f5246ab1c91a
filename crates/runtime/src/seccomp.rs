//! Seccomp: compiles an OCI `linux.seccomp` section into a classic-BPF program in the parent
//! (before any process exists), and installs it in the container's init just before `execve`.
//!
//! # Why a generator here rather than a crate
//! `seccompiler` covers one architecture per filter and has no `SCMP_ACT_NOTIFY`; libseccomp
//! (the `libseccomp` crate) links a C library into every `berth-runc` run and is slow to build a
//! filter. The program shape a container needs is small (see [`bpf`]), so it is generated here
//! from data; syscall numbers come from the `syscalls` crate (see [`arch`]).
//!
//! # Semantics (matching runc + libseccomp, which is what Docker users get)
//! - Architectures: the host's native ABI is always covered; listed ones are added
//!   (`SCMP_ARCH_NATIVE` = the host's). Listed architectures this host's kernel can never run
//!   (e.g. AARCH64 on an x86_64 host) are dropped: no such syscall can reach the filter.
//!   A syscall from an architecture not in the filter gets libseccomp's default bad-arch action,
//!   `SCMP_ACT_KILL` (= kill thread; runc does not change it).
//! - x86_64 and x32 share `AUDIT_ARCH_X86_64` and are told apart by bit 30 of `nr`: with x86_64
//!   but not x32 in the filter, any number with that bit is bad-arch (except -1, the "skip"
//!   number tracers use, which gets the default action), and vice versa; with both, x32 numbers
//!   are matched against the x32 table, so an x32 number never falls through to x86_64 rules.
//! - Names unknown on an architecture are skipped there (not an error), as runc does.
//! - A rule whose action equals the default action (including the errno) is dropped, as runc
//!   does (libseccomp refuses such rules).
//! - Several rules for one syscall: an unconditional rule wins over conditional ones, and the
//!   first unconditional one wins over later ones (libseccomp's rule database does exactly
//!   this). Conditional rules are tried in profile order; the first whose conditions all hold
//!   decides, else the default action. (libseccomp merges conditional rules into a decision
//!   tree instead; the two agree whenever overlapping conditions carry the same action, as in
//!   every real profile.)
//! - Conditions of one rule are ANDed, except that when two of them test the same argument the
//!   rule is split into one rule per condition (ORed) — runc's documented fallback.
//! - 64-bit arguments are compared as two 32-bit words (high word first); on 32-bit ABIs (x86,
//!   x32, arm) only the low 32 bits of the argument and of the rule's values are compared, as
//!   libseccomp does.
//! - runc's -ENOSYS stub: unless the default action lets syscalls through (ALLOW, LOG, TRACE),
//!   syscall numbers above the highest one the profile names for an architecture return ENOSYS
//!   instead of the default action, so that newer syscalls look "not implemented" and libc falls
//!   back to older ones.
//! - NOTIFY: not allowed as the default action nor for `write` (runc's rules: the runtime needs
//!   `write` to hand the listener over). `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` is only passed
//!   with a listener (the kernel refuses it otherwise). TSYNC is accepted and not needed: the
//!   filter is loaded by a single-threaded process that then execs.

mod arch;
mod bpf;
pub mod docker_profile;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kernel;

use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

pub use bpf::Insn;
pub use docker_profile::docker_default_profile;

use crate::error::{Error, Result};
use arch::{Abi, X32_SYSCALL_BIT};
use bpf::{Cond, Op, Outcome, Rule};

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// libseccomp's default bad-architecture action (`SCMP_ACT_KILL`, i.e. kill the thread).
const BAD_ARCH_ACTION: u32 = RET_KILL_THREAD;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const FLAG_LOG: u32 = 1 << 1;
const FLAG_SPEC_ALLOW: u32 = 1 << 2;
const FLAG_NEW_LISTENER: u32 = 1 << 3;
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// A compiled filter, ready to be loaded with [`Filter::load`].
#[derive(Clone, Debug)]
pub struct Filter {
    program: Vec<Insn>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2), including NEW_LISTENER when needed.
    flags: u32,
    needs_listener: bool,
}

impl Filter {
    /// Installs the filter in the calling thread with seccomp(2). Makes no allocation on
    /// success, so it is safe between fork and exec. The caller must have set no_new_privs or
    /// hold CAP_SYS_ADMIN (the kernel's rule). With a `SCMP_ACT_NOTIFY` rule the filter is
    /// installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and the listener fd is returned.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `self.program`, which is `repr(C)`-identical to
        // `sock_filter` and outlives the call; the kernel copies the program.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let errno = nix::errno::Errno::last();
            let why = match errno {
                nix::errno::Errno::EACCES => " (needs no_new_privs or CAP_SYS_ADMIN)",
                nix::errno::Errno::EINVAL => " (a flag or action unsupported by this kernel?)",
                _ => "",
            };
            return Err(Error::sys(format!("seccomp(SECCOMP_SET_MODE_FILTER){why}"), errno));
        }
        if self.needs_listener {
            // SAFETY: with NEW_LISTENER, a non-negative return is a new fd we now own.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
        } else {
            Ok(None)
        }
    }

    /// Whether the profile uses `SCMP_ACT_NOTIFY`, i.e. [`Filter::load`] returns a listener fd.
    pub fn needs_listener(&self) -> bool {
        self.needs_listener
    }

    /// The compiled program (for inspection and tests).
    pub fn instructions(&self) -> &[Insn] {
        &self.program
    }
}

/// Validates `spec` and compiles it for this host. Errors name the offending item.
pub fn compile(spec: &LinuxSeccomp) -> Result<Filter> {
    let native = Abi::native()
        .ok_or_else(|| Error::Seccomp("seccomp is not supported on this CPU architecture".into()))?;
    compile_for(spec, native)
}

fn action_name(a: LinuxSeccompAction) -> &'static str {
    use LinuxSeccompAction::*;
    match a {
        ScmpActKill => "SCMP_ACT_KILL",
        ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        ScmpActTrap => "SCMP_ACT_TRAP",
        ScmpActErrno => "SCMP_ACT_ERRNO",
        ScmpActNotify => "SCMP_ACT_NOTIFY",
        ScmpActTrace => "SCMP_ACT_TRACE",
        ScmpActLog => "SCMP_ACT_LOG",
        ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// The kernel's return value for an action; `errno_ret` defaults to EPERM and is only valid
/// for ERRNO and TRACE (the spec requires failing otherwise). `what` names the item for errors.
fn action_value(
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &dyn Fn() -> String,
) -> Result<u32> {
    use LinuxSeccompAction::*;
    let data = match (a, errno_ret) {
        (ScmpActErrno | ScmpActTrace, None) => libc::EPERM as u32,
        (ScmpActErrno | ScmpActTrace, Some(e)) if e <= 0xffff => e,
        (ScmpActErrno | ScmpActTrace, Some(e)) => {
            return Err(Error::Seccomp(format!(
                "{}: errnoRet {e} does not fit in 16 bits",
                what()
            )))
        }
        (_, None) => 0,
        (_, Some(e)) => {
            return Err(Error::Seccomp(format!(
                "{}: errnoRet {e} given but {} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)",
                what(),
                action_name(a)
            )))
        }
    };
    Ok(match a {
        ScmpActKill | ScmpActKillThread => RET_KILL_THREAD,
        ScmpActKillProcess => RET_KILL_PROCESS,
        ScmpActTrap => RET_TRAP,
        ScmpActErrno => RET_ERRNO | data,
        ScmpActTrace => RET_TRACE | data,
        ScmpActNotify => RET_USER_NOTIF,
        ScmpActLog => RET_LOG,
        ScmpActAllow => RET_ALLOW,
    })
}

fn op(o: LinuxSeccompOperator) -> Op {
    use LinuxSeccompOperator::*;
    match o {
        ScmpCmpNe => Op::Ne,
        ScmpCmpLt => Op::Lt,
        ScmpCmpLe => Op::Le,
        ScmpCmpEq => Op::Eq,
        ScmpCmpGe => Op::Ge,
        ScmpCmpGt => Op::Gt,
        ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// A `syscalls[]` entry after validation: its names and the rules it became (none when its
/// action equals the default action).
struct Entry<'a> {
    names: &'a [String],
    rules: std::ops::Range<usize>,
}

/// Compiles for a host whose native ABI is `native` (tests use other hosts).
pub(crate) fn compile_for(spec: &LinuxSeccomp, native: Abi) -> Result<Filter> {
    let default = action_value(spec.default_action(), spec.default_errno_ret(), &|| {
        "defaultAction".to_string()
    })?;
    if spec.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(Error::Seccomp(
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime itself must be able to write)"
                .into(),
        ));
    }
    if spec.listener_metadata().is_some() && spec.listener_path().is_none() {
        return Err(Error::Seccomp("listenerMetadata is set but listenerPath is not".into()));
    }

    // Architectures: native first, then the listed ones this host can run, without repeats.
    let mut abis = vec![native];
    for &a in spec.architectures().iter().flatten() {
        let abi = if a == Arch::ScmpArchNative {
            native
        } else if !native.host_runs(a) {
            continue;
        } else {
            Abi::from_oci(a).ok_or_else(|| {
                Error::Seccomp(format!("architecture {a} is not supported by berth's seccomp"))
            })?
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }

    // Rules, in profile order.
    let syscalls: &[_] = spec.syscalls().as_deref().unwrap_or(&[]);
    let mut rules: Vec<Rule> = Vec::with_capacity(syscalls.len());
    let mut entries: Vec<Entry> = Vec::with_capacity(syscalls.len());
    let mut needs_listener = false;
    for (i, sc) in syscalls.iter().enumerate() {
        let what = || format!("syscalls[{i}] ({})", sc.names().join(","));
        if sc.names().is_empty() {
            return Err(Error::Seccomp(format!("syscalls[{i}]: names is empty")));
        }
        if sc.names().iter().any(|n| n.is_empty()) {
            return Err(Error::Seccomp(format!("{}: empty syscall name", what())));
        }
        let action = action_value(sc.action(), sc.errno_ret(), &what)?;
        if sc.action() == LinuxSeccompAction::ScmpActNotify {
            if sc.names().iter().any(|n| n == "write") {
                return Err(Error::Seccomp(format!(
                    "{}: SCMP_ACT_NOTIFY cannot be used for write (the runtime needs it to pass the listener on)",
                    what()
                )));
            }
            needs_listener = true;
        }
        let mut conds = Vec::new();
        let mut seen = 0u8; // bit i: argument i already tested
        let mut split = false;
        for (j, a) in sc.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                return Err(Error::Seccomp(format!(
                    "{}: args[{j}].index {} is out of range (syscalls have arguments 0..=5)",
                    what(),
                    a.index()
                )));
            }
            let index = a.index() as u8;
            split |= seen & (1 << index) != 0;
            seen |= 1 << index;
            conds.push(Cond {
                index,
                op: op(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        let start = rules.len();
        if action != default {
            if split {
                rules.extend(conds.into_iter().map(|c| Rule { action, conds: vec![c] }));
            } else {
                rules.push(Rule { action, conds });
            }
        }
        entries.push(Entry { names: sc.names(), rules: start..rules.len() });
    }

    let mut flags = 0;
    for f in spec.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if needs_listener => {
                FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        };
    }
    if needs_listener {
        flags |= FLAG_NEW_LISTENER;
    }

    let enosys = {
        use LinuxSeccompAction::*;
        let lets_through = matches!(spec.default_action(), ScmpActAllow | ScmpActLog | ScmpActTrace);
        (!lets_through).then_some(RET_ERRNO | libc::ENOSYS as u32)
    };
    let big_endian = native.big_endian();

    // Per ABI: the number -> outcome points, and the highest number the profile names.
    let mut chains: Vec<Vec<Insn>> = Vec::new();
    struct Plan {
        abi: Abi,
        points: Vec<(u32, Outcome)>,
        max: Option<u32>,
    }
    let mut plans: Vec<Plan> = Vec::with_capacity(abis.len());
    let mut pairs: Vec<(u32, usize)> = Vec::new();
    for &abi in &abis {
        pairs.clear();
        let mut max = None;
        for e in &entries {
            for name in e.names {
                if let Some(nr) = abi.resolve(name) {
                    max = max.max(Some(nr));
                    pairs.extend(e.rules.clone().map(|r| (nr, r)));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut points = Vec::new();
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let nr = group[0].0;
            let outcome = match group.iter().find(|p| rules[p.1].conds.is_empty()) {
                Some(&(_, r)) => Outcome::Ret(rules[r].action),
                None => {
                    let rs: Vec<&Rule> = group.iter().map(|p| &rules[p.1]).collect();
                    chains.push(bpf::chain(&rs, default, abi, big_endian));
                    Outcome::Chain(chains.len() - 1)
                }
            };
            points.push((nr, outcome));
        }
        plans.push(Plan { abi, points, max });
    }

    // Background outcome for numbers no rule names: the default, then ENOSYS past the highest
    // named number.
    let tail = |lo: u32, max: Option<u32>, hi: u32, bg: &mut Vec<(u32, Outcome)>| {
        bg.push((lo, Outcome::Ret(default)));
        if let (Some(e), Some(m)) = (enosys, max) {
            if m < hi {
                bg.push((m + 1, Outcome::Ret(e)));
            }
        }
    };

    // One block per AUDIT_ARCH value; x86_64 and x32 share one.
    let mut blocks = Vec::with_capacity(plans.len());
    let mut done = vec![false; plans.len()];
    for i in 0..plans.len() {
        if done[i] {
            continue;
        }
        let audit = plans[i].abi.audit_arch();
        let members: Vec<usize> =
            (i..plans.len()).filter(|&j| plans[j].abi.audit_arch() == audit).collect();
        let mut bg = Vec::new();
        let mut points = Vec::new();
        if audit == Abi::X86_64.audit_arch() {
            let find = |abi| members.iter().copied().find(|&j| plans[j].abi == abi);
            match find(Abi::X86_64) {
                Some(j) => tail(0, plans[j].max, X32_SYSCALL_BIT - 1, &mut bg),
                None => bg.push((0, Outcome::Ret(BAD_ARCH_ACTION))),
            }
            match find(Abi::X32) {
                Some(j) => tail(X32_SYSCALL_BIT, plans[j].max, u32::MAX, &mut bg),
                None => {
                    bg.push((X32_SYSCALL_BIT, Outcome::Ret(BAD_ARCH_ACTION)));
                    bg.push((u32::MAX, Outcome::Ret(default)));
                }
            }
        } else {
            tail(0, plans[i].max, u32::MAX, &mut bg);
        }
        for &j in &members {
            done[j] = true;
            points.extend_from_slice(&plans[j].points);
        }
        points.sort_unstable_by_key(|p| p.0);
        let ranges = bpf::ranges(&bg, &points);
        let mut code = Vec::new();
        bpf::tree(&ranges, &chains, &mut code);
        blocks.push((audit, code));
    }

    let program = bpf::program(blocks, BAD_ARCH_ACTION);
    if program.len() > bpf::MAX_INSNS {
        return Err(Error::Seccomp(format!(
            "the compiled filter has {} instructions, more than the kernel's limit of {}",
            program.len(),
            bpf::MAX_INSNS
        )));
    }
    Ok(Filter { program, flags, needs_listener })
}
