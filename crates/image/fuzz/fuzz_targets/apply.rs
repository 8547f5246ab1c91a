//! Feeds arbitrary bytes to `layer::apply` (and `apply_onto`) and checks that it never panics,
//! never leaves anything behind after an error, and never writes outside its target: a sibling
//! directory with a canary file must stay exactly as it was.
//!
//! Run (as root: archives carry owners and device nodes):
//!
//! ```sh
//! # crafted archives to start from, written by a test of the crate
//! BERTH_FUZZ_SEEDS=$PWD/crates/image/fuzz/seeds cargo test -p berth-image --lib layer_write_fuzz_seeds
//! cd crates/image/fuzz && cargo +nightly fuzz run apply corpus/apply seeds -- -max_total_time=300
//! ```
//!
//! The first input byte picks the options (whiteout mode, devices allowed, escaping symlinks
//! refused, apply_onto an existing directory); the rest is the layer, compressed or not.

#![no_main]

use std::path::Path;

use berth_image::layer::{apply, apply_onto, ApplyOptions, WhiteoutMode};
use libfuzzer_sys::fuzz_target;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn check_outside(outside: &Path) {
    assert_eq!(names(outside), vec!["canary"], "something was written outside the target");
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"canary");
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the options; the rest is the layer.
    let Some((&flags, layer)) = data.split_first() else { return };
    let opts = ApplyOptions {
        whiteouts: if flags & 1 == 0 { WhiteoutMode::Apply } else { WhiteoutMode::Overlay },
        allow_devices: flags & 2 != 0,
        refuse_escaping_symlinks: flags & 4 != 0,
        ..ApplyOptions::default()
    };
    let onto = flags & 8 != 0;

    // Symlinks in seed inputs point at /tmp/berth-fuzz/outside: a fixed absolute path, so the
    // fuzzer can keep archives that aim at it.
    let base = Path::new("/tmp/berth-fuzz");
    let outside = base.join("outside");
    if !outside.join("canary").exists() {
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("canary"), b"canary").unwrap();
    }
    let scratch = tempfile::tempdir_in(base).unwrap();
    let target = scratch.path().join("target");

    let res = if onto {
        std::fs::create_dir(&target).unwrap();
        apply_onto(layer, &target, &opts)
    } else {
        apply(layer, &target, &opts)
    };
    check_outside(&outside);
    let left = names(scratch.path());
    if res.is_ok() || onto {
        assert_eq!(left, vec!["target"]);
    } else {
        assert!(left.is_empty(), "left behind after an error: {left:?}");
    }
    let mut others = names(base);
    others.retain(|n| n != "outside" && !n.starts_with(".tmp"));
    assert!(others.is_empty(), "written next to the scratch directory: {others:?}");
});
