//! `berth-runc run` and `exec -t` without a console socket proxy the caller's own terminal to the
//! container's pty, as runc does: driven here through a real terminal (tmux): type, see output,
//! exit with a code.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::{find_in_path, unique_id, Bundle, Runtime};
use serde_json::json;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let session = unique_id("tty");
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "30", cmd])
            .status()
            .expect("run tmux");
        assert!(ok.success(), "tmux new-session failed");
        Tmux { session }
    }

    fn send(&self, keys: &str) {
        let ok = Command::new("tmux").args(["send-keys", "-t", &self.session, keys, "Enter"]).status().unwrap();
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `want`; panics with the screen after `secs`.
    fn wait_for(&self, want: &str, secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(want) {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(secs), "waiting for {want:?}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

fn shell_cmd(rt: &Runtime, args: &str) -> String {
    format!(
        "{} --root {} {args} 2>/dev/null; echo EXITED=$?; sleep 30",
        rt.bin().display(),
        rt.root().display()
    )
}

#[test]
fn run_and_exec_proxy_a_real_terminal() {
    if find_in_path("tmux").is_none() {
        eprintln!("SKIP: tmux is not installed");
        return;
    }
    let rt = Runtime::berth();
    let mut b = Bundle::new();
    b.set_args(&["sh"]);
    b.config_mut()["process"]["terminal"] = json!(true);
    let bundle: &Path = b.path();

    // run: an interactive shell on this terminal.
    let id = unique_id("ttyrun");
    let t = Tmux::start(&shell_cmd(&rt, &format!("run --bundle {} {id}", bundle.display())));
    t.wait_for("/ #", 10);
    t.send("echo $((6*7)); tty");
    let s = t.wait_for("/dev/pts/0", 5);
    assert!(s.contains("42"), "{s}");
    t.send("exit 3");
    t.wait_for("EXITED=3", 5);
    assert!(!rt.root().join(&id).exists(), "run removes the container after it exits");
    drop(t);

    // exec -t: a second shell inside a running container.
    let mut b2 = Bundle::new();
    b2.set_args(&["sleep", "1000"]);
    let id2 = unique_id("ttyexec");
    let out = rt.cli(&[
        "run".as_ref(),
        "-d".as_ref(),
        "--bundle".as_ref(),
        b2.path().as_os_str(),
        id2.as_ref(),
    ]);
    assert!(out.status.success(), "run -d: {out:?}");
    let t = Tmux::start(&shell_cmd(&rt, &format!("exec -t {id2} sh")));
    t.wait_for("/ #", 10);
    t.send("ps -o pid,args");
    let s = t.wait_for("sleep 1000", 5);
    assert!(s.contains("1 sleep 1000") || s.contains("1 {sleep}"), "{s}");
    t.send("exit 4");
    t.wait_for("EXITED=4", 5);
    let out = rt.delete_force(&id2);
    assert!(out.status.success(), "delete: {out:?}");
}
