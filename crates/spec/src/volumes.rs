//! The request's own mounts — `HostConfig.Binds`, `HostConfig.Mounts`, `HostConfig.Tmpfs` —
//! parsed and validated as Docker's Linux mount parser does, into [`UserMount`]s. Volumes
//! (named, or anonymous with an empty name) are resolved to host directories by the engine,
//! which hands them back through [`crate::Volumes`] when the spec is built.

use std::collections::BTreeMap;

use berth_api::container_config::Mount;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bind {
        source: String,
        writable: bool,
        /// `rprivate` unless given.
        propagation: String,
        /// The request named a propagation (Docker's daemon-root fallback needs to know).
        explicit_propagation: bool,
        non_recursive: bool,
        ro_non_recursive: bool,
        ro_force_recursive: bool,
        /// Create a missing source directory (always for `Binds`, on request for `Mounts`).
        create_source: bool,
    },
    /// `data` is the tmpfs option string (`size=64m,noexec`).
    Tmpfs { data: String },
    /// A volume of the volume store; `name` is empty for a new anonymous one.
    Volume {
        name: String,
        writable: bool,
        /// Do not fill a new volume with the image's content at the destination.
        nocopy: bool,
        /// For a volume the mount creates: `--mount volume-driver=,volume-opt=,volume-label=`.
        driver: String,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMount {
    pub dest: String,
    pub kind: Kind,
    /// The `-v` mode text as given (`ro,z`), what inspect shows as `Mode`; empty for `Mounts`.
    pub mode: String,
}

impl UserMount {
    pub fn is_writable(&self) -> bool {
        match &self.kind {
            Kind::Bind { writable, .. } | Kind::Volume { writable, .. } => *writable,
            Kind::Tmpfs { data } => !data.split(',').any(|o| o == "ro"),
        }
    }
}

pub(crate) const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];
const CONSISTENCY: [&str; 4] = ["consistent", "cached", "delegated", "default"];

/// Lexically cleaned absolute path (Go's `path.Clean`).
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if p.starts_with('/') {
        format!("/{}", out.join("/"))
    } else if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

fn check_destination(dest: &str) -> std::result::Result<(), String> {
    if clean(dest) == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    if !dest.starts_with('/') {
        return Err(format!("invalid mount path: '{dest}' mount path must be absolute"));
    }
    Ok(())
}

/// A `-v` mode string (`ro,z,rslave,nocopy`): each class at most once.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0; 5];
    for o in mode.split(',') {
        let class = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATIONS.contains(&o) => 2,
            "nocopy" => 3,
            o if CONSISTENCY.contains(&o) => 4,
            _ => return false,
        };
        counts[class] += 1;
    }
    counts.iter().all(|&n| n <= 1)
}

/// One `HostConfig.Binds` entry: `host-src:container-dest[:mode]`.
fn parse_bind(raw: &str) -> Result<UserMount> {
    let invalid_spec = || Error::invalid(format!("invalid volume specification: '{raw}'"));
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(invalid_spec());
    }
    let (source, dest, mode) = match parts.as_slice() {
        [dest] => ("", *dest, ""),
        [src, dest] => {
            if valid_mode(dest) {
                return Err(invalid_spec()); // `/foo:rw`: a mode without a destination
            }
            (*src, *dest, "")
        }
        [src, dest, mode] => (*src, *dest, *mode),
        _ => return Err(invalid_spec()),
    };
    if !valid_mode(mode) {
        return Err(Error::invalid(format!("invalid mode: {mode}")));
    }
    check_destination(dest).map_err(|e| Error::invalid(format!("invalid volume specification: '{raw}': {e}")))?;
    let opts: Vec<&str> = mode.split(',').collect();
    let propagation = opts.iter().find(|o| PROPAGATIONS.contains(o)).copied();
    if !source.starts_with('/') {
        if !source.is_empty() {
            check_volume_name(source)?;
        }
        if propagation.is_some() {
            return Err(Error::invalid(format!("invalid volume specification: '{raw}': propagation is only for binds")));
        }
        return Ok(UserMount {
            dest: clean(dest),
            kind: Kind::Volume {
                name: source.into(),
                writable: !opts.contains(&"ro"),
                nocopy: opts.contains(&"nocopy"),
                driver: String::new(),
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new(),
            },
            mode: mode.into(),
        });
    }
    Ok(UserMount {
        mode: mode.into(),
        dest: clean(dest),
        kind: Kind::Bind {
            source: clean(source),
            writable: !opts.contains(&"ro"),
            propagation: propagation.unwrap_or("rprivate").into(),
            explicit_propagation: propagation.is_some(),
            non_recursive: false,
            ro_non_recursive: false,
            ro_force_recursive: false,
            create_source: true,
        },
    })
}

/// Docker's rule for local volume names.
pub fn check_volume_name(name: &str) -> Result<()> {
    let ok_first = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    let ok_rest = name.bytes().skip(1).all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if name.len() < 2 || !ok_first || !ok_rest {
        return Err(Error::invalid(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// `Mount.TmpfsOptions` + `ReadOnly` -> a tmpfs option string, as Docker writes it (sizes
/// with the largest exact g/m/k suffix, the mode in octal).
fn tmpfs_data(m: &Mount) -> std::result::Result<String, String> {
    let mut raw = Vec::new();
    if m.read_only {
        raw.push("ro".to_string());
    }
    if let Some(t) = &m.tmpfs_options {
        if t.mode != 0 {
            raw.push(format!("mode={:o}", t.mode));
        }
        if t.size_bytes < 0 {
            return Err("size must not be negative".into());
        }
        if t.size_bytes != 0 {
            let (mut size, mut suffix) = (t.size_bytes, "");
            for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                if size % d == 0 {
                    (size, suffix) = (size / d, s);
                    break;
                }
            }
            raw.push(format!("size={size}{suffix}"));
        }
        for o in t.options.iter().flatten() {
            match o.as_slice() {
                [flag] => raw.push(flag.clone()),
                [k, v] => raw.push(format!("{k}={v}")),
                _ => return Err(format!("invalid tmpfs option: {o:?}")),
            }
        }
    }
    Ok(raw.join(","))
}

/// One `HostConfig.Mounts` entry.
fn parse_mount(m: &Mount) -> Result<UserMount> {
    let err = |e: String| Error::invalid(format!("invalid mount config for type {:?}: {e}", m.typ));
    if m.target.is_empty() {
        return Err(err("field Target must not be empty".into()));
    }
    check_destination(&m.target).map_err(err)?;
    let dest = clean(&m.target);
    match m.typ.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(err("field Source must not be empty".into()));
            }
            for (set, field) in [
                (m.volume_options.is_some(), "VolumeOptions"),
                (m.image_options.is_some(), "ImageOptions"),
                (m.tmpfs_options.is_some(), "TmpfsOptions"),
            ] {
                if set {
                    return Err(err(format!("field {field} must not be specified")));
                }
            }
            if !m.source.starts_with('/') {
                return Err(err(format!("invalid mount path: '{}' mount path must be absolute", m.source)));
            }
            let b = m.bind_options.clone().unwrap_or_default();
            if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
                return Err(err(format!("invalid propagation mode: {}", b.propagation)));
            }
            if !b.create_mountpoint && std::fs::symlink_metadata(&m.source).is_err() {
                return Err(err(format!("bind source path does not exist: {}", m.source)));
            }
            let conflict = |what: &str| Error::invalid(format!("mount options conflict: {what}"));
            if !m.read_only && b.read_only_non_recursive {
                return Err(conflict("!ReadOnly && BindOptions.ReadOnlyNonRecursive"));
            }
            if !m.read_only && b.read_only_force_recursive {
                return Err(conflict("!ReadOnly && BindOptions.ReadOnlyForceRecursive"));
            }
            if b.read_only_non_recursive && b.read_only_force_recursive {
                return Err(conflict("ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"));
            }
            Ok(UserMount {
                dest,
                mode: String::new(),
                kind: Kind::Bind {
                    source: clean(&m.source),
                    writable: !m.read_only,
                    propagation: if b.propagation.is_empty() { "rprivate".into() } else { b.propagation.clone() },
                    explicit_propagation: !b.propagation.is_empty(),
                    non_recursive: b.non_recursive,
                    ro_non_recursive: b.read_only_non_recursive,
                    ro_force_recursive: b.read_only_force_recursive,
                    create_source: b.create_mountpoint,
                },
            })
        }
        "tmpfs" => {
            if m.bind_options.is_some() {
                return Err(err("field BindOptions must not be specified".into()));
            }
            if !m.source.is_empty() {
                return Err(err("field Source must not be specified".into()));
            }
            Ok(UserMount { dest, kind: Kind::Tmpfs { data: tmpfs_data(m).map_err(err)? }, mode: String::new() })
        }
        "volume" => {
            for (set, field) in [
                (m.bind_options.is_some(), "BindOptions"),
                (m.image_options.is_some(), "ImageOptions"),
                (m.tmpfs_options.is_some(), "TmpfsOptions"),
            ] {
                if set {
                    return Err(err(format!("field {field} must not be specified")));
                }
            }
            if !m.source.is_empty() {
                check_volume_name(&m.source)?;
            }
            let v = m.volume_options.clone().unwrap_or_default();
            if !v.subpath.is_empty() {
                return Err(Error::InvalidParameter(format!("volume subpath is not supported (target {})", m.target)));
            }
            let dc = v.driver_config.unwrap_or_default();
            Ok(UserMount {
                dest,
                mode: String::new(),
                kind: Kind::Volume {
                    name: m.source.clone(),
                    writable: !m.read_only,
                    nocopy: v.no_copy,
                    driver: dc.name,
                    driver_opts: dc.options.unwrap_or_default(),
                    labels: v.labels.unwrap_or_default(),
                },
            })
        }
        "image" | "npipe" | "cluster" => {
            Err(Error::InvalidParameter(format!("mounts of type {} are not supported", m.typ)))
        }
        _ => Err(err("mount type unknown".into())),
    }
}

/// The engine's answer for the request's volumes: each volume destination's host directory.
/// Building a spec with a volume left unresolved is an engine bug, reported as such.
pub(crate) fn resolve(user: Vec<UserMount>, vols: &crate::Volumes<'_>, validating: bool) -> Result<Vec<UserMount>> {
    let mut out = Vec::with_capacity(user.len() + vols.extra.len());
    for m in user {
        match m.kind {
            Kind::Volume { .. } if validating => {}
            Kind::Volume { writable, .. } => {
                let source = vols.sources.get(&m.dest).ok_or_else(|| {
                    Error::invalid(format!("the volume for {} was not resolved by the engine", m.dest))
                })?;
                out.push(UserMount { kind: bind_kind(source, writable), ..m });
            }
            _ => out.push(m),
        }
    }
    for m in vols.extra {
        if !out.iter().any(|o| o.dest == m.dest) {
            out.push(m.clone());
        }
    }
    Ok(out)
}

/// A plain recursive bind of a host directory the engine owns (a volume's data).
pub fn bind_kind(source: &std::path::Path, writable: bool) -> Kind {
    Kind::Bind {
        source: source.to_string_lossy().into_owned(),
        writable,
        propagation: "rprivate".into(),
        explicit_propagation: false,
        non_recursive: false,
        ro_non_recursive: false,
        ro_force_recursive: false,
        create_source: false,
    }
}

/// Binds, then Mounts of type bind, then Tmpfs (by path), then Mounts of type tmpfs — the order
/// Docker collects them in before sorting by depth. Two mounts on one path are Docker's
/// "Duplicate mount point".
pub fn user_mounts(
    binds: &[String],
    mounts: &[Mount],
    tmpfs: Option<&BTreeMap<String, String>>,
) -> Result<Vec<UserMount>> {
    let mut out = Vec::new();
    for b in binds {
        out.push(parse_bind(b)?);
    }
    let parsed = mounts.iter().map(parse_mount).collect::<Result<Vec<_>>>()?;
    let (tmpfs_mounts, bind_mounts): (Vec<_>, Vec<_>) =
        parsed.into_iter().partition(|m| matches!(m.kind, Kind::Tmpfs { .. }));
    out.extend(bind_mounts);
    for (dest, data) in tmpfs.into_iter().flatten() {
        check_destination(dest).map_err(Error::invalid)?;
        out.push(UserMount { dest: clean(dest), kind: Kind::Tmpfs { data: data.clone() }, mode: String::new() });
    }
    out.extend(tmpfs_mounts);
    let mut seen = std::collections::HashSet::new();
    for m in &out {
        if !seen.insert(m.dest.as_str()) {
            return Err(Error::invalid(format!("Duplicate mount point: {}", m.dest)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::container_config::{BindOptions, TmpfsOptions};

    fn bind(source: &str, writable: bool, propagation: &str) -> Kind {
        Kind::Bind {
            source: source.into(),
            writable,
            propagation: propagation.into(),
            explicit_propagation: propagation != "rprivate",
            non_recursive: false,
            ro_non_recursive: false,
            ro_force_recursive: false,
            create_source: true,
        }
    }

    #[test]
    fn binds_like_docker() {
        assert_eq!(parse_bind("/tmp:/data:ro").unwrap(), UserMount { dest: "/data".into(), kind: bind("/tmp", false, "rprivate"), mode: "ro".into() });
        assert_eq!(parse_bind("/a/b/:/c/./d/").unwrap().dest, "/c/d");
        assert_eq!(parse_bind("/x:/y:rw,rslave,z").unwrap().kind, bind("/x", true, "rslave"));
        let e = |s: &str| parse_bind(s).unwrap_err().to_string();
        assert_eq!(e("/x:/y:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(e("/x:/y:bogus"), "invalid mode: bogus");
        assert_eq!(e("/foo:rw"), "invalid volume specification: '/foo:rw'");
        assert_eq!(e(":/y"), "invalid volume specification: ':/y'");
        assert_eq!(e("/a:/b:ro:x"), "invalid volume specification: '/a:/b:ro:x'");
        assert_eq!(e("/x:/"), "invalid volume specification: '/x:/': invalid specification: destination can't be '/'");
        assert_eq!(e("/x:rel"), "invalid volume specification: '/x:rel': invalid mount path: 'rel' mount path must be absolute");
        let vol = |name: &str, writable: bool, nocopy: bool| Kind::Volume {
            name: name.into(),
            writable,
            nocopy,
            driver: String::new(),
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        };
        assert_eq!(parse_bind("data:/data").unwrap().kind, vol("data", true, false));
        assert_eq!(parse_bind("data:/data:ro,nocopy").unwrap().kind, vol("data", false, true));
        assert_eq!(parse_bind("/data").unwrap().kind, vol("", true, false));
        assert_eq!(e("data:/d:rslave"), "invalid volume specification: 'data:/d:rslave': propagation is only for binds");
        assert!(e("b@d:/d").starts_with("\"b@d\" includes invalid characters for a local volume name"));
        assert!(e("x:/d").contains("invalid characters"));
    }

    #[test]
    fn mounts_like_docker() {
        let m = Mount { typ: "bind".into(), source: "/etc".into(), target: "/h".into(), read_only: true, ..Default::default() };
        assert!(matches!(parse_mount(&m).unwrap().kind, Kind::Bind { writable: false, create_source: false, .. }));
        let missing = Mount { source: "/nonexistent/berth".into(), ..m.clone() };
        assert_eq!(
            parse_mount(&missing).unwrap_err().to_string(),
            r#"invalid mount config for type "bind": bind source path does not exist: /nonexistent/berth"#
        );
        let create = Mount { bind_options: Some(BindOptions { create_mountpoint: true, ..Default::default() }), ..missing };
        assert!(parse_mount(&create).is_ok());
        let bad_prop = Mount { bind_options: Some(BindOptions { propagation: "rbogus".into(), ..Default::default() }), ..m.clone() };
        assert_eq!(parse_mount(&bad_prop).unwrap_err().to_string(), r#"invalid mount config for type "bind": invalid propagation mode: rbogus"#);
        let rw_ro_nr = Mount {
            read_only: false,
            bind_options: Some(BindOptions { read_only_non_recursive: true, ..Default::default() }),
            ..m.clone()
        };
        assert_eq!(parse_mount(&rw_ro_nr).unwrap_err().to_string(), "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive");
        let t = Mount {
            typ: "tmpfs".into(),
            target: "/scratch".into(),
            tmpfs_options: Some(TmpfsOptions { size_bytes: 1 << 20, mode: 0o700, options: Some(vec![vec!["exec".into()], vec!["nr_inodes".into(), "5".into()]]) }),
            ..Default::default()
        };
        assert_eq!(parse_mount(&t).unwrap().kind, Kind::Tmpfs { data: "mode=700,size=1m,exec,nr_inodes=5".into() });
        let t2 = Mount { read_only: true, tmpfs_options: Some(TmpfsOptions { size_bytes: 1000, ..Default::default() }), ..t.clone() };
        assert_eq!(parse_mount(&t2).unwrap().kind, Kind::Tmpfs { data: "ro,size=1000".into() });
        let with_src = Mount { source: "x".into(), ..t };
        assert_eq!(parse_mount(&with_src).unwrap_err().to_string(), r#"invalid mount config for type "tmpfs": field Source must not be specified"#);
        let vol = Mount {
            typ: "volume".into(),
            source: "vv".into(),
            target: "/v".into(),
            read_only: true,
            volume_options: Some(berth_api::container_config::VolumeOptions { no_copy: true, ..Default::default() }),
            ..Default::default()
        };
        assert!(matches!(parse_mount(&vol).unwrap().kind, Kind::Volume { ref name, writable: false, nocopy: true, .. } if name == "vv"));
        let vol_bind_opts = Mount { bind_options: Some(BindOptions::default()), ..vol.clone() };
        assert_eq!(parse_mount(&vol_bind_opts).unwrap_err().to_string(), r#"invalid mount config for type "volume": field BindOptions must not be specified"#);
        let unknown = Mount { typ: "weird".into(), target: "/w".into(), ..Default::default() };
        assert_eq!(parse_mount(&unknown).unwrap_err().to_string(), r#"invalid mount config for type "weird": mount type unknown"#);
        let no_target = Mount { typ: "tmpfs".into(), ..Default::default() };
        assert_eq!(parse_mount(&no_target).unwrap_err().to_string(), r#"invalid mount config for type "tmpfs": field Target must not be empty"#);
    }

    #[test]
    fn duplicates_and_order() {
        let tmpfs: BTreeMap<String, String> = [("/run".to_string(), String::new())].into();
        let mounts = [
            Mount { typ: "tmpfs".into(), target: "/t".into(), ..Default::default() },
            Mount { typ: "bind".into(), source: "/".into(), target: "/b".into(), ..Default::default() },
        ];
        let all = user_mounts(&["/tmp:/a".into()], &mounts, Some(&tmpfs)).unwrap();
        let dests: Vec<&str> = all.iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(dests, ["/a", "/b", "/run", "/t"]);
        let e = user_mounts(&["/tmp:/run".into()], &[], Some(&tmpfs)).unwrap_err();
        assert_eq!(e.to_string(), "Duplicate mount point: /run");
        let bad: BTreeMap<String, String> = [("run".to_string(), String::new())].into();
        assert_eq!(user_mounts(&[], &[], Some(&bad)).unwrap_err().to_string(), "invalid mount path: 'run' mount path must be absolute");
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("/.."), "/");
    }
}
