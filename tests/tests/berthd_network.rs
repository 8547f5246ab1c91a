//! Container networking against a private berthd with its own bridge and subnet (test daemons
//! run in parallel): addresses, the gateway, container to container, `none`, `container:`,
//! cleanup after rm and daemon shutdown, and a kill -9 of the daemon.

use std::path::Path;

use berth_e2e::berthd::Berthd;

/// A bridge name and /24 unique to this test in this process (and unlikely to collide with
/// another run's).
fn net_args(n: u32) -> (String, String, Vec<String>) {
    let k = (std::process::id() % 200) + 20;
    let name = format!("bt{k}n{n}");
    let bip = format!("10.{k}.{n}.1/24");
    let args = vec!["--bridge".into(), name.clone(), "--bip".into(), bip.clone()];
    (name, bip, args)
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The bridge's ports (the host ends of the containers' veths).
fn ports_of(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits until the bridge has `n` ports: the kernel removes a stopped container's veth pair
/// with its namespace, in the background.
#[track_caller]
fn expect_ports(bridge: &str, n: usize) {
    let t = std::time::Instant::now();
    while ports_of(bridge).len() != n && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(ports_of(bridge).len(), n, "ports on {bridge}: {:?}", ports_of(bridge));
}

fn netns_files(d: &Berthd) -> Vec<String> {
    std::fs::read_dir(d.exec_root.join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn skip() -> bool {
    !nix::unistd::geteuid().is_root()
}

#[test]
fn bridge_addresses_gateway_and_peers() {
    if skip() {
        return;
    }
    let (bridge, bip, args) = net_args(1);
    let gw = bip.split('/').next().unwrap().to_owned();
    let d = Berthd::start_with(args);
    d.import_busybox("busybox");
    assert!(link_exists(&bridge), "berthd creates its bridge");

    d.ok(&["run", "-d", "--name", "na", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "nb", "busybox", "sleep", "300"]);
    let ip_a = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "na"]);
    let ip_b = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "nb"]);
    let prefix = bip.rsplit_once('.').unwrap().0.rsplit_once('.').unwrap().0.to_owned();
    assert!(ip_a.starts_with(&prefix) && ip_b.starts_with(&prefix) && ip_a != ip_b, "{ip_a} {ip_b}");
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "na"]), gw);
    let mac = d.ok(&["inspect", "-f", "{{.NetworkSettings.MacAddress}}", "na"]);
    assert!(mac.starts_with("02:42:"), "{mac}");

    // eth0 inside has the address and the MAC inspect shows; the default route is the gateway.
    let addr = d.ok(&["exec", "na", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{ip_a}/24")), "{addr}");
    let link = d.ok(&["exec", "na", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(link, mac);
    let route = d.ok(&["exec", "na", "ip", "route"]);
    assert!(route.contains(&format!("default via {gw} dev eth0")), "{route}");
    // --mac-address (the endpoint's MacAddress as the docker CLI sends it); a bad one refused.
    let own = d.ok(&["run", "--rm", "--mac-address", "02:42:de:ad:be:ef", "busybox", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(own, "02:42:de:ad:be:ef");
    let bad = d.docker(&["run", "--rm", "--mac-address", "03:00:00:00:00:01", "busybox", "true"]);
    assert!(bad.code != Some(0) && bad.stderr.contains("invalid MAC address"), "{bad}");
    // /etc/hosts names the container by its address.
    let hosts = d.ok(&["exec", "na", "cat", "/etc/hosts"]);
    let hostname = d.ok(&["exec", "na", "hostname"]);
    assert!(hosts.contains(&format!("{ip_a}\t{hostname}")), "{hosts}");

    d.ok(&["exec", "na", "ping", "-c", "1", "-W", "5", &gw]);
    d.ok(&["exec", "na", "ping", "-c", "1", "-W", "5", &ip_b]);
    d.ok(&["exec", "nb", "ping", "-c", "1", "-W", "5", &ip_a]);
    // The host reaches the container through the bridge.
    let ping = std::process::Command::new("ping").args(["-c", "1", "-W", "5", &ip_a]).output();
    if let Ok(p) = ping {
        assert!(p.status.success(), "host -> container: {}", String::from_utf8_lossy(&p.stdout));
    }

    // A stopped container's network is gone; its address comes back at the next start.
    expect_ports(&bridge, 2);
    d.ok(&["stop", "-t", "1", "na"]);
    expect_ports(&bridge, 1);
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "na"]), "");
    d.ok(&["start", "na"]);
    let ip_a2 = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "na"]);
    assert!(ip_a2.starts_with(&prefix), "{ip_a2}");
    d.ok(&["exec", "nb", "ping", "-c", "1", "-W", "5", &ip_a2]);

    d.ok(&["rm", "-f", "na", "nb"]);
    expect_ports(&bridge, 0);
    assert_eq!(netns_files(&d), Vec::<String>::new(), "netns files left after rm");
    assert_eq!(d.leaks(), Vec::<String>::new());

    // Shutdown with no container left takes the bridge away.
    let pid = d.pid();
    berth_e2e::dockerd::signal(pid, "TERM");
    berth_e2e::dockerd::poll("berthd to exit", std::time::Duration::from_secs(20), || {
        (!Path::new(&format!("/proc/{pid}")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))).then_some(())
    });
    assert!(!link_exists(&bridge), "bridge left after shutdown");
}

#[test]
fn none_and_container_modes() {
    if skip() {
        return;
    }
    let (bridge, _bip, args) = net_args(2);
    let d = Berthd::start_with(args);
    d.import_busybox("busybox");
    let links = d.ok(&["run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &d.ok(&["create", "--network", "none", "busybox", "true"])]), "");

    d.ok(&["run", "-d", "--name", "nx", "--hostname", "xhost", "busybox", "sleep", "300"]);
    let ip_x = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "nx"]);
    let out = d.ok(&["run", "--rm", "--network", "container:nx", "busybox", "sh", "-c", "ip -4 -o addr show eth0; hostname; cat /etc/hosts"]);
    assert!(out.contains(&format!("{ip_x}/24")), "{out}");
    assert!(out.lines().any(|l| l == "xhost"), "{out}");
    assert!(out.contains(&format!("{ip_x}\txhost")), "{out}");
    // Joining a container that does not run, or does not exist, fails.
    d.ok(&["create", "--name", "idle", "busybox", "true"]);
    let o = d.docker(&["run", "--rm", "--network", "container:idle", "busybox", "true"]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("non running container"), "{o}");
    for bad in [&["-h", "other"][..], &["-p", "80"][..]] {
        let mut args = vec!["create", "--network", "container:nx"];
        args.extend_from_slice(bad);
        args.extend_from_slice(&["busybox", "true"]);
        let o = d.docker(&args);
        assert!(o.stderr.contains("conflicting options"), "{o}");
    }
    let o = d.docker(&["run", "--rm", "--network", "container:nosuch", "busybox", "true"]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("No such container"), "{o}");
    d.ok(&["rm", "-f", "nx"]);
    expect_ports(&bridge, 0);
}

#[test]
fn daemon_kill9_keeps_network() {
    if skip() {
        return;
    }
    let (bridge, _bip, args) = net_args(3);
    let mut d = Berthd::start_with(args);
    d.import_busybox("busybox");
    let port = free_port();
    d.ok(&["run", "-d", "--name", "na", "-h", "nahost", "-p", &format!("127.0.0.1:{port}:80"), "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    d.ok(&["run", "-d", "--name", "nb", "busybox", "sleep", "300"]);
    let ip_a = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "na"]);
    berth_e2e::dockerd::poll("httpd to answer", std::time::Duration::from_secs(10), || {
        (http_hostname(&format!("127.0.0.1:{port}")) == "nahost").then_some(())
    });
    d.kill9();
    assert!(link_exists(&bridge));
    expect_ports(&bridge, 2);
    d.launch();
    // Same address after the restart, still reachable; a new container gets another one.
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "na"]), ip_a);
    d.ok(&["exec", "nb", "ping", "-c", "1", "-W", "5", &ip_a]);
    assert_eq!(http_hostname(&format!("127.0.0.1:{port}")), "nahost", "published port after the restart");
    assert_eq!(d.ok(&["port", "na", "80"]), format!("127.0.0.1:{port}"));
    d.ok(&["run", "-d", "--name", "nc", "busybox", "sleep", "300"]);
    let ip_c = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "nc"]);
    assert_ne!(ip_c, ip_a);
    d.ok(&["exec", "nc", "ping", "-c", "1", "-W", "5", &ip_a]);
    // A container that exited while the daemon was down has its network torn down on restart.
    let pid_a: u32 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "na"]).parse().unwrap();
    d.kill9();
    berth_e2e::dockerd::signal(pid_a, "KILL");
    berth_e2e::dockerd::poll("a's process to exit", std::time::Duration::from_secs(10), || {
        (!Path::new(&format!("/proc/{pid_a}")).exists()).then_some(())
    });
    d.launch();
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "na"]), "exited");
    // nb and nc remain.
    expect_ports(&bridge, 2);
    d.ok(&["rm", "-f", "na", "nb", "nc"]);
    assert_eq!(netns_files(&d), Vec::<String>::new());
    assert_eq!(d.leaks(), Vec::<String>::new());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET /hostname from busybox httpd serving /etc; "" when the port does not answer.
fn http_hostname(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), std::time::Duration::from_secs(3)) else {
        return String::new();
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_owned()
}

fn nft_table(bridge: &str) -> String {
    let o = std::process::Command::new("nft").args(["list", "table", "ip", &format!("berth-{bridge}")]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn published_ports() {
    if skip() {
        return;
    }
    let (bridge, bip, args) = net_args(4);
    let gw = bip.split('/').next().unwrap().to_owned();
    let d = Berthd::start_with(args);
    d.import_busybox("busybox");
    let (p1, p2) = (free_port(), free_port());
    d.ok(&[
        "run", "-d", "--name", "web", "--hostname", "webhost", "-p", &format!("127.0.0.1:{p1}:80"), "-p", &format!("{p2}:80"),
        "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
    ]);
    // Reachable from the host on loopback (both bindings) and, through the gateway, from
    // another container (hairpin).
    berth_e2e::dockerd::poll("httpd to answer", std::time::Duration::from_secs(10), || {
        (http_hostname(&format!("127.0.0.1:{p1}")) == "webhost").then_some(())
    });
    assert_eq!(http_hostname(&format!("127.0.0.1:{p2}")), "webhost");
    d.ok(&["run", "-d", "--name", "client", "busybox", "sleep", "300"]);
    // (This busybox's wget crashes; nc speaks the HTTP.)
    let get = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {gw} {p2}");
    let got = d.ok(&["exec", "client", "sh", "-c", &get]);
    assert!(got.ends_with("webhost"), "{got}");
    let ports = d.ok(&["port", "web"]);
    assert!(ports.contains(&format!("80/tcp -> 127.0.0.1:{p1}")) && ports.contains(&format!("80/tcp -> 0.0.0.0:{p2}")), "{ports}");
    let ps = d.ok(&["ps", "--filter", "name=web", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{p1}->80/tcp")), "{ps}");

    // -P publishes every exposed port on a port the daemon picks.
    d.ok(&["run", "-d", "--name", "all", "--hostname", "allhost", "-P", "--expose", "8080", "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"]);
    let mapped = d.ok(&["port", "all", "8080"]);
    let hp: u16 = mapped.rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("{mapped}"));
    berth_e2e::dockerd::poll("-P httpd to answer", std::time::Duration::from_secs(10), || {
        (http_hostname(&format!("127.0.0.1:{hp}")) == "allhost").then_some(())
    });

    // A port taken by another container or in use on the host: the start fails, nothing left.
    let o = d.docker(&["run", "-d", "--name", "dup", "-p", &format!("127.0.0.1:{p1}:80"), "busybox", "sleep", "300"]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("port is already allocated"), "{o}");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hport = held.local_addr().unwrap().port();
    let o = d.docker(&["run", "-d", "--name", "busy", "-p", &format!("127.0.0.1:{hport}:80"), "busybox", "sleep", "300"]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains(&format!("127.0.0.1:{hport}")) && o.stderr.contains("in use"), "{o}");
    expect_ports(&bridge, 3);
    assert_eq!(netns_files(&d).len(), 3, "web, client and all only");
    drop(held);

    // Stopping removes the rules: the port no longer answers.
    assert!(nft_table(&bridge).contains(&format!("dport {p1} dnat to")));
    d.ok(&["stop", "-t", "1", "web"]);
    assert!(!nft_table(&bridge).contains(&format!("dport {p1} dnat to")));
    assert_eq!(http_hostname(&format!("127.0.0.1:{p1}")), "");
    assert_eq!(d.ok(&["port", "web"]), "");
    d.ok(&["rm", "-f", "web", "client", "all", "dup", "busy"]);
    expect_ports(&bridge, 0);
    assert_eq!(netns_files(&d), Vec::<String>::new());
    drop(d);
    assert_eq!(nft_table(&bridge), "", "table left after shutdown");
    assert!(!link_exists(&bridge));
}
