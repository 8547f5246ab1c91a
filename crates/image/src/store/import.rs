//! `docker import`: a filesystem tarball (plain, gzip or zstd, stored as given) becomes a
//! one-layer image, with `--change` instructions applied to its config.

use std::io::{Read, Write};

use super::{time, ImageStore};
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::manifest::{ContainerConfig, History, ImageConfig, Platform, RootFs};
use crate::{Digest, Reference};

/// The instructions `--change` accepts, as Docker lists them.
const CHANGE_INSTRUCTIONS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "ONBUILD",
    "STOPSIGNAL",
];

impl ImageStore {
    /// Imports a filesystem tarball as a new image; returns its ID.
    pub fn import(
        &self,
        reader: impl Read,
        changes: &[String],
        message: Option<&str>,
        tag: Option<&Reference>,
    ) -> Result<Digest> {
        let mut cc = ContainerConfig::default();
        for c in changes {
            apply_changes(&mut cc, c)?;
        }
        let refs = match tag {
            Some(t) if t.tag().is_none() && t.digest().is_none() => {
                vec![t.with_tag(crate::reference::DEFAULT_TAG)?]
            }
            Some(t) => vec![t.clone()],
            None => vec![],
        };
        let lease = self.lease()?;
        let (blob, size, compression) = self.store_stream(reader)?;
        self.meta
            .lease_add(&lease.id, std::slice::from_ref(&blob), &[])?;
        let layer = self.add_layer_blob(&blob, Some(compression), None, None, &lease.id)?;

        let created = time::now_rfc3339();
        let platform = Platform::host();
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            config: Some(cc),
            rootfs: RootFs {
                fs_type: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                created_by: Some("import".into()),
                comment: message.map(str::to_owned),
                ..Default::default()
            }],
            comment: message.map(str::to_owned),
            ..Default::default()
        };
        let mt = compression.oci_media_type().to_owned();
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::Malformed(e.to_string()))?;
        self.commit_image(&bytes, &config, &[(blob, mt, size)], &refs, &lease.id)
    }

    /// Stores a stream as a blob, as given; returns its digest, size and compression.
    fn store_stream(&self, mut reader: impl Read) -> Result<(Digest, u64, Compression)> {
        let mut w = self.content.writer(None, None)?;
        let mut head = [0u8; 8];
        let mut n = 0;
        while n < head.len() {
            match reader.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", "import stream", e)),
            }
        }
        let compression = Compression::detect(&head[..n]);
        w.write_all(&head[..n])
            .map_err(|e| Error::io("write", "blob", e))?;
        std::io::copy(&mut reader, &mut w).map_err(|e| Error::io("copy", "import stream", e))?;
        let (d, size) = w.commit()?;
        Ok((d, size, compression))
    }
}

/// Splits an instruction's arguments into words: whitespace-separated, with '…' and "…"
/// quoting and backslash escapes.
fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Error::InvalidArgument(format!(
            "unterminated quote in {s:?}"
        )));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `KEY=VALUE ...`, or the legacy `KEY VALUE` form.
fn key_values(instr: &str, args: &str) -> Result<Vec<(String, String)>> {
    let ws = words(args)?;
    let first_has_eq = ws.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        let (k, v) = args.trim().split_once(char::is_whitespace).ok_or_else(|| {
            Error::InvalidArgument(format!("{instr} requires at least one argument"))
        })?;
        let v = words(v)?.join(" ");
        return Ok(vec![(k.to_owned(), v)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(Error::InvalidArgument(format!(
                "{instr} names can not be blank / syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
        })
        .collect()
}

/// JSON array form (`["a", "b"]`), or None for the shell form.
fn json_args(args: &str) -> Option<Vec<String>> {
    let t = args.trim();
    if t.starts_with('[') {
        serde_json::from_str::<Vec<String>>(t).ok()
    } else {
        None
    }
}

/// Splits `INSTRUCTION args` and checks the instruction is one `--change` allows.
pub fn parse_change(change: &str) -> Result<(String, String)> {
    let t = change.trim();
    let (instr, args) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let instr = instr.to_ascii_uppercase();
    if !CHANGE_INSTRUCTIONS.contains(&instr.as_str()) {
        return Err(Error::InvalidArgument(format!(
            "{instr} is not a valid change command"
        )));
    }
    Ok((instr, args.trim().to_owned()))
}

/// Applies one `--change` instruction to a container config.
pub fn apply_changes(cc: &mut ContainerConfig, change: &str) -> Result<()> {
    let (instr, args) = parse_change(change)?;
    let shell = |a: &str| -> Vec<String> {
        json_args(a).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), a.to_owned()])
    };
    match instr.as_str() {
        "CMD" => cc.cmd = Some(shell(&args)),
        "ENTRYPOINT" => {
            cc.entrypoint = Some(shell(&args));
            // Docker resets CMD set by the base image when ENTRYPOINT changes; keep explicit CMD.
        }
        "ENV" => {
            let env = cc.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values("ENV", &args)? {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cc.labels.get_or_insert_with(Default::default);
            for (k, v) in key_values("LABEL", &args)? {
                labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            let w = words(&args)?.join(" ");
            if w.is_empty() {
                return Err(Error::InvalidArgument(
                    "WORKDIR requires exactly one argument".into(),
                ));
            }
            cc.working_dir = Some(match &cc.working_dir {
                Some(prev) if !w.starts_with('/') => format!("{}/{w}", prev.trim_end_matches('/')),
                _ => w,
            });
        }
        "USER" => {
            let w = words(&args)?;
            if w.len() != 1 {
                return Err(Error::InvalidArgument(
                    "USER requires exactly one argument".into(),
                ));
            }
            cc.user = Some(w[0].clone());
        }
        "EXPOSE" => {
            let ports = cc.exposed_ports.get_or_insert_with(Default::default);
            for p in words(&args)? {
                let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let valid = !port.is_empty()
                    && port.split('-').all(|n| n.parse::<u16>().is_ok())
                    && ["tcp", "udp", "sctp"].contains(&proto.to_ascii_lowercase().as_str());
                if !valid {
                    return Err(Error::InvalidArgument(format!(
                        "invalid containerPort: {p}"
                    )));
                }
                ports.insert(
                    format!("{port}/{}", proto.to_ascii_lowercase()),
                    serde_json::json!({}),
                );
            }
        }
        "VOLUME" => {
            let vols = cc.volumes.get_or_insert_with(Default::default);
            let list = match json_args(&args) {
                Some(v) => v,
                None => words(&args)?,
            };
            if list.is_empty() {
                return Err(Error::InvalidArgument(
                    "VOLUME requires at least one argument".into(),
                ));
            }
            for v in list {
                vols.insert(v, serde_json::json!({}));
            }
        }
        "STOPSIGNAL" => cc.stop_signal = Some(args.clone()),
        "ONBUILD" => cc.on_build.get_or_insert_with(Vec::new).push(args.clone()),
        _ => unreachable!("checked by parse_change"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for ch in changes {
            apply_changes(&mut c, ch).unwrap();
        }
        c
    }

    #[test]
    fn change_forms() {
        let c = cc(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/run --x",
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY some value",
            "ENV A=3",
            "LABEL a=b \"c d\"=e",
            "WORKDIR /app",
            "WORKDIR sub",
            "EXPOSE 80 53/UDP",
            "USER nobody",
            r#"VOLUME ["/data"]"#,
            "VOLUME /a /b",
        ]);
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/bin/run --x"]);
        assert_eq!(c.env.unwrap(), ["B=two words", "LEGACY=some value", "A=3"]);
        let l = c.labels.unwrap();
        assert_eq!(l["a"], "b");
        assert_eq!(l["c d"], "e");
        assert_eq!(c.working_dir.unwrap(), "/app/sub");
        let p: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(p, ["53/udp", "80/tcp"]);
        assert_eq!(c.user.unwrap(), "nobody");
        assert_eq!(c.volumes.unwrap().len(), 3);
    }

    #[test]
    fn bad_changes() {
        let mut c = ContainerConfig::default();
        assert!(apply_changes(&mut c, "RUN echo").is_err());
        assert!(apply_changes(&mut c, "EXPOSE abc").is_err());
        assert!(apply_changes(&mut c, "ENV =x").is_err());
        assert!(apply_changes(&mut c, "LABEL a=\"b").is_err());
    }
}
