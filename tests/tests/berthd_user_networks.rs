//! User-defined networks with the docker CLI against a private berthd (default bridge off):
//! create/inspect/ls/rm/prune, containers on a network reaching each other and not across
//! networks, `--internal`, `--ip`, connect/disconnect on a running container, a kill -9 of
//! the daemon, and nothing left behind (bridges, nftables tables, netns files).

use std::path::Path;
use std::time::Duration;

use berth_e2e::berthd::Berthd;

/// A bridge name and /24 unique to this test in this process (test daemons run in parallel).
fn net(n: u32) -> (String, String, String) {
    let k = (std::process::id() % 200) + 20;
    (format!("bu{k}n{n}"), format!("10.{k}.{}.0/24", 100 + n), format!("10.{k}.{}", 100 + n))
}

/// `docker network create` for a test network: its own bridge name and subnet.
fn create_args(bridge: &str, subnet: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["network", "create", "--subnet", subnet, "-o"].iter().map(|s| s.to_string()).collect();
    v.push(format!("com.docker.network.bridge.name={bridge}"));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn create(d: &Berthd, bridge: &str, subnet: &str, extra: &[&str]) -> String {
    let a = create_args(bridge, subnet, extra);
    d.ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn nft_table_exists(bridge: &str) -> bool {
    std::process::Command::new("nft").args(["list", "table", "ip", &format!("berth-{bridge}")]).output().is_ok_and(|o| o.status.success())
}

fn netns_files(d: &Berthd) -> Vec<String> {
    std::fs::read_dir(d.exec_root.join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[track_caller]
fn wait_gone(link: &str) {
    let t = std::time::Instant::now();
    while link_exists(link) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!link_exists(link), "{link} left");
}

fn skip() -> bool {
    !nix::unistd::geteuid().is_root()
}

fn stop_daemon(d: &Berthd) {
    let pid = d.pid();
    berth_e2e::dockerd::signal(pid, "TERM");
    berth_e2e::dockerd::poll("berthd to exit", Duration::from_secs(20), || {
        (!Path::new(&format!("/proc/{pid}")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))).then_some(())
    });
}

#[test]
fn create_inspect_ls_rm_prune() {
    if skip() {
        return;
    }
    let d = Berthd::start();
    d.import_busybox("busybox");
    let (b1, s1, p1) = net(1);
    let (b2, s2, _) = net(2);
    let (b3, _, _) = net(3);

    let gw = format!("{p1}.254");
    let range = format!("{p1}.128/25");
    let a = create_args(&b1, &s1, &["--gateway", &gw, "--ip-range", &range, "--label", "team=blue", "net1"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let id = d.ok(&a);
    assert!(id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    let dup = d.docker(&a);
    assert_ne!(dup.code, Some(0));
    assert!(dup.stderr.contains("network with name net1 already exists"), "{dup}");
    assert!(link_exists(&b1) && nft_table_exists(&b1), "bridge and table of net1");

    let shown = d.ok(&["network", "inspect", "net1", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{(index .IPAM.Config 0).IPRange}} {{.Internal}} {{.Labels.team}}"]);
    assert_eq!(shown, format!("net1 bridge local {s1} {gw} {range} false blue"));
    assert_eq!(d.ok(&["network", "inspect", "--format", "{{.Name}}", &id[..6]]), "net1", "by ID prefix");

    create(&d, &b2, &s2, &["--internal", "net2"]);
    // No subnet given: one is picked that nothing on the host routes.
    let opt3 = format!("com.docker.network.bridge.name={b3}");
    d.ok(&["network", "create", "-o", &opt3, "net3"]);
    let s3 = d.ok(&["network", "inspect", "net3", "--format", "{{(index .IPAM.Config 0).Subnet}}"]);
    assert!(!s3.is_empty() && s3 != s1 && s3 != s2, "{s3}");
    assert_eq!(d.ok(&["network", "inspect", "net2", "--format", "{{.Internal}}"]), "true");

    let ls = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]);
    for want in ["host host local", "none null local", "net1 bridge local", "net2 bridge local", "net3 bridge local"] {
        assert!(ls.lines().any(|l| l == want), "{want} in\n{ls}");
    }
    assert!(!ls.contains("bridge bridge"), "no default bridge with --bridge none:\n{ls}");
    let header = d.ok(&["network", "ls"]);
    assert!(header.starts_with("NETWORK ID     NAME      DRIVER    SCOPE"), "{header}");
    assert_eq!(d.ok(&["network", "ls", "-q", "--filter", "label=team=blue"]), id[..12]);
    let custom = d.ok(&["network", "ls", "--filter", "type=custom", "--format", "{{.Name}}"]);
    assert_eq!(custom.lines().collect::<Vec<_>>(), ["net1", "net2", "net3"]);
    assert_eq!(d.ok(&["network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}"]), "host\nnone");
    assert_eq!(d.ok(&["network", "ls", "--filter", "name=net2", "--format", "{{.Name}}"]), "net2");

    d.ok(&["network", "rm", "net3"]);
    assert!(!link_exists(&b3) && !nft_table_exists(&b3), "net3's bridge and table go with it");
    let gone = d.docker(&["network", "inspect", "net3"]);
    assert!(gone.code != Some(0) && gone.stderr.contains("not found"), "{gone}");
    let host = d.docker(&["network", "rm", "host"]);
    assert!(host.code != Some(0) && host.stderr.contains("pre-defined network"), "{host}");

    // A container on net1: its address comes from the range; rm is refused while it runs.
    d.ok(&["run", "-d", "--name", "c1", "--network", "net1", "busybox", "sleep", "300"]);
    let eps = d.ok(&["network", "inspect", "net1", "--format", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}"]);
    assert_eq!(eps, format!("c1 {p1}.128/24"));
    let refused = d.docker(&["network", "rm", "net1"]);
    assert!(refused.stderr.contains("error while removing network: network net1 has active endpoints"), "{refused}");
    assert_eq!(d.ok(&["network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}"]), "net2");

    // With the default bridge off, a running default-network container has no sandbox to
    // join: refused, nothing recorded.
    d.ok(&["run", "-d", "--name", "lo", "busybox", "sleep", "300"]);
    let no = d.docker(&["network", "connect", "net2", "lo"]);
    assert!(no.code != Some(0) && no.stderr.contains("no network sandbox"), "{no}");
    assert_eq!(d.ok(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "lo"]), "1");
    d.ok(&["rm", "-f", "lo"]);
    // Prune takes only the unused network.
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert_eq!(pruned, "Deleted Networks:\nnet2");
    assert!(!link_exists(&b2));
    d.ok(&["rm", "-f", "c1"]);
    d.ok(&["network", "rm", "net1"]);
    wait_gone(&b1);
    assert!(!nft_table_exists(&b1));
    assert_eq!(netns_files(&d), Vec::<String>::new());
    assert_eq!(d.leaks(), Vec::<String>::new());
}

#[test]
fn reach_within_not_across_internal_and_connect() {
    if skip() {
        return;
    }
    let d = Berthd::start();
    d.import_busybox("busybox");
    let (ba, sa, pa) = net(4);
    let (bb, sb, pb) = net(5);
    let (bi, si, _) = net(6);
    create(&d, &ba, &sa, &["neta"]);
    create(&d, &bb, &sb, &["netb"]);
    create(&d, &bi, &si, &["--internal", "neti"]);

    let fixed = format!("{pa}.50");
    d.ok(&["run", "-d", "--name", "a1", "--network", "neta", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "a2", "--network", "neta", "--ip", &fixed, "--network-alias", "web", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "b1", "--network", "netb", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.neta.IPAddress}}", "a2"]), fixed);
    assert_eq!(d.ok(&["ps", "--filter", "network=neta", "--format", "{{.Names}}"]), "a2\na1");
    assert_eq!(d.ok(&["ps", "--filter", "network=netb", "--format", "{{.Networks}}"]), "netb");
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.neta.Aliases}}", "a2"]), "[web]");
    let ip_a1 = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.neta.IPAddress}}", "a1"]);
    let ip_b1 = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.netb.IPAddress}}", "b1"]);
    assert!(ip_a1.starts_with(&pa) && ip_b1.starts_with(&pb), "{ip_a1} {ip_b1}");

    // Within a network: reachable; across networks: not.
    d.ok(&["exec", "a1", "ping", "-c", "1", "-W", "5", &fixed]);
    let across = d.docker(&["exec", "b1", "ping", "-c", "1", "-W", "1", &fixed]);
    assert_ne!(across.code, Some(0), "netb reached neta: {across}");
    // b1 serves on its own network (checked from a container there), not to neta.
    let get = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip_b1} 80");
    let page = d.ok(&["run", "--rm", "--network", "netb", "busybox", "sh", "-c", &get]);
    assert!(page.contains("200 OK"), "{page}");
    let across = d.docker(&["exec", "a1", "sh", "-c", &get]);
    assert!(!across.stdout.contains("200 OK"), "neta reached netb: {across}");

    // --ip on a network without a matching subnet, and on a missing network.
    // As Docker: the create succeeds, the start fails.
    let bad = d.docker(&["run", "--name", "bad", "--network", "neta", "--ip", "192.0.2.9", "busybox", "true"]);
    assert!(bad.code != Some(0) && bad.stderr.contains("192.0.2.9"), "{bad}");
    let missing = d.docker(&["run", "--name", "missing", "--network", "nonet", "busybox", "true"]);
    assert!(missing.stderr.contains("network nonet not found"), "{missing}");
    d.ok(&["rm", "bad", "missing"]);

    // Connect b1 to neta: a second interface with the asked address; then neta is reachable.
    let b1_on_a = format!("{pa}.60");
    d.ok(&["network", "connect", "--ip", &b1_on_a, "neta", "b1"]);
    let eth1 = d.ok(&["exec", "b1", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains(&format!("{b1_on_a}/24")), "{eth1}");
    d.ok(&["exec", "b1", "ping", "-c", "1", "-W", "5", &fixed]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.neta.IPAddress}}", "b1"]), b1_on_a);
    let again = d.docker(&["network", "connect", "neta", "b1"]);
    assert!(again.code != Some(0) && again.stderr.contains("already exists"), "{again}");
    // The default route stays on eth0.
    let route = d.ok(&["exec", "b1", "ip", "route"]);
    assert!(route.contains("default via") && route.contains("dev eth0") && !route.contains(&format!("default via {pa}")), "{route}");
    d.ok(&["network", "disconnect", "neta", "b1"]);
    let gone = d.docker(&["exec", "b1", "ip", "link", "show", "eth1"]);
    assert_ne!(gone.code, Some(0), "eth1 left after disconnect: {gone}");
    assert_eq!(d.ok(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "b1"]), "1");
    let across = d.docker(&["exec", "b1", "ping", "-c", "1", "-W", "1", &fixed]);
    assert_ne!(across.code, Some(0), "reachable after disconnect: {across}");

    // Two --network flags: the first is the network mode (eth0), the second eth1.
    d.ok(&["run", "-d", "--name", "m2", "--network", "netb", "--network", "neta", "busybox", "sleep", "300"]);
    let both = d.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}} {{len .NetworkSettings.Networks}}", "m2"]);
    assert_eq!(both, "netb 2");
    d.ok(&["exec", "m2", "ping", "-c", "1", "-W", "5", &fixed]);
    d.ok(&["exec", "m2", "ping", "-c", "1", "-W", "5", &ip_b1]);
    d.ok(&["rm", "-f", "m2"]);
    // A connected network is joined again at the next start.
    d.ok(&["network", "connect", "neta", "b1"]);
    d.ok(&["restart", "-t", "1", "b1"]);
    let eth1 = d.ok(&["exec", "b1", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains(&pa), "{eth1}");

    // Internal: no default route, nothing outside the network.
    d.ok(&["run", "-d", "--name", "i1", "--network", "neti", "busybox", "sleep", "300"]);
    let route = d.ok(&["exec", "i1", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    let out = d.docker(&["exec", "i1", "ping", "-c", "1", "-W", "1", &fixed]);
    assert_ne!(out.code, Some(0), "internal network reached out: {out}");
    d.ok(&["run", "--rm", "--network", "neti", "busybox", "ping", "-c", "1", "-W", "5", &d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.neti.IPAddress}}", "i1"])]);

    // Disconnected from its network mode's network: that interface goes and later starts
    // leave it out, until it is connected again (then it comes first again).
    d.ok(&["network", "connect", "netb", "a1"]);
    d.ok(&["network", "disconnect", "neta", "a1"]);
    assert_ne!(d.docker(&["exec", "a1", "ip", "link", "show", "eth0"]).code, Some(0), "eth0 left");
    assert_eq!(d.ok(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "a1"]), "netb");
    d.ok(&["restart", "-t", "1", "a1"]);
    assert!(d.ok(&["exec", "a1", "ip", "-4", "-o", "addr", "show", "eth0"]).contains(&pb), "netb is eth0 now");
    // (b1 has a new address since its restart.)
    let ip_b1_now = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.netb.IPAddress}}", "b1"]);
    d.ok(&["exec", "a1", "ping", "-c", "1", "-W", "5", &ip_b1_now]);
    d.ok(&["network", "connect", "neta", "a1"]);
    d.ok(&["restart", "-t", "1", "a1"]);
    assert!(d.ok(&["exec", "a1", "ip", "-4", "-o", "addr", "show", "eth0"]).contains(&pa), "neta is eth0 again");
    assert_eq!(d.ok(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "a1"]), "2");

    d.ok(&["rm", "-f", "a1", "a2", "b1", "i1"]);
    for n in ["neta", "netb", "neti"] {
        d.ok(&["network", "rm", n]);
    }
    for br in [&ba, &bb, &bi] {
        wait_gone(br);
        assert!(!nft_table_exists(br), "table of {br} left");
    }
    assert_eq!(netns_files(&d), Vec::<String>::new());
    assert_eq!(d.leaks(), Vec::<String>::new());
}

#[test]
fn restart_keeps_networks_and_shutdown_cleans_up() {
    if skip() {
        return;
    }
    let mut d = Berthd::start();
    d.import_busybox("busybox");
    let (b7, s7, _) = net(7);
    let (b8, s8, _) = net(8);
    create(&d, &b7, &s7, &["net7"]);
    let id8 = create(&d, &b8, &s8, &["-o", "com.docker.network.driver.mtu=1400", "net8"]);
    // A published port on a user network, from the host.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let publish = format!("127.0.0.1:{port}:80");
    d.ok(&["run", "-d", "--name", "pub", "-h", "pubhost", "--network", "net7", "-p", &publish, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    let get = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.contains("pubhost").then_some(())
    };
    berth_e2e::dockerd::poll("httpd on net7 to answer through the published port", Duration::from_secs(10), get);
    d.ok(&["run", "-d", "--name", "r1", "--network", "net7", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "r2", "--network", "net7", "busybox", "sleep", "300"]);
    let ip1 = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.net7.IPAddress}}", "r1"]);

    d.kill9();
    d.launch();
    // Same networks and endpoints after the restart; new endpoints do not take kept addresses.
    assert_eq!(d.ok(&["network", "inspect", "-f", "{{.Id}}", "net8"]), id8);
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.net7.IPAddress}}", "r1"]), ip1);
    d.ok(&["exec", "r2", "ping", "-c", "1", "-W", "5", &ip1]);
    d.ok(&["run", "-d", "--name", "r3", "--network", "net7", "busybox", "sleep", "300"]);
    let ip3 = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.net7.IPAddress}}", "r3"]);
    assert_ne!(ip3, ip1);
    d.ok(&["exec", "r3", "ping", "-c", "1", "-W", "5", &ip1]);
    let n = d.ok(&["network", "inspect", "-f", "{{len .Containers}}", "net7"]);
    assert_eq!(n, "4");
    assert!(get().is_some(), "published port after the restart");
    // The network's MTU option survives the restart.
    assert_eq!(d.ok(&["run", "--rm", "--network", "net8", "busybox", "cat", "/sys/class/net/eth0/mtu"]), "1400");

    // Shutdown with no container left: no bridge, table or namespace file remains; the
    // networks come back at the next start.
    d.ok(&["rm", "-f", "r1", "r2", "r3", "pub"]);
    stop_daemon(&d);
    for br in [&b7, &b8] {
        assert!(!link_exists(br), "{br} left after shutdown");
        assert!(!nft_table_exists(br), "table of {br} left after shutdown");
    }
    assert_eq!(netns_files(&d), Vec::<String>::new());
    d.launch();
    assert!(link_exists(&b7) && link_exists(&b8));
    d.ok(&["network", "rm", "net7", "net8"]);
    assert!(!link_exists(&b7) && !link_exists(&b8));
    assert_eq!(d.leaks(), Vec::<String>::new());
}

/// The bridge's ports (the host ends of the containers' veths).
fn ports_of(bridge: &str) -> Vec<String> {
    let rd = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"));
    rd.into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

#[track_caller]
fn expect_ports(bridge: &str, n: usize) {
    let t = std::time::Instant::now();
    while ports_of(bridge).len() != n && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ports_of(bridge).len(), n, "ports on {bridge}: {:?}", ports_of(bridge));
}

/// An A query for `name` over TCP to 127.0.0.11:53 inside the namespace bound at `ns`;
/// returns the raw answer.
fn tcp_query(ns: &Path, name: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut c = std::net::TcpStream::connect(("127.0.0.11", 53)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
        c.write_all(&q).unwrap();
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut answer).unwrap();
        assert_eq!(&answer[..2], &[0x12, 0x34], "the answer carries the query's id");
        answer
    })
    .join()
    .unwrap()
}

/// The addresses a busybox `nslookup NAME 127.0.0.11` printed for the name, in order.
fn looked_up(d: &Berthd, from: &str, name: &str) -> Vec<String> {
    let out = d.ok(&["exec", from, "nslookup", name, "127.0.0.11"]);
    let answers = out.split_once("Name:").map(|(_, a)| a.to_owned()).unwrap_or_default();
    answers.lines().filter_map(|l| l.trim().strip_prefix("Address:")).map(|a| a.trim().to_owned()).collect()
}

#[test]
fn embedded_dns_names_aliases_round_robin() {
    if skip() {
        return;
    }
    // Loopback-only host resolvers: nothing is forwarded off this machine; names that are
    // not containers' get SERVFAIL.
    let conf = tempfile::tempdir().unwrap();
    let resolv = conf.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1\n").unwrap();
    let mut d = Berthd::start_with(vec!["--resolv-conf".into(), resolv.display().to_string()]);
    d.import_busybox("busybox");
    let (b9, s9, _) = net(9);
    let (b10, s10, _) = net(10);
    create(&d, &b9, &s9, &["netd"]);
    create(&d, &b10, &s10, &["nete"]);
    d.ok(&["run", "-d", "--name", "d1", "--network", "netd", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "d2", "--network", "netd", "--network-alias", "web", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "d3", "--network", "netd", "--network-alias", "web", "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "e1", "--network", "nete", "busybox", "sleep", "300"]);
    let ip = |c: &str, n: &str| d.ok(&["inspect", "-f", &format!("{{{{.NetworkSettings.Networks.{n}.IPAddress}}}}"), c]);
    let (ip2, ip3) = (ip("d2", "netd"), ip("d3", "netd"));

    let conf_in = d.ok(&["exec", "d1", "cat", "/etc/resolv.conf"]);
    assert!(conf_in.starts_with("nameserver 127.0.0.11\n") && conf_in.contains("options timeout:1"), "{conf_in}");
    let dns_names = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.netd.DNSNames}}", "d2"]);
    let short2 = d.ok(&["inspect", "-f", "{{.Id}}", "d2"])[..12].to_owned();
    assert_eq!(dns_names, format!("[d2 web {short2}]"));

    // By name (the libc resolver through resolv.conf), by short ID, by alias.
    d.ok(&["exec", "d1", "ping", "-c", "1", "-W", "5", "d2"]);
    assert_eq!(looked_up(&d, "d1", "d2"), vec![ip2.clone()]);
    assert_eq!(looked_up(&d, "d1", &short2), vec![ip2.clone()]);
    assert_eq!(looked_up(&d, "d3", "D2"), vec![ip2.clone()], "case does not matter");
    // A shared alias: every address, in a rotating order.
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let mut got = looked_up(&d, "d1", "web");
        orders.insert(got.clone());
        got.sort();
        let mut want = vec![ip2.clone(), ip3.clone()];
        want.sort();
        assert_eq!(got, want);
    }
    assert!(orders.len() > 1, "the order never changed: {orders:?}");

    // Another network's container does not see them (SERVFAIL: nothing upstream).
    let no = d.docker(&["exec", "e1", "nslookup", "d2", "127.0.0.11"]);
    assert!(!no.stdout.contains(&ip2), "{no}");
    let no = d.docker(&["exec", "e1", "ping", "-c", "1", "-W", "1", "d2"]);
    assert_ne!(no.code, Some(0), "{no}");
    // Until it is connected to their network.
    d.ok(&["network", "connect", "netd", "e1"]);
    assert_eq!(looked_up(&d, "e1", "d2"), vec![ip2.clone()]);
    d.ok(&["network", "disconnect", "netd", "e1"]);
    let no = d.docker(&["exec", "e1", "nslookup", "d2", "127.0.0.11"]);
    assert!(!no.stdout.contains(&ip2), "{no}");

    // TCP too: a query from inside d1's namespace (busybox has no TCP DNS client).
    let ns = d.exec_root.join("netns").join(d.ok(&["inspect", "-f", "{{.Id}}", "d1"]));
    let octets: Vec<u8> = ip2.split('.').map(|o| o.parse().unwrap()).collect();
    let answer = tcp_query(&ns, "d2");
    assert!(answer.windows(4).any(|w| w == octets.as_slice()), "{answer:?}");
    // A daemon restart after kill -9: the running containers' servers come back.
    d.kill9();
    d.launch();
    assert_eq!(looked_up(&d, "d1", "d2"), vec![ip2.clone()]);
    d.ok(&["exec", "d3", "ping", "-c", "1", "-W", "5", "d1"]);
    // A stopped container's name goes, and so does its veth pair (no DNS socket keeps its
    // namespace alive).
    d.ok(&["stop", "-t", "1", "d2"]);
    assert_eq!(looked_up(&d, "d1", "web"), vec![ip3.clone()]);
    expect_ports(&b9, 2);

    d.ok(&["rm", "-f", "d1", "d2", "d3", "e1"]);
    d.ok(&["network", "rm", "netd", "nete"]);
    for br in [&b9, &b10] {
        wait_gone(br);
    }
    assert_eq!(netns_files(&d), Vec::<String>::new());
    assert_eq!(d.leaks(), Vec::<String>::new());
}

/// `berth ARGS` against `d` (its -H), as the berth CLI tests run it.
fn berth(d: &Berthd, args: &[&str]) -> berth_e2e::dockerd::Out {
    let mut c = std::process::Command::new(berth_e2e::runtime_bin("berth"));
    c.arg("-H").arg(d.host()).args(args).env_remove("DOCKER_HOST").env_remove("BERTH_HOST").env("BERTH_NO_AUTOSTART", "1");
    berth_e2e::dockerd::run_with_timeout(c, None, Duration::from_secs(60))
}

#[track_caller]
fn same_as_docker(d: &Berthd, args: &[&str]) -> String {
    let (b, o) = (berth(d, args), d.docker(args));
    assert_eq!((b.code, &b.stdout, &b.stderr), (o.code, &o.stdout, &o.stderr), "berth {args:?}\n{b}\ndocker:\n{o}");
    b.stdout
}

#[test]
fn berth_network_commands_match_docker() {
    if skip() {
        return;
    }
    let d = Berthd::start();
    d.import_busybox("busybox");
    let (b11, s11, p11) = net(11);
    let (b12, s12, _) = net(12);
    let opt = format!("com.docker.network.bridge.name={b11}");
    let gw = format!("{p11}.1");
    let ok = |args: &[&str]| {
        let o = berth(&d, args);
        assert_eq!(o.code, Some(0), "berth {args:?}: {o}");
        o.stdout.trim().to_owned()
    };
    let id = ok(&["network", "create", "--subnet", &s11, "--gateway", &gw, "--label", "x=y", "-o", &opt, "bnet"]);
    assert_eq!(d.ok(&["network", "inspect", "-f", "{{.Id}} {{(index .IPAM.Config 0).Gateway}} {{.Labels.x}}", "bnet"]), format!("{id} {gw} y"));
    create(&d, &b12, &s12, &["--internal", "cnet"]);
    for args in [
        &["network", "ls"][..],
        &["network", "ls", "-q"],
        &["network", "ls", "--no-trunc"],
        &["network", "ls", "--filter", "type=custom", "--format", "{{.Name}}\t{{.Internal}}\t{{.Labels}}\t{{.IPv6}}"],
        &["network", "ls", "--format", "table {{.Name}}\t{{.CreatedAt}}"],
        &["network", "inspect", "bnet", "cnet"],
        &["network", "inspect", "-f", "{{json .IPAM}}", "bnet"],
        &["network", "inspect", "nosuch"],
        &["network", "rm", "nosuch"],
        &["network", "create", "bnet"],
    ] {
        same_as_docker(&d, args);
    }
    d.ok(&["run", "-d", "--name", "x1", "busybox", "sleep", "300"]);
    // `berth run --network --ip --network-alias`, connect, disconnect.
    let ip = format!("{p11}.77");
    ok(&["run", "-d", "--name", "x2", "--network", "bnet", "--ip", &ip, "--network-alias", "api", "busybox", "sleep", "300"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.bnet.IPAddress}} {{.NetworkSettings.Networks.bnet.Aliases}}", "x2"]), format!("{ip} [api]"));
    ok(&["network", "connect", "--alias", "side", "cnet", "x2"]);
    assert!(d.ok(&["exec", "x2", "ip", "-o", "-4", "addr", "show", "eth1"]).contains(&s12[..s12.len() - 4]));
    same_as_docker(&d, &["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "cnet"]);
    ok(&["network", "disconnect", "cnet", "x2"]);
    ok(&["run", "-d", "--name", "x3", "--network", "bnet", "--network", "cnet", "busybox", "sleep", "300"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}} {{len .NetworkSettings.Networks}}", "x3"]), "bnet 2");
    same_as_docker(&d, &["network", "rm", "bnet"]);
    d.ok(&["rm", "-f", "x1", "x2", "x3"]);
    assert_eq!(berth(&d, &["network", "prune", "-f"]).stdout, "Deleted Networks:\nbnet\ncnet\n\n");
    assert_eq!(ok(&["network", "ls", "--format", "{{.Name}}"]), "host\nnone");
    assert!(!link_exists(&b11) && !link_exists(&b12));
    assert_eq!(d.leaks(), Vec::<String>::new());
}

#[test]
fn dns_options_and_host_gateway() {
    if skip() {
        return;
    }
    let conf = tempfile::tempdir().unwrap();
    let resolv = conf.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\nsearch host.test\n").unwrap();
    let d = Berthd::start_with(vec!["--resolv-conf".into(), resolv.display().to_string()]);
    d.import_busybox("busybox");
    let (b13, s13, p13) = net(13);
    create(&d, &b13, &s13, &["netf"]);
    // On a user network: the embedded server stays the name server; search and options are
    // the container's.
    let out = d.ok(&[
        "run", "--rm", "--network", "netf", "--add-host", "gw:host-gateway", "--add-host", "db:10.9.9.9", "--dns", "127.0.0.1",
        "--dns-search", "a.test", "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf", "/etc/hosts",
    ]);
    assert!(out.starts_with("nameserver 127.0.0.11\nsearch a.test\noptions ndots:2\n"), "{out}");
    assert!(out.contains(&format!("{p13}.1\tgw\n")) && out.ends_with("10.9.9.9\tdb"), "{out}");
    // Without the embedded server (--network none): --dns names the servers.
    let out = d.ok(&["run", "--rm", "--network", "none", "--dns", "10.1.2.3", "--dns-search", ".", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(out.contains("nameserver 10.1.2.3") && !out.contains("search"), "{out}");
    let no_gw = d.docker(&["run", "--name", "nogw", "--network", "none", "--add-host", "gw:host-gateway", "busybox", "true"]);
    assert!(no_gw.stderr.contains("host-gateway"), "{no_gw}");
    d.ok(&["rm", "nogw"]);
    d.ok(&["network", "rm", "netf"]);
    assert_eq!(d.leaks(), Vec::<String>::new());
}

#[test]
fn legacy_links_hosts_env_and_dns_alias() {
    if skip() {
        return;
    }
    let (b14, _, p14) = net(14);
    let (b15, s15, _) = net(15);
    let conf = tempfile::tempdir().unwrap();
    let resolv = conf.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let args = ["--bridge", &b14, "--bip", &format!("{p14}.1/24"), "--resolv-conf", &resolv.display().to_string()].map(String::from);
    let d = Berthd::start_with(args.to_vec());
    d.import_busybox("busybox");
    // On the default bridge: /etc/hosts and variables.
    d.ok(&["run", "-d", "--name", "web", "--expose", "8080", "-e", "MODE=prod", "busybox", "sleep", "300"]);
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    let host = d.ok(&["inspect", "-f", "{{.Config.Hostname}}", "web"]);
    // The default bridge as the API shows it.
    assert_eq!(d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]), "bridge bridge\nhost host\nnone null");
    let shown = d.ok(&["network", "inspect", "bridge", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}} {{index .Options \"com.docker.network.bridge.name\"}}"]);
    assert_eq!(shown, format!("web {ip}/24 {b14}"));
    let rm = d.docker(&["network", "rm", "bridge"]);
    assert!(rm.stderr.contains("bridge is a pre-defined network and cannot be removed"), "{rm}");
    assert_eq!(d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.bridge.NetworkID}}", "web"]), d.ok(&["network", "inspect", "-f", "{{.Id}}", "bridge"]));
    let out = d.ok(&["run", "--rm", "--name", "app", "--link", "web:db", "busybox", "sh", "-c", "cat /etc/hosts; env"]);
    assert!(out.contains(&format!("{ip}\tdb {host} web\n")), "{out}");
    for v in [format!("DB_PORT_8080_TCP_ADDR={ip}"), format!("DB_PORT=tcp://{ip}:8080"), "DB_ENV_MODE=prod".into(), "DB_NAME=/app/db".into()] {
        assert!(out.lines().any(|l| l == v), "{v} in\n{out}");
    }
    d.ok(&["create", "--name", "app2", "--link", "web:db", "busybox", "true"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.HostConfig.Links}}", "app2"]), "[/web:/app2/db]");
    let missing = d.docker(&["create", "--link", "nosuch:x", "busybox", "true"]);
    assert!(missing.code != Some(0) && missing.stderr.contains("could not get container for nosuch"), "{missing}");
    d.ok(&["stop", "-t", "1", "web"]);
    let stopped = d.docker(&["start", "app2"]);
    assert!(stopped.stderr.contains("Cannot link to a non running container: /web AS /app2/db"), "{stopped}");

    // On a user network: the alias is a DNS name for the linking container only.
    create(&d, &b15, &s15, &["netl"]);
    d.ok(&["run", "-d", "--name", "web2", "--network", "netl", "busybox", "sleep", "300"]);
    let ip2 = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.netl.IPAddress}}", "web2"]);
    d.ok(&["run", "-d", "--name", "app3", "--network", "netl", "--link", "web2:cache", "busybox", "sleep", "300"]);
    assert_eq!(looked_up(&d, "app3", "cache"), vec![ip2.clone()]);
    let other = d.docker(&["exec", "web2", "nslookup", "cache", "127.0.0.11"]);
    assert!(!other.stdout.contains(&ip2), "{other}");

    d.ok(&["rm", "-f", "web", "app2", "web2", "app3"]);
    d.ok(&["network", "rm", "netl"]);
    assert_eq!(netns_files(&d), Vec::<String>::new());
    assert_eq!(d.leaks(), Vec::<String>::new());
}

/// The Python docker SDK (7.x) on networks: create with IPAM, list, get, connect with
/// aliases, the network's containers, disconnect, remove, prune; its exceptions' statuses.
#[test]
fn python_sdk_networks() {
    if skip() {
        return;
    }
    let has_sdk = std::process::Command::new("python3").args(["-c", "import docker"]).status().is_ok_and(|s| s.success());
    if !has_sdk {
        eprintln!("skipped: the Python docker SDK is not installed");
        return;
    }
    let conf = tempfile::tempdir().unwrap();
    let resolv = conf.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    // A default bridge too: "sb" starts there and is connected to the user network.
    let (b17, _, p17) = net(17);
    let args = ["--bridge", &b17, "--bip", &format!("{p17}.1/24"), "--resolv-conf", &resolv.display().to_string()].map(String::from);
    let d = Berthd::start_with(args.to_vec());
    d.import_busybox("busybox:latest");
    let (b16, s16, p16) = net(16);
    let script = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
bridge, subnet, prefix = sys.argv[2], sys.argv[3], sys.argv[4]
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=prefix + ".1")])
n = c.networks.create("sdknet", driver="bridge", ipam=ipam, labels={"app": "sdk"}, options={"com.docker.network.bridge.name": bridge})
assert n.name == "sdknet" and len(n.id) == 64, n.attrs
try:
    c.networks.create("sdknet")
    raise SystemExit("duplicate name accepted")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
assert [x.name for x in c.networks.list(filters={"label": "app=sdk"})] == ["sdknet"]
assert c.networks.get("sdknet").attrs["IPAM"]["Config"][0]["Subnet"] == subnet
a = c.containers.run("busybox", ["sleep", "100"], detach=True, name="sa", network="sdknet")
b = c.containers.run("busybox", ["sleep", "100"], detach=True, name="sb")
n.connect(b, aliases=["db"], ipv4_address=prefix + ".40")
n.reload()
assert sorted(x.name for x in n.containers) == ["sa", "sb"], n.containers
out = a.exec_run(["nslookup", "db", "127.0.0.11"]).output.decode()
assert prefix + ".40" in out, out
try:
    n.remove()
    raise SystemExit("removed with endpoints")
except docker.errors.APIError as e:
    assert e.status_code == 403 and "active endpoints" in str(e), e
n.disconnect(b)
a.remove(force=True)
b.remove(force=True)
assert c.networks.prune()["NetworksDeleted"] == ["sdknet"]
try:
    c.networks.get("sdknet")
    raise SystemExit("still there")
except docker.errors.NotFound:
    pass
print("ok")
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script, &d.host(), &b16, &s16, &p16]);
    let out = berth_e2e::dockerd::run_with_timeout(cmd, None, Duration::from_secs(120));
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "ok"), "{out}\nberthd log:\n{}", d.log_tail(30));
    assert!(!link_exists(&b16));
    assert_eq!(d.leaks(), Vec::<String>::new());
}

/// A JSON value's shape: objects keep their keys (recursively), other values only their kind.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as V;
    match v {
        V::Object(m) => V::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        V::Array(a) => V::Array(a.iter().take(1).map(shape).collect()),
        V::String(_) => "string".into(),
        V::Number(_) => "number".into(),
        V::Bool(_) => "bool".into(),
        V::Null => V::Null,
    }
}

/// `network inspect` and a container's endpoint in inspect have the real Docker engine's
/// shape (same keys, same kinds), for the same requests through the same docker CLI. The
/// reference dockerd may speak an older API than Berth's 1.47: fields added since (DNSNames,
/// API 1.44) are left out of the comparison when it lacks them.
#[test]
fn inspect_shapes_match_dockerd() {
    use berth_e2e::dockerd::{find_exe, report_problems, Daemon, HostTools};
    if skip() {
        return;
    }
    let (Ok(tools), Some(runc)) = (HostTools::find(), find_exe("runc")) else {
        eprintln!("skipped: dockerd/containerd/runc not installed");
        return;
    };
    let mut dockerd = Daemon::new(&tools, &runc, "overlay2");
    if let Err(e) = dockerd.launch() {
        report_problems(&dockerd.teardown());
        panic!("dockerd did not start: {e}");
    }
    let d = Berthd::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tar = berth_e2e::busybox_rootfs();
        let rootfs_tar = std::process::Command::new("tar").arg("-C").arg(&tar).args(["-c", "."]).output().unwrap().stdout;
        let mut import = dockerd.docker_cmd(&["import", "-", "busybox:latest"]);
        import.stdin(std::process::Stdio::piped());
        let o = berth_e2e::dockerd::run_with_timeout(import, Some(rootfs_tar), Duration::from_secs(60));
        assert_eq!(o.code, Some(0), "{o}");
        d.import_busybox("busybox:latest");
        let mut shapes = Vec::new();
        for (i, side) in [0u32, 1].iter().enumerate() {
            let (bridge, subnet, _) = net(18 + i as u32);
            let opt = format!("com.docker.network.bridge.name={bridge}");
            let run = |args: &[&str]| if *side == 0 { dockerd.ok(args) } else { d.ok(args) };
            run(&["network", "create", "--subnet", &subnet, "-o", &opt, "--label", "a=b", "shapenet"]);
            run(&["run", "-d", "--name", "sc", "--network", "shapenet", "--network-alias", "al", "busybox", "sleep", "100"]);
            let net: serde_json::Value = serde_json::from_str(&run(&["network", "inspect", "shapenet"])).unwrap();
            let ctr: serde_json::Value = serde_json::from_str(&run(&["inspect", "sc"])).unwrap();
            let mut net = net[0].clone();
            // Keyed by container ID: one entry, under a common key.
            let eps: Vec<serde_json::Value> = net["Containers"].as_object().unwrap().values().cloned().collect();
            net["Containers"] = serde_json::json!({ "ID": eps[0] });
            shapes.push((shape(&net), shape(&ctr[0]["NetworkSettings"]["Networks"]["shapenet"])));
            run(&["rm", "-f", "sc"]);
            run(&["network", "rm", "shapenet"]);
        }
        let (dk, bt) = (&shapes[0], &mut shapes[1].clone());
        for newer in ["DNSNames"] {
            if dk.1.get(newer).is_none() {
                bt.1.as_object_mut().unwrap().remove(newer);
            }
        }
        assert_eq!(bt.0, dk.0, "network inspect:\nberth  {}\ndocker {}", bt.0, dk.0);
        assert_eq!(bt.1, dk.1, "container endpoint:\nberth  {}\ndocker {}", bt.1, dk.1);
    }));
    dockerd.remove_all_containers();
    report_problems(&dockerd.teardown());
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// A one-answer DNS server on `addr` (this machine): every A question gets 192.0.2.77.
/// Returns how many questions it answered, once `stop` is set.
fn fake_upstream(addr: &str, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<usize> {
    let sock = std::net::UdpSocket::bind(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    std::thread::spawn(move || {
        let mut answered = 0;
        let mut buf = [0u8; 512];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
            let q = &buf[..n];
            // Header: same id, response + recursion available, one question, an answer for A
            // (the question's type ends it, before its class).
            let is_a = q[n - 4..n - 2] == [0, 1];
            let mut r = vec![q[0], q[1], 0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0];
            r.extend_from_slice(&q[12..]);
            if is_a {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77]);
            }
            sock.send_to(&r, from).unwrap();
            answered += 1;
        }
        answered
    })
}

#[test]
fn embedded_dns_forwards_other_names() {
    if skip() {
        return;
    }
    let conf = tempfile::tempdir().unwrap();
    let resolv = conf.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let d = Berthd::start_with(vec!["--resolv-conf".into(), resolv.display().to_string()]);
    d.import_busybox("busybox");
    let (b20, s20, p20) = net(20);
    create(&d, &b20, &s20, &["netu"]);
    // The upstream listens on the network's gateway address: on this machine.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let upstream = fake_upstream(&format!("{p20}.1:53"), stop.clone());
    let gw = format!("{p20}.1");
    d.ok(&["run", "-d", "--name", "f1", "--network", "netu", "--dns", &gw, "busybox", "sleep", "300"]);
    d.ok(&["run", "-d", "--name", "f2", "--network", "netu", "busybox", "sleep", "300"]);
    // A name that is no container's goes to the container's --dns server.
    assert_eq!(looked_up(&d, "f1", "example.test"), vec!["192.0.2.77".to_string()]);
    // Container names are still answered by berthd itself.
    let ip2 = d.ok(&["inspect", "-f", "{{.NetworkSettings.Networks.netu.IPAddress}}", "f2"]);
    assert_eq!(looked_up(&d, "f1", "f2"), vec![ip2]);
    // Without --dns, the host's resolvers: loopback only here, so SERVFAIL.
    let no = d.docker(&["exec", "f2", "nslookup", "example.test", "127.0.0.11"]);
    assert!(no.code != Some(0) && !no.stdout.contains("192.0.2.77"), "{no}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(upstream.join().unwrap() >= 1);
    d.ok(&["rm", "-f", "f1", "f2"]);
    d.ok(&["network", "rm", "netu"]);
    assert_eq!(d.leaks(), Vec::<String>::new());
}
