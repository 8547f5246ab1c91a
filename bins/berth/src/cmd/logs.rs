//! `logs`: the log stream, demultiplexed to stdout/stderr unless the container has a TTY
//! (the daemon's Content-Type says which).

use std::io::{self, Read, Write};

use anyhow::{anyhow, Result};
use berth_api::client::{stdcopy, LogsOptions};

use crate::cli::LogsArgs;
use crate::format::units::get_timestamp;
use crate::Ctx;

pub fn logs(c: &Ctx, a: &LogsArgs) -> Result<i32> {
    let ts = |v: &Option<String>| v.as_deref().map(get_timestamp).transpose().map_err(|e| anyhow!(e));
    let o = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        since: ts(&a.since)?,
        until: ts(&a.until)?,
        timestamps: a.timestamps,
        tail: Some(a.tail.clone()),
        details: a.details,
    };
    let mut r = c.client.container_logs(&a.container, &o)?;
    super::stream::ignore_sigpipe();
    let raw = r.header("content-type").is_some_and(|t| t.contains("raw-stream"));
    let res = if raw {
        copy_flushing(&mut r.body)
    } else {
        stdcopy::demux(&mut r.body, &mut io::stdout(), &mut io::stderr())
    };
    match res {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

fn copy_flushing(r: &mut impl Read) -> io::Result<()> {
    let mut buf = vec![0u8; 32 << 10];
    let mut out = io::stdout();
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}
