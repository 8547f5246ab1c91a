//! Error reporting in runc's formats: containerd's shim reads the `--log` file (json lines with
//! level, msg and time) to tell the user why a runtime command failed.

use std::io::Write;
use std::path::PathBuf;

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    pub fn new(file: Option<PathBuf>, format: &str) -> Logger {
        Logger { file, json: format == "json" }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("berth-runc: {msg}");
        let Some(path) = &self.file else { return };
        let time = berth_runtime::state::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level=error msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}
