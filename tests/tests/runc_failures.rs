//! Failure handling: "A failure at any step names the step and the cause, and
//! leaves nothing behind: no mounts, cgroups, state files or processes."
//! Each case breaks one step of `create` on purpose and checks the error and
//! that the state, the cgroup in every hierarchy, the init process and any
//! mount under the bundle are gone.
//!
//! Also the CVE-2019-5736 class: a container that gets the runtime binary run
//! inside it (`#!/proc/self/exe` script, symlink to /proc/self/exe) must not be
//! able to write to that binary on the host.

mod runc_support;

use std::ffi::OsStr;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use berth_e2e::{output_with_timeout, runtime_bin, unique_id, Bundle, Runtime};
use runc_support::*;
use serde_json::{json, Value};

/// One way to break `create`: an edit of the default config, and what the
/// error must mention.
struct Case {
    name: &'static str,
    edit: Box<dyn Fn(&mut Value)>,
    needles: Vec<String>,
}

fn case(name: &'static str, needles: &[&str], edit: impl Fn(&mut Value) + 'static) -> Case {
    Case {
        name,
        edit: Box::new(edit),
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

fn hard_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r.rlim_max
}

fn push(v: &mut Value, key: &str, item: Value) {
    if !v[key].is_array() {
        v[key] = json!([]);
    }
    v[key].as_array_mut().unwrap().push(item);
}

fn cases() -> Vec<Case> {
    let hard = hard_nofile();
    let mut v = vec![
        case(
            "bind mount source missing",
            &[
                "bind mount source",
                "/nonexistent-berth-src",
                "No such file",
            ],
            |c| {
                push(
                    c,
                    "mounts",
                    json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent-berth-src", "options": ["rbind"]}),
                );
            },
        ),
        case(
            "unknown filesystem type",
            &["mount", "nosuchfs", "/mnt"],
            |c| {
                push(
                    c,
                    "mounts",
                    json!({"destination": "/mnt", "type": "nosuchfs", "source": "none"}),
                );
            },
        ),
        case(
            "missing executable",
            &["no-such-program", "executable file not found in $PATH"],
            |c| {
                c["process"]["args"] = json!(["no-such-program"]);
            },
        ),
        case("cwd does not exist", &["cwd", "/no/such/dir"], |c| {
            c["process"]["cwd"] = json!("/no/such/dir");
        }),
        case("bad capability name", &["CAP_NOT_A_REAL_CAP"], |c| {
            push(
                &mut c["process"]["capabilities"],
                "bounding",
                json!("CAP_NOT_A_REAL_CAP"),
            );
        }),
        case("sysctl not namespaced", &["sysctl", "kernel.panic"], |c| {
            c["linux"]["sysctl"] = json!({"kernel.panic": "5"});
        }),
        case(
            "failing createRuntime hook",
            &["createRuntime", "exit status 9"],
            |c| {
                c["hooks"] =
                    json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}]});
            },
        ),
        case(
            "namespace path does not exist",
            &["namespace path", "/proc/999999999/ns/net"],
            |c| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "network");
                ns.push(json!({"type": "network", "path": "/proc/999999999/ns/net"}));
            },
        ),
        case(
            "seccomp errno out of range",
            &["seccomp", "errnoRet", "70000"],
            |c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]});
            },
        ),
        case(
            "seccomp argument index out of range",
            &["seccomp", "index", "7"],
            |c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]});
            },
        ),
        case("device of type 'a'", &["/dev/bad-any", "'a'"], |c| {
            push(
                &mut c["linux"],
                "devices",
                json!({"path": "/dev/bad-any", "type": "a", "major": 1, "minor": 3}),
            );
        }),
        // Fails after pivot_root, with everything else in place.
        case(
            "sysctl value refused by the kernel",
            &["set sysctl", "net.ipv4.ip_forward"],
            |c| {
                c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "not-a-number"});
            },
        ),
    ];
    if hard != libc::RLIM_INFINITY {
        let over = hard + 1;
        v.push(case(
            "rlimit above the hard limit",
            &["RLIMIT_NOFILE", "hard limit"],
            move |c| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": over}]);
            },
        ));
    } else {
        eprintln!("RLIMIT_NOFILE hard limit is unlimited here: the rlimit case is skipped");
    }
    v
}

#[test]
fn every_failed_step_is_named_and_leaves_nothing_behind() {
    let rt = berth();
    let mut problems = Vec::new();
    for c in cases() {
        let mut b = Bundle::with_private_rootfs();
        let dir = b.path().to_path_buf();
        (c.edit)(b.config_mut());
        let id = unique_id("fail");
        let before = mounts_under(&dir);
        let out = rt.create(&id, &b);
        let err = stderr(&out);
        eprintln!("{}: {}", c.name, err.trim());
        let check = || -> Result<(), String> {
            if out.status.success() {
                return Err("create succeeded".into());
            }
            if err.matches("container init:").count() > 1 {
                return Err(format!("repeated prefix: {err}"));
            }
            for n in &c.needles {
                if !err.contains(n.as_str()) {
                    return Err(format!("error does not mention {n:?}: {err}"));
                }
            }
            let st = rt.state_output(&id);
            if st.status.success() || !stderr(&st).contains("does not exist") {
                return Err(format!(
                    "state after failure: {}",
                    String::from_utf8_lossy(&st.stdout)
                ));
            }
            if rt.root().join(&id).exists() {
                return Err("state dir left".into());
            }
            let cgs: Vec<PathBuf> = cgroup_dirs(&format!("/berth/{id}"))
                .into_iter()
                .filter(|d| d.exists())
                .collect();
            if !cgs.is_empty() {
                return Err(format!("cgroups left: {cgs:?}"));
            }
            if !wait_until(Duration::from_secs(5), || processes_with(&id).is_empty()) {
                return Err(format!("processes left: {:?}", processes_with(&id)));
            }
            let after = mounts_under(&dir);
            if after != before {
                return Err(format!("mounts under the bundle: {before:?} -> {after:?}"));
            }
            Ok(())
        };
        if let Err(e) = check() {
            problems.push(format!("{}: {e}", c.name));
        }
        kill_marked(&id);
    }
    assert!(
        problems.is_empty(),
        "{} case(s) failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A second create with a used id fails without touching the first.
#[test]
fn create_with_an_existing_id_fails_and_keeps_the_first() {
    let rt = berth();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("dup");
    ok(&rt.create(&id, &b));
    let pid = init_pid(&rt, &id);
    let err = fails(&rt.create(&id, &b));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(rt.state(&id)["status"], "created");
    assert_eq!(init_pid(&rt, &id), pid);
    assert!(cgroup_dirs(&format!("/berth/{id}"))
        .iter()
        .all(|d| d.is_dir()));
    ok(&rt.delete_force(&id));
    assert_cgroup_gone(&format!("/berth/{id}"));
}

// --- CVE-2019-5736 class ---------------------------------------------------

const NO_PROTECTION_ENV: &str = "BERTH_RUNC_UNSAFE_NO_EXE_PROTECTION";

fn file_digest(p: &Path) -> (u64, u64, std::time::SystemTime) {
    let data = fs::read(p).unwrap();
    let mut h = DefaultHasher::new();
    h.write(&data);
    (
        data.len() as u64,
        h.finish(),
        fs::metadata(p).unwrap().modified().unwrap(),
    )
}

/// `rt ARGS` with the protection switch removed from the environment.
fn protected(rt: &Runtime, args: &[&OsStr]) -> Command {
    let mut cmd = rt.command();
    cmd.env_remove(NO_PROTECTION_ENV).args(args);
    cmd
}

fn run_protected(rt: &Runtime, args: &[&OsStr]) -> Output {
    output_with_timeout(&mut protected(rt, args), Duration::from_secs(30))
}

/// Run in the container, detached: finds the process whose command line
/// contains "$1$2" (split so that its own command line does not match), grabs
/// its /proc/PID/exe, tries to write to it directly, then kills it and keeps
/// trying through the held descriptor while the binary is busy (the
/// CVE-2019-5736 technique: the write succeeds once no runtime process runs
/// from the file any more). Reports to /out/$3, ending with DONE.
const ATTACK: &str = r#"
m="$1$2"; out="/out/$3"; p=""; i=0
while [ -z "$p" ] && [ $i -lt 250 ]; do
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    case "$(tr '\0' ' ' < $d/cmdline 2>/dev/null)" in *"$m"*) p=${d#/proc/};; esac
  done
  i=$((i+1)); [ -z "$p" ] && usleep 20000
done
[ -n "$p" ] || { echo NOTFOUND > $out; echo DONE >> $out; exit 0; }
echo "FOUND $p $(readlink /proc/$p/exe)" > $out
if (echo PWNED >> /proc/$p/exe) 2>/dev/null; then echo DIRECT-WROTE >> $out; else echo DIRECT-DENIED >> $out; fi
if (exec 3< /proc/$p/exe) 2>/dev/null; then
  exec 3< /proc/$p/exe
  echo HELD >> $out
  kill -9 $p
  j=0
  while [ $j -lt 250 ]; do
    if e=$( (echo PWNED >> /proc/self/fd/3) 2>&1 ); then echo LATE-WROTE >> $out; break; fi
    case "$e" in *busy*) usleep 20000; j=$((j+1));; *) echo "LATE-DENIED $e" >> $out; break;; esac
  done
  [ $j -lt 250 ] || echo "LATE-DENIED: still busy" >> $out
else
  echo OPEN-DENIED >> $out
fi
echo DONE >> $out
"#;

/// `delete --force` on drop, for containers created without `Runtime::create`.
struct ForceDelete<'a>(&'a Runtime, &'a str);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        let _ = run_protected(
            self.0,
            &[
                OsStr::new("delete"),
                OsStr::new("--force"),
                OsStr::new(self.1),
            ],
        );
    }
}

/// Copies the ELF loader and shared libraries `bin` needs (per ldd) to the same paths in `rootfs`.
fn copy_shared_libs(bin: &Path, rootfs: &Path) {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(lib) = line.split_whitespace().find(|w| w.starts_with('/')) else {
            continue;
        };
        let dst = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
}

#[test]
fn runtime_binary_cannot_be_overwritten_from_container() {
    // A private copy of the runtime, so that a successful attack cannot break the workspace.
    let tmp = tempfile::Builder::new()
        .prefix("berth-cve-")
        .tempdir()
        .unwrap();
    let bin = tmp.path().join("berth-runc");
    fs::copy(runtime_bin("berth-runc"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let before = file_digest(&bin);
    let rt = Runtime::new(&bin).with_timeout(Duration::from_secs(30));

    let mut b = Bundle::with_private_rootfs();
    let rootfs = b.rootfs().to_path_buf();
    write_exec(&rootfs.join("bin/evil"), "#!/proc/self/exe\n");
    // Same, but the runtime's `update -r -` then blocks reading stdin: it stays alive.
    write_exec(&rootfs.join("bin/evil-update"), "#!/proc/self/exe update\n");
    symlink("/proc/self/exe", rootfs.join("bin/evil2")).unwrap();
    write_exec(&rootfs.join("bin/attack"), &format!("#!/bin/sh\n{ATTACK}"));
    // The runtime is dynamically linked: give the image its loader and libraries (as the
    // original exploit's image had), or the kernel cannot run it there at all.
    copy_shared_libs(&bin, &rootfs);

    // 1. The container's own program is the runtime binary (as runc's PoC image does).
    b.set_args(&["/bin/evil"]);
    let id = unique_id("cve-init");
    let out = run_protected(
        &rt,
        &[
            OsStr::new("run"),
            OsStr::new("--bundle"),
            b.path().as_os_str(),
            OsStr::new(&id),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unrecognized subcommand"),
        "the runtime binary did not run in the container: {}",
        stderr(&out)
    );
    assert_eq!(
        file_digest(&bin),
        before,
        "runtime binary changed by a container running it"
    );

    // 2. The runtime binary runs (and stays) in a live container, next to an attacker.
    let out_dir = tempfile::tempdir().unwrap();
    push(
        b.config_mut(),
        "mounts",
        json!({"destination": "/out", "type": "bind", "source": out_dir.path(), "options": ["rbind", "rw"]}),
    );
    b.set_args(&["sleep", "1000"]);
    let id = unique_id("cve");
    let _guard = ForceDelete(&rt, &id);
    ok(&run_protected(
        &rt,
        &[
            OsStr::new("create"),
            OsStr::new("--bundle"),
            b.path().as_os_str(),
            OsStr::new(&id),
        ],
    ));
    ok(&run_protected(&rt, &[OsStr::new("start"), OsStr::new(&id)]));
    let mut report = String::new();
    for (n, (target, m1, m2)) in [
        (vec!["/bin/evil-update", "-r", "-"], "evil-", "update"),
        (
            vec!["/bin/evil2", "update", "-r", "-", "x"],
            "evil",
            "2 update",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut args: Vec<&OsStr> = vec![OsStr::new("exec"), OsStr::new(&id)];
        args.extend(target.iter().map(OsStr::new));
        // Blocks reading its stdin, which stays open until the attacker is done.
        let mut victim = protected(&rt, &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let name = format!("result-{n}");
        let attacker = [
            OsStr::new("exec"),
            OsStr::new("-d"),
            OsStr::new(&id),
            OsStr::new("/bin/attack"),
            OsStr::new(m1),
            OsStr::new(m2),
            OsStr::new(&name),
        ];
        ok(&run_protected(&rt, &attacker));
        let result = out_dir.path().join(&name);
        let done = wait_until(Duration::from_secs(15), || {
            fs::read_to_string(&result).is_ok_and(|t| t.contains("DONE"))
        });
        drop(victim.stdin.take());
        let _ = victim.wait();
        let text = fs::read_to_string(&result).unwrap_or_default();
        report.push_str(&format!("{}: {text}", target[0]));
        assert!(done, "the attacker did not finish ({}): {text}", target[0]);
        assert!(
            text.starts_with("FOUND "),
            "the runtime binary never ran in the container ({}): {text}",
            target[0]
        );
        assert!(
            !text.contains("WROTE"),
            "the container wrote to the runtime binary ({}):\n{text}",
            target[0]
        );
    }
    eprintln!("{report}");
    ok(&rt.delete_force(&id));
    assert_eq!(
        file_digest(&bin),
        before,
        "runtime binary on the host changed:\n{report}"
    );
}
