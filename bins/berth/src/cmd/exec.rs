//! `exec`: an exec instance created, started on a hijacked connection (or detached), its exit
//! code read back from the daemon.

use anyhow::Result;
use berth_api::exec::{ExecCreateRequest, ExecStartRequest};

use super::run::{resize, setup_signals};
use super::stream::{self, StreamEnd, StreamOpts};
use crate::cli::ExecArgs;
use crate::{config, term, Ctx};

pub fn exec(c: &Ctx, a: &ExecArgs) -> Result<i32> {
    let container = &a.container_and_cmd[0];
    let cmd = a.container_and_cmd[1..].to_vec();
    let attach_stdin = a.interactive && !a.detach;
    if attach_stdin && a.tty && !term::is_tty(0) {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let console = if a.tty { term::size(1).map(|(h, w)| vec![h as u64, w as u64]) } else { None };
    let env = config::env_list(&a.env_file, &a.env)?;
    let cfg = ExecCreateRequest {
        user: a.user.clone().unwrap_or_default(),
        privileged: a.privileged,
        tty: a.tty,
        console_size: console.clone(),
        attach_stdin,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        env: (!env.is_empty()).then_some(env),
        working_dir: a.workdir.clone().unwrap_or_default(),
        cmd: Some(cmd),
    };
    let keys = stream::detach_keys(a.detach_keys.as_deref())?;
    let id = c.client.exec_create(container, &cfg)?;
    let start = ExecStartRequest { detach: a.detach, tty: a.tty, console_size: console };
    let Some(h) = c.client.exec_start(&id, &start)? else { return Ok(0) };
    setup_signals(&c.client, &id, a.tty, false, true);
    if a.tty {
        resize(&c.client, &id, true);
    }
    if stream::relay(h, &StreamOpts { tty: a.tty, stdin: attach_stdin, detach_keys: keys })? == StreamEnd::Detached {
        return Ok(0);
    }
    // The exit code lands shortly after the output ends.
    for _ in 0..100 {
        let info = c.client.exec_inspect(&id)?;
        if !info.running {
            return Ok(info.exit_code.unwrap_or(0) as i32);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(0)
}
