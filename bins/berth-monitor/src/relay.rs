//! The monitor's loop while the container runs: poll(2) over the container's output, its stdin,
//! monitor.sock and its clients, and a signalfd for SIGCHLD. Output goes to the json-file log
//! and to every attached client that asked for that stream; client input goes to the container's
//! stdin. When the init exits: delete the container, drain its output (bounded), hand back what
//! the exit record needs. No threads, no async runtime, fixed-size buffers.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::children::{self, OomCounter};
use crate::clients::{Client, Handshake, Request, MAX_CLIENTS};
use crate::jsonlog::JsonLog;
use crate::{sys, MonitorConfig};

/// One read of the container's output (and so the largest attach frame).
const READ_BUF: usize = 32 * 1024;
/// Client input waiting for the container to read its stdin; while it is not empty, clients'
/// stdin is not read (backpressure to the clients, no unbounded buffer).
const INPUT_BUF: usize = 4096;
/// After the init exits: how long the rest of the output may take to arrive.
const DRAIN_MS: i64 = 2000;
/// Quiet time after activity before memory is given back again.
const IDLE_TRIM_MS: libc::c_int = 10_000;
/// Then: how long attached clients get to take what is queued for them.
const CLIENT_FLUSH_MS: i64 = 2000;

// Fixed slots at the start of the poll set; clients follow.
const SIG: usize = 0;
const LISTEN: usize = 1;
const OUT: usize = 2; // OUT + stream: 2 stdout (or the pty), 3 stderr
const STDIN: usize = 4;
const FIRST_CLIENT: usize = 5;

pub(crate) struct Relay<'a> {
    pub(crate) cfg: &'a MonitorConfig,
    pub(crate) init_pid: i32,
    pub(crate) oom: OomCounter,
    /// stdout and stderr pipes; with a tty, [pty master, None].
    pub(crate) outputs: [Option<OwnedFd>; 2],
    /// The stdin pipe; with a tty, a dup of the master (dropping it closes nothing).
    pub(crate) stdin: Option<OwnedFd>,
    /// The pty master, for resize.
    pub(crate) master: Option<RawFd>,
    pub(crate) log: Option<JsonLog>,
    pub(crate) listener: Option<OwnedFd>,
    pub(crate) sigfd: OwnedFd,
    pub(crate) clients: Vec<Client>,
    input: Vec<u8>,
    input_off: usize,
    close_stdin_when_flushed: bool,
    buf: Vec<u8>,
    pfds: Vec<libc::pollfd>,
    status: Option<libc::c_int>,
    finished_at: String,
    exiting: bool,
    oom_killed: bool,
    errors: Vec<String>,
}

/// What the loop leaves for the exit record, and the clients to close after it is written.
pub(crate) struct Outcome {
    pub(crate) exit_code: i32,
    pub(crate) oom_killed: bool,
    pub(crate) finished_at: String,
    pub(crate) errors: Vec<String>,
    pub(crate) clients: Vec<Client>,
}

impl<'a> Relay<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: &'a MonitorConfig,
        init_pid: i32,
        oom: OomCounter,
        outputs: [Option<OwnedFd>; 2],
        stdin: Option<OwnedFd>,
        master: Option<RawFd>,
        log: Option<JsonLog>,
        listener: OwnedFd,
        sigfd: OwnedFd,
    ) -> Relay<'a> {
        Relay {
            cfg,
            init_pid,
            oom,
            outputs,
            stdin,
            master,
            log,
            listener: Some(listener),
            sigfd,
            clients: Vec::new(),
            input: Vec::new(),
            input_off: 0,
            close_stdin_when_flushed: false,
            buf: Vec::new(),
            pfds: Vec::new(),
            status: None,
            finished_at: String::new(),
            exiting: false,
            oom_killed: false,
            errors: Vec::new(),
        }
    }

    pub(crate) fn run(mut self) -> Outcome {
        // Children that exited before the signalfd existed sent a SIGCHLD nobody saw.
        self.reap();
        let mut deadline = i64::MAX;
        // Give memory back: first what setup faulted in, later what a burst of activity did,
        // once things have been quiet for IDLE_TRIM_MS.
        let mut trim = true;
        let mut active = false;
        loop {
            if self.status.is_some() && !self.exiting {
                self.begin_exit();
                deadline = sys::monotonic_ms() + DRAIN_MS;
            }
            if self.exiting && (self.outputs.iter().all(Option::is_none) || sys::monotonic_ms() >= deadline) {
                break;
            }
            if trim {
                self.shrink();
                // Inlined here, and nothing below calls out of this function until poll returns
                // (see trim), so the idle loop keeps just its own code resident.
                crate::trim::release_binary_pages();
                trim = false;
            }
            self.build_pollset();
            let timeout = match (self.exiting, active) {
                (true, _) => (deadline - sys::monotonic_ms()).clamp(0, DRAIN_MS) as libc::c_int,
                (false, true) => IDLE_TRIM_MS,
                (false, false) => -1,
            };
            let poll = |pfds: &mut Vec<libc::pollfd>, timeout| {
                // SAFETY: pfds is a valid array of pollfds.
                unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) }
            };
            let mut n = -1;
            if self.log.as_ref().is_some_and(|l| l.has_pending()) {
                // Log entries are written when nothing more is waiting to be read.
                n = poll(&mut self.pfds, 0);
                if n == 0 {
                    if let Some(log) = &mut self.log {
                        log.flush();
                    }
                }
            }
            if n <= 0 {
                n = poll(&mut self.pfds, timeout);
            }
            if n == 0 && active && !self.exiting {
                active = false;
                trim = true;
            }
            if n > 0 {
                self.dispatch();
                active = true;
            }
        }
        self.finish()
    }

    /// Frees buffers a burst grew, and the heap's free pages; sizes the poll set so that the
    /// idle loop does not allocate.
    #[inline(never)]
    fn shrink(&mut self) {
        self.buf = Vec::new();
        if self.input_off >= self.input.len() {
            self.input = Vec::new();
            self.input_off = 0;
        }
        if let Some(log) = &mut self.log {
            log.shrink();
        }
        self.pfds = Vec::with_capacity(FIRST_CLIENT + self.clients.len());
        // SAFETY: glibc's malloc_trim only returns free memory to the kernel.
        unsafe { libc::malloc_trim(0) };
    }

    #[inline(always)]
    fn build_pollset(&mut self) {
        let pfd = |fd: RawFd, events: libc::c_short| libc::pollfd { fd, events, revents: 0 };
        let raw = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
        let input_waiting = self.input_off < self.input.len();
        self.pfds.clear();
        self.pfds.push(pfd(self.sigfd.as_raw_fd(), libc::POLLIN));
        self.pfds.push(pfd(raw(&self.listener), libc::POLLIN));
        self.pfds.push(pfd(raw(&self.outputs[0]), libc::POLLIN));
        self.pfds.push(pfd(raw(&self.outputs[1]), libc::POLLIN));
        self.pfds.push(pfd(if input_waiting { raw(&self.stdin) } else { -1 }, libc::POLLOUT));
        for c in &self.clients {
            let mut events = 0;
            if c.pending() > 0 {
                events |= libc::POLLOUT;
            }
            // Input from a client waits while earlier input is still on its way to the container.
            let stalled = input_waiting && c.stdin;
            if !c.read_closed && !stalled {
                events |= libc::POLLIN;
            }
            // A hung-up client reports POLLHUP whatever we ask: leave it out until it can be read.
            let fd = if stalled && c.hup { -1 } else { c.raw() };
            self.pfds.push(pfd(fd, events));
        }
    }

    // Out of line: the loop that waits stays small, so its code is one page-cache window.
    #[inline(never)]
    fn dispatch(&mut self) {
        if self.pfds[SIG].revents != 0 {
            sys::drain_signalfd(self.sigfd.as_raw_fd());
            self.reap();
        }
        for s in 0..2 {
            if self.pfds[OUT + s].revents != 0 {
                self.read_output(s);
            }
        }
        if self.pfds[STDIN].revents != 0 {
            self.flush_input();
        }
        let polled = self.pfds.len() - FIRST_CLIENT;
        if self.pfds[LISTEN].revents != 0 {
            self.accept();
        }
        for i in 0..polled {
            let revents = self.pfds[FIRST_CLIENT + i].revents;
            if revents != 0 && !self.client_event(i, revents) {
                self.clients[i].dead = true;
            }
        }
        // Only now: removing shifts clients, and the poll set's slots follow their order.
        self.drop_dead();
    }

    /// Reaps every child (the monitor is a subreaper: processes of the container can end up
    /// here) and notes the init's status.
    fn reap(&mut self) {
        while let Ok((pid, status)) = sys::waitpid(-1, libc::WNOHANG) {
            if pid <= 0 {
                break;
            }
            if pid == self.init_pid {
                self.status = Some(status);
                self.finished_at = crate::jsonlog::now_rfc3339();
            }
        }
    }

    fn read_output(&mut self, s: usize) {
        let Some(fd) = self.outputs[s].as_ref().map(|f| f.as_raw_fd()) else { return };
        if self.buf.is_empty() {
            self.buf = vec![0; READ_BUF];
        }
        match sys::read(fd, &mut self.buf) {
            Ok(0) => self.outputs[s] = None,
            Ok(n) => self.output(s, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // EIO: the pty's last slave closed; anything else is as final.
            Err(_) => self.outputs[s] = None,
        }
    }

    /// Sends `buf[..n]`, read from stream `s`, to the log and to the clients that want it.
    fn output(&mut self, s: usize, n: usize) {
        let data = &self.buf[..n];
        if let Some(log) = &mut self.log {
            log.write(s, data, sys::now());
        }
        let tty = self.cfg.tty;
        let mut header = [(s + 1) as u8, 0, 0, 0, 0, 0, 0, 0];
        header[4..].copy_from_slice(&(n as u32).to_be_bytes());
        let header: &[u8] = if tty { &[] } else { &header };
        for c in self.clients.iter_mut().filter(|c| c.attached && !c.dead) {
            let wants = if s == 0 { c.stdout } else { c.stderr };
            if wants && !c.send(header, data) {
                // Removed at the end of dispatch.
                c.dead = true;
            }
        }
    }

    /// Writes waiting client input to the container's stdin.
    fn flush_input(&mut self) {
        let Some(fd) = self.stdin.as_ref().map(|f| f.as_raw_fd()) else {
            self.input.clear();
            self.input_off = 0;
            return;
        };
        while self.input_off < self.input.len() {
            match sys::write(fd, &self.input[self.input_off..]) {
                Ok(n) => self.input_off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The container closed its stdin (EPIPE): input has nowhere to go.
                    self.stdin = None;
                    break;
                }
            }
        }
        self.input.clear();
        self.input_off = 0;
        if self.close_stdin_when_flushed {
            self.stdin = None;
        }
    }

    fn accept(&mut self) {
        let Some(l) = self.listener.as_ref().map(|l| l.as_raw_fd()) else { return };
        loop {
            // SAFETY: null address pointers are allowed.
            let fd = unsafe { libc::accept4(l, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) };
            if fd < 0 {
                return;
            }
            // SAFETY: a descriptor accept4 just returned.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            if self.clients.len() < MAX_CLIENTS {
                self.clients.push(Client::new(fd));
            }
        }
    }

    /// Handles poll events of client `i`. Returns false when it is to be dropped.
    fn client_event(&mut self, i: usize, revents: libc::c_short) -> bool {
        if self.clients[i].dead {
            return false;
        }
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            self.clients[i].hup = true;
        }
        if !self.clients[i].attached {
            return self.handshake(i);
        }
        if revents & libc::POLLOUT != 0 && !self.clients[i].flush() {
            return false;
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && !self.clients[i].read_closed {
            self.client_input(i);
        }
        // Fully gone (not just done sending): nothing more can be written to it.
        !(self.clients[i].hup && self.clients[i].read_closed)
    }

    fn handshake(&mut self, i: usize) -> bool {
        let req = match self.clients[i].read_request() {
            Handshake::Pending => return true,
            Handshake::Gone => return false,
            Handshake::Line(r) => r,
        };
        let c = &mut self.clients[i];
        match req {
            Ok(Request::Attach { .. }) if self.exiting => {
                c.answer("error the container has exited\n");
                false
            }
            Ok(Request::Attach { stdin, stdout, stderr }) => {
                c.attached = true;
                c.stdin = stdin;
                c.stdout = stdout;
                c.stderr = stderr;
                c.answer("ok\n")
            }
            Ok(Request::Resize { rows, cols }) => {
                let r = match self.master {
                    Some(m) => berth_runtime::terminal::set_size(m, rows, cols).map_err(|e| e.to_string()),
                    None => Err("the container has no terminal".to_string()),
                };
                match r {
                    Ok(()) => c.answer("ok\n"),
                    Err(e) => c.answer(&format!("error {e}\n")),
                };
                false
            }
            Ok(Request::Kill { signal }) => {
                // Once reaped the pid is not ours to signal any more.
                // SAFETY: kill of our own child, not reaped yet.
                let r = if self.status.is_none() { unsafe { libc::kill(self.init_pid, signal) } } else { 0 };
                if r == 0 {
                    c.answer("ok\n");
                } else {
                    c.answer(&format!("error kill: {}\n", io::Error::last_os_error()));
                }
                false
            }
            Err(e) => {
                c.answer(&format!("error {e}\n"));
                false
            }
        }
    }

    /// Reads what an attached client sent: the container's stdin when it asked for stdin and the
    /// container has one, else discarded. EOF ends that client's stdin.
    fn client_input(&mut self, i: usize) {
        let to_stdin = self.clients[i].stdin && self.stdin.is_some() && !self.exiting;
        let mut scratch = [0u8; 512];
        let r = if to_stdin {
            if self.input_off < self.input.len() {
                return; // still busy with earlier input
            }
            self.input.resize(INPUT_BUF, 0);
            let r = sys::read(self.clients[i].raw(), &mut self.input);
            self.input.truncate(*r.as_ref().unwrap_or(&0));
            self.input_off = 0;
            r
        } else {
            sys::read(self.clients[i].raw(), &mut scratch)
        };
        match r {
            Ok(0) => self.stdin_ended(i),
            Ok(_) if to_stdin => self.flush_input(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.stdin_ended(i),
        }
    }

    /// Client `i` will send nothing more: with StdinOnce, its stdin ending closes the
    /// container's (once what it sent has been delivered). Not with a TTY: as with Docker, a
    /// detached terminal client can attach again and type.
    fn stdin_ended(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.read_closed = true;
        if c.stdin && self.cfg.stdin_once && !self.cfg.tty && self.stdin.is_some() {
            if self.input_off < self.input.len() {
                self.close_stdin_when_flushed = true;
            } else {
                self.stdin = None;
            }
        }
    }

    /// Closes the clients marked dead; one that had stdin and had not ended it, ends it now.
    fn drop_dead(&mut self) {
        let mut i = 0;
        while i < self.clients.len() {
            if self.clients[i].dead {
                if self.clients[i].attached && !self.clients[i].read_closed {
                    self.stdin_ended(i);
                }
                self.clients.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// The init has exited: note OOM (before the cgroup goes), delete the container (killing
    /// what is left, so the output reaches EOF), stop taking connections and input.
    #[inline(never)]
    fn begin_exit(&mut self) {
        self.exiting = true;
        self.oom_killed = self.oom.fired();
        // An exec's end is not the container's: the container stays.
        if self.cfg.exec.is_none() {
            if let Err(e) = children::delete(&self.cfg.runtime_root, &self.cfg.id) {
                self.errors.push(e);
            }
        }
        self.listener = None;
        self.stdin = None;
        self.input.clear();
        self.input_off = 0;
    }

    #[inline(never)]
    fn finish(mut self) -> Outcome {
        if let Some(log) = &mut self.log {
            log.finish();
            if let Some(e) = log.failed.take() {
                self.errors.push(e);
            }
        }
        if self.outputs.iter().any(Option::is_some) {
            self.errors.push(format!("the container's output did not end within {DRAIN_MS} ms of its exit; the rest is not logged"));
        }
        self.flush_clients();
        Outcome {
            exit_code: sys::exit_code(self.status.unwrap_or(0)),
            oom_killed: self.oom_killed,
            finished_at: self.finished_at,
            errors: self.errors,
            clients: self.clients,
        }
    }

    /// Gives attached clients a bounded time to take their queued output.
    fn flush_clients(&mut self) {
        let deadline = sys::monotonic_ms() + CLIENT_FLUSH_MS;
        loop {
            self.clients.retain_mut(|c| c.flush() && (c.pending() > 0 || c.attached));
            let waiting: Vec<libc::pollfd> =
                self.clients.iter().filter(|c| c.pending() > 0).map(|c| libc::pollfd { fd: c.raw(), events: libc::POLLOUT, revents: 0 }).collect();
            let left = deadline - sys::monotonic_ms();
            if waiting.is_empty() || left <= 0 {
                return;
            }
            let mut w = waiting;
            // SAFETY: valid pollfd array.
            unsafe { libc::poll(w.as_mut_ptr(), w.len() as libc::nfds_t, left as libc::c_int) };
        }
    }
}
