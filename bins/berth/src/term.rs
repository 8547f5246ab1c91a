//! The terminal: tty checks, raw mode restored on every exit path, window size, colour.

use std::io::IsTerminal;
use std::sync::Mutex;

/// The termios to put back, saved when raw mode was entered.
static SAVED: Mutex<Option<(i32, libc::termios)>> = Mutex::new(None);

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Puts `fd` in raw mode (as `cfmakeraw`, keeping output processing so `\n` still returns
/// the carriage where the container's pty does not).
pub fn make_raw(fd: i32) -> std::io::Result<()> {
    // SAFETY: tcgetattr/tcsetattr on a descriptor we were handed, with a termios we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut guard = SAVED.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some((fd, t));
        }
        libc::cfmakeraw(&mut t);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Restores the terminal if raw mode was entered; safe to call more than once.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((fd, t)) = saved {
        // SAFETY: puts back the termios read from the same descriptor.
        unsafe {
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
    }
}

/// (rows, cols) of the terminal on `fd`.
pub fn size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ writes into the winsize we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            Some((ws.ws_row, ws.ws_col))
        } else {
            None
        }
    }
}

/// Colour only when stderr is a terminal and NO_COLOR is unset.
pub fn color_err() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn red(s: &str) -> String {
    if color_err() {
        format!("\x1b[31m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

pub fn dim(s: &str) -> String {
    if color_err() {
        format!("\x1b[2m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}
