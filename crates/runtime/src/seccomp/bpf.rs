//! Classic-BPF code generation for seccomp filters.
//!
//! Program shape:
//!
//! ```text
//!   ld  arch
//!   jeq AUDIT_ARCH_a, 0, 1 ; ja block_a      (one pair per architecture)
//!   ret BAD_ARCH
//! block_a:
//!   ld  nr
//!   binary search over number ranges (jge), whose leaves are `ret ACTION` or, for a syscall
//!   with argument rules, a chain: the rules in order, each a run of 32-bit compares that jumps
//!   to the next rule on failure and ends in `ret ACTION`; the chain ends in `ret DEFAULT`.
//! ```
//!
//! Every path ends in a `ret` and every jump goes forward inside its own block, so blocks are
//! built bottom-up and concatenated without a label-resolution pass. Conditional jumps reach at
//! most 255 instructions; the tree uses `ja` (32-bit offset) where a subtree is larger.

use super::arch::Abi;

/// One `struct sock_filter` (same layout, so a slice of these is passed to the kernel as is).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub(crate) const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub(crate) const JA: u16 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
pub(crate) const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
pub(crate) const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const RET: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`.
pub(crate) const OFF_NR: u32 = 0;
pub(crate) const OFF_ARCH: u32 = 4;
pub(crate) const OFF_ARGS: u32 = 16;

/// The kernel's limit on program length (`BPF_MAXINSNS`).
pub(crate) const MAX_INSNS: usize = 4096;

const fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Argument comparison operators (libseccomp's `SCMP_CMP_*`), unsigned 64-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`
    MaskedEq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// One rule: all of `conds` must hold (AND); no conds = unconditional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub action: u32,
    pub conds: Vec<Cond>,
}

/// What a range of syscall numbers leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ret(u32),
    /// Index into the chain list passed to [`tree`].
    Chain(usize),
}

/// Which branch of a conditional jump still needs its target.
#[derive(Clone, Copy)]
enum Br {
    T,
    F,
}

/// Emits the compare sequence for one condition. A failed condition jumps to the end of the
/// rule (patched by the caller through `fails`); a satisfied one falls through.
fn cond(out: &mut Vec<Insn>, c: &Cond, abi: Abi, big_endian: bool, fails: &mut Vec<(usize, Br)>) {
    let base = OFF_ARGS + 8 * c.index as u32;
    let (lo_off, hi_off) = if big_endian { (base + 4, base) } else { (base, base + 4) };
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    let (d_hi, d_lo) = ((c.value_two >> 32) as u32, c.value_two as u32);
    let mut fail = |out: &mut Vec<Insn>, insn: Insn, br: Br| {
        fails.push((out.len(), br));
        out.push(insn);
    };

    // 32-bit ABIs: only the low word exists. Also taken when the high word cannot matter.
    let lo_only = !abi.args_64() || (c.op == Op::MaskedEq && v_hi == 0 && d_hi == 0);
    if lo_only {
        out.push(stmt(LD_W_ABS, lo_off));
        match c.op {
            Op::Eq => fail(out, jump(JEQ, v_lo, 0, 0), Br::F),
            Op::Ne => fail(out, jump(JEQ, v_lo, 0, 0), Br::T),
            Op::Gt => fail(out, jump(JGT, v_lo, 0, 0), Br::F),
            Op::Ge => fail(out, jump(JGE, v_lo, 0, 0), Br::F),
            Op::Lt => fail(out, jump(JGE, v_lo, 0, 0), Br::T),
            Op::Le => fail(out, jump(JGT, v_lo, 0, 0), Br::T),
            Op::MaskedEq => {
                out.push(stmt(AND, v_lo));
                fail(out, jump(JEQ, d_lo, 0, 0), Br::F);
            }
        }
        return;
    }

    // 64-bit: decide on the high word, and look at the low word only when the high words are
    // equal. Offsets like `2` skip to just past this condition (= satisfied).
    out.push(stmt(LD_W_ABS, hi_off));
    match c.op {
        Op::Eq => {
            fail(out, jump(JEQ, v_hi, 0, 0), Br::F);
            out.push(stmt(LD_W_ABS, lo_off));
            fail(out, jump(JEQ, v_lo, 0, 0), Br::F);
        }
        Op::Ne => {
            out.push(jump(JEQ, v_hi, 0, 2)); // high words differ: satisfied
            out.push(stmt(LD_W_ABS, lo_off));
            fail(out, jump(JEQ, v_lo, 0, 0), Br::T);
        }
        Op::Gt | Op::Ge => {
            out.push(jump(JGT, v_hi, 3, 0)); // high word greater: satisfied
            fail(out, jump(JEQ, v_hi, 0, 0), Br::F); // high word smaller: failed
            out.push(stmt(LD_W_ABS, lo_off));
            let code = if c.op == Op::Gt { JGT } else { JGE };
            fail(out, jump(code, v_lo, 0, 0), Br::F);
        }
        Op::Lt | Op::Le => {
            fail(out, jump(JGT, v_hi, 0, 0), Br::T); // high word greater: failed
            out.push(jump(JEQ, v_hi, 0, 2)); // high word smaller: satisfied
            out.push(stmt(LD_W_ABS, lo_off));
            let code = if c.op == Op::Lt { JGE } else { JGT };
            fail(out, jump(code, v_lo, 0, 0), Br::T);
        }
        Op::MaskedEq => {
            out.push(stmt(AND, v_hi));
            fail(out, jump(JEQ, d_hi, 0, 0), Br::F);
            out.push(stmt(LD_W_ABS, lo_off));
            out.push(stmt(AND, v_lo));
            fail(out, jump(JEQ, d_lo, 0, 0), Br::F);
        }
    }
}

/// Code for one syscall that has conditional rules: first rule whose conditions all hold
/// decides, otherwise `default`.
pub(crate) fn chain(rules: &[&Rule], default: u32, abi: Abi, big_endian: bool) -> Vec<Insn> {
    let mut out = Vec::with_capacity(rules.len() * 6 + 1);
    let mut fails = Vec::new();
    for rule in rules {
        fails.clear();
        for c in &rule.conds {
            cond(&mut out, c, abi, big_endian, &mut fails);
        }
        out.push(stmt(RET, rule.action));
        let next = out.len();
        for &(pos, br) in &fails {
            // A rule has at most 6 conditions of at most 7 instructions each.
            let off = u8::try_from(next - pos - 1).expect("rule longer than a BPF jump");
            match br {
                Br::T => out[pos].jt = off,
                Br::F => out[pos].jf = off,
            }
        }
    }
    out.push(stmt(RET, default));
    out
}

/// Turns a background (piecewise outcome over the whole 32-bit number space, sorted by start,
/// first start 0) and single-number points (sorted, unique) into contiguous ranges, merging
/// neighbours that return the same value.
pub(crate) fn ranges(background: &[(u32, Outcome)], points: &[(u32, Outcome)]) -> Vec<(u32, Outcome)> {
    let mut out: Vec<(u32, Outcome)> = Vec::with_capacity(points.len() * 2 + background.len());
    let mut push = |start: u64, o: Outcome| {
        if let Some(&(_, last)) = out.last() {
            if last == o && matches!(o, Outcome::Ret(_)) {
                return;
            }
        }
        out.push((start as u32, o));
    };
    let end = |i: usize| background.get(i + 1).map_or(1u64 << 32, |b| b.0 as u64);
    // Fills [from, to) with the background.
    let fill = |push: &mut dyn FnMut(u64, Outcome), from: u64, to: u64| {
        for (i, &(s, o)) in background.iter().enumerate() {
            let (s, e) = (s as u64, end(i));
            if from < to && e > from && s < to {
                push(s.max(from), o);
            }
        }
    };
    let mut cursor = 0u64;
    for &(nr, o) in points {
        fill(&mut push, cursor, nr as u64);
        push(nr as u64, o);
        cursor = nr as u64 + 1;
    }
    fill(&mut push, cursor, 1u64 << 32);
    out
}

/// Binary search over `ranges` (A holds the syscall number); leaves return or run a chain.
pub(crate) fn tree(ranges: &[(u32, Outcome)], chains: &[Vec<Insn>], out: &mut Vec<Insn>) {
    if let [(_, leaf)] = ranges {
        match *leaf {
            Outcome::Ret(k) => out.push(stmt(RET, k)),
            Outcome::Chain(i) => out.extend_from_slice(&chains[i]),
        }
        return;
    }
    let mid = ranges.len() / 2;
    let mut left = Vec::new();
    tree(&ranges[..mid], chains, &mut left);
    let boundary = ranges[mid].0;
    match u8::try_from(left.len()) {
        Ok(skip) => out.push(jump(JGE, boundary, skip, 0)),
        Err(_) => {
            out.push(jump(JGE, boundary, 0, 1));
            out.push(stmt(JA, left.len() as u32));
        }
    }
    out.extend(left);
    tree(&ranges[mid..], chains, out);
}

/// Assembles the whole program from per-architecture blocks (each starting with A = nr
/// unloaded; this adds the `ld nr`).
pub(crate) fn program(blocks: Vec<(u32, Vec<Insn>)>, bad_arch: u32) -> Vec<Insn> {
    let total: usize = 2 + 2 * blocks.len() + blocks.iter().map(|b| b.1.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.push(stmt(LD_W_ABS, OFF_ARCH));
    // Dispatch: block i starts after the dispatch table, the bad-arch return and blocks < i.
    let table_end = 1 + 2 * blocks.len() + 1;
    let mut start = table_end;
    for (audit, code) in &blocks {
        out.push(jump(JEQ, *audit, 0, 1));
        let here = out.len() + 1;
        out.push(stmt(JA, (start - here) as u32));
        start += code.len() + 1;
    }
    out.push(stmt(RET, bad_arch));
    for (_, code) in blocks {
        out.push(stmt(LD_W_ABS, OFF_NR));
        out.extend(code);
    }
    out
}
