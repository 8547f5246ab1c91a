//! Parent <-> container-init messages over a SOCK_SEQPACKET socketpair: one datagram per message,
//! a tag byte and a payload, optionally carrying a file descriptor (SCM_RIGHTS).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// parent -> child: cgroup joined, id maps written: go on.
    Go = 1,
    /// child -> parent: mounts prepared, run prestart/createRuntime hooks now.
    RunHooks = 2,
    /// parent -> child: hooks done.
    HooksDone = 3,
    /// child -> parent: set up, waiting for `start`.
    Ready = 4,
    /// child -> parent: setup failed; payload is the message.
    Error = 5,
    /// child -> parent: pid (host view) of the process that will exec; payload i32 LE.
    Pid = 6,
    /// child -> parent: a file descriptor (pty master) is attached.
    Fd = 7,
}

impl Tag {
    fn from_u8(b: u8) -> Option<Tag> {
        Some(match b {
            1 => Tag::Go,
            2 => Tag::RunHooks,
            3 => Tag::HooksDone,
            4 => Tag::Ready,
            5 => Tag::Error,
            6 => Tag::Pid,
            7 => Tag::Fd,
            _ => return None,
        })
    }
}

pub struct Channel {
    pub fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::sys("socketpair for init sync", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

#[derive(Debug)]
pub struct Message {
    pub tag: Tag,
    pub payload: Vec<u8>,
    pub fd: Option<OwnedFd>,
}

impl Message {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn pid(&self) -> Option<i32> {
        Some(i32::from_le_bytes(self.payload.get(..4)?.try_into().ok()?))
    }
}

impl Channel {
    pub fn send(&self, tag: Tag, payload: &[u8]) -> Result<()> {
        self.send_fd(tag, payload, None)
    }

    pub fn send_fd(&self, tag: Tag, payload: &[u8], fd: Option<RawFd>) -> Result<()> {
        let head = [tag as u8];
        let iov = [IoSlice::new(&head), IoSlice::new(payload)];
        let fds;
        let cmsg: Vec<ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        loop {
            // MSG_NOSIGNAL: a peer that died must be an error here, not a SIGPIPE (a caller may
            // run with SIGPIPE at its default, fatal action).
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(format!("send {tag:?} to init sync socket"), e)),
            }
        }
    }

    pub fn send_pid(&self, pid: i32) -> Result<()> {
        self.send(Tag::Pid, &pid.to_le_bytes())
    }

    /// Receives one message; a closed peer (EOF) is an error naming `waiting_for`.
    pub fn recv(&self, waiting_for: &str) -> Result<Message> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC);
            let msg = match r {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(format!("waiting for {waiting_for}"), e)),
            };
            if msg.bytes == 0 {
                return Err(Error::Init(format!("init exited while waiting for {waiting_for}")));
            }
            let mut fd = None;
            for c in msg.cmsgs().map_err(|e| Error::sys("read control message", e))? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for f in fds {
                        // SAFETY: the kernel just installed this descriptor for us.
                        let owned = unsafe { OwnedFd::from_raw_fd(f) };
                        if fd.is_none() {
                            fd = Some(owned);
                        }
                    }
                }
            }
            let n = msg.bytes;
            let tag = Tag::from_u8(buf[0])
                .ok_or_else(|| Error::Init(format!("bad sync message tag {}", buf[0])))?;
            return Ok(Message { tag, payload: buf[1..n].to_vec(), fd });
        }
    }

    /// Receives and requires a specific tag; an Error message from the peer becomes Error::Init.
    pub fn expect(&self, tag: Tag, waiting_for: &str) -> Result<Message> {
        let m = self.recv(waiting_for)?;
        match m.tag {
            t if t == tag => Ok(m),
            Tag::Error => Err(Error::Init(m.text())),
            other => Err(Error::Init(format!("expected {tag:?} while waiting for {waiting_for}, got {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross() {
        let (a, b) = pair().unwrap();
        a.send(Tag::Error, b"mount proc: EPERM").unwrap();
        let e = b.expect(Tag::Ready, "ready").unwrap_err().to_string();
        assert!(e.contains("mount proc: EPERM"), "{e}");
        a.send_pid(4242).unwrap();
        assert_eq!(b.expect(Tag::Pid, "pid").unwrap().pid(), Some(4242));
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_fd(Tag::Fd, b"pty", Some(f.as_raw_fd())).unwrap();
        let m = b.expect(Tag::Fd, "fd").unwrap();
        assert!(m.fd.is_some());
        drop(a);
        assert!(b.recv("eof").unwrap_err().to_string().contains("init exited"));
    }
}
