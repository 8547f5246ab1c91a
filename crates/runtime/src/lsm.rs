//! AppArmor profiles and SELinux labels: applied where the kernel has the LSM enabled, skipped
//! with a warning where it does not (so one spec works on every host).

use std::path::Path;

use crate::error::{Error, Result};

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// What the child must write just before execve. Decided in the parent so warnings are printed
/// once, where the user sees them.
#[derive(Debug, Default, Clone)]
pub struct Labels {
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
}

pub fn plan(apparmor: Option<&str>, selinux: Option<&str>, warn: &mut dyn FnMut(String)) -> Labels {
    let mut l = Labels::default();
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        if apparmor_enabled() {
            l.apparmor = Some(p.to_string());
        } else {
            warn(format!("AppArmor profile {p:?} not applied: AppArmor is not enabled on this host"));
        }
    }
    if let Some(s) = selinux.filter(|s| !s.is_empty()) {
        if selinux_enabled() {
            l.selinux = Some(s.to_string());
        } else {
            warn(format!("SELinux label {s:?} not applied: SELinux is not enabled on this host"));
        }
    }
    l
}

fn write_attr(paths: &[&str], value: &str) -> Result<()> {
    let mut last = None;
    for p in paths {
        match std::fs::write(p, value) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some((p, e)),
        }
    }
    let (p, e) = last.expect("at least one attr path");
    Err(Error::io(format!("set label {value:?} via"), p, e))
}

impl Labels {
    /// Takes effect at the next execve.
    pub fn apply(&self) -> Result<()> {
        if let Some(p) = &self.apparmor {
            write_attr(&["/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"], &format!("exec {p}"))?;
        }
        if let Some(s) = &self.selinux {
            write_attr(&["/proc/thread-self/attr/exec"], s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_lsms_warn_instead_of_failing() {
        let mut warnings = vec![];
        let l = plan(Some("docker-default"), Some("system_u:system_r:container_t:s0"), &mut |w| warnings.push(w));
        assert_eq!(l.apparmor.is_some(), apparmor_enabled());
        assert_eq!(l.selinux.is_some(), selinux_enabled());
        let expected = usize::from(!apparmor_enabled()) + usize::from(!selinux_enabled());
        assert_eq!(warnings.len(), expected);
    }
}
