//! The real `Kernel` operations (needs root), beyond the shared conformance cycle: the table
//! as nft shows it, and eth0's address inside the sandbox.

use std::path::Path;

use berth_network::{BridgeOptions, DefaultBridge, Kernel};

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// `nft list table` for checking only (Berth itself never runs nft); "" when it is absent.
fn nft_list(table: &str) -> String {
    let o = std::process::Command::new("nft").args(["list", "table", "ip", table]).output().expect("nft");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bridge_endpoint_cycle() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let name = format!("bnk{}", std::process::id() % 100000);
    let opts = BridgeOptions { name: name.clone(), bip: Some("10.231.7.1/24".into()), mtu: 1500 };
    let b = DefaultBridge::open(Kernel, opts, d.path(), d.path().join("netns"), "").unwrap();
    let id = format!("{:x}{}", std::process::id(), "f".repeat(56));
    let res = std::panic::catch_unwind(|| {
        let publish = [berth_network::ports::request("80/tcp", "127.0.0.1", "").unwrap()];
        let ep = b.attach(&id, &publish).unwrap();
        // The kernel accepted the whole table; nft shows it as generated.
        let table = format!("berth-{name}");
        let listed = nft_list(&table);
        let hp = ep.ports[0].host_port;
        assert!(listed.contains(&format!("ip daddr 127.0.0.1 tcp dport {hp} dnat to {}:80", ep.ip)), "{listed}");
        assert!(listed.contains(&format!("ip saddr 10.231.7.0/24 oifname != \"{name}\" masquerade")), "{listed}");
        assert!(listed.contains("fib daddr type local jump ports"), "{listed}");
        assert!(listed.contains("ct state established,related accept"), "{listed}");
        assert!(link_exists(&name) && link_exists(&ep.veth));
        assert!(std::fs::read_to_string(format!("/sys/class/net/{}/master/uevent", ep.veth)).unwrap().contains(&name));
        assert!(ep.sandbox.exists());
        // The gateway answers from inside the sandbox: run ping through setns in a thread.
        let ns = std::fs::File::open(&ep.sandbox).unwrap();
        let out = std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.connect("10.231.7.1:9").unwrap();
            s.local_addr().unwrap().ip().to_string()
        })
        .join()
        .unwrap();
        assert_eq!(out, ep.ip.to_string(), "eth0's address is the source towards the gateway");
        b.detach(&id).unwrap();
        assert!(!nft_list(&table).contains("dnat to"));
        assert!(!ep.sandbox.exists());
        // The kernel removes the veth pair with the namespace, in the background.
        let t = std::time::Instant::now();
        while link_exists(&ep.veth) && t.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!link_exists(&ep.veth), "veth left");
    });
    let _ = b.detach(&id);
    drop(b);
    // Reopened with another bip (no endpoint left): the bridge has only the new address.
    let opts = BridgeOptions { name: name.clone(), bip: Some("10.231.6.1/24".into()), mtu: 1500 };
    let b = DefaultBridge::open(Kernel, opts, d.path(), d.path().join("netns"), "").unwrap();
    let addrs = std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "dev", &name]).output().unwrap();
    let addrs = String::from_utf8_lossy(&addrs.stdout).into_owned();
    assert!(addrs.contains("10.231.6.1/24") && !addrs.contains("10.231.7.1"), "{addrs}");
    assert!(b.shutdown().unwrap());
    assert!(!link_exists(&name));
    assert_eq!(nft_list(&format!("berth-{name}")), "", "table left after shutdown");
    res.unwrap();
}
