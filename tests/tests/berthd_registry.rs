//! Pull, push and login against a real registry (Debian's docker-registry), driven by the real
//! docker CLI against berthd: plain, with htpasswd basic auth, and with bearer tokens.

use berth_e2e::berthd::Berthd;
use berth_e2e::registry::{self, Auth, Registry};

fn skip() -> bool {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root");
        return true;
    }
    if !registry::available() {
        eprintln!("skipped: {} not installed (apt-get install docker-registry)", registry::REGISTRY_BIN);
        return true;
    }
    false
}

/// A two-layer image: busybox plus a committed file, with a command.
fn make_image(d: &Berthd, name: &str, marker: &str) {
    d.import_busybox("busybox:latest");
    d.ok(&["run", "--name", "mk", "busybox", "sh", "-c", &format!("echo {marker} > /marker")]);
    d.ok(&["commit", "-c", "CMD [\"cat\", \"/marker\"]", "mk", name]);
    d.ok(&["rm", "mk"]);
}

fn assert_no_leaks(d: &Berthd) {
    let leaks = d.leaks();
    assert!(leaks.is_empty(), "leaks: {leaks:?}");
}

#[test]
fn push_pull_run_with_the_docker_cli() {
    if skip() {
        return;
    }
    let reg = Registry::start();
    let d = Berthd::start();
    let name = format!("{}/test/app:v1", reg.addr);
    make_image(&d, &name, "pushed-by-berth");
    let id = d.ok(&["image", "inspect", "-f", "{{.Id}}", &name]);

    let o = d.docker(&["push", &name]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    assert!(o.stdout.contains(&format!("The push refers to repository [{}/test/app]", reg.addr)), "{o}");
    assert_eq!(o.stdout.matches(": Pushed").count(), 2, "{o}");
    let digest = o.stdout.lines().find_map(|l| l.strip_prefix("v1: digest: ")).expect("digest line").split(' ').next().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{o}");
    // A second push finds every blob there (the gzipped layers were kept).
    let o = d.docker(&["push", &name]);
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(o.stdout.matches(": Layer already exists").count(), 2, "{o}");
    assert!(o.stdout.contains(&format!("v1: digest: {digest} ")), "{o}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &name]), format!("{}/test/app@{digest}", reg.addr));

    // skopeo reads what Berth pushed: same digest, same layers.
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "skopeo: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(2));

    // Removed locally (the last tag takes its repo digest along), pulled back, run.
    let o = d.ok(&["rmi", &name]);
    assert!(o.contains(&format!("Untagged: {name}")) && o.contains(&format!("Untagged: {}/test/app@{digest}", reg.addr)), "{o}");
    d.ok(&["rmi", "busybox"]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    let o = d.docker(&["pull", &name]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    assert!(o.stdout.contains("v1: Pulling from test/app"), "{o}");
    assert_eq!(o.stdout.matches(": Pull complete").count(), 2, "{o}");
    assert!(o.stdout.contains(&format!("Digest: {digest}")), "{o}");
    assert!(o.stdout.contains(&format!("Status: Downloaded newer image for {name}")), "{o}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", &name]), id);
    let listed = d.ok(&["images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"]);
    assert_eq!(listed, format!("{}/test/app:v1 {digest}", reg.addr));
    assert_eq!(d.ok(&["run", "--rm", &name]), "pushed-by-berth");
    let o = d.ok(&["pull", &name]);
    assert!(o.contains(&format!("Status: Image is up to date for {name}")), "{o}");
    // By digest, under another repository of the same registry: a cross-repository mount.
    d.ok(&["tag", &name, &format!("{}/other/app:v2", reg.addr)]);
    let o = d.ok(&["push", &format!("{}/other/app:v2", reg.addr)]);
    assert_eq!(o.matches(": Mounted from test/app").count(), 2, "{o}");
    let by_digest = format!("{}/test/app@{digest}", reg.addr);
    d.ok(&["rmi", &name, &format!("{}/other/app:v2", reg.addr)]);
    let o = d.docker(&["pull", &by_digest]);
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(d.ok(&["run", "--rm", &by_digest]), "pushed-by-berth");

    // Errors as dockerd words them.
    let o = d.docker(&["pull", &format!("{}/test/app:nope", reg.addr)]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("manifest unknown"), "{o}");
    let o = d.docker(&["push", &format!("{}/test/absent:v1", reg.addr)]);
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("An image does not exist locally with the tag"), "{o}");
    assert_no_leaks(&d);
}

#[test]
fn corrupt_blob_fails_the_pull_and_keeps_nothing() {
    if skip() {
        return;
    }
    let reg = Registry::start();
    let d = Berthd::start();
    let name = format!("{}/corrupt:v1", reg.addr);
    make_image(&d, &name, "x");
    d.ok(&["push", &name]);
    let layers = d.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", &name]);
    assert_eq!(layers, "2");
    d.ok(&["rmi", &name, "busybox"]);
    // Flip bytes in the middle of every layer blob (same size) in the registry's storage.
    let (_, manifest) = reg.get("/v2/corrupt/manifests/v1").expect("manifest");
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    for l in m["layers"].as_array().unwrap() {
        let p = reg.blob_path(l["digest"].as_str().unwrap());
        let mut data = std::fs::read(&p).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(&p, data).unwrap();
    }
    let o = d.docker(&["pull", &name]);
    assert_ne!(o.code, Some(0), "{o}");
    assert!(format!("{}{}", o.stdout, o.stderr).contains("digest mismatch"), "{o}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    let leftovers: Vec<_> = walk(&d.data_root.join("images")).into_iter().chain(walk(&d.data_root.join("content"))).filter(|p| p.is_file()).collect();
    assert!(leftovers.iter().all(|p| !p.to_string_lossy().contains("blobs")), "blobs left: {leftovers:?}");
    assert_no_leaks(&d);
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            }
            out.push(path);
        }
    }
    out
}

fn login_push_pull(reg: &Registry, d: &Berthd) {
    let name = format!("{}/private/app:1", reg.addr);
    make_image(d, &name, "private");
    let o = d.docker(&["push", &name]);
    assert_ne!(o.code, Some(0), "push without credentials must fail: {o}");
    assert!(o.stderr.to_lowercase().contains("unauthorized") || o.stderr.contains("no basic auth credentials"), "{o}");
    let o = d.docker(&["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert_ne!(o.code, Some(0), "{o}");
    assert!(o.stderr.contains("401") || o.stderr.to_lowercase().contains("unauthorized"), "{o}");
    let o = d.docker(&["login", "-u", "alice", "--password-stdin", &reg.addr]);
    drop(o);
    let o = d.docker_in(&["login", "-u", "alice", "--password-stdin", &reg.addr], Some(b"s3cret\n".to_vec()));
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    assert!(o.stdout.contains("Login Succeeded"), "{o}");
    let o = d.docker(&["push", &name]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    d.ok(&["rmi", &name]);
    let o = d.docker(&["pull", &name]);
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(d.ok(&["run", "--rm", &name]), "private");
    d.ok(&["logout", &reg.addr]);
    d.ok(&["rmi", &name]);
    let o = d.docker(&["pull", &name]);
    assert_ne!(o.code, Some(0), "pull after logout must fail: {o}");
}

#[test]
fn basic_auth_login_push_pull() {
    if skip() {
        return;
    }
    let reg = Registry::start_with(Auth::Basic { user: "alice".into(), password: "s3cret".into() });
    let d = Berthd::start();
    login_push_pull(&reg, &d);
    assert_no_leaks(&d);
}

#[test]
fn bearer_token_login_push_pull() {
    if skip() {
        return;
    }
    let reg = Registry::start_with(Auth::Token { user: "alice".into(), password: "s3cret".into() });
    let d = Berthd::start();
    login_push_pull(&reg, &d);
    let scopes = reg.token_server.as_ref().unwrap().scopes.lock().unwrap().clone();
    assert!(scopes.iter().any(|s| s == "repository:private/app:pull,push"), "{scopes:?}");
    assert!(scopes.iter().any(|s| s == "repository:private/app:pull"), "{scopes:?}");
    assert_no_leaks(&d);
}

#[test]
fn images_between_berthd_and_dockerd_through_the_registry() {
    use berth_e2e::dockerd::{find_exe, report_problems, Daemon, HostTools};
    if skip() {
        return;
    }
    let (Ok(tools), Some(runc)) = (HostTools::find(), find_exe("runc")) else {
        eprintln!("skipped: dockerd/containerd/runc not installed");
        return;
    };
    let reg = Registry::start();
    let mut dockerd = Daemon::new(&tools, &runc, "overlay2");
    if let Err(e) = dockerd.launch() {
        report_problems(&dockerd.teardown());
        panic!("dockerd did not start: {e}");
    }
    let d = Berthd::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Berth -> Docker.
        let from_berth = format!("{}/interop/berth:1", reg.addr);
        make_image(&d, &from_berth, "from-berth");
        let id = d.ok(&["image", "inspect", "-f", "{{.Id}}", &from_berth]);
        d.ok(&["push", &from_berth]);
        let o = dockerd.docker(&["pull", &from_berth]);
        o.expect_code(0);
        assert_eq!(dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", &from_berth]).trim(), id);
        assert_eq!(dockerd.ok(&["run", "--rm", &from_berth]).trim(), "from-berth");

        // Docker -> Berth: dockerd's own push (gzip layers, its manifest).
        let from_docker = format!("{}/interop/docker:1", reg.addr);
        dockerd.ok(&["run", "--name", "mk", &from_berth, "sh", "-c", "echo from-docker > /marker"]);
        dockerd.ok(&["commit", "-c", "CMD [\"cat\", \"/marker\"]", "mk", &from_docker]);
        let id = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", &from_docker]).trim().to_owned();
        let o = dockerd.docker(&["push", &from_docker]);
        o.expect_code(0);
        let docker_digest = dockerd.ok(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &from_docker]).trim().to_owned();
        let o = d.docker(&["pull", &from_docker]);
        assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
        // The two layers shared with the Berth image were already there.
        assert_eq!(o.stdout.matches(": Already exists").count(), 2, "{o}");
        assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", &from_docker]), id);
        assert_eq!(d.ok(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &from_docker]), docker_digest);
        assert_eq!(d.ok(&["run", "--rm", &from_docker]), "from-docker");
    }));
    dockerd.remove_all_containers();
    report_problems(&dockerd.teardown());
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert_no_leaks(&d);
}

/// The berth CLI: login (sharing the docker CLI's config.json), push, pull and `run --pull`,
/// with the docker CLI's output.
#[test]
fn berth_cli_login_push_pull_like_docker() {
    use berth_e2e::dockerd::{run_with_timeout, Out};
    if skip() {
        return;
    }
    let reg = Registry::start_with(Auth::Basic { user: "alice".into(), password: "s3cret".into() });
    let d = Berthd::start();
    let config = d.dir.path().join("docker-config");
    let berth = |args: &[&str], input: Option<&str>| -> Out {
        let mut c = std::process::Command::new(berth_e2e::runtime_bin("berth"));
        c.arg("-H").arg(d.host()).args(args).env_remove("DOCKER_HOST").env("BERTH_NO_AUTOSTART", "1").env("DOCKER_CONFIG", &config);
        run_with_timeout(c, input.map(|s| s.as_bytes().to_vec()), std::time::Duration::from_secs(60))
    };
    let name = format!("{}/cli/app:1", reg.addr);
    make_image(&d, &name, "via-berth-cli");

    let o = berth(&["login", "-u", "alice", "--password-stdin", &reg.addr], Some("wrong\n"));
    assert_ne!(o.code, Some(0), "{o}");
    let o = berth(&["login", "-u", "alice", "--password-stdin", &reg.addr], Some("s3cret\n"));
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(o.stdout, "Login Succeeded\n");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(config.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0", "{cfg}");

    // The same push output as the docker CLI's (a second push: every layer exists); layers
    // finish in any order.
    let o = berth(&["push", &name], None);
    assert_eq!(o.code, Some(0), "{o}");
    let (b, dk) = (berth(&["push", &name], None), d.docker(&["push", &name]));
    assert_eq!(b.code, Some(0), "{b}");
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&b.stdout), sorted(&dk.stdout), "berth:\n{b}\ndocker:\n{dk}");
    assert!(b.stdout.starts_with("The push refers to repository") && b.stdout.contains("\n1: digest: sha256:"), "{b}");

    d.ok(&["rmi", &name]);
    let b = berth(&["pull", &name], None);
    assert_eq!(b.code, Some(0), "{b}");
    d.ok(&["rmi", &name]);
    let dk = d.docker(&["pull", &name]);
    assert_eq!(sorted(&b.stdout), sorted(&dk.stdout), "berth:\n{b}\ndocker:\n{dk}");

    d.ok(&["rmi", &name]);
    let o = berth(&["run", "--rm", &name], None);
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(o.stdout, "via-berth-cli\n");
    assert!(o.stderr.starts_with(&format!("Unable to find image '{name}' locally\n")), "{o}");
    let o = berth(&["run", "--rm", "--pull", "always", &name], None);
    assert!(o.stderr.contains(&format!("Status: Image is up to date for {name}")), "{o}");

    let o = berth(&["logout", &reg.addr], None);
    assert_eq!(o.stdout, format!("Removing login credentials for {}\n", reg.addr));
    d.ok(&["rmi", &name]);
    let o = berth(&["pull", &name], None);
    assert_ne!(o.code, Some(0), "pull after logout must fail: {o}");
    assert_no_leaks(&d);
}

/// What skopeo and hand-made indexes put in a registry: OCI manifests with zstd layers, and an
/// OCI index from which the host's platform (or `--platform`) is chosen.
#[test]
fn oci_index_platforms_and_zstd_layers() {
    if skip() {
        return;
    }
    let reg = Registry::start();
    let d = Berthd::start();
    let src = format!("{}/src/app:1", reg.addr);
    make_image(&d, &src, "zstd-layers");
    let id = d.ok(&["image", "inspect", "-f", "{{.Id}}", &src]);
    d.ok(&["push", &src]);
    // Another image (busybox alone) stands for the arm64 entry of the index.
    let other = format!("{}/multi/app:arm", reg.addr);
    d.ok(&["tag", "busybox", &other]);
    d.ok(&["push", &other]);
    let other_id = d.ok(&["image", "inspect", "-f", "{{.Id}}", &other]);
    let o = std::process::Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", "oci", "--dest-compress-format", "zstd"])
        .arg(format!("docker://{src}"))
        .arg(format!("docker://{}/multi/app:zstd", reg.addr))
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&o.stderr));
    let manifest = |tag: &str| {
        let (_, body) = reg.get(&format!("/v2/multi/app/manifests/{tag}")).expect("manifest");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (format!("sha256:{}", sha256_hex(&body)), body.len(), v)
    };
    let (zstd_digest, zstd_size, zv) = manifest("zstd");
    assert!(zv["layers"].as_array().unwrap().iter().any(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"), "{zv}");
    let (arm_digest, arm_size, _) = manifest("arm");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest, "size": arm_size,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": zstd_digest, "size": zstd_size,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    });
    let body = serde_json::to_vec(&index).unwrap();
    assert_eq!(reg.put_manifest("/v2/multi/app/manifests/multi", "application/vnd.oci.image.index.v1+json", &body), Some(201));
    let index_digest = format!("sha256:{}", sha256_hex(&body));

    d.ok(&["rmi", &src, &other]);
    let multi = format!("{}/multi/app:multi", reg.addr);
    let o = d.docker(&["pull", &multi]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    assert!(o.stdout.contains(&format!("Digest: {index_digest}")), "{o}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}} {{index .RepoDigests 0}}", &multi]), format!("{id} {}/multi/app@{index_digest}", reg.addr));
    assert_eq!(d.ok(&["run", "--rm", &multi]), "zstd-layers");
    // Another platform, by digest.
    let o = d.docker(&["pull", "--platform", "linux/arm64", &format!("{}/multi/app@{index_digest}", reg.addr)]);
    assert_eq!(o.code, Some(0), "{o}");
    let ids = d.ok(&["images", "-q", "--no-trunc"]);
    assert!(ids.contains(&other_id), "{ids}");
    assert_no_leaks(&d);
}

fn sha256_hex(data: &[u8]) -> String {
    let mut c = std::process::Command::new("sha256sum");
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = c.spawn().expect("sha256sum");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

/// Removes a certs.d directory it created, however the test ends.
struct CertsDir(std::path::PathBuf);

impl Drop for CertsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// HTTPS with the CA and a client certificate from /etc/berth/certs.d/HOST:PORT/ (the
/// registry requires client certificates); without them, the pull fails on the certificate.
#[test]
fn tls_registry_with_certs_d() {
    if skip() {
        return;
    }
    let tls = registry::Tls::generate();
    let reg = Registry::start_tls(&tls);
    let d = Berthd::start();
    let name = format!("{}/tls/app:1", reg.addr);
    make_image(&d, &name, "over-tls");
    let o = d.docker(&["push", &name]);
    assert_ne!(o.code, Some(0), "{o}");
    assert!(o.stderr.contains("certificate") || o.stderr.contains("UnknownIssuer"), "{o}");

    let certs = CertsDir(std::path::PathBuf::from(format!("/etc/berth/certs.d/{}", reg.addr)));
    std::fs::create_dir_all(&certs.0).unwrap();
    std::fs::copy(&tls.ca, certs.0.join("ca.crt")).unwrap();
    // The CA alone: the registry refuses a client without a certificate.
    let o = d.docker(&["push", &name]);
    assert_ne!(o.code, Some(0), "{o}");
    std::fs::copy(&tls.client_cert, certs.0.join("client.cert")).unwrap();
    std::fs::copy(&tls.client_key, certs.0.join("client.key")).unwrap();
    let o = d.docker(&["push", &name]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    d.ok(&["rmi", &name]);
    let o = d.docker(&["pull", &name]);
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(d.ok(&["run", "--rm", &name]), "over-tls");
    assert_no_leaks(&d);
}

/// Docker Hub pulls go to the registry mirrors first, in order (a dead one is skipped): here
/// the only way to reach "busybox", as this machine has no Internet.
#[test]
fn docker_hub_pulls_through_registry_mirrors() {
    if skip() {
        return;
    }
    let reg = Registry::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = Berthd::start_with(vec![
        "--registry-mirror".into(),
        format!("http://127.0.0.1:{dead}"),
        "--registry-mirror".into(),
        format!("http://{}", reg.addr),
    ]);
    let hub_name = format!("{}/library/busybox:latest", reg.addr);
    d.import_busybox(&hub_name);
    let id = d.ok(&["image", "inspect", "-f", "{{.Id}}", &hub_name]);
    d.ok(&["push", &hub_name]);
    d.ok(&["rmi", &hub_name]);
    let o = d.docker(&["pull", "busybox"]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    assert!(o.stdout.contains("latest: Pulling from library/busybox"), "{o}");
    assert!(o.stdout.contains("Status: Downloaded newer image for busybox:latest"), "{o}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]), id);
    assert!(d.ok(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", "busybox"]).starts_with("busybox@sha256:"));
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "via-mirror"]), "via-mirror");
    assert_no_leaks(&d);
}

/// `docker search` against a registry without the v1 search endpoint: a clear error.
#[test]
fn search_where_the_registry_lacks_it() {
    if skip() {
        return;
    }
    let reg = Registry::start();
    let d = Berthd::start();
    let o = d.docker(&["search", &format!("{}/app", reg.addr)]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains(&format!("registry {} does not support search", reg.addr)), "{o}");
    let o = d.docker(&["search", "--limit", "101", &format!("{}/app", reg.addr)]);
    assert_ne!(o.code, Some(0), "{o}");
}

/// `docker push --all-tags`: every tag of the repository, the shared layer uploaded once.
#[test]
fn push_all_tags() {
    if skip() {
        return;
    }
    let reg = Registry::start();
    let d = Berthd::start();
    let repo = format!("{}/all/app", reg.addr);
    d.import_busybox(&format!("{repo}:a"));
    d.ok(&["tag", &format!("{repo}:a"), &format!("{repo}:b")]);
    let o = d.docker(&["push", "--all-tags", &repo]);
    assert_eq!(o.code, Some(0), "{o}\n{}", d.log_tail(20));
    assert!(o.stdout.contains("a: digest: sha256:") && o.stdout.contains("b: digest: sha256:"), "{o}");
    assert_eq!(o.stdout.matches(": Pushed").count(), 1, "{o}");
    let (_, tags) = reg.get("/v2/all/app/tags/list").expect("tags");
    let v: serde_json::Value = serde_json::from_slice(&tags).unwrap();
    let mut tags: Vec<&str> = v["tags"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
}
