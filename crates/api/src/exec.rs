//! `docker exec`: the create and start requests and the inspect answer.

use serde::{Deserialize, Serialize};

use crate::container_config::{nullable, str_slice};

/// `POST /containers/{id}/exec` (Docker's `ExecConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreateRequest {
    #[serde(deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "nullable")]
    pub attach_stderr: bool,
    #[serde(deserialize_with = "nullable")]
    pub detach_keys: String,
    #[serde(deserialize_with = "nullable")]
    pub tty: bool,
    /// `[height, width]`.
    pub console_size: Option<Vec<u64>>,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
}

/// `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartRequest {
    #[serde(deserialize_with = "nullable")]
    pub detach: bool,
    #[serde(deserialize_with = "nullable")]
    pub tty: bool,
    pub console_size: Option<Vec<u64>>,
}

/// `ProcessConfig` of an exec's inspect (lower-case keys, as Docker's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessConfig {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// null until the process has ended.
    pub exit_code: Option<i64>,
    pub process_config: ProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Docker encodes the key bytes as base64 (a Go []byte).
    pub detach_keys: String,
    pub pid: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_exec_config_parses() {
        let body = r#"{"User":"","Privileged":false,"Tty":true,"ConsoleSize":[30,120],"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh"]}"#;
        let r: ExecCreateRequest = serde_json::from_str(body).unwrap();
        assert!(r.tty && r.attach_stdin && r.env.is_none());
        assert_eq!(r.console_size, Some(vec![30, 120]));
        assert_eq!(r.cmd, Some(vec!["sh".to_string()]));
        let r: ExecCreateRequest = serde_json::from_str(r#"{"Cmd":"echo hi","User":null}"#).unwrap();
        assert_eq!(r.cmd, Some(vec!["echo hi".to_string()]));
        let s: ExecStartRequest = serde_json::from_str(r#"{"Detach":true,"Tty":false,"ConsoleSize":null}"#).unwrap();
        assert!(s.detach && s.console_size.is_none());
    }

    #[test]
    fn inspect_shape() {
        let v = serde_json::to_value(ExecInspect { id: "x".into(), ..Default::default() }).unwrap();
        assert_eq!(v["ExitCode"], serde_json::Value::Null);
        assert_eq!(v["ProcessConfig"], serde_json::json!({"tty": false, "entrypoint": "", "arguments": []}));
        assert!(v.get("ContainerID").is_some() && v.get("ID").is_some());
    }
}
