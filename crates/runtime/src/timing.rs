//! Opt-in phase timestamps for profiling the lifecycle: with `BERTH_RUNTIME_TIMING` set in the
//! environment, each [`mark`] prints `berth-timing <pid> <CLOCK_MONOTONIC µs> <label>` to
//! stderr. The clock is shared by the parent and the container's init, so their lines merge into
//! one timeline. Off (one cached check) otherwise.

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not checked yet, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            // getenv, not std::env: no lock, which a forked child must not wait for.
            // SAFETY: a valid C string; the pointer returned is only compared with null.
            let on = !unsafe { libc::getenv(c"BERTH_RUNTIME_TIMING".as_ptr()) }.is_null();
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        s => s == 2,
    }
}

/// Records that the step `label` was reached.
pub fn mark(label: &str) {
    if !enabled() {
        return;
    }
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid timespec pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let us = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    // One write per line, so that the parent's and the init's lines do not interleave.
    let line = format!("berth-timing {} {us} {label}\n", std::process::id());
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}
