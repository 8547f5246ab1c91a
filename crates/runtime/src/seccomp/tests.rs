//! Unit tests: compiled programs are run through a small classic-BPF interpreter (checking what
//! the kernel's verifier checks) and compared with expected verdicts and with a naive model of
//! the documented semantics.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

use super::arch::{Abi, X32_SYSCALL_BIT};
use super::bpf::{Insn, AND, JA, JEQ, JGE, JGT, LD_W_ABS, MAX_INSNS, RET};
use super::docker_profile::{convert, DOCKER_DEFAULT_CAPS, DOCKER_DEFAULT_PROFILE_JSON};
use super::*;

const EPERM: u32 = RET_ERRNO | 1;
const ENOSYS: u32 = RET_ERRNO | 38;
const KILL_THREAD: u32 = RET_KILL_THREAD;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const SIGCHLD: u64 = 17;

/// Checks the program the way the kernel's checker does (known opcodes, aligned in-range loads,
/// jumps inside the program, ends in `ret`, size limit).
fn verify(prog: &[Insn]) {
    assert!(!prog.is_empty() && prog.len() <= MAX_INSNS, "length {}", prog.len());
    assert_eq!(prog.last().unwrap().code, RET, "program must end in ret");
    for (pc, i) in prog.iter().enumerate() {
        match i.code {
            LD_W_ABS => assert!(i.k % 4 == 0 && i.k < 64, "bad load offset {} at {pc}", i.k),
            AND | RET => {}
            JA => assert!(pc + 1 + (i.k as usize) < prog.len(), "ja out of range at {pc}"),
            JEQ | JGT | JGE => {
                let far = pc + 1 + i.jt.max(i.jf) as usize;
                assert!(far < prog.len(), "jump out of range at {pc}");
            }
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
    }
}

/// Runs `prog` on a `seccomp_data` laid out in the given byte order; returns the verdict.
fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6], big_endian: bool) -> u32 {
    let mut data = [0u8; 64];
    let w32 = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    data[0..4].copy_from_slice(&w32(nr));
    data[4..8].copy_from_slice(&w32(arch));
    for (i, a) in args.iter().enumerate() {
        let b = if big_endian { a.to_be_bytes() } else { a.to_le_bytes() };
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&b);
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = prog.get(pc).expect("fell off the end of the program");
        pc += 1;
        match i.code {
            LD_W_ABS => {
                let k = i.k as usize;
                let b: [u8; 4] = data[k..k + 4].try_into().unwrap();
                acc = if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
            }
            AND => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ | JGT | JGE => {
                let taken = match i.code {
                    JEQ => acc == i.k,
                    JGT => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            RET => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

/// A compiled filter plus the host it was compiled for, to query verdicts.
struct Host {
    f: Filter,
    be: bool,
}

impl Host {
    fn new(spec: &LinuxSeccomp, native: Abi) -> Host {
        let f = compile_for(spec, native).expect("compile");
        verify(f.instructions());
        Host { f, be: native.big_endian() }
    }
    fn verdict(&self, abi: Abi, nr: u32, args: [u64; 6]) -> u32 {
        run(self.f.instructions(), abi.audit_arch(), nr, args, self.be)
    }
    /// Verdict for a syscall by name on `abi` with the first argument(s) given.
    fn call(&self, abi: Abi, name: &str, args: &[u64]) -> u32 {
        let nr = abi.resolve(name).unwrap_or_else(|| panic!("{name} unknown on {abi:?}"));
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        self.verdict(abi, nr, a)
    }
}

fn spec(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid LinuxSeccomp")
}

fn docker(caps: &[&str], arch: &str, kernel: (u32, u32, u32)) -> LinuxSeccomp {
    convert(DOCKER_DEFAULT_PROFILE_JSON, caps, arch, Some(kernel)).expect("convert profile")
}

fn compile_err(s: &LinuxSeccomp) -> String {
    compile_for(s, Abi::X86_64).expect_err("should fail").to_string()
}

// ---------------------------------------------------------------------------------------------
// Syscall tables

#[test]
fn seccomp_tables_resolve_known_numbers() {
    let cases: &[(Abi, &str, u32)] = &[
        (Abi::X86_64, "read", 0),
        (Abi::X86_64, "personality", 135),
        (Abi::X86_64, "kexec_load", 246),
        (Abi::X86_64, "clone3", 435),
        (Abi::X86, "read", 3),
        (Abi::X86, "socketcall", 102),
        (Abi::X86, "kexec_load", 283),
        (Abi::X86, "_llseek", 140),
        (Abi::X32, "read", X32_SYSCALL_BIT),
        (Abi::X32, "execve", X32_SYSCALL_BIT | 520),
        (Abi::X32, "kexec_load", X32_SYSCALL_BIT | 528),
        (Abi::X32, "clone3", X32_SYSCALL_BIT | 435),
        (Abi::Aarch64, "read", 63),
        (Abi::Arm, "read", 3),
        (Abi::Arm, "breakpoint", 0x0f0001),
        (Abi::Arm, "sync_file_range2", 341),
        (Abi::Riscv64, "riscv_flush_icache", 259),
        (Abi::S390x, "read", 3),
    ];
    for &(abi, name, nr) in cases {
        assert_eq!(abi.resolve(name), Some(nr), "{name} on {abi:?}");
    }
    assert_eq!(Abi::X86_64.resolve("socketcall"), None);
    assert_eq!(Abi::X32.resolve("uselib"), None, "64-only syscalls do not exist on x32");
    assert_eq!(Abi::Aarch64.resolve("open"), None);
    assert_eq!(Abi::X86_64.resolve("no_such_syscall"), None);
}

// ---------------------------------------------------------------------------------------------
// Docker's default profile

#[test]
fn seccomp_docker_profile_conversion() {
    let s = docker(&DOCKER_DEFAULT_CAPS, "amd64", (6, 18, 0));
    assert_eq!(
        s.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(s.default_errno_ret(), Some(1));
    let names = |action: Option<LinuxSeccompAction>| -> Vec<String> {
        let calls = s.syscalls().as_ref().unwrap();
        calls
            .iter()
            .filter(|c| action.is_none_or(|a| c.action() == a))
            .flat_map(|c| c.names().clone())
            .collect()
    };
    let all = names(None);
    for want in ["read", "ptrace", "chroot", "arch_prctl", "modify_ldt", "clone", "clone3"] {
        assert!(all.iter().any(|n| n == want), "{want} should be kept");
    }
    for gone in ["mount", "kexec_load", "reboot", "breakpoint", "s390_runtime_instr", "bpf"] {
        assert!(!all.iter().any(|n| n == gone), "{gone} should be filtered out");
    }
    // Same for "x86_64" spelling; arm64 gets its own archMap entry and arm-only calls.
    assert_eq!(docker(&DOCKER_DEFAULT_CAPS, "x86_64", (6, 18, 0)), s);
    let a = docker(&DOCKER_DEFAULT_CAPS, "arm64", (6, 18, 0));
    assert_eq!(a.architectures().as_deref(), Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..]));
    let calls = a.syscalls().as_ref().unwrap();
    assert!(calls.iter().any(|c| c.names().iter().any(|n| n == "breakpoint")));
    // minKernel 4.8 for ptrace; CAP_SYS_PTRACE would bring it back.
    let old = docker(&DOCKER_DEFAULT_CAPS, "amd64", (4, 4, 0));
    let has_ptrace = |s: &LinuxSeccomp| {
        s.syscalls().as_ref().unwrap().iter().any(|c| c.names().iter().any(|n| n == "ptrace"))
    };
    assert!(!has_ptrace(&old));
    assert!(has_ptrace(&docker(&["SYS_PTRACE"], "amd64", (4, 4, 0))));
}

#[test]
fn seccomp_docker_profile_verdicts_x86_64() {
    let h = Host::new(&docker(&DOCKER_DEFAULT_CAPS, "amd64", (6, 18, 0)), Abi::X86_64);
    let x = Abi::X86_64;
    assert_eq!(h.call(x, "read", &[]), RET_ALLOW);
    assert_eq!(h.call(x, "getpid", &[]), RET_ALLOW);
    assert_eq!(h.call(x, "kexec_load", &[]), EPERM);
    assert_eq!(h.call(x, "mount", &[]), EPERM);
    assert_eq!(h.call(x, "personality", &[0]), RET_ALLOW);
    assert_eq!(h.call(x, "personality", &[0xffff_ffff]), RET_ALLOW);
    assert_eq!(h.call(x, "personality", &[0x1234]), EPERM);
    assert_eq!(h.call(x, "personality", &[0x1_0000_0000]), EPERM, "64-bit compare");
    assert_eq!(h.call(x, "clone", &[SIGCHLD | 0x0001_0f00]), RET_ALLOW);
    assert_eq!(h.call(x, "clone", &[SIGCHLD | CLONE_NEWUSER]), EPERM);
    assert_eq!(h.call(x, "clone3", &[]), ENOSYS);
    assert_eq!(h.call(x, "socket", &[2]), RET_ALLOW);
    assert_eq!(h.call(x, "socket", &[38]), EPERM);
    assert_eq!(h.call(x, "socket", &[39]), RET_ALLOW);
    assert_eq!(h.call(x, "socket", &[40]), EPERM, "AF_VSOCK");
    assert_eq!(h.call(x, "socket", &[41]), RET_ALLOW);
    assert_eq!(h.call(x, "arch_prctl", &[]), RET_ALLOW);
    // -ENOSYS above the highest number the profile names; EPERM below it.
    assert_eq!(h.verdict(x, 1000, [0; 6]), ENOSYS);
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT - 1, [0; 6]), ENOSYS);
    // i386: its own numbers.
    assert_eq!(h.call(Abi::X86, "read", &[]), RET_ALLOW);
    assert_eq!(h.verdict(Abi::X86, 3, [0; 6]), RET_ALLOW);
    assert_eq!(h.call(Abi::X86, "kexec_load", &[]), EPERM);
    assert_eq!(h.call(Abi::X86, "socketcall", &[]), RET_ALLOW);
    assert_eq!(h.call(Abi::X86, "personality", &[0x1234]), EPERM);
    assert_eq!(h.call(Abi::X86, "clone", &[SIGCHLD | CLONE_NEWUSER]), EPERM);
    // x32: numbers with bit 30 go through the x32 table, never the x86_64 one.
    assert_eq!(h.call(Abi::X32, "read", &[]), RET_ALLOW);
    assert_eq!(h.call(Abi::X32, "kexec_load", &[]), EPERM);
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT | 246, [0; 6]), EPERM, "x86_64 kexec_load number via x32");
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT | 165, [0; 6]), EPERM, "mount via x32");
    assert_eq!(h.call(Abi::X32, "clone", &[SIGCHLD | CLONE_NEWUSER]), EPERM);
    // Architectures not in the filter.
    assert_eq!(h.call(Abi::Aarch64, "read", &[]), KILL_THREAD);
    assert_eq!(h.verdict(Abi::Arm, 3, [0; 6]), KILL_THREAD);
    assert_eq!(run(h.f.instructions(), 0x1234_5678, 0, [0; 6], false), KILL_THREAD);
    assert!(!h.f.needs_listener());
}

#[test]
fn seccomp_docker_profile_with_sys_admin() {
    let mut caps = DOCKER_DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let h = Host::new(&docker(&caps, "amd64", (6, 18, 0)), Abi::X86_64);
    assert_eq!(h.call(Abi::X86_64, "mount", &[]), RET_ALLOW);
    assert_eq!(h.call(Abi::X86_64, "clone", &[SIGCHLD | CLONE_NEWUSER]), RET_ALLOW);
    assert_eq!(h.call(Abi::X86_64, "clone3", &[]), RET_ALLOW);
}

#[test]
fn seccomp_docker_profile_verdicts_aarch64_host() {
    let h = Host::new(&docker(&DOCKER_DEFAULT_CAPS, "arm64", (6, 18, 0)), Abi::Aarch64);
    assert_eq!(h.verdict(Abi::Aarch64, 63, [0; 6]), RET_ALLOW, "read");
    assert_eq!(h.call(Abi::Aarch64, "personality", &[0x1234]), EPERM);
    assert_eq!(h.call(Abi::Aarch64, "kexec_load", &[]), EPERM);
    assert_eq!(h.verdict(Abi::Arm, 3, [0; 6]), RET_ALLOW, "arm read");
    assert_eq!(h.call(Abi::Arm, "breakpoint", &[]), RET_ALLOW);
    assert_eq!(h.call(Abi::Arm, "clone", &[SIGCHLD | CLONE_NEWUSER]), EPERM);
    assert_eq!(h.call(Abi::X86_64, "read", &[]), KILL_THREAD);
}

/// Naive model of the documented semantics, evaluated rule by rule.
fn model(s: &LinuxSeccomp, abis: &[Abi], audit: u32, nr: u32, args: [u64; 6]) -> u32 {
    let value = |a: LinuxSeccompAction, e: Option<u32>| action_value(a, e, &String::new).unwrap();
    let default = value(s.default_action(), s.default_errno_ret());
    let abi = if audit == Abi::X86_64.audit_arch() {
        let want = if nr >= X32_SYSCALL_BIT { Abi::X32 } else { Abi::X86_64 };
        if !abis.contains(&want) {
            return if nr == u32::MAX { default } else { KILL_THREAD };
        }
        want
    } else {
        match abis.iter().find(|a| a.audit_arch() == audit) {
            Some(&a) => a,
            None => return KILL_THREAD,
        }
    };
    let calls = s.syscalls().as_deref().unwrap_or(&[]);
    let max = calls.iter().flat_map(|c| c.names()).filter_map(|n| abi.resolve(n)).max();
    let mut uncond = None;
    let mut cond = None;
    for c in calls {
        if !c.names().iter().any(|n| abi.resolve(n) == Some(nr)) {
            continue;
        }
        let act = value(c.action(), c.errno_ret());
        if act == default {
            continue;
        }
        let conds = c.args().clone().unwrap_or_default();
        if conds.is_empty() {
            uncond.get_or_insert(act);
            continue;
        }
        let holds = |a: &oci_spec::runtime::LinuxSeccompArg| {
            let (mut x, mut v, mut v2) = (args[a.index()], a.value(), a.value_two().unwrap_or(0));
            if !abi.args_64() {
                (x, v, v2) = (x as u32 as u64, v as u32 as u64, v2 as u32 as u64);
            }
            use LinuxSeccompOperator::*;
            match a.op() {
                ScmpCmpNe => x != v,
                ScmpCmpLt => x < v,
                ScmpCmpLe => x <= v,
                ScmpCmpEq => x == v,
                ScmpCmpGe => x >= v,
                ScmpCmpGt => x > v,
                ScmpCmpMaskedEq => x & v == v2,
            }
        };
        let mut idx: Vec<usize> = conds.iter().map(|a| a.index()).collect();
        idx.sort();
        let dup = idx.windows(2).any(|w| w[0] == w[1]);
        let ok = if dup { conds.iter().any(holds) } else { conds.iter().all(holds) };
        if ok && cond.is_none() {
            cond = Some(act);
        }
    }
    if let Some(a) = uncond.or(cond) {
        return a;
    }
    use LinuxSeccompAction::*;
    let lets_through = matches!(s.default_action(), ScmpActAllow | ScmpActLog | ScmpActTrace);
    match max {
        Some(m) if !lets_through && nr > m => ENOSYS,
        _ => default,
    }
}

#[test]
fn seccomp_docker_profile_matches_model_for_every_number() {
    let s = docker(&DOCKER_DEFAULT_CAPS, "amd64", (6, 18, 0));
    let h = Host::new(&s, Abi::X86_64);
    let abis = [Abi::X86_64, Abi::X86, Abi::X32];
    let arg_sets: [[u64; 6]; 4] = [
        [0; 6],
        [0x1234, 0, 0, 0, 0, 0],
        [SIGCHLD | CLONE_NEWUSER, 0, 0, 0, 0, 0],
        [40, 0x8_0000_0000, 3, 0, 0, 0],
    ];
    let extremes = [0x3fff_ffff, 0x4000_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
    let mut checked = 0;
    for audit in [Abi::X86_64.audit_arch(), Abi::X86.audit_arch(), Abi::Aarch64.audit_arch()] {
        let nrs = (0..1100u32).chain((0..1100).map(|n| n | X32_SYSCALL_BIT)).chain(extremes);
        for nr in nrs {
            for args in arg_sets {
                let got = run(h.f.instructions(), audit, nr, args, false);
                assert_eq!(got, model(&s, &abis, audit, nr, args), "audit {audit:#x} nr {nr:#x} {args:x?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 20_000);
}

#[test]
fn seccomp_docker_profile_compile_time() {
    let s = docker(&DOCKER_DEFAULT_CAPS, "amd64", (6, 18, 0));
    compile(&s).unwrap(); // warm the name tables
    let n = 200;
    let t = std::time::Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = compile(&s).unwrap().instructions().len();
    }
    let per = t.elapsed() / n;
    eprintln!("docker default profile: {len} instructions, compiled in {per:?} per run");
    // Generous so a debug build passes; release measures far less.
    assert!(per < std::time::Duration::from_millis(20), "{per:?}");
    // Neighbouring numbers with the same verdict share one range: ~700 instructions for three
    // ABIs (each syscall listed separately would be > 2000).
    assert!(len < 1000, "{len} instructions");
}

#[test]
fn seccomp_ranges_merge_and_cover() {
    use super::bpf::{ranges, Outcome::*};
    let bg = [(0, Ret(1)), (10, Ret(2))];
    let points = [(3, Ret(1)), (4, Ret(5)), (10, Ret(2)), (11, Chain(0)), (u32::MAX, Ret(7))];
    assert_eq!(
        ranges(&bg, &points),
        vec![(0, Ret(1)), (4, Ret(5)), (5, Ret(1)), (10, Ret(2)), (11, Chain(0)), (12, Ret(2)), (u32::MAX, Ret(7))]
    );
    assert_eq!(ranges(&bg, &[]), bg.to_vec());
    assert_eq!(ranges(&[(0, Ret(1))], &[(0, Ret(1)), (1, Ret(1))]), vec![(0, Ret(1))]);
}

// ---------------------------------------------------------------------------------------------
// Rule semantics

fn errno_rule(names: &[&str], errno: u32, args: serde_json::Value) -> serde_json::Value {
    json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno, "args": args})
}

#[test]
fn seccomp_unconditional_rule_wins_over_conditional_ones() {
    let x = Abi::X86_64;
    let cond = errno_rule(&["getpid"], 5, json!([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]));
    for order in [json!([cond, errno_rule(&["getpid"], 7, json!(null))]), json!([errno_rule(&["getpid"], 7, json!(null)), cond])] {
        let h = Host::new(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": order})), x);
        assert_eq!(h.call(x, "getpid", &[1]), RET_ERRNO | 7);
        assert_eq!(h.call(x, "getpid", &[2]), RET_ERRNO | 7);
    }
    // The first unconditional rule wins over later ones.
    let h = Host::new(
        &spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            errno_rule(&["getpid"], 7, json!(null)), errno_rule(&["getpid"], 9, json!(null))]})),
        x,
    );
    assert_eq!(h.call(x, "getpid", &[]), RET_ERRNO | 7);
}

#[test]
fn seccomp_conditional_rules_first_match_and_default() {
    let x = Abi::X86_64;
    let h = Host::new(
        &spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            errno_rule(&["lseek"], 3, json!([{"index": 1, "value": 10, "op": "SCMP_CMP_GT"}])),
            errno_rule(&["lseek"], 4, json!([{"index": 1, "value": 100, "op": "SCMP_CMP_GT"}])),
            errno_rule(&["lseek"], 5, json!([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                             {"index": 2, "value": 2, "op": "SCMP_CMP_EQ"}])),
        ]})),
        x,
    );
    assert_eq!(h.call(x, "lseek", &[0, 1000]), RET_ERRNO | 3, "first matching rule");
    assert_eq!(h.call(x, "lseek", &[1, 5, 2]), RET_ERRNO | 5, "args ANDed");
    assert_eq!(h.call(x, "lseek", &[1, 5, 3]), RET_ALLOW);
    assert_eq!(h.call(x, "lseek", &[0, 5, 2]), RET_ALLOW);
}

#[test]
fn seccomp_same_argument_twice_is_ored_like_runc() {
    let x = Abi::X86_64;
    let h = Host::new(
        &spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            errno_rule(&["kill"], 3, json!([{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                                            {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]))]})),
        x,
    );
    assert_eq!(h.call(x, "kill", &[1, 9]), RET_ERRNO | 3);
    assert_eq!(h.call(x, "kill", &[1, 15]), RET_ERRNO | 3);
    assert_eq!(h.call(x, "kill", &[1, 2]), RET_ALLOW);
}

#[test]
fn seccomp_rule_with_default_action_is_dropped() {
    let x = Abi::X86_64;
    let h = Host::new(
        &spec(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            errno_rule(&["gettid"], 1, json!(null)),
            errno_rule(&["gettid"], 2, json!(null))]})),
        x,
    );
    assert_eq!(h.call(x, "getpid", &[]), RET_ALLOW);
    assert_eq!(h.call(x, "gettid", &[]), RET_ERRNO | 2, "ERRNO(1) equals the default");
}

#[test]
fn seccomp_actions_encode_like_the_kernel() {
    let x = Abi::X86_64;
    let rules = json!([
        {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"},
        {"names": ["gettid"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["getuid"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getgid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["geteuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["getegid"], "action": "SCMP_ACT_TRACE", "errnoRet": 42},
        {"names": ["getpgrp"], "action": "SCMP_ACT_TRACE"},
        {"names": ["getsid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"},
        {"names": ["getrandom"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["no_such_call", "uname"], "action": "SCMP_ACT_KILL_PROCESS"},
    ]);
    let s = spec(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99,
                        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
                        "syscalls": rules}));
    let h = Host::new(&s, x);
    let want = [
        ("getpid", RET_KILL_THREAD), ("getppid", RET_KILL_THREAD), ("gettid", RET_KILL_PROCESS),
        ("getuid", RET_TRAP), ("getgid", RET_ERRNO | 1), ("geteuid", RET_ERRNO | 13),
        ("getegid", RET_TRACE | 42), ("getpgrp", RET_TRACE | 1), ("getsid", RET_LOG),
        ("getcwd", RET_USER_NOTIF), ("getrandom", RET_ALLOW), ("uname", RET_KILL_PROCESS),
        ("read", RET_ERRNO | 99),
    ];
    for (name, v) in want {
        assert_eq!(h.call(x, name, &[]), v, "{name}");
    }
    assert!(h.f.needs_listener());
    assert_eq!(h.f.flags, FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER);
    // Without a NOTIFY rule, no listener and no WAIT_KILLABLE_RECV (the kernel would refuse it).
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
                        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
    let f = compile_for(&s, x).unwrap();
    assert!(!f.needs_listener());
    assert_eq!(f.flags, 0);
}

#[test]
fn seccomp_architectures_and_x32() {
    let allow_all = |arches: serde_json::Value| {
        spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
                    "syscalls": [errno_rule(&["mkdir"], 1, json!(null))]}))
    };
    let x = Abi::X86_64;
    // No architectures: native only. x32 numbers and i386 are bad-arch; -1 is let through.
    let h = Host::new(&allow_all(json!(null)), x);
    assert_eq!(h.call(x, "mkdir", &[]), EPERM);
    assert_eq!(h.call(x, "getpid", &[]), RET_ALLOW);
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT | 83, [0; 6]), KILL_THREAD, "x32 mkdir");
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT | 39, [0; 6]), KILL_THREAD, "x32 getpid");
    assert_eq!(h.verdict(x, u32::MAX, [0; 6]), RET_ALLOW, "-1 (tracer skip) gets the default");
    assert_eq!(h.verdict(Abi::X86, 39, [0; 6]), KILL_THREAD);
    // Foreign architectures are dropped; SCMP_ARCH_NATIVE is the host's.
    let h = Host::new(&allow_all(json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_NATIVE", "SCMP_ARCH_X86"])), x);
    assert_eq!(h.call(Abi::X86, "mkdir", &[]), EPERM);
    assert_eq!(h.call(Abi::Aarch64, "mkdirat", &[]), KILL_THREAD);
    // x32 alone next to x86_64.
    let h = Host::new(&allow_all(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])), x);
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT | 83, [0; 6]), EPERM, "x32 mkdir");
    assert_eq!(h.verdict(x, X32_SYSCALL_BIT | 39, [0; 6]), RET_ALLOW);
    assert_eq!(h.verdict(x, 83, [0; 6]), EPERM);
    // On an arm64 host, the x86 family is foreign.
    let h = Host::new(&allow_all(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_ARM"])), Abi::Aarch64);
    assert_eq!(h.call(Abi::Arm, "mkdir", &[]), EPERM);
    assert_eq!(h.call(Abi::Aarch64, "mkdirat", &[]), RET_ALLOW);
    assert_eq!(h.call(Abi::X86_64, "getpid", &[]), KILL_THREAD);
    // ENOSYS stub only when the default action blocks.
    let h = Host::new(&allow_all(json!(null)), x);
    assert_eq!(h.verdict(x, 1000, [0; 6]), RET_ALLOW);
    let s = spec(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS",
                        "syscalls": [{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}));
    let h = Host::new(&s, x);
    assert_eq!(h.verdict(x, 0, [0; 6]), RET_ALLOW);
    assert_eq!(h.verdict(x, 1, [0; 6]), RET_KILL_PROCESS, "write, below exit_group (231)");
    assert_eq!(h.verdict(x, 232, [0; 6]), ENOSYS);
}

// ---------------------------------------------------------------------------------------------
// Argument comparisons: random profiles against the model, on 64-bit, 32-bit and big-endian ABIs

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn value(&mut self) -> u64 {
        let r = self.next();
        match self.below(9) {
            0 => 0,
            1 => 1,
            2 => 0xffff_ffff,
            3 => 0x1_0000_0000,
            4 => u64::MAX,
            5 => r & 0xffff_ffff,
            6 => (r & 0xf) << 32 | (r >> 40) & 0xff,
            7 => 0x8000_0000_0000_0000 | (r & 0xffff),
            _ => r,
        }
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

#[test]
fn seccomp_argument_compares_match_model() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let hosts = [(Abi::X86_64, Abi::X86_64), (Abi::X86_64, Abi::X86), (Abi::S390x, Abi::S390x), (Abi::Aarch64, Abi::Arm)];
    for round in 0..300 {
        let mut rules = Vec::new();
        let mut interesting: Vec<(usize, u64)> = Vec::new();
        for r in 0..1 + rng.below(4) {
            let mut args = Vec::new();
            let mut used = 0u8;
            for _ in 0..1 + rng.below(3) {
                let index = rng.below(6) as usize;
                // Occasionally repeat an index to exercise the OR split.
                if used & (1 << index) != 0 && rng.below(4) != 0 {
                    continue;
                }
                used |= 1 << index;
                let (v, v2) = (rng.value(), rng.value());
                let op = OPS[rng.below(7) as usize];
                let v2 = if rng.below(2) == 0 { v & v2 } else { v2 };
                interesting.extend([(index, v), (index, v2), (index, v.wrapping_add(1)), (index, v.wrapping_sub(1))]);
                interesting.push((index, v ^ 0x1_0000_0000));
                args.push(json!({"index": index, "value": v, "valueTwo": v2, "op": op}));
            }
            rules.push(errno_rule(&["lseek"], 10 + r as u32, json!(args)));
        }
        let s = spec(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 2,
                            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_ARM"], "syscalls": rules}));
        for (native, abi) in hosts {
            let h = Host::new(&s, native);
            let nr = abi.resolve("lseek").unwrap();
            for _ in 0..40 {
                let mut args = [0u64; 6];
                for a in args.iter_mut() {
                    *a = rng.value();
                }
                for _ in 0..rng.below(4) {
                    let (i, v) = interesting[rng.below(interesting.len() as u64) as usize];
                    args[i] = v;
                }
                let want = model(&s, &[native, abi], abi.audit_arch(), nr, args);
                assert_eq!(h.verdict(abi, nr, args), want, "round {round} {abi:?} args {args:x?}\n{s:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn seccomp_bad_inputs_give_clear_errors() {
    // Unknown action / operator / arch / flag are refused when the spec is parsed.
    let bad = |v: serde_json::Value| serde_json::from_value::<LinuxSeccomp>(v).unwrap_err().to_string();
    let e = bad(json!({"defaultAction": "SCMP_ACT_BOGUS"}));
    assert!(e.contains("SCMP_ACT_BOGUS"), "{e}");
    let e = bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}));
    assert!(e.contains("SCMP_CMP_BOGUS"), "{e}");
    let e = bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]}));
    assert!(e.contains("SCMP_ARCH_BOGUS"), "{e}");
    // The docker converter reports them too.
    let e = convert(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, &[], "amd64", None).unwrap_err().to_string();
    assert!(e.contains("SCMP_ACT_NOPE"), "{e}");

    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        errno_rule(&["read"], 1, json!([{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]))]})));
    assert!(e.contains("index 6") && e.contains("read"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]})));
    assert!(e.contains("errnoRet") && e.contains("SCMP_ACT_ALLOW"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1})));
    assert!(e.contains("defaultAction") && e.contains("errnoRet"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        errno_rule(&["read"], 70000, json!(null))]})));
    assert!(e.contains("70000"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_NOTIFY"})));
    assert!(e.contains("SCMP_ACT_NOTIFY") && e.contains("default"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]})));
    assert!(e.contains("write"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"}]})));
    assert!(e.contains("syscalls[0]") && e.contains("names"), "{e}");
    let e = compile_err(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"})));
    assert!(e.contains("listenerPath"), "{e}");
    // An architecture this host runs but berth has no table for.
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390"]}));
    let e = compile_for(&s, Abi::S390x).unwrap_err().to_string();
    assert!(e.contains("SCMP_ARCH_S390"), "{e}");
    assert!(compile_for(&s, Abi::X86_64).is_ok(), "foreign to x86_64: dropped");
}

