//! `docker run -it` against berthd in a real terminal (tmux): type and see the output, detach
//! with Ctrl-p Ctrl-q, attach again and type again, exit with a code.

use std::process::Command;
use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::poll;

fn tmux(args: &[&str]) -> String {
    let o = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_it_detach_and_reattach() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 || berth_e2e::find_in_path("tmux").is_none() {
        eprintln!("skipped: needs root and tmux");
        return;
    }
    let d = Berthd::start();
    d.import_busybox("busybox:latest");
    let sock = d.dir.path().join("tmux.sock");
    let s = sock.to_str().unwrap();
    let env = format!("DOCKER_HOST={} DOCKER_CONFIG={}", d.host(), d.dir.path().join("docker-config").display());
    tmux(&["-S", s, "new-session", "-d", "-s", "t", "-x", "100", "-y", "30", &format!("{env} docker run -it --name tt busybox sh; echo EXITED=$?; sleep 30")]);
    let pane = || tmux(&["-S", s, "capture-pane", "-t", "t", "-p"]);
    poll("the shell prompt", Duration::from_secs(20), || pane().contains("/ #").then_some(()));
    tmux(&["-S", s, "send-keys", "-t", "t", "echo got-$((6*7)); stty size", "Enter"]);
    poll("the command's output", Duration::from_secs(10), || (pane().contains("got-42") && pane().contains("30 100")).then_some(()));
    tmux(&["-S", s, "send-keys", "-t", "t", "C-p", "C-q"]);
    poll("the detach", Duration::from_secs(10), || pane().contains("EXITED=0").then_some(()));
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Status}}", "tt"]), "running");
    tmux(&["-S", s, "kill-session", "-t", "t"]);
    tmux(&["-S", s, "new-session", "-d", "-s", "a", "-x", "100", "-y", "30", &format!("{env} docker attach tt; echo ATTACH=$?; sleep 30")]);
    let pane2 = || tmux(&["-S", s, "capture-pane", "-t", "a", "-p"]);
    // Attached once an Enter brings the shell's prompt back (the CLI may take a while to
    // connect on a loaded machine).
    poll("the re-attach", Duration::from_secs(20), || {
        tmux(&["-S", s, "send-keys", "-t", "a", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        pane2().contains("/ #").then_some(())
    });
    tmux(&["-S", s, "send-keys", "-t", "a", "echo again-$((7*7))", "Enter"]);
    poll("input after re-attach", Duration::from_secs(10), || pane2().contains("again-49").then_some(()));
    tmux(&["-S", s, "send-keys", "-t", "a", "exit 3", "Enter"]);
    poll("the exit", Duration::from_secs(10), || pane2().contains("ATTACH=3").then_some(()));
    tmux(&["-S", s, "kill-server"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "tt"]), "3");
}
