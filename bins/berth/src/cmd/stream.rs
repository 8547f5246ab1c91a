//! A hijacked attach/exec connection wired to our stdio: output (raw with a TTY, else
//! demultiplexed to stdout/stderr), stdin with detach-key detection, raw terminal mode,
//! SIGWINCH -> resize, and signal proxying for runs without a TTY.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use berth_api::client::stdcopy;
use berth_api::client::Hijacked;

use crate::term;

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// Docker's `term.ToBytes`: `ctrl-p,ctrl-q`, single characters, `ctrl-@`, `ctrl-[` ...
pub fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else { return Ok(DEFAULT_DETACH_KEYS.to_vec()) };
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [c @ b'a'..=b'z'] => c - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("Invalid detach keys ({spec}) provided"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("Invalid detach keys ({spec}) provided");
        }
    }
    Ok(out)
}

/// Detects the detach sequence in stdin; bytes of a partial match are held back until the
/// match fails (then sent) or completes (then dropped).
pub struct EscapeProxy {
    keys: Vec<u8>,
    pos: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, pos: 0 }
    }

    /// Filters `input` into `out`; true when the sequence completed (stop reading stdin).
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.pos] {
                self.pos += 1;
                if self.pos == self.keys.len() {
                    return true;
                }
                continue;
            }
            if self.pos > 0 {
                out.extend_from_slice(&self.keys[..self.pos]);
                self.pos = 0;
                if b == self.keys[0] {
                    self.pos = 1;
                    continue;
                }
            }
            out.push(b);
        }
        false
    }
}

pub struct StreamOpts {
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The container's output ended (it exited, or its streams closed).
    Eof,
    /// The user typed the detach sequence.
    Detached,
}

/// Relays until the output ends or the user detaches.
pub fn relay(h: Hijacked, o: &StreamOpts) -> Result<StreamEnd> {
    let Hijacked { mut reader, mut writer } = h;
    // Socket writes to a daemon that went away must be errors, not a fatal SIGPIPE.
    ignore_sigpipe();
    let detached = Arc::new(AtomicBool::new(false));
    if o.stdin {
        // Raw mode only when stdin is our terminal and the container has one too.
        if o.tty && term::is_tty(0) {
            term::make_raw(0)?;
        }
        let closer = writer.try_clone_conn()?;
        let detached = detached.clone();
        let (tty, keys) = (o.tty, o.detach_keys.clone());
        std::thread::spawn(move || {
            let mut proxy = tty.then(|| EscapeProxy::new(keys));
            let mut buf = vec![0u8; 32 << 10];
            let mut out = Vec::with_capacity(buf.len());
            let stdin = io::stdin();
            let mut lock = stdin.lock();
            loop {
                let n = match lock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let done = match &mut proxy {
                    Some(p) => {
                        out.clear();
                        let d = p.filter(&buf[..n], &mut out);
                        if writer.write_all(&out).is_err() {
                            return;
                        }
                        d
                    }
                    None => writer.write_all(&buf[..n]).is_err(),
                };
                if done {
                    if proxy.is_some() {
                        detached.store(true, Ordering::SeqCst);
                        // Unblock the output side: we are leaving.
                        let _ = closer.shutdown_write();
                        term::restore();
                        let _ = io::stdout().flush();
                        std::process::exit(0);
                    }
                    return;
                }
            }
            // EOF on stdin: half-close so the container sees it, output keeps flowing.
            let _ = writer.shutdown_write();
        });
    }
    let res = if o.tty {
        copy_raw(&mut reader)
    } else {
        let (mut out, mut err) = (io::stdout(), io::stderr());
        stdcopy::demux(&mut reader, &mut out, &mut err)
    };
    match res {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) if detached.load(Ordering::SeqCst) => drop(e),
        Err(e) => return Err(e.into()),
    }
    Ok(if detached.load(Ordering::SeqCst) { StreamEnd::Detached } else { StreamEnd::Eof })
}

fn copy_raw(r: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 32 << 10];
    let out = io::stdout();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut l = out.lock();
        l.write_all(&buf[..n])?;
        l.flush()?;
    }
}

pub fn ignore_sigpipe() {
    // SAFETY: setting a signal disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Signals Docker's `ForwardAllSignals` does not forward, and the synchronous faults that
/// must never be blocked (a real fault in us has to stay fatal).
fn forwardable(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD | libc::SIGPIPE | libc::SIGURG | libc::SIGWINCH | libc::SIGKILL | libc::SIGSTOP | libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
    )
}

/// Blocks the signals we handle in this thread (threads spawned later inherit the mask) and
/// handles them on a dedicated thread: WINCH -> `on_winch`; with `proxy`, the others go to
/// `on_signal` (forwarded to the container); without, INT/TERM/HUP/QUIT restore the terminal
/// and end us with the signal's default action. Call before spawning other threads.
pub fn watch_signals(on_winch: Option<Box<dyn Fn() + Send>>, proxy: Option<Box<dyn Fn(i32) + Send>>) {
    // SAFETY: sigset manipulation and pthread_sigmask on our own thread; sigwait on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if on_winch.is_some() {
            libc::sigaddset(&mut set, libc::SIGWINCH);
        }
        if proxy.is_some() {
            for s in 1..=libc::SIGRTMAX() {
                if forwardable(s) {
                    libc::sigaddset(&mut set, s);
                }
            }
        } else {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::sigaddset(&mut set, s);
            }
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || loop {
            let mut sig = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                return;
            }
            if sig == libc::SIGWINCH {
                if let Some(f) = &on_winch {
                    f();
                }
                continue;
            }
            match &proxy {
                Some(f) => f(sig),
                None => {
                    term::restore();
                    let mut one: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut one);
                    libc::sigaddset(&mut one, sig);
                    libc::signal(sig, libc::SIG_DFL);
                    libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
                    libc::raise(sig);
                }
            }
        });
    }
}

/// Signal number -> the name Docker's kill API takes.
pub fn signal_name(sig: i32) -> String {
    let names = [
        (libc::SIGHUP, "HUP"), (libc::SIGINT, "INT"), (libc::SIGQUIT, "QUIT"), (libc::SIGILL, "ILL"),
        (libc::SIGTRAP, "TRAP"), (libc::SIGABRT, "ABRT"), (libc::SIGBUS, "BUS"), (libc::SIGFPE, "FPE"),
        (libc::SIGUSR1, "USR1"), (libc::SIGSEGV, "SEGV"), (libc::SIGUSR2, "USR2"), (libc::SIGALRM, "ALRM"),
        (libc::SIGTERM, "TERM"), (libc::SIGCONT, "CONT"), (libc::SIGTSTP, "TSTP"), (libc::SIGTTIN, "TTIN"),
        (libc::SIGTTOU, "TTOU"), (libc::SIGXCPU, "XCPU"), (libc::SIGXFSZ, "XFSZ"), (libc::SIGVTALRM, "VTALRM"),
        (libc::SIGPROF, "PROF"), (libc::SIGIO, "IO"), (libc::SIGPWR, "PWR"), (libc::SIGSYS, "SYS"),
    ];
    names.iter().find(|(n, _)| *n == sig).map(|(_, s)| s.to_string()).unwrap_or_else(|| sig.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(detach_keys(None).unwrap(), vec![16, 17]);
        assert_eq!(detach_keys(Some("ctrl-a,x,ctrl-[")).unwrap(), vec![1, b'x', 27]);
        assert!(detach_keys(Some("ctrl-1")).is_err());
        assert!(detach_keys(Some("abc")).is_err());
    }

    #[test]
    fn escape_proxy_holds_partial_matches() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!p.filter(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        assert!(!p.filter(b"c", &mut out));
        assert_eq!(out, b"ab\x10c");
        out.clear();
        assert!(!p.filter(b"\x10\x10", &mut out));
        assert_eq!(out, b"\x10");
        assert!(p.filter(b"\x11rest", &mut out));
        assert_eq!(out, b"\x10");
    }
}
