//! One module per family of commands; each function takes the parsed flags and returns the
//! exit code.

pub mod cp;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod login;
pub mod logs;
pub mod ps;
pub mod run;
pub mod stats;
pub mod stream;
pub mod system;
pub mod transfer;
pub mod network;
pub mod volume;

/// `--label k=v` / `--opt k=v` lists as a map (a bare label is `k=""`), with the docker CLI's
/// message for a malformed entry.
pub fn key_values(list: &[String], what: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            None if what == "label" && !kv.is_empty() => Ok((kv.clone(), String::new())),
            _ => Err(anyhow::anyhow!("invalid argument \"{kv}\" for \"--{what}\" flag: bad format, expected key=value")),
        })
        .collect()
}
