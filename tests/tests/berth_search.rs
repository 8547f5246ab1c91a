//! `search` against a registry that serves Docker Hub's v1 search endpoint (a small server in
//! the test, on 127.0.0.1): berthd's `/images/search` and the berth CLI's table, compared with
//! the docker CLI's for the same results. Root only.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::run_with_timeout;

const RESULTS: &str = r#"{"num_results":3,"query":"app","results":[
 {"name":"app/one","description":"The first app,\nwith a description longer than forty-five characters","star_count":1234,"is_official":true,"is_automated":false},
 {"name":"app/two","description":"short","star_count":7,"is_official":false,"is_automated":true},
 {"name":"app/three","description":"","star_count":0,"is_official":false,"is_automated":false}]}"#;

/// Answers /v2/ as a registry does and /v1/search with RESULTS, until the test ends.
fn search_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = if path.starts_with("/v1/search") {
                ("200 OK", RESULTS)
            } else if path == "/v2/" {
                ("200 OK", "{}")
            } else {
                ("404 Not Found", "{}")
            };
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn search_output_matches_the_docker_cli() {
    if !berth_e2e::berthd::can_run() {
        return;
    }
    let d = Berthd::start();
    let addr = search_server();
    let term = format!("{addr}/app");
    let berth = berth_e2e::runtime_bin("berth");
    let run = |tool: &str, args: &[&str]| {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        all.push(&term);
        let c = if tool == "docker" {
            d.docker_cmd(&all)
        } else {
            let mut c = Command::new(&berth);
            c.args(&all).env("DOCKER_HOST", d.host()).env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
            c
        };
        let o = run_with_timeout(c, None, Duration::from_secs(30));
        (o.code, o.stdout, o.stderr)
    };
    let (code, out, err) = run("docker", &[]);
    assert_eq!(code, Some(0), "{err}\n{}", d.log_tail(20));
    assert!(out.starts_with("NAME") && out.contains("app/one") && out.contains("[OK]"), "{out}");
    for args in [
        &[][..],
        &["--no-trunc"],
        &["--limit", "2"],
        &["--filter", "is-official=true"],
        &["--filter", "stars=5"],
        &["--format", "{{.Name}}: {{.StarCount}} {{.IsOfficial}}"],
        &["--format", "table {{.Name}}\t{{.Description}}"],
    ] {
        assert_eq!(run("berth", args), run("docker", args), "{args:?}");
    }
}
