//! Terminals: the container process gets a pty from the container's own devpts; its master is sent
//! over the `--console-socket` (SCM_RIGHTS, as runc does) to whoever drives the container.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result, SysContext};

/// Connects to the console socket in the parent (the path is on the host, unreachable after
/// pivot_root); the child inherits the connected fd.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(|e| Error::io("connect to console socket", path, e))?;
    Ok(s.into())
}

/// Opens a new pty pair inside the container (after pivot_root) and returns (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).step(|| "open /dev/ptmx in container")?;
    nix::pty::unlockpt(&master).step(|| "unlockpt")?;
    // SAFETY: single-threaded child; ptsname's static buffer is not shared.
    let name = unsafe { nix::pty::ptsname(&master) }.step(|| "ptsname")?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .step(|| format!("open {name}"))?;
    // SAFETY: PtyMaster owns a valid fd which we take over.
    let master_fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    Ok((master_fd, slave))
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: valid pointer to winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(Error::sys("set terminal size", Errno::last()));
    }
    Ok(())
}

/// Makes the slave the controlling terminal and stdio of the calling process (a session leader).
pub fn become_controlling(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().step(|| "setsid")?;
    // SAFETY: valid fd; TIOCSCTTY takes an int argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::sys("set controlling terminal", Errno::last()));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::sys(format!("dup pty onto fd {target}"), Errno::last()));
        }
    }
    Ok(())
}

/// Sends the master over the console socket with a name payload, as runc's clients expect.
pub fn send_master(socket: RawFd, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(socket, &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .step(|| "send pty master over console socket")?;
    Ok(())
}

/// The receiving end of a console socket: reads one message and returns the fd it carries.
pub fn recv_master(socket: RawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(socket, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).step(|| "receive pty master")?;
    for c in msg.cmsgs().step(|| "read control message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Init("console socket message carried no pty master".into()))
}
