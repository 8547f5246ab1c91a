//! `run`/`create` flags -> the create request, as the docker CLI builds it (same empty lists
//! and maps, the same defaults) and with its validation messages.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use berth_api::container_config::{
    BindOptions, ContainerConfig, ContainerCreateRequest, DeviceMapping, EmptyObject, EndpointIpamConfig, EndpointSettings, HealthConfig,
    HostConfig, LogConfig, Mount, NetworkingConfig, PortBinding, Resources, RestartPolicy, TmpfsOptions, Ulimit,
    VolumeOptions,
};

use crate::cli::{ContainerOpts, ResourceOpts};
use crate::format::units::{parse_duration, ram_in_bytes};

/// A flag value Docker would refuse: `invalid argument "v" for "--flag" flag: why`.
fn bad(v: &str, flag: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: {why}")
}

fn bytes(v: &Option<String>, flag: &str) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) if s == "-1" => Ok(-1),
        Some(s) => ram_in_bytes(s).map_err(|e| bad(s, flag, e)),
    }
}

/// The API's resources from the flags `run`, `create` and `update` share (unset ones zero).
pub fn resources(r: &ResourceOpts) -> Result<Resources> {
    Ok(Resources {
        blkio_weight: r.blkio_weight.unwrap_or(0),
        cpu_period: r.cpu_period.unwrap_or(0),
        cpu_quota: r.cpu_quota.unwrap_or(0),
        cpu_realtime_period: r.cpu_rt_period.unwrap_or(0),
        cpu_realtime_runtime: r.cpu_rt_runtime.unwrap_or(0),
        cpu_shares: r.cpu_shares.unwrap_or(0),
        nano_cpus: nano_cpus(&r.cpus)?,
        cpuset_cpus: r.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: r.cpuset_mems.clone().unwrap_or_default(),
        memory: bytes(&r.memory, "-m, --memory")?,
        memory_reservation: bytes(&r.memory_reservation, "--memory-reservation")?,
        memory_swap: bytes(&r.memory_swap, "--memory-swap")?,
        pids_limit: r.pids_limit,
        ..Default::default()
    })
}

fn nanos(v: &Option<String>, flag: &str) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) => parse_duration(s).map(|n| n as i64).ok_or_else(|| bad(s, flag, format!("time: invalid duration \"{s}\""))),
    }
}

/// `--cpus 1.5` -> NanoCpus.
pub fn nano_cpus(v: &Option<String>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(s) => {
            let f: f64 = s.parse().map_err(|_| bad(s, "--cpus", "failed to parse as a rational number"))?;
            Ok((f * 1e9).round() as i64)
        }
    }
}

/// Docker's `ReadKVStrings` for env files: `KEY=value` lines, a bare `KEY` takes our value.
pub fn read_env_files(files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| anyhow!("open {f}: {}", crate::io_msg(&e)))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some(("", _)) => bail!("invalid env file ({f}): variable name is empty"),
                Some((k, _)) if k.contains(char::is_whitespace) => bail!("variable '{k}' contains whitespaces"),
                Some(_) => out.push(line.to_owned()),
                None => {
                    if let Ok(v) = std::env::var(line) {
                        out.push(format!("{line}={v}"));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `-e KEY` takes the value from our environment when it has one.
pub fn env_list(files: &[String], env: &[String]) -> Result<Vec<String>> {
    let mut out = read_env_files(files)?;
    for e in env {
        if e.contains('=') {
            if e.starts_with('=') {
                bail!("invalid environment variable: {e}");
            }
            out.push(e.clone());
        } else {
            out.push(std::env::var(e).map(|v| format!("{e}={v}")).unwrap_or_else(|_| e.clone()));
        }
    }
    Ok(out)
}

fn kv_map(list: &[String]) -> BTreeMap<String, String> {
    list.iter().map(|s| s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or((s.clone(), String::new()))).collect()
}

fn labels(o: &ContainerOpts) -> Result<BTreeMap<String, String>> {
    let mut all = Vec::new();
    for f in &o.label_file {
        let text = std::fs::read_to_string(f).map_err(|e| anyhow!("open {f}: {}", crate::io_msg(&e)))?;
        all.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
    }
    all.extend(o.label.iter().cloned());
    Ok(kv_map(&all))
}

pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, max) = s.split_once(':').unwrap_or((s, ""));
    let max_n = if max.is_empty() {
        0
    } else {
        max.parse::<i64>().map_err(|_| anyhow!("invalid restart policy format: maximum retry count must be an integer"))?
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if !max.is_empty() => {
            bail!("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
        }
        "" | "no" | "always" | "unless-stopped" | "on-failure" => Ok(RestartPolicy { name: name.to_owned(), maximum_retry_count: max_n }),
        _ => bail!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    }
}

fn ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s.split_once('=').ok_or_else(|| bad(s, "--ulimit", format!("invalid ulimit argument: {s}")))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |x: &str| x.parse::<i64>().map_err(|_| bad(s, "--ulimit", format!("invalid ulimit soft value: {x}")));
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard && hard != -1 {
        return Err(bad(s, "--ulimit", format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")));
    }
    Ok(Ulimit { name: name.to_owned(), soft, hard })
}

fn device(s: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = s.split(':').collect();
    let valid_perms = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, x] if valid_perms(x) => (*src, *src, *x),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, p] if valid_perms(p) => (*src, *dst, *p),
        _ => return Err(bad(s, "--device", format!("invalid device specification: {s}"))),
    };
    Ok(DeviceMapping { path_on_host: src.into(), path_in_container: dst.into(), cgroup_permissions: perms.into() })
}

/// `--mount type=bind,source=/a,target=/b,readonly` and the tmpfs/volume forms.
pub fn mount(s: &str) -> Result<Mount> {
    let mut m = Mount { typ: "volume".into(), ..Default::default() };
    let mut bind = BindOptions::default();
    let mut tmpfs = TmpfsOptions::default();
    let mut vol = VolumeOptions::default();
    let (mut has_bind, mut has_tmpfs, mut has_vol) = (false, false, false);
    let truthy = |v: Option<&str>| -> Result<bool> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("1") | Some("true") => Ok(true),
            Some("0") | Some("false") => Ok(false),
            Some(x) => Err(bad(s, "--mount", format!("invalid value for readonly: {x}"))),
        }
    };
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let val = || v.ok_or_else(|| bad(s, "--mount", format!("invalid field '{field}' must be a key=value pair")));
        match k.as_str() {
            "type" => m.typ = val()?.to_owned(),
            "source" | "src" => m.source = val()?.to_owned(),
            "target" | "destination" | "dst" => m.target = val()?.to_owned(),
            "readonly" | "ro" => m.read_only = truthy(v)?,
            "consistency" => m.consistency = val()?.to_owned(),
            "bind-propagation" => {
                has_bind = true;
                bind.propagation = val()?.to_owned();
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = truthy(v)?;
            }
            "bind-create-mountpoint" => {
                has_bind = true;
                bind.create_mountpoint = truthy(v)?;
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = truthy(v)?;
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = val()?.to_owned();
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                tmpfs.size_bytes = ram_in_bytes(val()?).map_err(|e| bad(s, "--mount", e))?;
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                tmpfs.mode = u32::from_str_radix(val()?, 8).map_err(|_| bad(s, "--mount", format!("invalid value for {k}: {}", v.unwrap_or(""))))?;
            }
            _ => return Err(bad(s, "--mount", format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if m.target.is_empty() {
        return Err(bad(s, "--mount", "target is required"));
    }
    match m.typ.as_str() {
        "bind" if m.source.is_empty() => return Err(bad(s, "--mount", "source is required when specifying bind mounts")),
        "tmpfs" if !m.source.is_empty() => return Err(bad(s, "--mount", "source is not supported for tmpfs mounts")),
        _ => {}
    }
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    if has_vol {
        m.volume_options = Some(vol);
    }
    Ok(m)
}

/// `-p [ip:][hostPort:]containerPort[/proto]` -> (exposed port, binding).
fn publish(s: &str, ports: &mut BTreeMap<String, EmptyObject>, bindings: &mut BTreeMap<String, Option<Vec<PortBinding>>>) -> Result<()> {
    let (spec, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (cport, hport, ip) = match parts.as_slice() {
        [c] => (*c, "", ""),
        [c, h] => (*c, *h, ""),
        [c, h, ip] => (*c, *h, ip.trim_matches(['[', ']'])),
        _ => unreachable!("rsplitn yields 1 to 3 parts"),
    };
    if cport.is_empty() || cport.parse::<u16>().is_err() {
        return Err(bad(s, "-p, --publish", format!("invalid containerPort: {cport}")));
    }
    let key = format!("{cport}/{proto}");
    ports.insert(key.clone(), EmptyObject);
    bindings.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(PortBinding {
        host_ip: ip.into(),
        host_port: hport.into(),
    });
    Ok(())
}

/// `--security-opt seccomp=profile.json` sends the profile's contents, as Docker's CLI does.
fn security_opts(list: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for o in list {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        if k == "seccomp" && v != "unconfined" && !v.is_empty() {
            let text = std::fs::read(v).map_err(|e| anyhow!("opening seccomp profile ({v}) failed: {}", crate::io_msg(&e)))?;
            let compact: serde_json::Value = serde_json::from_slice(&text).map_err(|e| anyhow!("compacting json for seccomp profile ({v}) failed: {e}"))?;
            out.push(format!("seccomp={compact}"));
        } else {
            out.push(o.clone());
        }
    }
    Ok(out)
}

/// What `run`/`create` send; `tty_size` is the terminal's (rows, cols) when `-t`.
pub fn build(o: &ContainerOpts, detach: bool, tty_size: Option<(u16, u16)>) -> Result<(ContainerCreateRequest, Option<String>)> {
    let image = o.image_and_cmd[0].clone();
    let cmd = (o.image_and_cmd.len() > 1).then(|| o.image_and_cmd[1..].to_vec());
    let mut attach_stdin = false;
    let (mut attach_stdout, mut attach_stderr) = (false, false);
    for a in &o.attach {
        match a.to_ascii_lowercase().as_str() {
            "stdin" => attach_stdin = true,
            "stdout" => attach_stdout = true,
            "stderr" => attach_stderr = true,
            _ => return Err(bad(a, "-a, --attach", "valid streams are STDIN, STDOUT and STDERR")),
        }
    }
    if detach && !o.attach.is_empty() {
        bail!("conflicting options: cannot specify both --attach and --detach");
    }
    if o.interactive {
        attach_stdin = true;
    }
    if o.attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    if detach {
        (attach_stdin, attach_stdout, attach_stderr) = (false, false, false);
    }

    let env = env_list(&o.env_file, &o.env)?;
    let mut exposed = BTreeMap::new();
    let mut bindings = BTreeMap::new();
    for p in &o.publish {
        publish(p, &mut exposed, &mut bindings)?;
    }
    for e in &o.expose {
        let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        exposed.insert(format!("{p}/{proto}"), EmptyObject);
    }
    let mut volumes = BTreeMap::new();
    let mut binds = Vec::new();
    for v in &o.volume {
        // `/ctr` alone is an anonymous volume; `src:dst[:opts]` a bind (or named volume).
        if v.split(':').count() == 1 {
            volumes.insert(v.clone(), EmptyObject);
        } else {
            binds.push(v.clone());
        }
    }
    let mut tmpfs = BTreeMap::new();
    for t in &o.tmpfs {
        let (p, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(p.to_owned(), opts.to_owned());
    }
    let entrypoint = match &o.entrypoint {
        Some(e) if e.is_empty() => Some(vec![String::new()]),
        Some(e) => Some(vec![e.clone()]),
        None => None,
    };
    let health_set = o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_start_period.is_some()
        || o.health_start_interval.is_some()
        || o.health_retries.is_some();
    let healthcheck = if o.no_healthcheck {
        if health_set {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        Some(HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() })
    } else if health_set {
        Some(HealthConfig {
            test: o.health_cmd.as_ref().map(|c| vec!["CMD-SHELL".into(), c.clone()]),
            interval: nanos(&o.health_interval, "--health-interval")?,
            timeout: nanos(&o.health_timeout, "--health-timeout")?,
            start_period: nanos(&o.health_start_period, "--health-start-period")?,
            start_interval: nanos(&o.health_start_interval, "--health-start-interval")?,
            retries: o.health_retries.unwrap_or(0),
        })
    } else {
        None
    };
    if o.health_retries.is_some_and(|r| r < 0) {
        bail!("--health-retries cannot be negative");
    }

    let restart = restart_policy(&o.restart)?;
    if o.rm && !matches!(restart.name.as_str(), "" | "no") {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    // The first --network is the network mode; the others are joined too (eth1...).
    let network = o.network.first().cloned().unwrap_or_else(|| "default".into());
    if o.network.len() > 1 && o.network.iter().any(|n| matches!(n.as_str(), "host" | "none") || n.starts_with("container:")) {
        bail!("conflicting options: cannot attach both user-defined and non-user-defined network-modes");
    }
    let stop_signal = o.stop_signal.clone().unwrap_or_default();

    let config = ContainerConfig {
        hostname: o.hostname.clone().unwrap_or_default(),
        domainname: o.domainname.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: Some(exposed),
        tty: o.tty,
        open_stdin: o.interactive,
        // With stdin attached, its EOF closes the container's (`echo x | berth run -i ...`).
        stdin_once: o.interactive && attach_stdin,
        env: (!env.is_empty()).then_some(env),
        cmd,
        healthcheck,
        image: image.clone(),
        volumes: Some(volumes),
        working_dir: o.workdir.clone().unwrap_or_default(),
        entrypoint,
        mac_address: o.mac_address.clone().unwrap_or_default(),
        labels: Some(labels(o)?),
        stop_signal,
        stop_timeout: o.stop_timeout,
        ..Default::default()
    };

    let resources = Resources {
        cgroup_parent: o.cgroup_parent.clone().unwrap_or_default(),
        blkio_weight_device: Some(vec![]),
        blkio_device_read_bps: Some(vec![]),
        blkio_device_write_bps: Some(vec![]),
        blkio_device_read_iops: Some(vec![]),
        blkio_device_write_iops: Some(vec![]),
        devices: Some(o.device.iter().map(|d| device(d)).collect::<Result<_>>()?),
        device_cgroup_rules: (!o.device_cgroup_rule.is_empty()).then(|| o.device_cgroup_rule.clone()),
        memory_swappiness: Some(o.memory_swappiness.unwrap_or(-1)),
        oom_kill_disable: Some(o.oom_kill_disable),
        ulimits: Some(o.ulimit.iter().map(|u| ulimit(u)).collect::<Result<_>>()?),
        ..resources(&o.resources)?
    };
    if o.memory_swappiness.is_some_and(|s| !(-1..=100).contains(&s)) {
        bail!("invalid value: {}. Valid memory swappiness range is 0-100", o.memory_swappiness.unwrap_or(0));
    }

    let host = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        container_id_file: o.cidfile.clone().unwrap_or_default(),
        log_config: LogConfig { typ: o.log_driver.clone().unwrap_or_default(), config: Some(kv_map(&o.log_opt)) },
        network_mode: network.clone(),
        port_bindings: Some(bindings),
        restart_policy: restart,
        auto_remove: o.rm,
        volumes_from: (!o.volumes_from.is_empty()).then(|| o.volumes_from.clone()),
        console_size: match (o.tty, tty_size) {
            (true, Some((h, w))) => [h as u64, w as u64],
            _ => [0, 0],
        },
        annotations: (!o.annotation.is_empty()).then(|| kv_map(&o.annotation)),
        cap_add: (!o.cap_add.is_empty()).then(|| o.cap_add.clone()),
        cap_drop: (!o.cap_drop.is_empty()).then(|| o.cap_drop.clone()),
        cgroupns_mode: o.cgroupns.clone().unwrap_or_default(),
        dns: Some(o.dns.clone()),
        dns_options: Some(o.dns_option.clone()),
        dns_search: Some(o.dns_search.clone()),
        extra_hosts: (!o.add_host.is_empty()).then(|| o.add_host.iter().map(|h| h.replacen('=', ":", 1)).collect()),
        group_add: (!o.group_add.is_empty()).then(|| o.group_add.clone()),
        ipc_mode: o.ipc.clone().unwrap_or_default(),
        oom_score_adj: o.oom_score_adj.unwrap_or(0),
        pid_mode: o.pid.clone().unwrap_or_default(),
        privileged: o.privileged,
        publish_all_ports: o.publish_all,
        readonly_rootfs: o.read_only,
        security_opt: (!o.security_opt.is_empty()).then(|| security_opts(&o.security_opt)).transpose()?,
        storage_opt: (!o.storage_opt.is_empty()).then(|| kv_map(&o.storage_opt)),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        uts_mode: o.uts.clone().unwrap_or_default(),
        userns_mode: o.userns.clone().unwrap_or_default(),
        shm_size: bytes(&o.shm_size, "--shm-size")?,
        sysctls: (!o.sysctl.is_empty()).then(|| kv_map(&o.sysctl)),
        runtime: o.runtime.clone().unwrap_or_default(),
        resources,
        mounts: (!o.mount.is_empty()).then(|| o.mount.iter().map(|m| mount(m)).collect::<Result<_>>()).transpose()?,
        init: o.init.then_some(true),
        ..Default::default()
    };
    // Only container networks get an endpoint; host/none/container:x do not.
    let mut endpoints = BTreeMap::new();
    if !matches!(network.as_str(), "host" | "none") && !network.starts_with("container:") {
        let settings = EndpointSettings {
            ipam_config: o.ip.as_ref().map(|ip| EndpointIpamConfig { ipv4_address: ip.clone(), ..Default::default() }),
            aliases: (!o.network_alias.is_empty()).then(|| o.network_alias.clone()),
            ..Default::default()
        };
        endpoints.insert(network.clone(), Some(settings));
        for n in o.network.iter().skip(1) {
            endpoints.insert(n.clone(), Some(EndpointSettings::default()));
        }
    }
    let req = ContainerCreateRequest {
        config,
        host_config: Some(host),
        networking_config: Some(NetworkingConfig { endpoints_config: Some(endpoints) }),
    };
    Ok((req, o.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    fn req(args: &[&str]) -> Result<ContainerCreateRequest> {
        let t = T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map_err(|e| anyhow!("{e}"))?;
        Ok(build(&t.o, false, Some((24, 80)))?.0)
    }

    #[test]
    fn like_the_docker_cli() {
        let r = req(&["-e", "A=1", "--cap-add", "CAP_NET_ADMIN", "--read-only", "--tmpfs", "/run", "-m", "64m", "--cpus", "1.5", "--restart", "on-failure:3", "--init", "--ulimit", "nofile=1024:2048", "--device", "/dev/null:/dev/xnull", "busybox", "sh"]).unwrap();
        let h = r.host_config.as_ref().unwrap();
        assert_eq!(h.resources.memory, 64 << 20);
        assert_eq!(h.resources.nano_cpus, 1_500_000_000);
        assert_eq!(h.restart_policy, RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 });
        assert_eq!(h.tmpfs.as_ref().unwrap()["/run"], "");
        assert_eq!(h.resources.ulimits.as_ref().unwrap()[0], Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 });
        assert_eq!(h.resources.devices.as_ref().unwrap()[0].path_in_container, "/dev/xnull");
        assert_eq!(r.config.cmd, Some(vec!["sh".to_string()]));
        assert!(r.config.attach_stdout && !r.config.attach_stdin && !r.config.stdin_once);
        assert_eq!(h.network_mode, "default");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["HostConfig"]["Dns"], serde_json::json!([]));
        assert_eq!(v["HostConfig"]["Binds"], serde_json::Value::Null);
        assert_eq!(v["Volumes"], serde_json::json!({}));
        assert_eq!(v["HostConfig"]["MemorySwappiness"], serde_json::json!(-1));
    }

    #[test]
    fn mounts_entrypoint_health_and_errors() {
        let r = req(&["-it", "--entrypoint", "", "--mount", "type=tmpfs,dst=/scratch,tmpfs-size=1m", "--mount", "type=bind,src=/etc,target=/hostetc,readonly,bind-propagation=rslave", "--health-cmd", "true", "--health-interval", "5s", "-v", "/tmp:/data:ro", "-v", "/anon", "busybox", "echo", "-n", "hi"]).unwrap();
        assert_eq!(r.config.entrypoint, Some(vec![String::new()]));
        assert!(r.config.stdin_once && r.config.tty);
        assert_eq!(r.config.cmd, Some(vec!["echo".into(), "-n".into(), "hi".into()]));
        let h = r.host_config.as_ref().unwrap();
        let m = h.mounts.as_ref().unwrap();
        assert_eq!(m[0].tmpfs_options.as_ref().unwrap().size_bytes, 1 << 20);
        assert!(m[1].read_only && m[1].bind_options.as_ref().unwrap().propagation == "rslave");
        assert_eq!(h.console_size, [24, 80]);
        assert_eq!(r.config.healthcheck.as_ref().unwrap().interval, 5_000_000_000);
        assert_eq!(h.binds.as_deref(), Some(&["/tmp:/data:ro".to_string()][..]));
        assert!(r.config.volumes.as_ref().unwrap().contains_key("/anon"));
        assert!(req(&["-m", "12x", "busybox"]).unwrap_err().to_string().contains("invalid argument \"12x\" for \"-m, --memory\" flag"));
        assert!(req(&["--rm", "--restart", "always", "busybox"]).is_err());
        assert!(req(&["--restart", "sometimes", "busybox"]).is_err());
        assert!(req(&["--no-healthcheck", "--health-cmd", "x", "busybox"]).is_err());
    }
}
