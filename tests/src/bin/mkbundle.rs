//! `mkbundle DIR [ARG...]`: write a standalone OCI bundle (config.json plus a
//! private busybox rootfs at DIR/rootfs) from the test fixtures, for
//! scripts/setup and for trying runtimes by hand. ARGs replace process.args.
//! Without ARGs the process is an interactive `sh`, so `process.terminal` is
//! true (as `runc spec` writes it); with ARGs it is false, so the command runs
//! without a tty (scripts, CI).

use std::path::PathBuf;
use std::process::ExitCode;

use berth_e2e::{copy_rootfs, default_config, ROOTFS_MARKER};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args
        .next()
        .map(PathBuf::from)
        .filter(|d| !d.as_os_str().to_string_lossy().starts_with('-'))
    else {
        eprintln!("usage: mkbundle DIR [ARG...]   (default process args: [\"sh\"])");
        return ExitCode::from(2);
    };
    let process_args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    match make(&dir, &process_args) {
        Ok(()) => {
            println!("{}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkbundle {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn make(dir: &std::path::Path, process_args: &[String]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let rootfs = dir.join("rootfs");
    if rootfs.exists() {
        // Only replace a rootfs this tool made; never delete someone's directory.
        if !rootfs.join(ROOTFS_MARKER).is_file() {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a fixture rootfs",
                rootfs.display()
            )));
        }
        std::fs::remove_dir_all(&rootfs)?;
    }
    copy_rootfs(&rootfs)?;
    let mut config = default_config("rootfs");
    if process_args.is_empty() {
        config["process"]["terminal"] = true.into();
    } else {
        config["process"]["args"] = process_args.into();
    }
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config)? + "\n",
    )
}
