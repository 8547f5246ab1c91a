//! The request's own mounts — `HostConfig.Binds`, `HostConfig.Mounts`, `HostConfig.Tmpfs` —
//! parsed and validated as Docker's Linux mount parser does, into [`UserMount`]s. Only host
//! binds and tmpfs exist until volumes land; named and anonymous volumes are refused clearly.

use std::collections::BTreeMap;

use berth_api::container_config::Mount;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserMount {
    pub dest: String,
    pub kind: Kind,
}

pub(crate) const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];
const CONSISTENCY: [&str; 4] = ["consistent", "cached", "delegated", "default"];

/// Lexically cleaned absolute path (Go's `path.Clean`).
pub(crate) fn clean(p: &str) -> String {
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
    if source.is_empty() {
        return Err(Error::InvalidParameter(format!(
            "anonymous volumes are not supported yet: '{raw}' (bind a host path: /host/dir:{dest})"
        )));
    }
    if !source.starts_with('/') {
        return Err(Error::InvalidParameter(format!(
            "named volumes are not supported yet: '{raw}' (the source of a bind must be an absolute host path)"
        )));
    }
    check_destination(dest).map_err(|e| Error::invalid(format!("invalid volume specification: '{raw}': {e}")))?;
    let opts: Vec<&str> = mode.split(',').collect();
    let propagation = opts.iter().find(|o| PROPAGATIONS.contains(o)).copied();
    Ok(UserMount {
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
            Ok(UserMount { dest, kind: Kind::Tmpfs { data: tmpfs_data(m).map_err(err)? } })
        }
        "volume" => Err(Error::InvalidParameter(format!(
            "mounts of type volume are not supported yet (target {})",
            m.target
        ))),
        "image" | "npipe" | "cluster" => {
            Err(Error::InvalidParameter(format!("mounts of type {} are not supported", m.typ)))
        }
        _ => Err(err("mount type unknown".into())),
    }
}

/// Binds, then Mounts of type bind, then Tmpfs (by path), then Mounts of type tmpfs — the order
/// Docker collects them in before sorting by depth. Two mounts on one path are Docker's
/// "Duplicate mount point".
pub(crate) fn user_mounts(
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
        out.push(UserMount { dest: clean(dest), kind: Kind::Tmpfs { data: data.clone() } });
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
        assert_eq!(parse_bind("/tmp:/data:ro").unwrap(), UserMount { dest: "/data".into(), kind: bind("/tmp", false, "rprivate") });
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
        assert!(matches!(parse_bind("data:/data").unwrap_err(), Error::InvalidParameter(m) if m.contains("named volumes")));
        assert!(matches!(parse_bind("/data").unwrap_err(), Error::InvalidParameter(m) if m.contains("anonymous volumes")));
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
        let vol = Mount { typ: "volume".into(), source: "v".into(), target: "/v".into(), ..Default::default() };
        assert!(matches!(parse_mount(&vol).unwrap_err(), Error::InvalidParameter(_)));
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
