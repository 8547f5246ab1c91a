//! `User` and `GroupAdd` -> uid, gid, additional gids, resolved against the rootfs's
//! /etc/passwd and /etc/group as Docker (runc's user package) does. The files are opened with
//! openat2(RESOLVE_IN_ROOT): an image's `/etc -> /host/etc` symlink resolves inside the rootfs,
//! never onto the host.

use std::io::Read;
use std::path::Path;

use berth_runtime::fsutil::{open_root, openat_in_root};

use crate::error::{Error, Result};

/// Ids must fit in a non-negative 32-bit signed int (runc's rule).
const MAX_ID: i64 = i32::MAX as i64;
/// /etc/passwd and /etc/group larger than this are refused rather than read.
const MAX_FILE: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Docker's order: the primary gid, the user's groups from /etc/group, then GroupAdd.
    pub additional_gids: Vec<u32>,
    /// The passwd entry's home ("/" without an entry), for HOME as runc sets it.
    pub home: String,
}

#[derive(Debug, Clone)]
struct Passwd {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// A field as Go's `strconv.Atoi` reads it; runc's parser leaves 0 for unparsable numbers.
fn num(s: &str) -> i64 {
    s.parse().unwrap_or(0)
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or("");
            Passwd { name: at(0).into(), uid: num(at(2)), gid: num(at(3)), home: at(5).into() }
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or("");
            let members = at(3).split(',').filter(|m| !m.is_empty()).map(String::from).collect();
            Group { name: at(0).into(), gid: num(at(2)), members }
        })
        .collect()
}

fn in_range(id: i64) -> Result<u32> {
    if (0..=MAX_ID).contains(&id) {
        Ok(id as u32)
    } else {
        Err(Error::invalid("uids and gids must be in range 0-2147483647"))
    }
}

/// runc's `GetExecUser`: `spec` is `user`, `uid`, `user:group`, `uid:gid`, ... A numeric
/// user is a uid even when no entry has it (gid 0 then); a name must exist.
fn exec_user(spec: &str, passwd: Option<&[Passwd]>, group: Option<&[Group]>) -> Result<(u32, u32, Vec<u32>, String)> {
    let mut parts = spec.split(':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let uid_num = user_arg.parse::<i64>().ok();
    let gid_num = group_arg.parse::<i64>().ok();

    let (mut uid, mut gid, mut home) = (0i64, 0i64, "/".to_string());
    let found = passwd.unwrap_or(&[]).iter().find(|u| match (user_arg, uid_num) {
        ("", _) => u.uid == 0,
        (_, Some(n)) => u.uid == n,
        (name, None) => u.name == name,
    });
    let mut matched_name = None;
    if let Some(u) = found {
        (uid, gid, home) = (u.uid, u.gid, u.home.clone());
        matched_name = Some(u.name.as_str());
    } else if !user_arg.is_empty() {
        let Some(n) = uid_num else {
            return Err(Error::invalid(format!(
                "unable to find user {user_arg}: no matching entries in passwd file"
            )));
        };
        uid = in_range(n)?.into();
    }

    let mut sgids = Vec::new();
    if !group_arg.is_empty() || matched_name.is_some() {
        let groups = group.unwrap_or(&[]);
        if !group_arg.is_empty() {
            match groups.iter().find(|g| match gid_num {
                Some(n) => g.gid == n,
                None => g.name == group_arg,
            }) {
                Some(g) => gid = g.gid,
                None => {
                    let Some(n) = gid_num else {
                        return Err(Error::invalid(format!(
                            "unable to find group {group_arg}: no matching entries in group file"
                        )));
                    };
                    gid = in_range(n)?.into();
                }
            }
        } else if let Some(name) = matched_name {
            // Supplementary groups only in the implicit form (no explicit group).
            sgids = groups.iter().filter(|g| g.members.iter().any(|m| m == name)).map(|g| g.gid).collect();
        }
    }
    let sgids = sgids.into_iter().map(in_range).collect::<Result<Vec<_>>>()?;
    Ok((in_range(uid)?, in_range(gid)?, sgids, home))
}

/// runc's `GetAdditionalGroups`: each GroupAdd entry is a group name or gid from /etc/group,
/// else a plain number; duplicates collapse.
fn additional_groups(adds: &[String], group: Option<&[Group]>) -> Result<Vec<u32>> {
    let groups = group.unwrap_or(&[]);
    let mut out: Vec<u32> = Vec::new();
    for ag in adds {
        let gid = match groups.iter().find(|g| g.name == *ag || g.gid.to_string() == *ag) {
            Some(g) => g.gid,
            None => ag.parse::<i64>().map_err(|_| {
                Error::invalid(format!("Unable to find group {ag}: no matching entries in group file"))
            })?,
        };
        let gid = in_range(gid)?;
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

/// Reads `rel` (e.g. `etc/passwd`) inside `rootfs`; `None` when it (or the rootfs) does not
/// exist, which runc treats as an empty file: numeric ids still work.
fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>> {
    if std::fs::symlink_metadata(rootfs).is_err() {
        return Ok(None);
    }
    let root = open_root(rootfs).map_err(|e| Error::io("open rootfs", rootfs, std::io::Error::other(e.to_string())))?;
    let path = rootfs.join(rel);
    use std::os::fd::AsRawFd;
    let fd = match openat_in_root(root.as_raw_fd(), Path::new(rel), libc::O_RDONLY | libc::O_NOCTTY, 0) {
        Ok(fd) => fd,
        Err(e) if e as i32 == libc::ENOENT || e as i32 == libc::ENOTDIR => return Ok(None),
        Err(e) => return Err(Error::io("open", path, std::io::Error::from_raw_os_error(e as i32))),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("read", &path, e))?;
    Ok(Some(text))
}

/// The process user for `user` (`Config.User`, already merged with the image's) and
/// `group_add` (`HostConfig.GroupAdd`), looked up in the rootfs.
pub(crate) fn resolve(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ExecUser> {
    let passwd = read_in_root(rootfs, "etc/passwd")?.map(|t| parse_passwd(&t));
    // The group file is only needed for names, memberships and GroupAdd.
    let group = read_in_root(rootfs, "etc/group")?.map(|t| parse_group(&t));
    let (uid, gid, sgids, home) = exec_user(user, passwd.as_deref(), group.as_deref())?;
    let adds = additional_groups(group_add, group.as_deref())?;
    let mut additional_gids = vec![gid];
    additional_gids.extend(sgids);
    additional_gids.extend(adds);
    Ok(ExecUser { uid, gid, additional_gids, home })
}

/// Create-time check without the rootfs: numeric ids must be in range; names are looked up
/// at start. The result stands in for the real user (a name counts as root).
pub(crate) fn check_numeric(user: &str, group_add: &[String]) -> Result<ExecUser> {
    let mut parts = user.split(':');
    let id = |p: Option<&str>| -> Result<u32> {
        match p.and_then(|p| p.parse::<i64>().ok()) {
            Some(n) => in_range(n),
            None => Ok(0),
        }
    };
    let (uid, gid) = (id(parts.next())?, id(parts.next())?);
    for g in group_add {
        if let Ok(n) = g.parse::<i64>() {
            in_range(n)?;
        }
    }
    Ok(ExecUser { uid, gid, additional_gids: vec![gid], home: "/".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/:/bin/false\n\
        web:x:1000:1001:Web:/home/web:/bin/sh\n\
        \n   \n\
        bad:x:notanumber:5::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,web\nweb:x:1001:\naudio:x:29:web\nstaff:x:50:\n";

    fn resolve_text(user: &str, adds: &[&str]) -> Result<ExecUser> {
        let p = parse_passwd(PASSWD);
        let g = parse_group(GROUP);
        let (uid, gid, sgids, home) = exec_user(user, Some(&p), Some(&g))?;
        let adds: Vec<String> = adds.iter().map(|s| s.to_string()).collect();
        let mut additional_gids = vec![gid];
        additional_gids.extend(sgids);
        additional_gids.extend(additional_groups(&adds, Some(&g))?);
        Ok(ExecUser { uid, gid, additional_gids, home })
    }

    fn ids(u: ExecUser) -> (u32, u32, Vec<u32>) {
        (u.uid, u.gid, u.additional_gids)
    }

    #[test]
    fn users_like_runc() {
        // Default: root, with root's memberships.
        assert_eq!(ids(resolve_text("", &[]).unwrap()), (0, 0, vec![0, 10]));
        assert_eq!(ids(resolve_text("web", &[]).unwrap()), (1000, 1001, vec![1001, 10, 29]));
        assert_eq!(resolve_text("web", &[]).unwrap().home, "/home/web");
        assert_eq!(resolve_text("4242", &[]).unwrap().home, "/");
        assert_eq!(ids(resolve_text("1000", &[]).unwrap()), (1000, 1001, vec![1001, 10, 29]));
        // Explicit group: no supplementary groups.
        assert_eq!(ids(resolve_text("web:staff", &[]).unwrap()), (1000, 50, vec![50]));
        assert_eq!(ids(resolve_text("web:77", &[]).unwrap()), (1000, 77, vec![77]));
        // Unknown numeric uid: gid 0.
        assert_eq!(ids(resolve_text("4242", &[]).unwrap()), (4242, 0, vec![0]));
        assert_eq!(ids(resolve_text("4242:4243", &[]).unwrap()), (4242, 4243, vec![4243]));
        // A non-numeric uid field parses as 0 (runc), so "bad" is uid 0.
        assert_eq!(ids(resolve_text("bad", &[]).unwrap()).0, 0);
    }

    #[test]
    fn user_errors_like_runc() {
        assert_eq!(
            resolve_text("nobody", &[]).unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            resolve_text("web:nogroup", &[]).unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert_eq!(
            resolve_text("-1", &[]).unwrap_err().to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        assert!(resolve_text("1:2147483648", &[]).is_err());
    }

    #[test]
    fn group_add() {
        assert_eq!(ids(resolve_text("web", &["staff", "29", "4000", "staff"]).unwrap()).2, vec![1001, 10, 29, 50, 29, 4000]);
        assert_eq!(
            resolve_text("", &["nogroup"]).unwrap_err().to_string(),
            "Unable to find group nogroup: no matching entries in group file"
        );
    }

    #[test]
    fn numeric_check_without_rootfs() {
        assert_eq!(check_numeric("5:6", &[]).unwrap().uid, 5);
        assert_eq!(check_numeric("app", &["staff".into()]).unwrap().uid, 0);
        assert!(check_numeric("-3", &[]).is_err());
        assert!(check_numeric("", &["99999999999".into()]).is_err());
    }

    #[test]
    fn no_passwd_file() {
        assert_eq!(exec_user("", None, None).unwrap(), (0, 0, vec![], "/".into()));
        assert_eq!(exec_user("7:8", None, None).unwrap(), (7, 8, vec![], "/".into()));
        assert!(exec_user("web", None, None).is_err());
        assert!(exec_user("0:web", None, None).is_err());
    }

    #[test]
    fn files_are_read_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "app:x:555:556::/:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "grp:x:556:app\nextra:x:600:app\n").unwrap();
        let u = resolve(&root, "app", &["grp".into()]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (555, 556, vec![556, 556, 600, 556]));

        // Symlinks resolve inside the rootfs, never to the host's files: an absolute one
        // (to a host directory holding a passwd with a `root` entry) and a relative one
        // climbing out with `..` both land on nothing inside the rootfs.
        let host_etc = dir.path().join("host_etc");
        std::fs::create_dir_all(&host_etc).unwrap();
        std::fs::write(host_etc.join("passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        for target in [host_etc.to_string_lossy().into_owned(), "../../../host_etc".to_string()] {
            let evil = tempfile::tempdir_in(dir.path()).unwrap();
            std::os::unix::fs::symlink(&target, evil.path().join("etc")).unwrap();
            assert_eq!(read_in_root(evil.path(), "etc/passwd").unwrap(), None, "{target}");
            assert!(resolve(evil.path(), "root", &[]).is_err(), "the host's root entry must not be found");
            assert_eq!(resolve(evil.path(), "0:0", &[]).unwrap().uid, 0);
            assert_eq!(read_in_root(evil.path(), "../../host_etc/passwd").unwrap(), None);
        }
    }
}
