//! berth-init: the minimal init `--init` puts at PID 1 (as /sbin/docker-init). It starts the
//! command, forwards every signal it receives to it, reaps all zombies (orphans reparent to
//! PID 1), and exits with the command's status (128+signal when killed).
//!
//! Built by berthd's build script with rustc alone (no crates) as a static binary, because it
//! runs inside images that have no libc of their own.

use std::os::raw::{c_int, c_void};
use std::process::Command;

#[repr(C)]
struct SigSet([u64; 16]);

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut c_void) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
}

const SIG_BLOCK: c_int = 0;
const WNOHANG: c_int = 1;
const SIGCHLD: c_int = 17;
const SIGKILL: c_int = 9;
const SIGSTOP: c_int = 19;

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--") {
        args.next();
    }
    let Some(prog) = args.next() else {
        eprintln!("berth-init: usage: berth-init [--] COMMAND [ARG...]");
        std::process::exit(2);
    };
    let mut all = SigSet([0; 16]);
    // SAFETY: valid pointers to a sigset the size of the kernel's and libc's.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_BLOCK, &all, std::ptr::null_mut());
    }
    // std resets the signal mask and dispositions of the child before it execs.
    let child = match Command::new(&prog).args(args).spawn() {
        Ok(c) => c.id() as c_int,
        Err(e) => {
            eprintln!("berth-init: exec {}: {e}", prog.to_string_lossy());
            std::process::exit(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 });
        }
    };
    let mut info = [0u8; 128];
    loop {
        // SAFETY: the set is initialised; info is siginfo_t sized.
        let sig = unsafe { sigwaitinfo(&all, info.as_mut_ptr().cast()) };
        if sig < 0 {
            continue;
        }
        if sig != SIGCHLD {
            if sig != SIGKILL && sig != SIGSTOP {
                // SAFETY: plain kill(2).
                unsafe { kill(child, sig) };
            }
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: reaping any child, non-blocking.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
                std::process::exit(code);
            }
        }
    }
}
