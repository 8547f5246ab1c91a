//! The spec's mounts, as Docker assembles them: its default set (with /dev/shm sized and the
//! init binary), the request's mounts sorted parents-first and overriding defaults at the same
//! path, the /etc files, then the read-only-rootfs and privileged adjustments.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::host::mount_propagation;
use crate::input::EtcFiles;
use crate::volumes::{clean, Kind, UserMount};

/// Where the init binary appears in the container (Docker's path).
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

/// Docker's default mounts (moby `oci.DefaultLinuxSpec`): destination, type, source, options.
const DEFAULTS: [(&str, &str, &str, &[&str]); 7] = [
    ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
    ("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
    ("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
    ("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
    ("/sys/fs/cgroup", "cgroup", "cgroup", &["ro", "nosuid", "noexec", "nodev"]),
    ("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777"]),
];

/// Mounts a read-only rootfs leaves writable (Docker's list).
const RW_UNDER_READONLY_ROOT: [&str; 5] = ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"];

/// Tmpfs options Docker's `MergeTmpfsOptions` knows, with the group each belongs to: of a
/// group, the last one given wins (`ro` after `rw`, `exec` after `noexec`).
const TMPFS_FLAGS: [(&str, &str); 33] = [
    ("ro", "rdonly"), ("rw", "rdonly"), ("suid", "nosuid"), ("nosuid", "nosuid"),
    ("dev", "nodev"), ("nodev", "nodev"), ("exec", "noexec"), ("noexec", "noexec"),
    ("sync", "sync"), ("async", "sync"), ("dirsync", "dirsync"), ("remount", "remount"),
    ("mand", "mand"), ("nomand", "mand"), ("atime", "noatime"), ("noatime", "noatime"),
    ("diratime", "nodiratime"), ("nodiratime", "nodiratime"), ("bind", "bind"), ("rbind", "rbind"),
    ("unbindable", "propagation"), ("runbindable", "propagation"), ("private", "propagation"),
    ("rprivate", "propagation"), ("shared", "propagation"), ("rshared", "propagation"),
    ("slave", "propagation"), ("rslave", "propagation"), ("relatime", "relatime"),
    ("norelatime", "relatime"), ("strictatime", "strictatime"), ("nostrictatime", "strictatime"),
    ("defaults", ""),
];
/// `key=value` tmpfs options Docker accepts.
const TMPFS_DATA: [&str; 7] = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];

/// Docker's `MergeTmpfsOptions`: drops duplicates keeping the last of each kind, in order.
pub(crate) fn merge_tmpfs_options(options: &[&str]) -> Result<Vec<String>> {
    let mut seen_flags: Vec<&str> = Vec::new();
    let mut seen_data: Vec<&str> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for opt in options.iter().rev() {
        if let Some((_, group)) = TMPFS_FLAGS.iter().find(|(o, _)| o == opt) {
            if !group.is_empty() && !seen_flags.contains(group) {
                seen_flags.push(group);
                out.push(opt.to_string());
            }
            continue;
        }
        let kv: Vec<&str> = opt.splitn(2, '=').collect();
        if kv.len() != 2 || !(kv[0].is_empty() || TMPFS_DATA.contains(&kv[0])) {
            let quoted: Vec<String> = kv.iter().map(|p| format!("{p:?}")).collect();
            return Err(Error::invalid(format!("invalid tmpfs option [{}]", quoted.join(" "))));
        }
        if !seen_data.contains(&kv[0]) {
            seen_data.push(kv[0]);
            out.push(opt.to_string());
        }
    }
    out.reverse();
    Ok(out)
}

fn mount(dest: &str, typ: &str, source: &str, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.into()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options));
    m
}

/// How /dev/shm is provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shm {
    /// A private tmpfs of this many bytes (IpcMode private, shareable without a host path).
    Private(u64),
    /// None at all (IpcMode none).
    None,
    /// A bind of this host path (IpcMode host, container:, shareable with a host path).
    Bind(PathBuf),
}

/// Everything the mount assembly depends on.
pub(crate) struct MountPlan<'a> {
    pub user: Vec<UserMount>,
    pub etc: Option<EtcFiles<'a>>,
    pub shm: Shm,
    pub init: Option<&'a Path>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub writable_cgroups: bool,
    /// Read-only binds can be made recursively read-only (`rro`: kernel 5.12+).
    pub rro: bool,
    pub data_root: Option<&'a Path>,
    /// Create missing bind sources (at start; not when only validating).
    pub create_sources: bool,
}

/// A user bind or tmpfs, or one of Docker's internal binds (/etc files, /dev/shm).
struct Planned {
    dest: String,
    kind: Kind,
}

fn internal_bind(dest: &str, source: &Path, writable: bool) -> Planned {
    Planned { dest: dest.into(), kind: crate::volumes::bind_kind(source, writable) }
}

fn has_propagation(optional_fields: &str, prefixes: &[&str]) -> bool {
    optional_fields.split(' ').any(|f| prefixes.iter().any(|p| f.starts_with(p)))
}

/// The mounts, the rootfs propagation Docker would set (for shared/slave binds), warnings.
pub(crate) fn build(plan: MountPlan) -> Result<(Vec<Mount>, Option<String>, Vec<String>)> {
    let mut warnings = Vec::new();
    let requested: Vec<&str> = plan.user.iter().map(|m| m.dest.as_str()).collect();
    let mut planned: Vec<Planned> = Vec::new();
    let user_binds = plan.user.iter().filter(|m| matches!(m.kind, Kind::Bind { .. }));
    planned.extend(user_binds.map(|m| Planned { dest: m.dest.clone(), kind: m.kind.clone() }));
    // The /etc files, unless the request mounts something there; read-only with the rootfs.
    if let Some(etc) = plan.etc {
        for (dest, src) in [("/etc/resolv.conf", etc.resolv_conf), ("/etc/hostname", etc.hostname), ("/etc/hosts", etc.hosts)] {
            if let Some(src) = src.filter(|_| !requested.contains(&dest)) {
                planned.push(internal_bind(dest, src, !plan.readonly_rootfs));
            }
        }
    }
    if let Shm::Bind(src) = &plan.shm {
        if !requested.contains(&"/dev/shm") {
            planned.push(internal_bind("/dev/shm", src, true));
        }
    }
    let user_tmpfs = plan.user.iter().filter(|m| matches!(m.kind, Kind::Tmpfs { .. }));
    planned.extend(user_tmpfs.map(|m| Planned { dest: m.dest.clone(), kind: m.kind.clone() }));
    // Parents before children (a stable sort by depth, as Docker's sort of `mounts`).
    planned.sort_by_key(|m| clean(&m.dest).split('/').count());

    let user_dests: Vec<&str> = planned.iter().map(|m| m.dest.as_str()).collect();
    let dev_taken = user_dests.contains(&"/dev");
    let mut mounts: Vec<Mount> = Vec::new();
    for (dest, typ, source, opts) in DEFAULTS {
        if user_dests.contains(&dest) || (dev_taken && dest.starts_with("/dev/")) {
            continue;
        }
        let mut opts: Vec<String> = opts.iter().map(|o| o.to_string()).collect();
        if dest == "/dev/shm" {
            match &plan.shm {
                Shm::Private(size) => opts.push(format!("size={size}")),
                Shm::None | Shm::Bind(_) => continue,
            }
        }
        mounts.push(mount(dest, typ, source, opts));
    }
    if let Some(init) = plan.init {
        if !user_dests.contains(&INIT_PATH_IN_CONTAINER) {
            let src = init.to_string_lossy();
            mounts.push(mount(INIT_PATH_IN_CONTAINER, "bind", &src, vec!["bind".into(), "ro".into()]));
        }
    }
    let defaults_end = mounts.len();

    let mut rootfs_propagation: Option<String> = None;
    for m in &planned {
        match &m.kind {
            Kind::Tmpfs { data } => {
                let mut opts = vec!["noexec", "nosuid", "nodev", "rprivate"];
                opts.extend(data.split(',').filter(|o| !o.is_empty()));
                mounts.push(mount(&m.dest, "tmpfs", "tmpfs", merge_tmpfs_options(&opts)?));
            }
            Kind::Bind { source, writable, propagation, explicit_propagation, non_recursive, ro_non_recursive, ro_force_recursive, create_source } => {
                let mut propagation = propagation.clone();
                if let Some(root) = plan.data_root {
                    let src = Path::new(source);
                    if src.starts_with(root) || root.starts_with(src) {
                        // Docker keeps its own root's mounts from being pinned by containers.
                        if !*explicit_propagation {
                            propagation = "rslave".into();
                        } else if !["rslave", "rshared"].contains(&propagation.as_str()) {
                            return Err(Error::invalid(format!(
                                "invalid mount config: must use either propagation mode \"rslave\" or \"rshared\" when mount source is within the daemon root, daemon root: {:?}, bind mount source: {:?}, propagation: {:?}",
                                root.display().to_string(), source, propagation
                            )));
                        }
                    }
                }
                if *create_source && plan.create_sources && std::fs::symlink_metadata(source).is_err() {
                    std::fs::create_dir_all(source).map_err(|e| Error::io("create bind source", source, e))?;
                }
                match propagation.as_str() {
                    "shared" | "rshared" => {
                        let (mp, fields) = mount_propagation(Path::new(source))?;
                        if !has_propagation(&fields, &["shared:"]) {
                            return Err(Error::invalid(format!(
                                "path {source} is mounted on {} but it is not a shared mount",
                                mp.display()
                            )));
                        }
                        if !matches!(rootfs_propagation.as_deref(), Some("shared" | "rshared")) {
                            rootfs_propagation = Some("shared".into());
                        }
                    }
                    "slave" | "rslave" => {
                        let (mp, fields) = mount_propagation(Path::new(source))?;
                        if has_propagation(&fields, &["shared:", "master:"]) {
                            if rootfs_propagation.is_none() {
                                rootfs_propagation = Some("rslave".into());
                            }
                        } else if *explicit_propagation {
                            return Err(Error::invalid(format!(
                                "path {source} is mounted on {} but it is not a shared or slave mount",
                                mp.display()
                            )));
                        } else {
                            warnings.push(format!("Falling back to default propagation for bind source in daemon root: {source}"));
                        }
                    }
                    _ => {}
                }
                let mut opts = vec![if *non_recursive { "bind" } else { "rbind" }.to_string()];
                if !*writable {
                    opts.push("ro".into());
                }
                opts.push(propagation);
                if !*writable && !*ro_non_recursive {
                    // Read-only binds are recursively read-only where the kernel can (Docker 25+).
                    if plan.rro {
                        opts.push("rro".into());
                    } else if *ro_force_recursive {
                        return Err(Error::invalid(format!(
                            "recursively read-only mount of {} needs Linux 5.12 or later (mount_setattr)",
                            m.dest
                        )));
                    }
                }
                mounts.push(mount(&m.dest, "bind", source, opts));
            }
            // `volumes::resolve` turned every volume into a bind (or dropped it when validating).
            Kind::Volume { .. } => {
                return Err(Error::invalid(format!("the volume at {} reached the mount plan unresolved", m.dest)))
            }
        }
    }

    if plan.readonly_rootfs {
        for m in &mut mounts[..defaults_end] {
            let dest = m.destination().to_string_lossy().into_owned();
            let opts = m.options_mut().get_or_insert_with(Vec::new);
            if !RW_UNDER_READONLY_ROOT.contains(&dest.as_str()) && !opts.iter().any(|o| o == "ro") {
                opts.push("ro".into());
            }
        }
    }
    for m in &mut mounts {
        let cgroup = m.typ().as_deref() == Some("cgroup");
        let sys = m.destination() == Path::new("/sys");
        if (plan.privileged && (sys || cgroup)) || (cgroup && plan.writable_cgroups) {
            if let Some(opts) = m.options_mut() {
                opts.retain(|o| o != "ro");
            }
        }
    }
    Ok((mounts, rootfs_propagation, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan<'a>() -> MountPlan<'a> {
        MountPlan {
            user: vec![],
            etc: None,
            shm: Shm::Private(64 << 20),
            init: None,
            readonly_rootfs: false,
            privileged: false,
            writable_cgroups: false,
            rro: true,
            data_root: None,
            create_sources: true,
        }
    }

    fn summary(ms: &[Mount]) -> Vec<String> {
        ms.iter()
            .map(|m| format!("{} {} {}", m.destination().display(), m.typ().as_deref().unwrap_or(""), m.options().as_deref().unwrap_or_default().join(",")))
            .collect()
    }

    #[test]
    fn tmpfs_options_merge_like_docker() {
        let m = |o: &[&str]| merge_tmpfs_options(o).unwrap();
        assert_eq!(m(&["noexec", "nosuid", "nodev", "rprivate"]), ["noexec", "nosuid", "nodev", "rprivate"]);
        assert_eq!(m(&["noexec", "nosuid", "nodev", "rprivate", "size=1m", "noexec"]), ["nosuid", "nodev", "rprivate", "size=1m", "noexec"]);
        assert_eq!(m(&["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1", "size=2", "rshared"]), ["nosuid", "nodev", "exec", "size=2", "rshared"]);
        assert_eq!(m(&["defaults", "ro", "rw"]), ["rw"]);
        assert_eq!(merge_tmpfs_options(&["bogus"]).unwrap_err().to_string(), r#"invalid tmpfs option ["bogus"]"#);
        assert_eq!(merge_tmpfs_options(&["foo=bar"]).unwrap_err().to_string(), r#"invalid tmpfs option ["foo" "bar"]"#);
    }

    #[test]
    fn docker_defaults() {
        let (ms, prop, w) = build(plan()).unwrap();
        assert_eq!(
            summary(&ms),
            [
                "/proc proc nosuid,noexec,nodev",
                "/dev tmpfs nosuid,strictatime,mode=755,size=65536k",
                "/dev/pts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
                "/sys sysfs nosuid,noexec,nodev,ro",
                "/sys/fs/cgroup cgroup ro,nosuid,noexec,nodev",
                "/dev/mqueue mqueue nosuid,noexec,nodev",
                "/dev/shm tmpfs nosuid,noexec,nodev,mode=1777,size=67108864",
            ]
        );
        assert_eq!(ms[6].source().as_deref(), Some(Path::new("shm")));
        assert!(prop.is_none() && w.is_empty());
    }

    #[test]
    fn like_the_docker_20_10_daemon_generated() {
        // docker run --init --read-only --tmpfs /run --tmpfs /x:size=1m,noexec --shm-size 1m
        //   -v /d:/data:ro --mount type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=0700
        let user = crate::volumes::user_mounts(
            &["/tmp:/data:ro".into()],
            &[berth_api::container_config::Mount {
                typ: "tmpfs".into(),
                target: "/scratch".into(),
                tmpfs_options: Some(berth_api::container_config::TmpfsOptions { size_bytes: 1 << 20, mode: 0o700, options: None }),
                ..Default::default()
            }],
            Some(&[("/run".to_string(), String::new()), ("/x".to_string(), "size=1m,noexec".to_string())].into()),
        )
        .unwrap();
        let etc = EtcFiles { hostname: Some(Path::new("/c/hostname")), hosts: Some(Path::new("/c/hosts")), resolv_conf: Some(Path::new("/c/resolv.conf")) };
        let (ms, _, _) = build(MountPlan {
            user,
            etc: Some(etc),
            shm: Shm::Private(1 << 20),
            init: Some(Path::new("/usr/bin/docker-init")),
            readonly_rootfs: true,
            rro: false,
            ..plan()
        })
        .unwrap();
        assert_eq!(
            summary(&ms)[6..],
            [
                "/dev/shm tmpfs nosuid,noexec,nodev,mode=1777,size=1048576",
                "/sbin/docker-init bind bind,ro",
                "/data bind rbind,ro,rprivate",
                "/run tmpfs noexec,nosuid,nodev,rprivate",
                "/x tmpfs nosuid,nodev,rprivate,size=1m,noexec",
                "/scratch tmpfs noexec,nosuid,nodev,rprivate,mode=700,size=1m",
                "/etc/resolv.conf bind rbind,ro,rprivate",
                "/etc/hostname bind rbind,ro,rprivate",
                "/etc/hosts bind rbind,ro,rprivate",
            ]
        );
        assert_eq!(ms[7].source().as_deref(), Some(Path::new("/usr/bin/docker-init")));
    }

    #[test]
    fn user_mounts_override_defaults() {
        let user = vec![
            UserMount { dest: "/dev".into(), kind: Kind::Tmpfs { data: String::new() }, mode: String::new() },
            UserMount { dest: "/etc/hosts".into(), kind: Kind::Tmpfs { data: String::new() }, mode: String::new() },
        ];
        let etc = EtcFiles { hostname: Some(Path::new("/c/hostname")), hosts: Some(Path::new("/c/hosts")), resolv_conf: Some(Path::new("/c/resolv.conf")) };
        let (ms, _, _) = build(MountPlan { user, etc: Some(etc), ..plan() }).unwrap();
        let dests: Vec<String> = ms.iter().map(|m| m.destination().display().to_string()).collect();
        // The request's tmpfs replaces /etc/hosts; tmpfs mounts come after binds, as Docker
        // collects them.
        assert_eq!(dests, ["/proc", "/sys", "/sys/fs/cgroup", "/dev", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]);
        assert_eq!(ms[6].typ().as_deref(), Some("tmpfs"));
    }

    #[test]
    fn ipc_modes_shape_dev_shm() {
        let (ms, _, _) = build(MountPlan { shm: Shm::None, ..plan() }).unwrap();
        assert!(!summary(&ms).iter().any(|m| m.starts_with("/dev/shm")));
        let (ms, _, _) = build(MountPlan { shm: Shm::Bind("/dev/shm".into()), readonly_rootfs: true, ..plan() }).unwrap();
        assert_eq!(summary(&ms).last().unwrap(), "/dev/shm bind rbind,rprivate");
    }

    #[test]
    fn privileged_and_writable_cgroups() {
        let (ms, _, _) = build(MountPlan { privileged: true, readonly_rootfs: true, ..plan() }).unwrap();
        let s = summary(&ms);
        assert!(s.contains(&"/sys sysfs nosuid,noexec,nodev".to_string()), "{s:?}");
        assert!(s.contains(&"/sys/fs/cgroup cgroup nosuid,noexec,nodev".to_string()), "{s:?}");
        let (ms, _, _) = build(MountPlan { writable_cgroups: true, ..plan() }).unwrap();
        let s = summary(&ms);
        assert!(s.contains(&"/sys/fs/cgroup cgroup nosuid,noexec,nodev".to_string()));
        assert!(s.contains(&"/sys sysfs nosuid,noexec,nodev,ro".to_string()));
    }

    #[test]
    fn read_only_binds_are_recursive_where_possible() {
        let user = crate::volumes::user_mounts(&["/tmp:/a:ro".into(), "/tmp:/b".into()], &[], None).unwrap();
        let (ms, _, _) = build(MountPlan { user, ..plan() }).unwrap();
        let s = summary(&ms);
        assert!(s.contains(&"/a bind rbind,ro,rprivate,rro".to_string()), "{s:?}");
        assert!(s.contains(&"/b bind rbind,rprivate".to_string()), "{s:?}");
    }

    #[test]
    fn binds_around_the_data_root_are_rslave() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        let src = dir.path().to_string_lossy().into_owned();
        let user = crate::volumes::user_mounts(&[format!("{src}:/d")], &[], None).unwrap();
        let (ms, _, _) = build(MountPlan { user, data_root: Some(&root), ..plan() }).unwrap();
        let last = summary(&ms).pop().unwrap();
        assert_eq!(last, "/d bind rbind,rslave");
        let user = crate::volumes::user_mounts(&[format!("{src}:/d:rprivate")], &[], None).unwrap();
        let e = build(MountPlan { user, data_root: Some(&root), ..plan() }).unwrap_err();
        assert!(e.to_string().starts_with("invalid mount config: must use either propagation mode"), "{e}");
    }

    #[test]
    fn missing_bind_sources_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("new/dir");
        let user = crate::volumes::user_mounts(&[format!("{}:/d", src.display())], &[], None).unwrap();
        build(MountPlan { user, ..plan() }).unwrap();
        assert!(src.is_dir());
    }
}
