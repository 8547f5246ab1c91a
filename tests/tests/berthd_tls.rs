//! `-H tcp://` only with TLS and client certificates: the docker CLI with a certificate signed
//! by the daemon's CA gets in, one without is refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::run_with_timeout;

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(st.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&st.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn make_certs(dir: &Path) {
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=berth-test-ca"]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("server", "127.0.0.1"), ("client", "client")] {
        openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &format!("{name}-key.pem"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={cn}")]);
        openssl(dir, &["x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", &format!("{name}.pem"), "-days", "2", "-extfile", &format!("{name}.ext")]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn tcp_needs_client_certificates() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 || berth_e2e::find_in_path("openssl").is_none() {
        eprintln!("skipped: needs root and openssl");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let port = free_port();
    let addr = format!("tcp://127.0.0.1:{port}");
    let d = Berthd::start_with(vec![
        "-H".into(),
        addr.clone(),
        "--tlsverify".into(),
        "--tlscacert".into(),
        c("ca.pem"),
        "--tlscert".into(),
        c("server.pem"),
        "--tlskey".into(),
        c("server-key.pem"),
    ]);
    let docker = |args: &[&str]| {
        let mut cmd = Command::new("docker");
        cmd.env_remove("DOCKER_HOST").env("DOCKER_CONFIG", d.dir.path().join("docker-config")).arg("-H").arg(&addr).args(args);
        run_with_timeout(cmd, None, Duration::from_secs(30))
    };
    let ok = docker(&["--tlsverify", "--tlscacert", &c("ca.pem"), "--tlscert", &c("client.pem"), "--tlskey", &c("client-key.pem"), "version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(ok.stdout.trim(), "1.47", "{ok}");
    // A client that trusts the server but has no certificate of its own.
    let no_cert = docker(&["--tls", "--tlscacert", &c("ca.pem"), "version", "--format", "{{.Server.APIVersion}}"]);
    assert_ne!(no_cert.code, Some(0), "{no_cert}");
    // Plain HTTP on the TLS port gets nothing.
    let plain = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_ne!(plain.code, Some(0), "{plain}");
    // The unix socket still works beside it.
    assert_eq!(d.ok(&["version", "--format", "{{.Server.APIVersion}}"]), "1.47");
}
