//! Per-container state kept under the runtime root (`--root`, default /run/berth-runc):
//! `<root>/<id>/state.json`, written atomically (temp file + rename, never half-written), and
//! `<root>/<id>/exec.fifo`, whose existence means "created, not yet started".
//!
//! state.json is not fsynced: it describes processes and cgroups that a reboot (the only way to
//! lose unsynced data on a tmpfs-less /run) makes gone anyway, and the rename alone keeps
//! readers from ever seeing half a file. An fsync cost milliseconds per create on ext4.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci_spec::runtime::{Hooks, Spec};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

pub const DEFAULT_ROOT: &str = "/run/berth-runc";
const STATE_FILE: &str = "state.json";
const TMP_FILE: &str = ".state.json.tmp";
pub const FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad, not write_str: `list` aligns its table with width specifiers.
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of the init process (clock ticks since boot), to detect PID reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub cgroup_path: String,
    pub systemd_cgroup: bool,
    pub spec: StoredSpec,
}

/// The container's spec as state.json holds it: JSON text, parsed only when an operation needs
/// the whole spec (exec, update, spec_of). start, delete and state need only [`SpecHead`]:
/// parsing a Docker spec (its seccomp profile above all) costs more than the rest of them.
pub struct StoredSpec {
    raw: Box<RawValue>,
    head: OnceLock<SpecHead>,
    full: OnceLock<Spec>,
}

/// What start, delete and state use from the spec.
#[derive(Debug, Default, Deserialize)]
pub struct SpecHead {
    #[serde(default, rename = "ociVersion")]
    pub version: String,
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    pub hooks: Option<Hooks>,
}

impl StoredSpec {
    pub fn new(spec: &Spec) -> Result<StoredSpec> {
        let text = serde_json::to_string(spec).map_err(|e| Error::invalid(e.to_string()))?;
        Self::from_json(text)
    }

    /// From a spec's JSON text (a config.json already parsed as a [`Spec`]), stored as is.
    pub fn from_json(text: String) -> Result<StoredSpec> {
        let raw = RawValue::from_string(text).map_err(|e| Error::invalid(format!("spec: {e}")))?;
        Ok(StoredSpec { raw, head: OnceLock::new(), full: OnceLock::new() })
    }

    pub fn head(&self) -> &SpecHead {
        // A spec that does not parse was refused before it was stored: default is unreachable.
        self.head.get_or_init(|| serde_json::from_str(self.raw.get()).unwrap_or_default())
    }

    pub fn get(&self) -> Result<&Spec> {
        if let Some(s) = self.full.get() {
            return Ok(s);
        }
        let s = serde_json::from_str(self.raw.get()).map_err(|e| Error::invalid(format!("stored spec: {e}")))?;
        Ok(self.full.get_or_init(|| s))
    }

    pub fn set(&mut self, spec: &Spec) -> Result<()> {
        *self = Self::new(spec)?;
        Ok(())
    }
}

impl std::fmt::Debug for StoredSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw.get())
    }
}

impl Clone for StoredSpec {
    fn clone(&self) -> Self {
        StoredSpec { raw: self.raw.clone(), head: OnceLock::new(), full: OnceLock::new() }
    }
}

impl Serialize for StoredSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StoredSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(StoredSpec { raw, head: OnceLock::new(), full: OnceLock::new() })
    }
}

/// The OCI state (`state` output and hook stdin), with runc's extra fields that containerd reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid container id {id:?}: use [A-Za-z0-9_+.-]")))
    }
}

pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn path(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        Ok(StateDir { dir: root.join(id) })
    }

    /// Creates the directory, failing if the container exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        let s = Self::path(root, id)?;
        let mut made = std::fs::create_dir(&s.dir);
        if matches!(&made, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            // First container under this root.
            std::fs::create_dir_all(root).map_err(|e| Error::io("create state root", root, e))?;
            made = std::fs::create_dir(&s.dir);
        }
        match made {
            Ok(()) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists(id.into())),
            Err(e) => Err(Error::io("create state dir", &s.dir, e)),
        }
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(FIFO)
    }

    pub fn save(&self, rec: &Record) -> Result<()> {
        self.stage(rec)?;
        self.commit()
    }

    /// Writes `rec` beside state.json, where no reader looks; [`StateDir::commit`] publishes it.
    /// `create` stages while the init is still setting up, and commits once it is ready.
    pub fn stage(&self, rec: &Record) -> Result<()> {
        let tmp = self.dir.join(TMP_FILE);
        let data = serde_json::to_vec(rec).map_err(|e| Error::invalid(e.to_string()))?;
        std::fs::write(&tmp, data).map_err(|e| Error::io("write", &tmp, e))
    }

    pub fn commit(&self) -> Result<()> {
        let dst = self.dir.join(STATE_FILE);
        std::fs::rename(self.dir.join(TMP_FILE), &dst).map_err(|e| Error::io("rename", &dst, e))
    }

    pub fn load(root: &Path, id: &str) -> Result<(StateDir, Record)> {
        let s = Self::path(root, id)?;
        let f = s.dir.join(STATE_FILE);
        let data = match std::fs::read(&f) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(id.into())),
            Err(e) => return Err(Error::io("read", &f, e)),
        };
        let rec = serde_json::from_slice(&data)
            .map_err(|e| Error::invalid(format!("{}: corrupt state: {e}", f.display())))?;
        Ok((s, rec))
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove state dir", &self.dir, e)),
        }
    }
}

/// All container ids under a root.
pub fn list(root: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io("list", root, e)),
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Process state char and start time from /proc/<pid>/stat, or None if it does not exist.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // starttime is field 22 overall; `rest` starts at field 3.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether the process recorded as init is still the same, live (non-zombie) process.
pub fn init_alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((st, s)) if s == start && st != 'Z' && st != 'X')
}

/// RFC 3339 UTC timestamp with nanoseconds, as Go's time.Time marshals it.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(format_rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(format_rfc3339(1_795_000_000, 123), "2026-11-18T11:06:40.000000123Z");
    }

    #[test]
    fn ids_validated() {
        validate_id("abc-1_2.3").unwrap();
        for bad in ["", "..", "a/b", "a b", "."] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proc_stat_of_self_and_missing() {
        let (st, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(matches!(st, 'R' | 'S'));
        assert!(start > 0);
        assert!(init_alive(std::process::id() as i32, start));
        assert!(!init_alive(std::process::id() as i32, start + 1));
        assert!(proc_stat(i32::MAX).is_none());
    }

    #[test]
    fn create_twice_is_already_exists_and_list_sees_saved() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::create(t.path(), "c1").unwrap();
        assert!(matches!(StateDir::create(t.path(), "c1"), Err(Error::AlreadyExists(_))));
        assert!(list(t.path()).unwrap().is_empty());
        let rec = Record {
            id: "c1".into(),
            pid: 1,
            pid_start: 2,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: String::new(),
            cgroup_path: "/c1".into(),
            systemd_cgroup: false,
            spec: StoredSpec::new(&Spec::default()).unwrap(),
        };
        s.save(&rec).unwrap();
        assert_eq!(list(t.path()).unwrap(), vec!["c1".to_string()]);
        let (_, back) = StateDir::load(t.path(), "c1").unwrap();
        assert_eq!(back.pid_start, 2);
        assert_eq!(&back.spec.head().version, Spec::default().version());
        assert_eq!(back.spec.get().unwrap(), &Spec::default());
        assert!(matches!(StateDir::load(t.path(), "nope"), Err(Error::NotFound(_))));
    }
}
