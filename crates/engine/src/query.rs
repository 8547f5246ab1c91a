//! inspect, list (`docker ps` with filters and sizes), top.

use std::collections::BTreeMap;

use berth_api::container::{ContainerInspect, ContainerState, ContainerSummary, GraphDriver, SummaryHostConfig, TopResponse};
use berth_image::store::time::parse_rfc3339;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::state::Status;
use crate::Engine;

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: BTreeMap<String, Vec<String>>,
}

/// Go's `units.HumanDuration`, which `docker ps` uses for its STATUS column.
pub fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0).round() as i64;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn since(t: Option<&str>) -> String {
    human_duration(now_secs() - t.and_then(parse_rfc3339).unwrap_or_else(now_secs))
}

/// The STATUS column: "Up 2 minutes", "Exited (0) 3 seconds ago", "Created"...
pub fn status_text(rec: &Record) -> String {
    let s = &rec.state;
    match s.status {
        Status::Running => format!("Up {}", since(s.started_at.as_deref())),
        Status::Paused => format!("Up {} (Paused)", since(s.started_at.as_deref())),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, since(s.finished_at.as_deref())),
        Status::Exited if s.finished_at.is_some() => format!("Exited ({}) {} ago", s.exit_code, since(s.finished_at.as_deref())),
        Status::Exited | Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn command_line(rec: &Record) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().cloned());
    parts.join(" ")
}

impl Engine {
    pub fn inspect(&self, name: &str, size: bool) -> Result<ContainerInspect> {
        let rec = self.get(name)?;
        let dir = self.bundle_dir(&rec.id);
        let s = &rec.state;
        let (size_rw, size_root) = if size { self.sizes(&rec) } else { (None, None) };
        let driver = self.images.snapshotter().name().to_owned();
        let mut gd = BTreeMap::new();
        if let Ok(upper) = self.images.snapshotter().upper_dir(&rec.id) {
            gd.insert("UpperDir".into(), upper.display().to_string());
            gd.insert("MergedDir".into(), self.bundle_dir(&rec.id).join("rootfs").display().to_string());
        }
        Ok(ContainerInspect {
            id: rec.id.clone(),
            created: rec.created.clone(),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: ContainerState {
                status: s.status.as_str().into(),
                running: s.status.is_live(),
                paused: s.status == Status::Paused,
                restarting: s.status == Status::Restarting,
                oom_killed: s.oom_killed,
                dead: s.status == Status::Dead,
                pid: if s.status.is_live() { s.pid as i64 } else { 0 },
                exit_code: s.exit_code as i64,
                error: s.error.clone(),
                started_at: s.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
                finished_at: s.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
                health: self.health_of(&rec),
            },
            image: rec.image_id.clone(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            // Docker shows a LogPath for json-file only.
            log_path: if self.log_driver_of(&rec) == "json-file" { self.log_path(&rec.id).display().to_string() } else { String::new() },
            name: format!("/{}", rec.name),
            restart_count: rec.restart_count,
            driver: driver.clone(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: self.running_execs(&rec.id),
            host_config: rec.host_config.clone(),
            graph_driver: GraphDriver { name: driver, data: gd },
            size_rw,
            size_root_fs: size_root,
            mounts: rec.mounts.iter().map(|m| m.point.clone()).collect(),
            config: rec.config.clone(),
            network_settings: self.network_settings(&rec),
        })
    }

    fn sizes(&self, rec: &Record) -> (Option<i64>, Option<i64>) {
        let rw = self.images.snapshotter().usage(&rec.id).ok().map(|u| u as i64);
        let image = self.images.inspect(&rec.image_id).ok().and_then(|v| v.get("Size").and_then(|s| s.as_i64()));
        (rw, rw.zip(image).map(|(a, b)| a + b))
    }

    fn matches(&self, rec: &Record, filters: &BTreeMap<String, Vec<String>>, order: &[String]) -> Result<bool> {
        for (k, vals) in filters {
            let ok = match k.as_str() {
                "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
                "name" => vals.iter().any(|v| rec.name.contains(v.trim_start_matches('/'))),
                "label" => vals.iter().all(|v| {
                    let labels = rec.config.labels.clone().unwrap_or_default();
                    match v.split_once('=') {
                        Some((lk, lv)) => labels.get(lk).is_some_and(|x| x == lv),
                        None => labels.contains_key(v.as_str()),
                    }
                }),
                "status" => {
                    for v in vals {
                        if Status::parse(v).is_none() {
                            return Err(Error::InvalidParameter(format!("invalid filter 'status={v}'")));
                        }
                    }
                    vals.iter().any(|v| v == rec.state.status.as_str())
                }
                "exited" => {
                    rec.state.status == Status::Exited && vals.iter().any(|v| v.parse::<i32>().ok() == Some(rec.state.exit_code))
                }
                "ancestor" => vals.iter().any(|v| {
                    rec.image_ref == *v
                        || rec.image_id.trim_start_matches("sha256:").starts_with(v.trim_start_matches("sha256:"))
                        || self.images.meta().resolve(v).map(|d| d.to_string() == rec.image_id).unwrap_or(false)
                }),
                "before" | "since" => {
                    let mut ok = true;
                    for v in vals {
                        let other = self.get(v)?;
                        let pos = |id: &str| order.iter().position(|x| x == id);
                        let (me, them) = (pos(&rec.id), pos(&other.id));
                        // `order` is newest first.
                        ok &= if k == "before" { me > them } else { me < them };
                    }
                    ok
                }
"health" => self.health_matches(rec, vals)?,
                "volume" => vals.iter().any(|v| rec.mounts.iter().any(|m| m.point.name == *v || m.point.destination == *v || m.point.source == *v)),
                // The container's networks by name or ID (its network mode's among them).
                "network" => {
                    let nets = self.container_networks(rec);
                    vals.iter().any(|v| nets.iter().any(|(name, n, _, _)| name == v || n.as_ref().is_some_and(|n| n.id().starts_with(v.as_str()))))
                }
                "publish" | "expose" | "isolation" | "is-task" => true,
                _ => return Err(Error::InvalidParameter(format!("invalid filter '{k}'"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `GET /containers/json`, newest first.
    pub fn list(&self, o: &ListOptions) -> Result<Vec<ContainerSummary>> {
        let mut recs = self.records();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let order: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
        let all = o.all || o.limit.is_some() || o.filters.contains_key("status") || o.filters.contains_key("exited");
        let mut out = Vec::new();
        for rec in recs {
            if !all && !rec.state.status.is_live() && rec.state.status != Status::Restarting {
                continue;
            }
            if !self.matches(&rec, &o.filters, &order)? {
                continue;
            }
            let (size_rw, size_root) = if o.size { self.sizes(&rec) } else { (None, None) };
            out.push(ContainerSummary {
                id: rec.id.clone(),
                names: vec![format!("/{}", rec.name)],
                image: rec.image_ref.clone(),
                image_id: rec.image_id.clone(),
                command: command_line(&rec),
                created: parse_rfc3339(&rec.created).unwrap_or(0),
                ports: crate::network::summary_ports(self.endpoint(&rec.id).as_ref()),
                size_rw,
                size_root_fs: size_root,
                labels: rec.config.labels.clone().unwrap_or_default().into_iter().collect(),
                state: rec.state.status.as_str().into(),
                status: self.ps_status(&rec),
                host_config: SummaryHostConfig {
                    network_mode: if rec.host_config.network_mode.is_empty() { "bridge".into() } else { rec.host_config.network_mode.clone() },
                },
                network_settings: self.network_summary(&rec),
                mounts: rec.mounts.iter().map(|m| m.point.clone()).collect(),
            });
            if o.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// `docker top`: the host's `ps` with the given options, rows narrowed to the container's
    /// processes (Docker does the same).
    pub fn top(&self, name: &str, ps_args: &str) -> Result<TopResponse> {
        let rec = self.get(name)?;
        if !rec.state.status.is_live() {
            return Err(Error::Conflict(format!("container {} is not running", rec.id)));
        }
        let pids = berth_runtime::container::pids(&self.cfg.runtime_root(), &rec.id)?;
        let args: Vec<&str> = if ps_args.is_empty() { vec!["-ef"] } else { ps_args.split_whitespace().collect() };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::Internal(format!("run ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!("ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
        let pid_col = titles
            .iter()
            .position(|t| t == "PID")
            .ok_or_else(|| Error::InvalidParameter("Couldn't find PID field in ps output".into()))?;
        let mut processes = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < titles.len() {
                continue;
            }
            let Ok(pid) = fields[pid_col].parse::<i32>() else { continue };
            if !pids.contains(&pid) {
                continue;
            }
            // The last column (the command) keeps its spaces.
            let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| (*s).to_owned()).collect();
            row.push(fields[titles.len() - 1..].join(" "));
            processes.push(row);
        }
        Ok(TopResponse { titles, processes })
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
