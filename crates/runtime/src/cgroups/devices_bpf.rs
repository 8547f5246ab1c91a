//! The cgroup v2 device filter: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! generated from the OCI device rules, loaded with bpf(2) and attached to the cgroup
//! directory (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`). This works on any cgroup2 directory,
//! whatever controllers are enabled.
//!
//! Semantics (same as the v1 devices controller after `devices.deny a`): nothing is allowed
//! by default; rules apply in order and a later rule overrides an earlier one, per access bit.
//! The program keeps the set of granted access bits for the device asked about: an allow rule
//! that matches adds its bits, a deny rule that matches removes them; the request passes when
//! every bit it asks for is granted.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::convert::DevRule;
use crate::{Error, Result};

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    pub code: u8,
    /// dst register in the low nibble, src in the high one
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// opcodes (class | op | source)
pub(super) const LDX_MEM_W: u8 = 0x61;
pub(super) const ALU32_MOV_K: u8 = 0xb4;
pub(super) const ALU32_MOV_X: u8 = 0xbc;
pub(super) const ALU32_AND_K: u8 = 0x54;
pub(super) const ALU32_AND_X: u8 = 0x5c;
pub(super) const ALU32_OR_K: u8 = 0x44;
pub(super) const ALU32_XOR_K: u8 = 0xa4;
pub(super) const ALU32_RSH_K: u8 = 0x74;
pub(super) const ALU64_MOV_K: u8 = 0xb7;
pub(super) const JMP_JNE_K: u8 = 0x55;
pub(super) const JMP_JEQ_K: u8 = 0x15;
pub(super) const JMP_EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type /* (access << 16) | type */; u32 major; u32 minor; }
pub(super) const DEV_BLOCK: i32 = 1;
pub(super) const DEV_CHAR: i32 = 2;

// Registers: r1 ctx, r2 requested access, r3 device type, r4 major, r5 minor, r6 granted.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Generates the program for `rules` (already checked).
pub(super) fn compile(rules: &[DevRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_MOV_X, R3, R2, 0, 0),
        insn(ALU32_AND_K, R3, 0, 0, 0xffff),
        insn(ALU32_RSH_K, R2, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
        insn(ALU32_MOV_K, R6, 0, 0, 0),
    ];
    for r in rules {
        let mut conds: Vec<(u8, i32)> = Vec::with_capacity(3);
        match r.typ {
            'b' => conds.push((R3, DEV_BLOCK)),
            'c' => conds.push((R3, DEV_CHAR)),
            _ => {}
        }
        if let Some(m) = r.major {
            conds.push((R4, m as i32));
        }
        if let Some(m) = r.minor {
            conds.push((R5, m as i32));
        }
        let n = conds.len();
        for (i, (reg, val)) in conds.into_iter().enumerate() {
            // on mismatch, skip the rest of this rule's conditions and its action
            p.push(insn(JMP_JNE_K, reg, 0, (n - i) as i16, val));
        }
        let acc = i32::from(r.access);
        if r.allow {
            p.push(insn(ALU32_OR_K, R6, 0, 0, acc));
        } else {
            p.push(insn(ALU32_AND_K, R6, 0, 0, !acc));
        }
    }
    p.extend([
        insn(ALU32_XOR_K, R6, 0, 0, -1),
        insn(ALU32_AND_X, R2, R6, 0, 0),
        insn(ALU64_MOV_K, R0, 0, 0, 1),
        insn(JMP_JEQ_K, R2, 0, 1, 0),
        insn(ALU64_MOV_K, R0, 0, 0, 0),
        insn(JMP_EXIT, 0, 0, 0, 0),
    ]);
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<i64, nix::errno::Errno> {
    // SAFETY: attr is a properly sized, zero-initialised bpf_attr prefix for `cmd`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(r)
    }
}

/// Loads the program; on a verifier refusal, loads it again with the log to explain why.
pub(super) fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel returned a new fd that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => {
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                // loaded with the log on: keep it
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let text = text.trim();
            let step = if text.is_empty() {
                format!(
                    "load the cgroup v2 device filter ({} instructions)",
                    insns.len()
                )
            } else {
                format!("load the cgroup v2 device filter (verifier: {text})")
            };
            Err(Error::sys(step, errno))
        }
    }
}

/// Installs the filter for `rules` on the cgroup2 directory `dir`, replacing the filters a
/// previous `set` attached there. The new program is attached before the old ones are
/// detached, so there is no moment without a filter.
pub(super) fn apply(dir: &Path, rules: &[DevRule]) -> Result<()> {
    let prog = load(&compile(rules))?;
    let cg = File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
    let what = |s: &str| format!("{s} device filter on cgroup {}", dir.display());

    let mut ids = [0u32; 64];
    let mut q = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q).map_err(|e| Error::sys(what("query the"), e))?;
    let old = &ids[..(q.prog_cnt as usize).min(ids.len())];
    // A single program attached without ALLOW_MULTI can only be replaced with the same flags.
    let flags = if !old.is_empty() && q.attach_flags & BPF_F_ALLOW_MULTI == 0 {
        q.attach_flags
    } else {
        BPF_F_ALLOW_MULTI
    };
    let mut a = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut a).map_err(|e| Error::sys(what("attach the"), e))?;
    if flags & BPF_F_ALLOW_MULTI == 0 {
        return Ok(());
    }
    for &id in old {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut g) {
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(what(&format!("get program {id} of the old")), e)),
        };
        let mut d = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_DETACH, &mut d) {
            Ok(_) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(what("detach the old"), e)),
        }
    }
    Ok(())
}

/// The number of device programs attached directly to `dir`.
#[cfg(test)]
pub(super) fn attached_count(dir: &Path) -> Result<usize> {
    let cg = File::open(dir).map_err(|e| Error::io("open cgroup", dir, e))?;
    let mut q = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q)
        .map_err(|e| Error::sys(format!("query device filters on {}", dir.display()), e))?;
    Ok(q.prog_cnt as usize)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cgroups::convert::{ACC_MKNOD, ACC_READ, ACC_WRITE};

    /// A tiny interpreter for the instructions `compile` emits, to check what the program
    /// decides: returns r0.
    pub fn run(p: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm32 = i.imm as u32 as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from ctx");
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                ALU32_MOV_K => r[dst] = imm32,
                ALU32_MOV_X => r[dst] = r[src] & 0xffff_ffff,
                ALU32_AND_K => r[dst] = (r[dst] & imm32) & 0xffff_ffff,
                ALU32_AND_X => r[dst] = (r[dst] & r[src]) & 0xffff_ffff,
                ALU32_OR_K => r[dst] = (r[dst] | imm32) & 0xffff_ffff,
                ALU32_XOR_K => r[dst] = (r[dst] ^ imm32) & 0xffff_ffff,
                ALU32_RSH_K => r[dst] = (r[dst] & 0xffff_ffff) >> i.imm,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                }
                JMP_JEQ_K => {
                    if r[dst] == i.imm as i64 as u64 {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program does not terminate");
    }

    fn rule(allow: bool, typ: char, major: Option<u32>, minor: Option<u32>, access: u8) -> DevRule {
        DevRule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }
    const RWM: u8 = ACC_READ | ACC_WRITE | ACC_MKNOD;

    #[test]
    fn program_structure() {
        let p = compile(&[rule(true, 'c', Some(1), Some(3), RWM)]);
        // 7 prologue + (3 conditions + 1 action) + 6 epilogue
        assert_eq!(p.len(), 7 + 4 + 6);
        assert_eq!(p[0], insn(LDX_MEM_W, R2, R1, 0, 0));
        assert_eq!(p[7], insn(JMP_JNE_K, R3, 0, 3, DEV_CHAR));
        assert_eq!(p[8], insn(JMP_JNE_K, R4, 0, 2, 1));
        assert_eq!(p[9], insn(JMP_JNE_K, R5, 0, 1, 3));
        assert_eq!(p[10], insn(ALU32_OR_K, R6, 0, 0, RWM as i32));
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
        // an unconditional deny has no jumps
        let p = compile(&[rule(false, 'a', None, None, RWM)]);
        assert_eq!(p.len(), 7 + 1 + 6);
        assert_eq!(p[7], insn(ALU32_AND_K, R6, 0, 0, !(RWM as i32)));
        // the empty rule set denies everything
        let p = compile(&[]);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn program_semantics() {
        // Docker-like: deny all, allow /dev/null rwm, allow block 8:* read, allow all mknod,
        // then deny writes to c 1:3 again.
        let p = compile(&[
            rule(false, 'a', None, None, RWM),
            rule(true, 'c', Some(1), Some(3), RWM),
            rule(true, 'b', Some(8), None, ACC_READ),
            rule(true, 'a', None, None, ACC_MKNOD),
            rule(true, 'c', Some(1), Some(5), ACC_READ),
            rule(true, 'c', Some(1), Some(5), ACC_WRITE),
            rule(false, 'c', Some(1), Some(3), ACC_WRITE),
        ]);
        let (c, b) = (DEV_CHAR, DEV_BLOCK);
        assert_eq!(run(&p, c, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, c, ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&p, c, ACC_READ | ACC_WRITE, 1, 3), 0);
        assert_eq!(run(&p, c, ACC_READ, 1, 4), 0);
        assert_eq!(run(&p, b, ACC_READ, 8, 17), 1);
        assert_eq!(run(&p, b, ACC_WRITE, 8, 17), 0);
        assert_eq!(run(&p, c, ACC_READ, 8, 17), 0);
        assert_eq!(run(&p, b, ACC_MKNOD, 250, 1), 1);
        // read and write granted by two rules combine
        assert_eq!(run(&p, c, ACC_READ | ACC_WRITE, 1, 5), 1);
        // allow everything, then deny one device
        let p = compile(&[
            rule(true, 'a', None, None, RWM),
            rule(false, 'c', Some(1), Some(5), RWM),
        ]);
        assert_eq!(run(&p, c, ACC_READ, 1, 5), 0);
        assert_eq!(run(&p, c, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, b, ACC_WRITE, 1, 5), 1);
    }
}
