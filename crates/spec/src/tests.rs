//! `build` end to end, against what dockerd generated for the same requests (the config.json
//! containerd handed runc, read from a private dockerd on the development host).

use std::path::{Path, PathBuf};

use berth_api::container_config::{ContainerConfig, HostConfig};
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction, Spec};
use serde_json::{json, Value};

use super::*;

const ID: &str = "8699e34a322b4114f280b93e83e283711936257ca138f987e8efc4e806cb7e8f";

struct Fixture {
    dir: tempfile::TempDir,
    daemon: DaemonDefaults,
    info: HostInfo,
    image: ImageDefaults,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\napp:x:1000:\nwheel:x:10:app\n").unwrap();
        for f in ["hostname", "hosts", "resolv.conf"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let image = ImageDefaults {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let info = HostInfo { cgroup_v2: false, ..HostInfo::full() };
        Fixture { dir, daemon: DaemonDefaults::default(), info, image }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn build(&self, config: &ContainerConfig, host: &HostConfig) -> Result<(Spec, Vec<String>)> {
        self.build_net(config, host, NetNs::New)
    }

    fn build_net(&self, config: &ContainerConfig, host: &HostConfig, net_ns: NetNs) -> Result<(Spec, Vec<String>)> {
        let d = self.dir.path();
        let (h, hs, r) = (d.join("hostname"), d.join("hosts"), d.join("resolv.conf"));
        let rootfs = self.rootfs();
        build_with_warnings(&SpecInput {
            id: ID,
            config,
            host,
            image: &self.image,
            rootfs: &rootfs,
            etc_files: Some(EtcFiles { hostname: Some(&h), hosts: Some(&hs), resolv_conf: Some(&r) }),
            net_ns,
            join_ns: vec![],
            ipc_shm: None,
            volumes: Default::default(),
            daemon: &self.daemon,
            host_info: &self.info,
        })
    }

    fn json(&self, config: Value, host: Value) -> Result<(Value, Vec<String>)> {
        let c: ContainerConfig = serde_json::from_value(config).unwrap();
        let h: HostConfig = serde_json::from_value(host).unwrap();
        self.build(&c, &h).map(|(s, w)| (serde_json::to_value(s).unwrap(), w))
    }
}

fn sorted(v: &Value) -> Vec<String> {
    let mut v: Vec<String> = v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

fn default_caps() -> Vec<String> {
    let mut v: Vec<String> = DOCKER_DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn plain_container_matches_dockerd() {
    // `docker run -d --network none busybox sleep 1000`: dockerd 20.10's config.json, with
    // Docker 28's masked paths (it adds /sys/devices/virtual/powercap) and without the fields
    // that only carried zeros (cpu.shares 0, blockIO.weight 0, disableOOMKiller false).
    let f = Fixture::new();
    let (s, w) = f.json(json!({"Cmd": ["sleep", "1000"], "Image": "busybox"}), json!({"NetworkMode": "none"})).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let p = &s["process"];
    assert_eq!(p["user"], json!({"uid": 0, "gid": 0, "additionalGids": [0]}));
    assert_eq!(p["args"], json!(["sleep", "1000"]));
    // HOME: runc sets it in the container; here it is in the spec (berth-runtime does not).
    assert_eq!(p["env"], json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=8699e34a322b", "HOME=/root"]));
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["oomScoreAdj"], 0);
    assert_eq!(p["terminal"], false);
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(sorted(&p["capabilities"][set]), default_caps(), "{set}");
    }
    assert!(p["capabilities"].get("inheritable").is_none() && p["capabilities"].get("ambient").is_none());
    assert!(p.get("noNewPrivileges").is_none() && p.get("rlimits").is_none());
    assert_eq!(s["hostname"], "8699e34a322b");
    assert_eq!(s["root"], json!({"path": f.rootfs()}));
    let d = f.dir.path().to_string_lossy().into_owned();
    assert_eq!(
        s["mounts"],
        json!([
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
            {"destination": "/etc/resolv.conf", "type": "bind", "source": format!("{d}/resolv.conf"), "options": ["rbind", "rprivate"]},
            {"destination": "/etc/hostname", "type": "bind", "source": format!("{d}/hostname"), "options": ["rbind", "rprivate"]},
            {"destination": "/etc/hosts", "type": "bind", "source": format!("{d}/hosts"), "options": ["rbind", "rprivate"]},
        ])
    );
    let l = &s["linux"];
    assert_eq!(l["sysctl"], json!({"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}));
    assert_eq!(
        l["resources"],
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        ]})
    );
    assert_eq!(l["cgroupsPath"], format!("/berth/{ID}"));
    assert_eq!(l["namespaces"], json!([{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "pid"}, {"type": "ipc"}]));
    assert_eq!(l["maskedPaths"], json!(DEFAULT_MASKED_PATHS));
    assert_eq!(l["readonlyPaths"], json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]));
    assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(l["seccomp"]["architectures"], json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
    assert!(l.get("devices").is_none() && s.get("annotations").is_none() && s.get("hooks").is_none());
}

#[test]
fn rich_container_matches_dockerd() {
    // `docker run -t --memory 64m --cpus 1.5 --cap-add NET_ADMIN --cap-drop chown --ulimit
    // nofile=1024:2048 --init --read-only --tmpfs /run --sysctl net.ipv4.ip_forward=1 --device
    // /dev/null:/dev/xnull:rw --security-opt no-new-privileges --pids-limit 50 --memory-swappiness
    // 10 --cpu-shares 512 --oom-score-adj 100 -u 0:0 --group-add 10 --shm-size 1m -w /tmp
    // --device-cgroup-rule 'c 1:3 rwm' --hostname hh --domainname dd -e A=1 busybox sleep 100`
    let mut f = Fixture::new();
    f.daemon.init_path = Some("/usr/bin/docker-init".into());
    let (s, w) = f
        .json(
            json!({"Hostname": "hh", "Domainname": "dd", "User": "0:0", "Tty": true, "Env": ["A=1"],
                   "Cmd": ["sleep", "100"], "WorkingDir": "/tmp"}),
            json!({"NetworkMode": "none", "CapAdd": ["CAP_NET_ADMIN"], "CapDrop": ["CAP_CHOWN"], "GroupAdd": ["10"],
                   "OomScoreAdj": 100, "ReadonlyRootfs": true, "SecurityOpt": ["no-new-privileges"],
                   "Tmpfs": {"/run": ""}, "ShmSize": 1048576, "Sysctls": {"net.ipv4.ip_forward": "1"},
                   "CpuShares": 512, "Memory": 67108864, "NanoCpus": 1500000000, "MemorySwappiness": 10,
                   "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rw"}],
                   "DeviceCgroupRules": ["c 1:3 rwm"], "PidsLimit": 50,
                   "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}], "Init": true}),
        )
        .unwrap();
    assert!(w.is_empty(), "{w:?}");
    let p = &s["process"];
    assert_eq!(p["terminal"], true);
    assert_eq!(p["user"], json!({"uid": 0, "gid": 0, "additionalGids": [0, 10]}));
    assert_eq!(p["args"], json!(["/sbin/docker-init", "--", "sleep", "100"]));
    assert_eq!(p["env"], json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=hh", "TERM=xterm", "A=1", "HOME=/root"]));
    assert_eq!(p["cwd"], "/tmp");
    let mut caps = default_caps();
    caps.retain(|c| c != "CAP_CHOWN");
    caps.push("CAP_NET_ADMIN".into());
    caps.sort();
    assert_eq!(sorted(&p["capabilities"]["effective"]), caps);
    assert_eq!(p["rlimits"], json!([{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024}]));
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(p["oomScoreAdj"], 100);
    assert_eq!(s["root"]["readonly"], true);
    let m: Vec<(String, Vec<String>)> = s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["destination"].as_str().unwrap().to_string(), m["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect()))
        .collect();
    let opts = |d: &str| m.iter().find(|(x, _)| x == d).unwrap().1.join(",");
    assert_eq!(opts("/dev/shm"), "nosuid,noexec,nodev,mode=1777,size=1048576");
    assert_eq!(opts("/sbin/docker-init"), "bind,ro");
    assert_eq!(opts("/run"), "noexec,nosuid,nodev,rprivate");
    // Docker 25+ (kernel 5.12+): read-only binds are recursively read-only.
    assert_eq!(opts("/etc/hosts"), "rbind,ro,rprivate,rro");
    let order: Vec<&str> = m.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(&order[7..], ["/sbin/docker-init", "/run", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]);
    let l = &s["linux"];
    assert_eq!(l["sysctl"]["kernel.domainname"], "dd");
    assert_eq!(l["sysctl"]["net.ipv4.ip_forward"], "1");
    let r = &l["resources"];
    assert_eq!(r["memory"], json!({"limit": 67108864, "swap": 134217728, "swappiness": 10}));
    assert_eq!(r["cpu"], json!({"shares": 512, "quota": 150000, "period": 100000}));
    assert_eq!(r["pids"], json!({"limit": 50}));
    assert_eq!(r["devices"][8], json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}));
    assert_eq!(r["devices"][9], json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}));
    assert_eq!(l["devices"], json!([{"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}]));
    assert_eq!(s["hostname"], "hh");
}

#[test]
fn cli_captured_request_builds() {
    // The body docker CLI 28 sent for the rich `docker create` (see berth-api's fixture).
    let mut f = Fixture::new();
    f.daemon.init_path = Some("/usr/bin/docker-init".into());
    let req: berth_api::container_config::ContainerCreateRequest = serde_json::from_value(json!({
        "Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,
        "ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["sh"],
        "Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},
        "HostConfig":{"Binds":null,"NetworkMode":"default","CapAdd":["CAP_NET_ADMIN"],"CapDrop":null,
            "ReadonlyRootfs":true,"SecurityOpt":["no-new-privileges"],"Tmpfs":{"/run":""},"ShmSize":0,
            "Sysctls":{"net.ipv4.ip_forward":"1"},"Memory":67108864,"NanoCpus":1500000000,
            "Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/xnull","CgroupPermissions":"rwm"}],
            "MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,
            "Ulimits":[{"Name":"nofile","Hard":2048,"Soft":1024}],"Init":true,"ConsoleSize":[0,0]}
    }))
    .unwrap();
    let (s, w) = f.build(&req.config, req.host_config.as_ref().unwrap()).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert!(r.pids().is_none(), "PidsLimit 0 is unlimited");
    assert_eq!(r.memory().as_ref().unwrap().swappiness(), None, "-1 means unset");
    assert_eq!(s.process().as_ref().unwrap().args().as_ref().unwrap()[..3], ["/sbin/docker-init", "--", "sh"]);
}

#[test]
fn privileged_on_a_host_without_cap_sys_resource() {
    let mut f = Fixture::new();
    f.info.bounding_caps = 0x1fffeffffff;
    let (s, _) = f.json(json!({"Cmd": ["sh"]}), json!({"Privileged": true, "ReadonlyRootfs": true})).unwrap();
    let caps = &s["process"]["capabilities"];
    assert_eq!(caps["bounding"].as_array().unwrap().len(), 40);
    assert!(!sorted(&caps["effective"]).contains(&"CAP_SYS_RESOURCE".to_string()));
    let l = &s["linux"];
    assert!(l.get("seccomp").is_none() && l.get("maskedPaths").is_none() && l.get("readonlyPaths").is_none());
    assert_eq!(l["resources"]["devices"], json!([{"allow": true, "access": "rwm"}]));
    assert!(l["devices"].as_array().unwrap().iter().any(|d| d["path"] == "/dev/null"));
    let sys = s["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/sys").unwrap();
    assert_eq!(sys["options"], json!(["nosuid", "noexec", "nodev"]));
    let cg = s["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/sys/fs/cgroup").unwrap();
    assert_eq!(cg["options"], json!(["nosuid", "noexec", "nodev"]));
}

#[test]
fn users_from_the_rootfs() {
    let f = Fixture::new();
    let (s, _) = f.json(json!({"Cmd": ["id"], "User": "app"}), json!({"GroupAdd": ["nobody"]})).unwrap();
    assert_eq!(s["process"]["user"], json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 65534]}));
    // A non-root user keeps only the bounding set.
    let caps = &s["process"]["capabilities"];
    assert_eq!(sorted(&caps["bounding"]), default_caps());
    assert!(caps.get("effective").is_none() && caps.get("permitted").is_none());
    let e = f.json(json!({"Cmd": ["id"], "User": "ghost"}), json!({})).unwrap_err();
    assert_eq!(e.to_string(), "unable to find user ghost: no matching entries in passwd file");
    // The image's user applies when the request has none.
    let mut f2 = Fixture::new();
    f2.image.user = "nobody".into();
    let (s, _) = f2.json(json!({"Cmd": ["id"]}), json!({})).unwrap();
    assert_eq!(s["process"]["user"]["uid"], 65534);
}

#[test]
fn host_modes() {
    let f = Fixture::new();
    let (s, _) = f
        .build_net(
            &serde_json::from_value(json!({"Cmd": ["sh"]})).unwrap(),
            &serde_json::from_value(json!({"NetworkMode": "host", "PidMode": "host", "IpcMode": "host", "UTSMode": "host", "Init": true})).unwrap(),
            NetNs::Host,
        )
        .unwrap();
    let l = s.linux().as_ref().unwrap();
    let kinds: Vec<LinuxNamespaceType> = l.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    assert_eq!(kinds, [LinuxNamespaceType::Mount]);
    assert!(l.sysctl().is_none(), "no network sysctls on the host network");
    assert!(s.hostname().is_none());
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["sh"], "no init outside a private PID namespace");
    assert!(p.env().as_ref().unwrap().contains(&"HOSTNAME=host".to_string()));
    let shm = s.mounts().as_ref().unwrap().iter().find(|m| m.destination() == Path::new("/dev/shm")).unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));
    let e = f
        .build_net(
            &serde_json::from_value(json!({"Cmd": ["sh"]})).unwrap(),
            &serde_json::from_value(json!({"NetworkMode": "host", "Sysctls": {"net.core.somaxconn": "1"}})).unwrap(),
            NetNs::Host,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), r#"sysctl "net.core.somaxconn" not allowed in host network namespace"#);
}

#[test]
fn joined_namespaces_and_ipc() {
    let f = Fixture::new();
    let rootfs = f.rootfs();
    let config: ContainerConfig = serde_json::from_value(json!({"Cmd": ["sh"]})).unwrap();
    let host: HostConfig = serde_json::from_value(json!({"PidMode": "container:x", "IpcMode": "container:x", "NetworkMode": "container:x"})).unwrap();
    let shm = PathBuf::from("/proc/1/root/dev/shm");
    let input = SpecInput {
        id: ID,
        config: &config,
        host: &host,
        image: &f.image,
        rootfs: &rootfs,
        etc_files: None,
        net_ns: NetNs::Path("/proc/1/ns/net".into()),
        join_ns: vec![(LinuxNamespaceType::Pid, "/proc/1/ns/pid".into()), (LinuxNamespaceType::Ipc, "/proc/1/ns/ipc".into())],
        ipc_shm: Some(&shm),
        volumes: Default::default(),
        daemon: &f.daemon,
        host_info: &f.info,
    };
    let s = serde_json::to_value(build(&input).unwrap()).unwrap();
    assert_eq!(
        s["linux"]["namespaces"],
        json!([{"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}, {"type": "uts"}, {"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "ipc", "path": "/proc/1/ns/ipc"}])
    );
    assert!(s["linux"].get("sysctl").is_none());
    let shm_mount = s["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/dev/shm").unwrap();
    assert_eq!(shm_mount["source"], "/proc/1/root/dev/shm");
    // Without the shared /dev/shm, or without the namespaces, it cannot be built...
    assert!(build(&SpecInput { ipc_shm: None, ..input.clone() }).is_err());
    assert!(build(&SpecInput { join_ns: vec![], ..input.clone() }).is_err());
    // ...but it validates at create, before the engine resolves the other container.
    let unresolved = SpecInput { net_ns: NetNs::New, rootfs: Path::new("/nonexistent"), join_ns: vec![], ipc_shm: None, ..input };
    assert_eq!(validate(&unresolved).unwrap(), Vec::<String>::new());
}

#[test]
fn errors_like_docker() {
    let f = Fixture::new();
    let e = |c: Value, h: Value| f.json(c, h).unwrap_err().to_string();
    assert_eq!(e(json!({"Entrypoint": [""]}), json!({})), "No command specified");
    assert_eq!(e(json!({"Cmd": ["sh"]}), json!({"CapAdd": ["CAP_FOO"]})), r#"invalid CapAdd: unknown capability: "CAP_FOO""#);
    assert_eq!(e(json!({"Cmd": ["sh"]}), json!({"NanoCpus": 1000000000, "CpuPeriod": 100000})), "Conflicting options: Nano CPUs and CPU Period cannot both be set");
    assert!(e(json!({"Cmd": ["sh"]}), json!({"Init": true})).contains("init"));
    let raw = |c: Value, h: Value| {
        check_request(&serde_json::from_value(c).unwrap(), &serde_json::from_value(h).unwrap()).map_err(|e| e.to_string())
    };
    assert_eq!(raw(json!({"Hostname": "h"}), json!({"UTSMode": "host"})).unwrap_err(), "conflicting options: hostname and the UTS mode");
    assert_eq!(raw(json!({"WorkingDir": "rel"}), json!({})).unwrap_err(), "the working directory 'rel' is invalid, it needs to be an absolute path");
    assert!(raw(json!({"WorkingDir": "/w"}), json!({"UTSMode": "host"})).is_ok());
    // At build time a stored hostname (the engine's default) is just not set with UTSMode host.
    let (s, _) = f.json(json!({"Cmd": ["sh"], "Hostname": "h"}), json!({"UTSMode": "host"})).unwrap();
    assert!(s.get("hostname").is_none());
    assert_eq!(e(json!({"Cmd": ["sh"]}), json!({"ShmSize": -1})), "SHM size can not be less than 0");
    assert_eq!(e(json!({"Cmd": ["sh"]}), json!({"SecurityOpt": ["seccomp"]})), r#"invalid --security-opt 1: "seccomp""#);
    let err = f.json(json!({"Cmd": ["sh"]}), json!({"Binds": ["vol:/data"]})).unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err}");
    let err = f.json(json!({"Cmd": ["sh"]}), json!({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v"}]})).unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err}");
}

#[test]
fn security_options_and_overrides() {
    let f = Fixture::new();
    let (s, _) = f
        .json(
            json!({"Cmd": ["sh"]}),
            json!({"SecurityOpt": ["seccomp=unconfined", "apparmor=unconfined", "label=disable"], "MaskedPaths": [], "ReadonlyPaths": ["/proc/x"],
                   "Annotations": {"a": "b"}, "CgroupParent": "custom"}),
        )
        .unwrap();
    assert!(s["linux"].get("seccomp").is_none());
    assert_eq!(s["linux"]["maskedPaths"], json!([]));
    assert_eq!(s["linux"]["readonlyPaths"], json!(["/proc/x"]));
    assert_eq!(s["annotations"], json!({"a": "b"}));
    assert_eq!(s["linux"]["cgroupsPath"], format!("custom/{ID}"));
    assert!(s["process"].get("apparmorProfile").is_none());
    // A custom profile, filtered the same way.
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
    let (s, _) = f.json(json!({"Cmd": ["sh"]}), json!({"SecurityOpt": [format!("seccomp={profile}")]})).unwrap();
    assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(s["linux"]["seccomp"]["syscalls"][0]["names"], json!(["mount"]));
    let (s, _) = f.json(json!({"Cmd": ["sh"]}), json!({"SecurityOpt": [format!("seccomp={profile}")], "CapAdd": ["SYS_ADMIN"]})).unwrap();
    assert_eq!(s["linux"]["seccomp"]["syscalls"], json!([]));
    // The default profile follows CapAdd.
    let (spec, _) = f.build(&serde_json::from_value(json!({"Cmd": ["sh"]})).unwrap(), &serde_json::from_value(json!({"CapAdd": ["SYS_PTRACE"]})).unwrap()).unwrap();
    let sc = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    let allows = |n: &str| sc.syscalls().iter().flatten().any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.names().iter().any(|x| x == n) && s.args().is_none());
    assert!(allows("ptrace") && allows("process_vm_readv"));
}

#[test]
fn volumes_and_mounts() {
    let f = Fixture::new();
    let src = f.dir.path().join("data");
    std::fs::create_dir(&src).unwrap();
    let (s, w) = f
        .json(
            json!({"Cmd": ["sh"], "Volumes": {"/var/lib/db": {}, "/data": {}}}),
            json!({"Binds": [format!("{}:/data:ro", src.display())],
                   "Mounts": [{"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576}}]}),
        )
        .unwrap();
    // The image's volumes are the engine's (it passes them resolved): no warning here.
    assert!(w.is_empty(), "{w:?}");
    let ms = s["mounts"].as_array().unwrap();
    let data = ms.iter().find(|m| m["destination"] == "/data").unwrap();
    assert_eq!(data["options"], json!(["rbind", "ro", "rprivate", "rro"]));
    let scratch = ms.iter().find(|m| m["destination"] == "/scratch").unwrap();
    assert_eq!(scratch["options"], json!(["noexec", "nosuid", "nodev", "rprivate", "size=1m"]));
}

#[test]
fn tty_console_size_and_env_defaults() {
    let f = Fixture::new();
    let (s, _) = f.json(json!({"Cmd": ["sh"], "Tty": true, "Env": ["PATH=/x", "TERM"]}), json!({"ConsoleSize": [24, 80]})).unwrap();
    assert_eq!(s["process"]["consoleSize"], json!({"height": 24, "width": 80}));
    assert_eq!(s["process"]["env"], json!(["PATH=/x", "HOSTNAME=8699e34a322b", "HOME=/root"]));
    // The image's PATH is kept when the request sets none.
    let (s, _) = f.json(json!({"Cmd": ["sh"], "Env": ["A=1"]}), json!({})).unwrap();
    assert_eq!(s["process"]["env"][0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    assert_eq!(s["process"]["env"][2], "A=1");
}

#[test]
fn spec_round_trips_through_config_json() {
    let f = Fixture::new();
    let (spec, _) = f.build(&serde_json::from_value(json!({"Cmd": ["sh"]})).unwrap(), &HostConfig::default()).unwrap();
    let text = serde_json::to_string(&spec).unwrap();
    let back: Spec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, spec);
    assert_eq!(spec.version(), OCI_VERSION);
}

#[test]
fn validate_needs_no_rootfs_and_changes_nothing() {
    let f = Fixture::new();
    let missing = f.dir.path().join("not/yet");
    let config: ContainerConfig = serde_json::from_value(json!({"Cmd": ["sh"], "User": "somebody", "Volumes": {"/v": {}}})).unwrap();
    let host: HostConfig = serde_json::from_value(json!({"Binds": [format!("{}:/d", missing.display())], "BlkioWeight": 300})).unwrap();
    let mut info = f.info.clone();
    info.cgroup.blkio_weight = false;
    let input = SpecInput {
        id: ID,
        config: &config,
        host: &host,
        image: &f.image,
        rootfs: Path::new("/nonexistent"),
        etc_files: None,
        net_ns: NetNs::New,
        join_ns: vec![],
        ipc_shm: None,
        volumes: Default::default(),
        daemon: &f.daemon,
        host_info: &info,
    };
    let w = validate(&input).unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("Block I/O weight"));
    assert!(!missing.exists(), "validation must not create bind sources");
    // The same request cannot be built without its rootfs: the user is looked up there...
    assert_eq!(build(&input).unwrap_err().to_string(), "unable to find user somebody: no matching entries in passwd file");
    // ...and bad input fails validation.
    let bad: HostConfig = serde_json::from_value(json!({"CapAdd": ["NOPE"]})).unwrap();
    assert!(validate(&SpecInput { host: &bad, ..input.clone() }).is_err());
    let cg: HostConfig = serde_json::from_value(json!({"Cgroup": "container:x"})).unwrap();
    assert!(validate(&SpecInput { host: &cg, ..input }).unwrap_err().to_string().contains("not supported yet"));
}
