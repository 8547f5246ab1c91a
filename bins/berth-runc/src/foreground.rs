//! `run` and `exec` in the foreground: wait for the process, forward signals to it, and when it
//! has a terminal but no --console-socket was given, proxy this terminal to its pty.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_runtime::container::{self, CreateOpts};
use berth_runtime::exec::ExecOpts;
use berth_runtime::sync::Channel;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// A socketpair standing in for a console socket: one end goes to the container, the pty master
/// comes back on the other.
fn console_pair() -> Result<(Arc<OwnedFd>, Channel)> {
    let (a, b) = UnixStream::pair()?;
    Ok((Arc::new(a.into()), Channel { fd: b.into() }))
}

fn recv_master(ch: &Channel) -> Result<OwnedFd> {
    Ok(berth_runtime::terminal::recv_master(ch.fd.as_raw_fd())?)
}

pub fn run(root: PathBuf, mut o: CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    let wants_tty = berth_runtime::spec::Bundle::load(&o.bundle)?
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut console = None;
    if wants_tty && o.console_socket.is_none() && !detach {
        let (fd, ch) = console_pair()?;
        o.console_fd = Some(fd);
        console = Some(ch);
    }
    let mask = block_signals()?;
    // The init is our child: waitpid works, and signals can be forwarded before start.
    let pid = container::create(&o)?;
    o.console_fd = None;
    // From here on the container exists: any failure removes it again.
    let started = console
        .as_ref()
        .map(recv_master)
        .transpose()
        .and_then(|m| container::start(&root, &o.id).map(|()| m).map_err(Into::into));
    let master = match started {
        Ok(m) => m,
        Err(e) => {
            let _ = container::delete(&root, &o.id, true);
            return Err(e);
        }
    };
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding(pid, master, mask);
    if !keep {
        container::delete(&root, &o.id, true)?;
    }
    code
}

pub fn exec(mut o: ExecOpts, detach: bool) -> Result<i32> {
    let mut console = None;
    if o.process.terminal().unwrap_or(false) && o.console_socket.is_none() && !detach {
        let (fd, ch) = console_pair()?;
        o.console_fd = Arc::try_unwrap(fd).ok();
        console = Some(ch);
    }
    let mask = block_signals()?;
    let pid = berth_runtime::exec::exec(&o)?;
    o.console_fd = None;
    if detach {
        return Ok(0);
    }
    let master = console.as_ref().map(recv_master).transpose()?;
    wait_forwarding(pid, master, mask)
}

fn block_signals() -> Result<SigSet> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.thread_block()?;
    Ok(mask)
}

/// Restores the terminal mode on every exit path.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(master: BorrowedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

fn exit_code(s: WaitStatus) -> Option<i32> {
    match s {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Waits for `pid`, forwarding signals, proxying the terminal if there is one. Returns the exit
/// code (128+signal for a killed process, as shells report it).
fn wait_forwarding(pid: i32, master: Option<OwnedFd>, mask: SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)?;
    let _raw = master.as_ref().map(|_| RawMode::enter());
    if let Some(m) = &master {
        copy_winsize(m.as_fd());
    }
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut code = None;
    let mut buf = [0u8; 8192];
    loop {
        if let Some(c) = code {
            // Drain what the process wrote before it exited.
            if let Some(m) = &master {
                while let Ok(n) = nix::unistd::read(m, &mut buf) {
                    if n == 0 || nix::unistd::write(std::io::stdout(), &buf[..n]).is_err() {
                        break;
                    }
                    if !poll_readable(m.as_fd(), 0) {
                        break;
                    }
                }
            }
            return Ok(c);
        }
        let mut fds = vec![libc::pollfd { fd: sfd.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if let Some(m) = &master {
            fds.push(libc::pollfd { fd: m.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            if stdin_open {
                fds.push(libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 });
            }
        }
        // SAFETY: valid pollfd array.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    loop {
                        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(s) if s.pid() == Some(Pid::from_raw(pid)) => code = exit_code(s),
                            Ok(_) => {}
                        }
                    }
                } else if sig == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(m.as_fd());
                    }
                } else {
                    // SAFETY: kill takes integers.
                    unsafe { libc::kill(pid, sig) };
                }
            }
        }
        if let Some(m) = &master {
            if fds[1].revents & libc::POLLIN != 0 {
                match nix::unistd::read(m, &mut buf) {
                    Ok(n) if n > 0 => {
                        let _ = nix::unistd::write(std::io::stdout(), &buf[..n]);
                    }
                    _ => {}
                }
            }
            if stdin_open && fds.len() > 2 && fds[2].revents != 0 {
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        let _ = nix::unistd::write(m, &buf[..n]);
                    }
                    _ => stdin_open = false,
                }
            }
        }
    }
}

fn poll_readable(fd: BorrowedFd, timeout: i32) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout) > 0 && p.revents & libc::POLLIN != 0 }
}

/// `ps` table: runs ps(1) with the given options and keeps the header and the container's rows.
pub fn ps_table(pids: &[i32], args: &[String]) -> Result<()> {
    let args: Vec<String> = if args.is_empty() { vec!["-ef".into()] } else { args.to_vec() };
    let out = std::process::Command::new("ps").args(&args).output().context("run ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|h| h == "PID").context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(())
}
