//! Log drivers' options (`--log-opt`), checked as Docker checks them and with its messages, and
//! turned into what the monitor needs to write and rotate the log. berthd validates with the
//! same code at create, so a container never starts with options its monitor would refuse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// On-disk format of the container log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogFormat {
    /// Docker's json-file: one JSON object a line.
    #[default]
    JsonFile,
    /// Docker's local driver: length-prefixed protobuf entries.
    Local,
}

/// How the monitor writes the log: format, rotation and (json-file) extra attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    /// Rotate once the file reaches this many bytes; 0: never.
    pub max_size: u64,
    /// Files kept, the one written included (1: the file is truncated instead of rotated).
    pub max_files: u32,
    /// gzip rotated files (off the write path).
    pub compress: bool,
    /// json-file "attrs" of every entry (labels, env, tag), sorted by key.
    pub attrs: Vec<(String, String)>,
}

/// Keys each driver accepts.
const JSON_FILE_KEYS: &[&str] = &["max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"];
const LOCAL_KEYS: &[&str] = &["max-file", "max-size", "compress"];

/// The local driver's defaults (Docker's: 20 MiB, while sizes given are decimal).
pub const LOCAL_DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const LOCAL_DEFAULT_MAX_FILES: u32 = 5;

/// Checks `opts` for `driver` (json-file, local or none) and returns the settings they give
/// (attrs not filled: they depend on the container). The error is Docker's message.
pub fn parse(driver: &str, opts: &BTreeMap<String, String>) -> Result<LogSettings, String> {
    let (format, keys) = match driver {
        "json-file" => (LogFormat::JsonFile, JSON_FILE_KEYS),
        "local" => (LogFormat::Local, LOCAL_KEYS),
        "none" => {
            if let Some(k) = opts.keys().next() {
                return Err(format!("unknown log opt '{k}' for none log driver"));
            }
            return Ok(LogSettings::default());
        }
        other => return Err(format!("logger: no log driver named '{other}' is registered")),
    };
    for k in opts.keys() {
        if !keys.contains(&k.as_str()) {
            return Err(match format {
                LogFormat::JsonFile => format!("unknown log opt '{k}' for json-file log driver"),
                LogFormat::Local => format!("unknown log opt '{k}' for log driver local"),
            });
        }
    }
    if format == LogFormat::Local {
        return parse_local(opts);
    }
    let max_size = match opts.get("max-size") {
        Some(s) => {
            let v = from_human_size(s)?;
            if v <= 0 {
                return Err("max-size must be a positive number".into());
            }
            v as u64
        }
        None => 0,
    };
    let max_files = match opts.get("max-file") {
        Some(s) => {
            let v: i64 = s.parse().map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))?;
            if v < 1 {
                return Err("max-file cannot be less than 1".into());
            }
            v.min(u32::MAX as i64) as u32
        }
        None => 1,
    };
    let compress = match opts.get("compress") {
        Some(s) => parse_bool(s)?,
        None => false,
    };
    if compress && (max_files < 2 || max_size == 0) {
        return Err("compress cannot be true when max-file is less than 2 or max-size is not set".into());
    }
    Ok(LogSettings { format, max_size, max_files, compress, attrs: Vec::new() })
}

/// The local driver's options, with its defaults and its own messages.
fn parse_local(opts: &BTreeMap<String, String>) -> Result<LogSettings, String> {
    let max_size = match opts.get("max-size") {
        // 0 would rotate before every entry in Docker; here it means no rotation.
        Some(s) => from_human_size(s).map_err(|e| format!("invalid value for max-size: {s}: {e}"))?.max(0) as u64,
        None => LOCAL_DEFAULT_MAX_SIZE,
    };
    let max_files = match opts.get("max-file") {
        Some(s) => {
            let v: i64 = s.parse().map_err(|_| format!("invalid value for max-file: {s}: strconv.Atoi: parsing {s:?}: invalid syntax"))?;
            if v < 0 {
                return Err("max file count cannot be less than 0".into());
            }
            v.clamp(1, u32::MAX as i64) as u32
        }
        None => LOCAL_DEFAULT_MAX_FILES,
    };
    let compress = match opts.get("compress") {
        Some(s) => parse_bool(s).map_err(|e| format!("error reading compress log option: {e}"))?,
        None => true,
    };
    if compress && max_files <= 1 {
        return Err("compression cannot be enabled when max file count is 1".into());
    }
    Ok(LogSettings { format: LogFormat::Local, max_size, max_files, compress: compress && max_size > 0, attrs: Vec::new() })
}

/// Go's strconv.ParseBool.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// docker/go-units FromHumanSize: decimal units (10k = 10000, 10m = 10 000 000), an optional
/// space, `i` and `b`/`B` suffixes accepted, fractions allowed.
pub fn from_human_size(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mut u = unit.strip_prefix(' ').unwrap_or(unit).chars().peekable();
    let mul = match u.peek().map(|c| c.to_ascii_lowercase()) {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            u.next();
            1000f64.powi(match c {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                _ => 5,
            })
        }
        _ => 1.0,
    };
    if matches!(u.peek(), Some('i' | 'I')) {
        u.next();
    }
    if matches!(u.peek(), Some('b' | 'B')) {
        u.next();
    }
    if u.next().is_some() {
        return Err(bad());
    }
    Ok((n * mul) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sizes_are_decimal_like_go_units() {
        assert_eq!(from_human_size("10k"), Ok(10_000));
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("1g"), Ok(1_000_000_000));
        assert_eq!(from_human_size("20MB"), Ok(20_000_000));
        assert_eq!(from_human_size("1.5 KiB"), Ok(1500));
        assert_eq!(from_human_size("123"), Ok(123));
        assert_eq!(from_human_size("10x"), Err("invalid size: '10x'".into()));
        assert_eq!(from_human_size("m"), Err("invalid size: 'm'".into()));
        assert_eq!(from_human_size(""), Err("invalid size: ''".into()));
    }

    #[test]
    fn json_file_options() {
        let s = parse("json-file", &opts(&[("max-size", "10m"), ("max-file", "3"), ("compress", "true")])).unwrap();
        assert_eq!((s.format, s.max_size, s.max_files, s.compress), (LogFormat::JsonFile, 10_000_000, 3, true));
        let s = parse("json-file", &opts(&[])).unwrap();
        assert_eq!((s.max_size, s.max_files, s.compress), (0, 1, false));
        assert_eq!(parse("json-file", &opts(&[("max-sise", "1")])).unwrap_err(), "unknown log opt 'max-sise' for json-file log driver");
        assert_eq!(parse("json-file", &opts(&[("max-file", "x")])).unwrap_err(), "strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(parse("json-file", &opts(&[("max-file", "0")])).unwrap_err(), "max-file cannot be less than 1");
        assert_eq!(parse("json-file", &opts(&[("max-size", "0")])).unwrap_err(), "max-size must be a positive number");
        assert_eq!(parse("json-file", &opts(&[("compress", "yes")])).unwrap_err(), "strconv.ParseBool: parsing \"yes\": invalid syntax");
        assert_eq!(
            parse("json-file", &opts(&[("compress", "true"), ("max-size", "1m")])).unwrap_err(),
            "compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert!(parse("json-file", &opts(&[("tag", "{{.Name}}"), ("labels", "a"), ("env", "B"), ("env-regex", "^C")])).is_ok());
    }

    #[test]
    fn local_and_other_drivers() {
        let s = parse("local", &opts(&[])).unwrap();
        assert_eq!((s.format, s.max_size, s.max_files, s.compress), (LogFormat::Local, 20 << 20, 5, true));
        assert_eq!(parse("local", &opts(&[("max-file", "1")])).unwrap_err(), "compression cannot be enabled when max file count is 1");
        let s = parse("local", &opts(&[("max-file", "1"), ("compress", "false"), ("max-size", "1k")])).unwrap();
        assert_eq!((s.max_size, s.max_files, s.compress), (1000, 1, false));
        assert_eq!(parse("local", &opts(&[("max-size", "1q")])).unwrap_err(), "invalid value for max-size: 1q: invalid size: '1q'");
        assert_eq!(parse("local", &opts(&[("max-file", "-1")])).unwrap_err(), "max file count cannot be less than 0");
        assert_eq!(
            parse("local", &opts(&[("compress", "no")])).unwrap_err(),
            "error reading compress log option: strconv.ParseBool: parsing \"no\": invalid syntax"
        );
        assert_eq!(parse("local", &opts(&[("tag", "x")])).unwrap_err(), "unknown log opt 'tag' for log driver local");
        assert_eq!(parse("syslog", &opts(&[])).unwrap_err(), "logger: no log driver named 'syslog' is registered");
        assert_eq!(parse("none", &opts(&[("max-size", "1m")])).unwrap_err(), "unknown log opt 'max-size' for none log driver");
    }
}
