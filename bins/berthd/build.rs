//! Builds berth-init (init/berth_init.rs) as a static binary with rustc alone; berthd embeds it
//! and installs it under its exec root for `--init` containers.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let src = "init/berth_init.rs";
    println!("cargo:rerun-if-changed={src}");
    let status = Command::new(rustc)
        .args(["--edition", "2021", "-C", "opt-level=s", "-C", "panic=abort", "-C", "target-feature=+crt-static", "-C", "strip=symbols", "-o"])
        .arg(out.join("berth-init"))
        .arg(src)
        .status()
        .expect("run rustc for berth-init");
    assert!(status.success(), "building berth-init failed");
}
