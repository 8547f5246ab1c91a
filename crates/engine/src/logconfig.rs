//! A container's log driver and options: the daemon's defaults merged in at create (as Docker
//! stores them in HostConfig.LogConfig), validated with the monitor's own parser, and at start
//! turned into the file, format, rotation and attrs the monitor writes with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_api::container_config::HostConfig;
use berth_monitor::logopts::{self, LogFormat, LogSettings};

use crate::error::{Error, Result};
use crate::record::Record;
use crate::Engine;

/// Berth rotates json-file logs unless told otherwise (Docker does not).
pub const DEFAULT_MAX_SIZE: &str = "20m";
pub const DEFAULT_MAX_FILE: &str = "5";

/// Where a container's log is and how it is encoded.
#[derive(Debug, Clone)]
pub(crate) struct LogFile {
    pub path: PathBuf,
    pub format: LogFormat,
}

impl Engine {
    /// Fills `host.log_config` as Docker does at create (driver and options from the daemon when
    /// the container names none), plus Berth's rotation defaults for json-file; then validates.
    pub(crate) fn resolve_log_config(&self, host: &mut HostConfig) -> Result<()> {
        let lc = &mut host.log_config;
        if lc.typ.is_empty() {
            lc.typ = self.cfg.log_driver.clone();
        }
        let mut opts = lc.config.take().unwrap_or_default();
        // Docker merges the daemon's options only into containers using the daemon's driver.
        if lc.typ == self.cfg.log_driver {
            for (k, v) in &self.cfg.log_opts {
                opts.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if lc.typ == "json-file" {
            opts.entry("max-size".into()).or_insert_with(|| DEFAULT_MAX_SIZE.into());
            opts.entry("max-file".into()).or_insert_with(|| DEFAULT_MAX_FILE.into());
        }
        check_log_opts(&lc.typ, &opts)?;
        lc.config = Some(opts);
        Ok(())
    }

    /// The container's log file, None with the `none` driver.
    pub(crate) fn log_file(&self, rec: &Record) -> Option<LogFile> {
        match self.log_driver_of(rec).as_str() {
            "json-file" => Some(LogFile { path: self.log_path(&rec.id), format: LogFormat::JsonFile }),
            "local" => Some(LogFile { path: self.container_dir(&rec.id).join("local-logs").join("container.log"), format: LogFormat::Local }),
            _ => None,
        }
    }

    pub(crate) fn log_driver_of(&self, rec: &Record) -> String {
        let t = &rec.host_config.log_config.typ;
        if t.is_empty() {
            self.cfg.log_driver.clone()
        } else {
            t.clone()
        }
    }

    /// What the monitor writes the log with: None when nothing is logged.
    pub(crate) fn log_settings(&self, rec: &Record) -> Result<Option<(PathBuf, LogSettings)>> {
        let Some(file) = self.log_file(rec) else { return Ok(None) };
        if file.format == LogFormat::Local {
            let dir = file.path.parent().unwrap_or(&file.path);
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let opts = rec.host_config.log_config.config.clone().unwrap_or_default();
        let mut s = logopts::parse(&self.log_driver_of(rec), &opts).map_err(Error::InvalidParameter)?;
        if file.format == LogFormat::JsonFile {
            s.attrs = attrs(rec, &opts)?.into_iter().collect();
        }
        Ok(Some((file.path, s)))
    }
}

/// Docker's check of a driver and its options (at create: 400 with Docker's words; berthd
/// checks daemon.json's with it too).
pub fn check_log_opts(driver: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    logopts::parse(driver, opts).map_err(Error::InvalidParameter)?;
    for k in ["labels-regex", "env-regex"] {
        if let Some(re) = opts.get(k).filter(|r| !r.is_empty()) {
            compile(re)?;
        }
    }
    Ok(())
}

/// The attrs json-file adds to each entry (Docker's logger.Info.ExtraAttributes, plus `tag`):
/// listed or matching labels and environment variables of the container.
pub(crate) fn attrs(rec: &Record, opts: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let labels = rec.config.labels.clone().unwrap_or_default();
    let env: BTreeMap<&str, &str> = rec.config.env.iter().flatten().filter_map(|e| e.split_once('=')).collect();
    if let Some(l) = opts.get("labels").filter(|l| !l.is_empty()) {
        for k in l.split(',') {
            if let Some(v) = labels.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
    }
    if let Some(r) = opts.get("labels-regex").filter(|l| !l.is_empty()) {
        let re = compile(r)?;
        out.extend(labels.iter().filter(|(k, _)| re.is_match(k)).map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(l) = opts.get("env").filter(|l| !l.is_empty()) {
        for k in l.split(',') {
            if let Some(v) = env.get(k) {
                out.insert(k.to_owned(), (*v).to_owned());
            }
        }
    }
    if let Some(r) = opts.get("env-regex").filter(|l| !l.is_empty()) {
        let re = compile(r)?;
        out.extend(env.iter().filter(|(k, _)| re.is_match(k)).map(|(k, v)| (k.to_string(), v.to_string())));
    }
    if let Some(t) = opts.get("tag").filter(|t| !t.is_empty()) {
        out.insert("tag".into(), expand_tag(t, rec));
    }
    Ok(out)
}

/// A labels-regex or env-regex; the error in the shape of Go's (`error parsing regexp: <why>: `re``).
fn compile(re: &str) -> Result<regex::Regex> {
    regex::Regex::new(re).map_err(|e| {
        let why = e.to_string().lines().filter_map(|l| l.trim().strip_prefix("error: ")).next().map(str::to_owned).unwrap_or_else(|| e.to_string());
        Error::InvalidParameter(format!("error parsing regexp: {why}: `{re}`"))
    })
}

/// The fields of Docker's log tag template (`{{.Name}}`, `{{.ID}}`, ...).
fn expand_tag(t: &str, rec: &Record) -> String {
    let image_id = rec.image_id.strip_prefix("sha256:").unwrap_or(&rec.image_id);
    let fields = [
        ("{{.ID}}", rec.id[..12.min(rec.id.len())].to_owned()),
        ("{{.FullID}}", rec.id.clone()),
        ("{{.Name}}", rec.name.trim_start_matches('/').to_owned()),
        ("{{.ImageID}}", image_id[..12.min(image_id.len())].to_owned()),
        ("{{.ImageFullID}}", image_id.to_owned()),
        ("{{.ImageName}}", rec.image_ref.clone()),
        ("{{.DaemonName}}", "docker".to_owned()),
    ];
    let mut s = t.to_owned();
    for (k, v) in fields {
        s = s.replace(k, &v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let config = berth_api::container_config::ContainerConfig {
            labels: Some([("team", "a"), ("tier", "web"), ("x", "1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            env: Some(vec!["APP_A=1".into(), "APP_B=2".into(), "HOME=/root".into(), "EMPTY=".into()]),
            ..Default::default()
        };
        Record {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            created: String::new(),
            image_ref: "busybox:latest".into(),
            image_id: "sha256:fedcba9876543210fedc".into(),
            config,
            host_config: HostConfig::default(),
            path: "sh".into(),
            args: vec![],
            state: Default::default(),
            restart_count: 0,
            monitor: None,
            manually_stopped: false,
            has_been_started: false,
            mounts: Vec::new(),
            endpoints_config: Default::default(),
            mode_disconnected: Default::default(),
        }
    }

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attrs_from_labels_env_and_tag() {
        let r = record();
        let a = attrs(&r, &opts(&[("labels", "team,nope"), ("labels-regex", "^ti"), ("env", "HOME,EMPTY"), ("env-regex", "^APP_"), ("tag", "{{.Name}}/{{.ID}}/{{.ImageName}}/{{.ImageID}}")])).unwrap();
        let got: Vec<(&str, &str)> = a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [("APP_A", "1"), ("APP_B", "2"), ("EMPTY", ""), ("HOME", "/root"), ("tag", "web/0123456789ab/busybox:latest/fedcba987654"), ("team", "a"), ("tier", "web")]
        );
        assert!(attrs(&r, &opts(&[])).unwrap().is_empty());
    }

    #[test]
    fn bad_regexes_are_refused_as_go_words_them() {
        let e = check_log_opts("json-file", &opts(&[("env-regex", "(")])).unwrap_err().to_string();
        assert!(e.starts_with("error parsing regexp: ") && e.ends_with(": `(`"), "{e}");
        assert!(check_log_opts("json-file", &opts(&[("labels-regex", "^a+$")])).is_ok());
    }
}
