//! `stats`: CPU, memory, network, block I/O and pids per container, computed as the docker CLI
//! computes them; `--no-stream` prints once, otherwise the table is redrawn every second.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use berth_api::stats::StatsResponse as Stats;
use berth_api::client::{Client, JsonLines};

use crate::cli::StatsArgs;
use crate::format::json::Json;
use crate::format::units::{bytes_size, human_size};
use crate::format::Format;
use crate::Ctx;

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn row(key: &str, s: &Stats, trunc: bool) -> Json {
    let cpu_delta = s.cpu_stats.cpu_usage.total_usage as f64 - s.precpu_stats.cpu_usage.total_usage as f64;
    let sys_delta = s.cpu_stats.system_cpu_usage as f64 - s.precpu_stats.system_cpu_usage as f64;
    let percpu = s.cpu_stats.cpu_usage.percpu_usage.as_ref().map_or(0, Vec::len);
    let cpus = if s.cpu_stats.online_cpus > 0 { s.cpu_stats.online_cpus as f64 } else { percpu.max(1) as f64 };
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 { cpu_delta / sys_delta * cpus * 100.0 } else { 0.0 };
    let m = &s.memory_stats;
    // Docker subtracts the inactive page cache (v1: total_inactive_file, v2: inactive_file).
    let cache = m.stats.get("total_inactive_file").or_else(|| m.stats.get("inactive_file")).copied().unwrap_or(0);
    let used = if cache < m.usage { m.usage - cache } else { m.usage };
    let mem_pct = if m.limit > 0 { used as f64 / m.limit as f64 * 100.0 } else { 0.0 };
    let (rx, tx) = s.networks.iter().flat_map(|m| m.values()).fold((0u64, 0u64), |(r, t), n| (r + n.rx_bytes, t + n.tx_bytes));
    let (mut rd, mut wr) = (0u64, 0u64);
    for e in s.blkio_stats.io_service_bytes_recursive.iter().flatten() {
        match e.op.to_ascii_lowercase().as_str() {
            "read" => rd += e.value,
            "write" => wr += e.value,
            _ => {}
        }
    }
    let id = if trunc { super::ps::trunc_id(&s.id) } else { s.id.clone() };
    let j = Json::str;
    Json::Obj(vec![
        ("BlockIO".into(), j(format!("{} / {}", human_size(rd as f64, 3), human_size(wr as f64, 3)))),
        ("CPUPerc".into(), j(format!("{cpu:.2}%"))),
        ("Container".into(), j(key.to_owned())),
        ("ID".into(), j(id)),
        ("MemPerc".into(), j(format!("{mem_pct:.2}%"))),
        ("MemUsage".into(), j(format!("{} / {}", bytes_size(used as f64), bytes_size(m.limit as f64)))),
        ("Name".into(), j(s.name.trim_start_matches('/').to_owned())),
        ("NetIO".into(), j(format!("{} / {}", human_size(rx as f64, 3), human_size(tx as f64, 3)))),
        ("PIDs".into(), j(s.pids_stats.current.to_string())),
    ])
}

pub fn stats(c: &Ctx, a: &StatsArgs) -> Result<i32> {
    let names: Vec<String> = if a.containers.is_empty() {
        c.client.container_list(a.all, None, false, &[])?.into_iter().map(|ct| ct.id).collect()
    } else {
        a.containers.clone()
    };
    let fmt = Format::parse(a.format.as_deref(), DEFAULT, HEADERS).map_err(|e| anyhow!(e))?;
    let trunc = !a.no_trunc;
    if a.no_stream {
        let mut rows = Vec::new();
        for n in &names {
            let mut r = c.client.container_stats(n, false)?;
            let s: Stats = JsonLines::new(&mut r.body).next_message()?.ok_or_else(|| anyhow!("no stats for {n}"))?;
            rows.push(row(n, &s, trunc));
        }
        print!("{}", fmt.render(&rows, HEADERS).map_err(|e| anyhow!(e))?);
        return Ok(0);
    }
    // One streaming connection per container; the screen is redrawn from the latest of each.
    let latest: Arc<Mutex<BTreeMap<String, Json>>> = Arc::default();
    for n in names.clone() {
        let (latest, host) = (latest.clone(), c.client.host().to_owned());
        std::thread::spawn(move || {
            let Ok(cl) = Client::new(&host) else { return };
            let Ok(r) = cl.container_stats(&n, true) else { return };
            let mut lines = JsonLines::new(r.body);
            while let Ok(Some(s)) = lines.next_message::<Stats>() {
                latest.lock().unwrap_or_else(|e| e.into_inner()).insert(n.clone(), row(&n, &s, trunc));
            }
        });
    }
    super::stream::ignore_sigpipe();
    loop {
        std::thread::sleep(Duration::from_millis(1000));
        let rows: Vec<Json> = {
            let m = latest.lock().unwrap_or_else(|e| e.into_inner());
            names.iter().filter_map(|n| m.get(n).cloned()).collect()
        };
        let text = fmt.render(&rows, HEADERS).map_err(|e| anyhow!(e))?;
        use std::io::Write;
        let mut out = std::io::stdout();
        if write!(out, "\x1b[2J\x1b[H{text}").and_then(|_| out.flush()).is_err() {
            return Ok(0);
        }
    }
}
