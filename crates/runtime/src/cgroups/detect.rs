//! Which cgroup layout the host has, from `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use super::{cg_err, fs};
use crate::Result;

/// A cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mountpoint: PathBuf,
    /// Its controllers from the mount's super options, in mount order: `["cpu", "cpuacct"]`,
    /// or `["name=systemd"]` for a named hierarchy without controllers.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup v1 hierarchies (named hierarchies such as `name=systemd` included).
    V1 { hierarchies: Vec<Hierarchy> },
    /// Only cgroup2 (v1 hierarchies that carry no controller, such as a leftover
    /// `name=systemd`, are ignored).
    V2 { mountpoint: PathBuf },
    /// v1 hierarchies with controllers, plus a cgroup2 mount (systemd's "hybrid" mode, usually
    /// at `/sys/fs/cgroup/unified`). Controllers not bound to v1 (often `hugetlb`, `misc`) may be
    /// usable there; every cgroup2 directory also has `cgroup.freeze`/`cgroup.kill` and takes a
    /// device filter.
    Hybrid {
        hierarchies: Vec<Hierarchy>,
        unified: PathBuf,
    },
}

/// v1 controller names as they appear in mount options.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// The layout, as [`detect_fresh`] would find it, remembered while the mount table does not
/// change. Reading mountinfo costs 0.1-0.2 ms (more with many mounts), and one container's
/// lifecycle needs the layout several times (create; the monitor's OOM counter; delete, twice).
/// The check is a poll(2) of the mountinfo the layout came from, kept open, which reports any
/// mount or unmount in its namespace since (POLLPRI), and a stat of this thread's mount
/// namespace.
pub fn detect() -> Result<Layout> {
    let ns = mnt_ns();
    // try_lock: a forked child must never wait for a lock a vanished thread held.
    let Ok(mut cache) = CACHE.try_lock() else { return detect_fresh() };
    if let Some(c) = cache.as_ref().filter(|c| ns.is_some_and(|n| n == c.mnt_ns)) {
        if !mounts_changed(&c.mountinfo) {
            return Ok(c.layout.clone());
        }
    }
    // Opened before reading: a change in between is seen by the next poll.
    const MOUNTINFO: &str = "/proc/thread-self/mountinfo";
    let mut f = std::fs::File::open(MOUNTINFO).map_err(|e| crate::Error::io("open", MOUNTINFO, e))?;
    let mut text = String::with_capacity(8192);
    std::io::Read::read_to_string(&mut f, &mut text).map_err(|e| crate::Error::io("read", MOUNTINFO, e))?;
    let layout = Layout::from_mountinfo(&text, Path::new("/"))?;
    #[cfg(test)]
    READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    *cache = ns.map(|mnt_ns| Cached { mountinfo: f, mnt_ns, layout: layout.clone() });
    Ok(layout)
}

/// Detects the layout from the calling thread's mountinfo (one read).
pub fn detect_fresh() -> Result<Layout> {
    // thread-self: the mount namespace of the calling thread, whose paths the layout is for.
    let text = fs::read(Path::new("/proc/thread-self/mountinfo"))?;
    Layout::from_mountinfo(&text, Path::new("/"))
}

/// The last layout [`detect`] read: the mountinfo it came from, kept open, and the mount
/// namespace it describes.
struct Cached {
    mountinfo: std::fs::File,
    mnt_ns: u64,
    layout: Layout,
}

static CACHE: std::sync::Mutex<Option<Cached>> = std::sync::Mutex::new(None);

/// How often [`detect`] read mountinfo (tests check that it does not always).
#[cfg(test)]
static READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn mnt_ns() -> Option<u64> {
    std::fs::metadata("/proc/thread-self/ns/mnt").ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

fn mounts_changed(f: &std::fs::File) -> bool {
    let mut p = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(f), events: libc::POLLPRI, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    // (mountinfo always polls readable: only PRI/ERR mean a change.)
    r < 0 || p.revents & (libc::POLLPRI | libc::POLLERR) != 0
}

impl Layout {
    /// Parses a mountinfo text. Every mountpoint is taken relative to `root` (`/` for the real
    /// host; a temporary directory in tests). When a hierarchy is mounted several times, the
    /// mount under `/sys/fs/cgroup` wins, else the first one.
    pub fn from_mountinfo(text: &str, root: &Path) -> Result<Layout> {
        let mut v1: Vec<Hierarchy> = Vec::new();
        let mut unified: Option<PathBuf> = None;
        for line in text.lines() {
            let Some(m) = parse_line(line) else { continue };
            let mountpoint = root.join(m.mountpoint.trim_start_matches('/'));
            match m.fstype {
                "cgroup2" => {
                    let better = match &unified {
                        None => true,
                        Some(cur) => rank(&m.mountpoint) < rank_path(cur, root),
                    };
                    if better {
                        unified = Some(mountpoint);
                    }
                }
                "cgroup" => {
                    let controllers: Vec<String> = m
                        .super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    let mut key = controllers.clone();
                    key.sort();
                    let same = v1.iter().position(|h| {
                        let mut k = h.controllers.clone();
                        k.sort();
                        k == key
                    });
                    match same {
                        None => v1.push(Hierarchy {
                            mountpoint,
                            controllers,
                        }),
                        Some(i) => {
                            if rank(&m.mountpoint) < rank_path(&v1[i].mountpoint, root) {
                                v1[i] = Hierarchy {
                                    mountpoint,
                                    controllers,
                                };
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let has_real_v1 = v1
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (has_real_v1, unified) {
            (true, Some(unified)) => Ok(Layout::Hybrid {
                hierarchies: v1,
                unified,
            }),
            (true, None) => Ok(Layout::V1 { hierarchies: v1 }),
            (false, Some(mountpoint)) => Ok(Layout::V2 { mountpoint }),
            (false, None) if !v1.is_empty() => Ok(Layout::V1 { hierarchies: v1 }),
            (false, None) => Err(cg_err(
                "no cgroup filesystem is mounted (none found in /proc/self/mountinfo)",
            )),
        }
    }

    /// The cgroup2 mountpoint, if any (pure v2 or hybrid).
    pub fn unified_mountpoint(&self) -> Option<&Path> {
        match self {
            Layout::V2 { mountpoint } => Some(mountpoint),
            Layout::Hybrid { unified, .. } => Some(unified),
            Layout::V1 { .. } => None,
        }
    }

    /// The v1 hierarchies (empty for pure v2).
    pub fn hierarchies(&self) -> &[Hierarchy] {
        match self {
            Layout::V1 { hierarchies } | Layout::Hybrid { hierarchies, .. } => hierarchies,
            Layout::V2 { .. } => &[],
        }
    }
}

/// Lower is better: `/sys/fs/cgroup` itself, then below it, then anywhere else.
fn rank(mountpoint: &str) -> u8 {
    if mountpoint == "/sys/fs/cgroup" {
        0
    } else if mountpoint.starts_with("/sys/fs/cgroup/") {
        1
    } else {
        2
    }
}

fn rank_path(p: &Path, root: &Path) -> u8 {
    let rel = p.strip_prefix(root).unwrap_or(p);
    rank(&format!("/{}", rel.to_string_lossy()))
}

struct MountLine<'a> {
    mountpoint: String,
    fstype: &'a str,
    super_opts: &'a str,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_line(line: &str) -> Option<MountLine<'_>> {
    let (head, tail) = line.split_once(" - ")?;
    let mut head = head.split(' ');
    let mountpoint = head.nth(4)?;
    let mut tail = tail.split(' ');
    let fstype = tail.next()?;
    if fstype != "cgroup" && fstype != "cgroup2" {
        return None;
    }
    let _source = tail.next()?;
    let super_opts = tail.next().unwrap_or("");
    Some(MountLine {
        mountpoint: unescape(mountpoint),
        fstype,
        super_opts,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller's own cgroup, from a `/proc/self/cgroup` text: the cgroup2 entry (`0::/x`) if
/// there is one, else the `name=systemd` entry, else the first entry.
pub(super) fn own_cgroup(proc_self_cgroup: &str) -> Option<String> {
    let mut first = None;
    let mut systemd = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let path = path.trim_end_matches(" (deleted)").to_string();
        if id == "0" && ctrls.is_empty() {
            return Some(path);
        }
        if ctrls.split(',').any(|c| c == "name=systemd") {
            systemd.get_or_insert(path.clone());
        }
        first.get_or_insert(path);
    }
    systemd.or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This development host: v1 controllers on separate mounts, hugetlb on cgroup2.
    const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
25 1 0:23 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 25 0:26 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
31 30 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// Classic systemd v1 layout: cpu and cpuacct co-mounted, plus a bind of one hierarchy
    /// into a container rootfs that must not win over the /sys/fs/cgroup one.
    const PURE_V1: &str = "\
24 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
25 24 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
90 1 0:26 /docker/x /var/lib/x/rootfs/sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
28 24 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
29 24 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
30 24 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
31 24 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpuset,clone_children
";

    fn h(mp: &str, c: &[&str]) -> Hierarchy {
        Hierarchy {
            mountpoint: PathBuf::from(mp),
            controllers: c.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn detects_hybrid_host() {
        let l = Layout::from_mountinfo(HYBRID, Path::new("/")).unwrap();
        let Layout::Hybrid {
            hierarchies,
            unified,
        } = &l
        else {
            panic!("{l:?}")
        };
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(hierarchies.len(), 9);
        assert_eq!(hierarchies[0], h("/sys/fs/cgroup/cpu", &["cpu"]));
        assert_eq!(
            hierarchies[8],
            h("/sys/fs/cgroup/systemd", &["name=systemd"])
        );
        assert!(hierarchies.iter().any(|h| h.has("freezer")));
        assert_eq!(
            l.unified_mountpoint(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn detects_pure_v2() {
        let l = Layout::from_mountinfo(PURE_V2, Path::new("/")).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                mountpoint: PathBuf::from("/sys/fs/cgroup")
            }
        );
        assert!(l.hierarchies().is_empty());
    }

    #[test]
    fn detects_pure_v1_comounted() {
        let l = Layout::from_mountinfo(PURE_V1, Path::new("/")).unwrap();
        let Layout::V1 { hierarchies } = &l else {
            panic!("{l:?}")
        };
        assert_eq!(
            hierarchies,
            &vec![
                h("/sys/fs/cgroup/systemd", &["name=systemd"]),
                h("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"]),
                h("/sys/fs/cgroup/memory", &["memory"]),
                h("/sys/fs/cgroup/net_cls,net_prio", &["net_cls", "net_prio"]),
                h("/sys/fs/cgroup/cpuset", &["cpuset"]),
            ]
        );
        assert_eq!(l.unified_mountpoint(), None);
    }

    #[test]
    fn v2_with_named_v1_leftover_is_v2() {
        let text = format!(
            "{PURE_V2}40 31 0:40 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
        );
        let l = Layout::from_mountinfo(&text, Path::new("/")).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                mountpoint: PathBuf::from("/sys/fs/cgroup")
            }
        );
    }

    #[test]
    fn prefers_sys_fs_cgroup_for_cgroup2_and_rebases_on_root() {
        let text = "\
50 1 0:50 / /run/other rw - cgroup2 cgroup2 rw
31 30 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let l = Layout::from_mountinfo(text, Path::new("/tmp/fake")).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                mountpoint: PathBuf::from("/tmp/fake/sys/fs/cgroup")
            }
        );
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let err = Layout::from_mountinfo("27 1 254:0 / / rw - ext4 /dev/vda rw\n", Path::new("/"))
            .unwrap_err();
        assert!(err.to_string().contains("no cgroup filesystem"), "{err}");
    }

    #[test]
    fn cached_layout_follows_mount_changes() {
        let first = detect().unwrap();
        assert_eq!(first, detect_fresh().unwrap());
        let reads = READS.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(detect().unwrap(), first);
        // (Other tests may mount meanwhile, but not every time.)
        let cached = (0..20).filter(|_| {
            let before = READS.load(std::sync::atomic::Ordering::Relaxed);
            detect().unwrap();
            READS.load(std::sync::atomic::Ordering::Relaxed) == before
        });
        assert!(cached.count() > 0, "detect never used its cache ({reads} reads)");
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // In a mount namespace of this thread's own, unmount one cgroup filesystem: the cache
        // must notice both the other namespace and the unmount in it.
        let seen = first.clone();
        std::thread::spawn(move || {
            use nix::mount::{mount, umount2, MntFlags, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS).unwrap();
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
            assert_eq!(detect().unwrap(), seen);
            let gone = seen.hierarchies().first().map(|h| h.mountpoint.clone());
            let gone = gone.or_else(|| seen.unified_mountpoint().map(Path::to_path_buf)).unwrap();
            umount2(&gone, MntFlags::MNT_DETACH).unwrap();
            let after = detect();
            assert_eq!(format!("{after:?}"), format!("{:?}", detect_fresh()));
            assert_ne!(after.ok().as_ref(), Some(&seen));
        })
        .join()
        .unwrap();
        assert_eq!(detect().unwrap(), first);
    }

    #[test]
    fn unescapes_mountpoints() {
        assert_eq!(unescape(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape(r"/tail\04"), r"/tail\04");
        let text = "31 30 0:27 / /my\\040cg rw - cgroup2 cgroup2 rw\n";
        let l = Layout::from_mountinfo(text, Path::new("/")).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                mountpoint: PathBuf::from("/my cg")
            }
        );
    }

    #[test]
    fn own_cgroup_prefers_unified_then_systemd() {
        let hybrid = "9:name=systemd:/user.slice\n4:memory:/process_api/e9\n0::/init.scope\n";
        assert_eq!(own_cgroup(hybrid).as_deref(), Some("/init.scope"));
        let v1 = "4:memory:/m\n1:name=systemd:/user.slice/x.scope\n";
        assert_eq!(own_cgroup(v1).as_deref(), Some("/user.slice/x.scope"));
        assert_eq!(own_cgroup("4:memory:/m\n").as_deref(), Some("/m"));
        assert_eq!(own_cgroup("").as_deref(), None);
    }
}
