//! A container's network sandbox: a network namespace kept alive by a bind mount on a file
//! under the exec root, so it exists before the container's process and outlives the daemon.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::netlink::Rtnl;

/// Creates the namespace bound at `path`; returns a netlink socket inside it and a descriptor
/// of it. A short-lived thread does the unshare so the caller's thread keeps its namespace.
pub fn create(path: &Path) -> Result<(Rtnl, OwnedFd)> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::path("create", dir, e))?;
    }
    std::fs::File::create(path).map_err(|e| Error::path("create", path, e))?;
    let res = std::thread::scope(|s| {
        s.spawn(|| -> Result<(Rtnl, OwnedFd)> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::errno("unshare the network namespace", e))?;
            mount(Some("/proc/thread-self/ns/net"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| Error::errno(format!("bind the network namespace on {}", path.display()), e))?;
            let rtnl = Rtnl::open()?;
            let fd = std::fs::File::open(path).map_err(|e| Error::path("open", path, e))?;
            Ok((rtnl, fd.into()))
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Internal("network namespace thread panicked".into())))
    });
    if res.is_err() {
        remove(path);
    }
    res
}

/// A netlink socket and a descriptor inside an existing sandbox (a second interface). The
/// socket stays bound to the namespace it was created in, so a short-lived thread setns'es.
pub fn enter(path: &Path) -> Result<(Rtnl, OwnedFd)> {
    let fd: OwnedFd = std::fs::File::open(path).map_err(|e| Error::path("open", path, e))?.into();
    let rtnl = std::thread::scope(|s| {
        s.spawn(|| -> Result<Rtnl> {
            nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::errno(format!("enter the network namespace {}", path.display()), e))?;
            Rtnl::open()
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Internal("network namespace thread panicked".into())))
    })?;
    Ok((rtnl, fd))
}

/// A UDP socket and a TCP listener bound to `addr` inside the sandbox (the embedded DNS
/// server's, on 127.0.0.11:53), non-blocking. A socket stays in the namespace it was made in,
/// so a short-lived thread enters the namespace to make them and the caller serves them from
/// its own.
pub fn bind_inside(path: &Path, addr: std::net::SocketAddr) -> Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let fd: OwnedFd = std::fs::File::open(path).map_err(|e| Error::path("open", path, e))?.into();
    std::thread::scope(|s| {
        s.spawn(|| -> Result<(std::net::UdpSocket, std::net::TcpListener)> {
            nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::errno(format!("enter the network namespace {}", path.display()), e))?;
            let udp = std::net::UdpSocket::bind(addr).map_err(|e| Error::io(format!("bind udp {addr} in {}", path.display()), e))?;
            let tcp = std::net::TcpListener::bind(addr).map_err(|e| Error::io(format!("bind tcp {addr} in {}", path.display()), e))?;
            for r in [udp.set_nonblocking(true), tcp.set_nonblocking(true)] {
                r.map_err(|e| Error::io("make the DNS sockets non-blocking", e))?;
            }
            Ok((udp, tcp))
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Internal("network namespace thread panicked".into())))
    })
}

/// Unbinds and removes the namespace file (the namespace goes with its last user).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
