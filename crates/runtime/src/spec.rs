//! Loading and validating a bundle's config.json. Everything that can be checked before any
//! process, mount or cgroup exists is checked here, so a bad spec changes nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::capabilities::CapSets;
use crate::error::{Error, Result};
use crate::rlimits;

/// A loaded bundle: the spec plus the absolute paths derived from it.
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json's text, which state.json stores as is (see state::StoredSpec).
    pub raw: String,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("open bundle", dir, e))?;
        let cfg = dir.join("config.json");
        let data = std::fs::read(&cfg).map_err(|e| Error::io("read", &cfg, e))?;
        let spec: Spec = serde_json::from_slice(&data)
            .map_err(|e| Error::invalid(format!("{}: {e}", cfg.display())))?;
        // serde_json accepted it: valid UTF-8.
        let raw = String::from_utf8(data).map_err(|e| Error::invalid(format!("{}: {e}", cfg.display())))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::invalid("root is required"))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        let rootfs =
            std::fs::canonicalize(&rootfs).map_err(|e| Error::io("open rootfs", &rootfs, e))?;
        if !rootfs.is_dir() {
            return Err(Error::invalid(format!("rootfs {} is not a directory", rootfs.display())));
        }
        Ok(Bundle { dir, rootfs, spec, raw })
    }
}

/// Maps OCI namespace types to clone flags.
pub fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

pub fn ns_proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Which namespaces are new and which are joined by path.
#[derive(Default, Debug, Clone)]
pub struct NamespacePlan {
    /// CLONE_NEW* flags for namespaces the container gets of its own.
    pub new: libc::c_int,
    /// Namespaces joined by path, in the order they must be entered (user first).
    pub join: Vec<(libc::c_int, PathBuf)>,
}

impl NamespacePlan {
    pub fn has_new(&self, flag: libc::c_int) -> bool {
        self.new & flag != 0
    }
    pub fn joins(&self, flag: libc::c_int) -> bool {
        self.join.iter().any(|(f, _)| *f == flag)
    }
    /// Whether the container has its own namespace of this kind (new or joined).
    pub fn isolated(&self, flag: libc::c_int) -> bool {
        self.has_new(flag) || self.joins(flag)
    }
}

pub fn namespace_plan(spec: &Spec) -> Result<NamespacePlan> {
    let mut plan = NamespacePlan::default();
    let mut seen = HashSet::new();
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    for ns in namespaces {
        let flag = ns_flag(ns.typ());
        if !seen.insert(flag) {
            return Err(Error::invalid(format!("namespace {} listed twice", ns_proc_name(ns.typ()))));
        }
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.exists() {
                    return Err(Error::invalid(format!(
                        "{} namespace path {}: does not exist",
                        ns_proc_name(ns.typ()),
                        p.display()
                    )));
                }
                plan.join.push((flag, p.clone()));
            }
            _ => {
                if flag == libc::CLONE_NEWTIME && !Path::new("/proc/self/ns/time").exists() {
                    return Err(Error::invalid("time namespaces are not supported by this kernel"));
                }
                plan.new |= flag;
            }
        }
    }
    // The user namespace must be entered first so the others are entered with its privileges.
    plan.join.sort_by_key(|(f, _)| if *f == libc::CLONE_NEWUSER { 0 } else { 1 });
    Ok(plan)
}

/// Sysctls that are namespaced, and the namespace they need (as runc and the kernel define them).
fn sysctl_namespace(key: &str) -> Option<libc::c_int> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(libc::CLONE_NEWIPC)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(libc::CLONE_NEWUTS)
    } else if key.starts_with("net.") {
        Some(libc::CLONE_NEWNET)
    } else {
        None
    }
}

/// Validates the whole spec against the host before anything is created.
pub fn validate(spec: &Spec, plan: &NamespacePlan) -> Result<()> {
    let process = spec.process().as_ref().ok_or_else(|| Error::invalid("process is required"))?;
    let args = process.args().as_ref().map(|a| a.as_slice()).unwrap_or_default();
    if args.is_empty() {
        return Err(Error::invalid("process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::invalid(format!(
            "process.cwd {} must be an absolute path",
            process.cwd().display()
        )));
    }
    if let Some(env) = process.env() {
        for e in env {
            if !e.contains('=') {
                return Err(Error::invalid(format!("process.env entry {e:?} is not KEY=value")));
            }
        }
    }
    if let Some(caps) = process.capabilities() {
        CapSets::from_spec(caps)?.check_bounding()?;
    }
    if let Some(limits) = process.rlimits() {
        rlimits::validate(limits)?;
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !plan.isolated(libc::CLONE_NEWUTS) {
        return Err(Error::invalid("hostname requires a UTS namespace"));
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(Error::invalid(format!(
                "mount destination {} must be absolute",
                m.destination().display()
            )));
        }
        crate::mountopts::parse(m.options().as_deref().unwrap_or_default())?;
    }
    if let Some(linux) = spec.linux() {
        if plan.has_new(libc::CLONE_NEWUSER)
            && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
                || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
        {
            return Err(Error::invalid("a new user namespace needs uidMappings and gidMappings"));
        }
        for key in linux.sysctl().as_ref().map(|s| s.keys().collect::<Vec<_>>()).unwrap_or_default() {
            match sysctl_namespace(key) {
                Some(ns) if plan.isolated(ns) => {}
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "sysctl {key} is not in a separate kernel namespace"
                    )))
                }
                None => {
                    return Err(Error::invalid(format!("sysctl {key} is not namespaced: refused")))
                }
            }
            if key.contains("..") || key.contains('/') {
                return Err(Error::invalid(format!("sysctl {key}: invalid name")));
            }
        }
        if let Some(p) = linux.rootfs_propagation() {
            crate::mountopts::propagation_flag(p)
                .ok_or_else(|| Error::invalid(format!("rootfsPropagation {p:?} is not valid")))?;
        }
        for d in linux.devices().as_deref().unwrap_or_default() {
            if !d.path().is_absolute() {
                return Err(Error::invalid(format!("device path {} must be absolute", d.path().display())));
            }
            if d.typ() == oci_spec::runtime::LinuxDeviceType::A {
                return Err(Error::invalid(format!("device {}: type 'a' is not a node type", d.path().display())));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plan_separates_new_and_joined_user_first() {
        let s = spec(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[
            {"type":"pid"},{"type":"network","path":"/proc/self/ns/net"},
            {"type":"user","path":"/proc/self/ns/user"},{"type":"mount"}]}}"#,
        );
        let p = namespace_plan(&s).unwrap();
        assert_eq!(p.new, libc::CLONE_NEWPID | libc::CLONE_NEWNS);
        assert_eq!(p.join[0].0, libc::CLONE_NEWUSER);
        assert_eq!(p.join[1].0, libc::CLONE_NEWNET);
    }

    #[test]
    fn duplicate_and_missing_namespaces_rejected() {
        let s = spec(r#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#);
        assert!(namespace_plan(&s).unwrap_err().to_string().contains("listed twice"));
        let s = spec(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"network","path":"/nonexistent/ns"}]}}"#,
        );
        assert!(namespace_plan(&s).unwrap_err().to_string().contains("does not exist"));
    }

    #[test]
    fn validation_catches_bad_input() {
        let base = |extra: &str| {
            spec(&format!(
                r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},
                "process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
                "linux":{{"namespaces":[{{"type":"mount"}},{{"type":"ipc"}}]}}{extra}}}"#
            ))
        };
        let ok = base("");
        validate(&ok, &namespace_plan(&ok).unwrap()).unwrap();
        let s = base(r#","hostname":"x""#);
        assert!(validate(&s, &namespace_plan(&s).unwrap()).unwrap_err().to_string().contains("UTS"));
        let s = base(r#","mounts":[{"destination":"rel","type":"tmpfs","source":"tmpfs"}]"#);
        assert!(validate(&s, &namespace_plan(&s).unwrap()).unwrap_err().to_string().contains("absolute"));
        let mut s = base("");
        s.linux_mut().as_mut().unwrap().set_sysctl(Some(
            [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
        ));
        let e = validate(&s, &namespace_plan(&s).unwrap()).unwrap_err().to_string();
        assert!(e.contains("not in a separate kernel namespace"), "{e}");
        s.linux_mut().as_mut().unwrap().set_sysctl(Some(
            [("kernel.shmmax".to_string(), "1".to_string())].into(),
        ));
        validate(&s, &namespace_plan(&s).unwrap()).unwrap();
        s.linux_mut().as_mut().unwrap().set_sysctl(Some(
            [("vm.swappiness".to_string(), "1".to_string())].into(),
        ));
        assert!(validate(&s, &namespace_plan(&s).unwrap()).is_err());
    }
}
