//! `login` and `logout`: the daemon checks the credentials with the registry (`POST /auth`);
//! they are kept where the docker CLI keeps them (config.json or its credential helper), so
//! both CLIs share logins.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Result};
use berth_api::client::auth::{self, Credentials};

use crate::cli::{LoginArgs, LogoutArgs};
use crate::Ctx;

/// Reads one line from the terminal, without echo when `secret`.
fn prompt(label: &str, secret: bool) -> Result<String> {
    eprint!("{label}");
    io::stderr().flush()?;
    let fd = 0;
    // SAFETY: tcgetattr/tcsetattr on stdin (a terminal, checked by the caller) with a
    // termios we own; the saved one is put back right after the read.
    let saved = secret.then(|| unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return None;
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        libc::tcsetattr(fd, libc::TCSANOW, &t);
        Some(saved)
    });
    let mut line = String::new();
    let r = io::stdin().lock().read_line(&mut line);
    if let Some(Some(t)) = saved {
        // SAFETY: restores the termios read above.
        unsafe {
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
        eprintln!();
    }
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub fn login(c: &Ctx, a: &LoginArgs) -> Result<i32> {
    let server = auth::config_key(a.server.as_deref().unwrap_or(""));
    let mut user = a.username.clone().unwrap_or_default();
    let mut password = a.password.clone().unwrap_or_default();
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if a.password_stdin {
            bail!("--password and --password-stdin are mutually exclusive");
        }
    }
    if a.password_stdin {
        if user.is_empty() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        password = s.trim_end_matches(['\n', '\r']).to_owned();
    }
    if user.is_empty() || password.is_empty() {
        if !io::stdin().is_terminal() {
            bail!("Error: Cannot perform an interactive login from a non TTY device");
        }
        if user.is_empty() {
            user = prompt("Username: ", false)?;
        }
        if password.is_empty() {
            password = prompt("Password: ", true)?;
        }
        if user.is_empty() {
            bail!("Error: Non-null Username Required");
        }
    }
    let mut creds = Credentials { username: user, password, serveraddress: server, ..Default::default() };
    let resp = c.client.login(&creds)?;
    if !resp.identity_token.is_empty() {
        creds.password.clear();
        creds.identitytoken = resp.identity_token;
    }
    let stored = auth::store(&creds)?;
    if !stored.starts_with("docker-credential-") {
        eprintln!("WARNING! Your credentials are stored unencrypted in '{stored}'.");
        eprintln!("Configure a credential helper to remove this warning. See");
        eprintln!("https://docs.docker.com/go/credential-store/");
        eprintln!();
    }
    println!("{}", if resp.status.is_empty() { "Login Succeeded" } else { &resp.status });
    Ok(0)
}

pub fn logout(_c: &Ctx, a: &LogoutArgs) -> Result<i32> {
    let server = auth::config_key(a.server.as_deref().unwrap_or(""));
    println!("Removing login credentials for {server}");
    auth::erase(&server)?;
    Ok(0)
}
