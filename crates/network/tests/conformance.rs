//! One attach/publish/detach/shutdown cycle, run against the in-memory `Fake` and against the
//! real `Kernel` (root only): both must behave the same from the bridge driver's view.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_network::ops::Fake;
use berth_network::{ports, BridgeOptions, DefaultBridge, Kernel, NetOps};

/// What the host shows: links, and the DNAT rules of the firewall table.
struct Probe<'a, O: NetOps> {
    link: &'a dyn Fn(&DefaultBridge<O>, &str) -> bool,
    dnat: &'a dyn Fn(&DefaultBridge<O>, &str) -> bool,
}

fn eventually(f: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn cycle<O: NetOps>(ops: O, name: &str, bip: &str, p: Probe<'_, O>) {
    let d = tempfile::tempdir().unwrap();
    let opts = BridgeOptions { name: name.into(), bip: Some(bip.into()), mtu: 1500 };
    let b = DefaultBridge::open(ops, opts, d.path(), d.path().join("netns"), "").unwrap();
    let id = |c: char| format!("{:x}{}", std::process::id(), c.to_string().repeat(56));
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!((p.link)(&b, name), "the bridge exists once opened");
        let publish = [ports::request("80/tcp", "127.0.0.1", "").unwrap()];
        let a = b.attach(&id('a'), &publish).unwrap();
        let c = b.attach(&id('c'), &[]).unwrap();
        assert_ne!(a.ip, c.ip);
        assert!((p.link)(&b, &a.veth) && (p.link)(&b, &c.veth));
        let rule = format!("dport {} dnat to {}:80", a.ports[0].host_port, a.ip);
        assert!((p.dnat)(&b, &rule), "{rule}");
        // The same host port for another container: refused, nothing created.
        let taken = [ports::request("80/tcp", "127.0.0.1", &a.ports[0].host_port.to_string()).unwrap()];
        assert!(b.attach(&id('e'), &taken).unwrap_err().to_string().contains("already allocated"));
        assert!(b.endpoint(&id('e')).is_none());
        b.detach(&id('a')).unwrap();
        assert!(!(p.dnat)(&b, &rule), "the rule goes with the endpoint");
        assert!(eventually(|| !(p.link)(&b, &a.veth)), "veth {} left", a.veth);
        assert!(!a.sandbox.exists());
        assert!(!b.shutdown().unwrap(), "the bridge stays while an endpoint remains");
        b.detach(&id('c')).unwrap();
        assert!(eventually(|| !(p.link)(&b, &c.veth)));
    }));
    let _ = b.detach(&id('a'));
    let _ = b.detach(&id('c'));
    assert!(b.shutdown().unwrap());
    assert!(!(p.link)(&b, name), "bridge left");
    assert!(!(p.dnat)(&b, "dnat to"), "table left");
    res.unwrap();
}

#[test]
fn fake() {
    let link = |b: &DefaultBridge<Fake>, n: &str| b.ops().lock().links.contains(n);
    let dnat = |b: &DefaultBridge<Fake>, r: &str| {
        b.ops().lock().firewall.as_ref().is_some_and(|t| t.rules.iter().any(|x| x.2.contains(r)))
    };
    cycle(Fake::default(), "bnf0", "10.231.8.1/24", Probe { link: &link, dnat: &dnat });
}

/// `nft list table` for checking only (Berth itself never runs nft).
fn nft_list(table: &str) -> String {
    let o = std::process::Command::new("nft").args(["list", "table", "ip", table]).output().expect("nft");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn kernel() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let name = format!("bnc{}", std::process::id() % 100000);
    let table = format!("berth-{name}");
    let link = |_: &DefaultBridge<Kernel>, n: &str| Path::new("/sys/class/net").join(n).exists();
    let dnat = |_: &DefaultBridge<Kernel>, r: &str| nft_list(&table).contains(r);
    cycle(Kernel, &name, "10.231.9.1/24", Probe { link: &link, dnat: &dnat });
}
