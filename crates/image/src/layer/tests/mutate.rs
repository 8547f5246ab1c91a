//! A deterministic mutation loop over crafted archives (fixed seed, so it runs the same in CI
//! as a plain test): whatever the bytes, applying never panics, never leaves anything after an
//! error, and never touches anything outside the target. The cargo-fuzz target in
//! `crates/image/fuzz` explores the same property without the fixed seed.

use std::io::Write;
use std::path::Path;

use super::{Raw, Scratch, Tar};
use crate::layer::{apply, apply_onto, ApplyOptions, WhiteoutMode};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds(outside: &str) -> Vec<Vec<u8>> {
    let canary = format!("{outside}/canary");
    let mut v = vec![
        Tar::new()
            .symlink("l", outside)
            .file("l/x", b"x")
            .hardlink("h", &canary)
            .file("l/canary", b"overwritten?")
            .finish(),
        Tar::new()
            .symlink("up", "../../../..")
            .file("up/escape", b"e")
            .dir("up/outside/")
            .file("up/outside/.wh.canary", b"")
            .file("up/.wh..wh..opq", b"")
            .finish(),
        Tar::new()
            .dir("etc/")
            .file("etc/a", b"a")
            .file("etc/.wh.a", b"")
            .file("etc/.wh..wh..opq", b"")
            .hardlink("etc/b", "etc/a")
            .device(b'6', "etc/fifo", 0, 0)
            .device(b'3', "etc/null", 1, 3)
            .finish(),
        Tar::new()
            .pax(&[("path", format!("{}/long", "d".repeat(150)).as_bytes()), ("SCHILY.xattr.user.a", b"1")])
            .file("short", b"data")
            .pax(&[("linkpath", b"../../../../etc/passwd"), ("uid", b"99999999")])
            .hardlink("hl", "x")
            .finish(),
        Tar::new().file("/abs/file", &[7u8; 3000]).symlink("abs/l", "/abs").file("abs/l/file2", b"2").finish(),
    ];
    let mut t = Tar::new();
    t.raw(Raw { kind: b'L', path: b"././@LongLink", data: b"../via-longlink\0", ..Raw::default() });
    t.file("x", b"y");
    v.push(t.finish());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&v[0]).unwrap();
    v.push(gz.finish().unwrap());
    v.push(zstd::encode_all(&v[1][..], 1).unwrap());
    v
}

const INTERESTING: &[u8] = b"/.\x000125LKSgx7\xff";
const NAMES: &[&str] =
    &["..", "../x", "/", "a/../..", "l/x", "up/x", ".wh..wh..opq", ".wh.l", "l", "up/outside/canary"];

fn fix_checksums(data: &mut [u8]) {
    for block in data.chunks_exact_mut(512) {
        if &block[257..262] == b"ustar" {
            let mut h = tar::Header::new_old();
            h.as_mut_bytes().copy_from_slice(block);
            h.set_cksum();
            block.copy_from_slice(h.as_bytes());
        }
    }
}

fn mutate(rng: &mut Rng, mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(3) {
        let len = data.len().max(1);
        match rng.below(7) {
            0 => {
                let i = rng.below(len);
                if i < data.len() {
                    data[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(len);
                if i < data.len() {
                    data[i] = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
            2 => {
                // Rename a header's entry.
                let blocks = data.len() / 512;
                let b = rng.below(blocks) * 512;
                if b + 100 <= data.len() {
                    let name = NAMES[rng.below(NAMES.len())].as_bytes();
                    data[b..b + 100].fill(0);
                    data[b..b + name.len()].copy_from_slice(name);
                }
            }
            3 => {
                let blocks = data.len() / 512;
                let (a, b) = (rng.below(blocks) * 512, rng.below(blocks) * 512);
                if a + 512 <= data.len() && b + 512 <= data.len() {
                    let block = data[a..a + 512].to_vec();
                    data[b..b + 512].copy_from_slice(&block);
                }
            }
            4 => data.truncate(rng.below(len)),
            5 => {
                let a = rng.below(len);
                let b = (a + rng.below(2048)).min(data.len());
                let chunk = data[a.min(b)..b].to_vec();
                let at = rng.below(len).min(data.len());
                data.splice(at..at, chunk);
            }
            _ => {
                // Change an entry's type.
                let blocks = data.len() / 512;
                let b = rng.below(blocks) * 512 + 156;
                if b < data.len() {
                    data[b] = b"0123456KLSxgV"[rng.below(13)];
                }
            }
        }
    }
    if rng.below(4) != 0 {
        fix_checksums(&mut data);
    }
    data
}

fn check_outside(outside: &Path, what: &str) {
    let names: Vec<_> = std::fs::read_dir(outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec!["canary"], "{what}: something was written outside the target");
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"canary", "{what}");
    assert!(super::xattrs(outside).is_empty(), "{what}");
}

#[test]
fn layer_mutated_archives_never_escape() {
    let s = Scratch::new();
    let outside = s.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"canary").unwrap();
    let seeds = seeds(outside.to_str().unwrap());
    let mut rng = Rng(0x5eed_1a7e_b0a7_f00d);
    let (mut ok, mut failed) = (0, 0);
    for i in 0..2500 {
        let seed = &seeds[rng.below(seeds.len())];
        let data = if i < seeds.len() { seeds[i].clone() } else { mutate(&mut rng, seed.clone()) };
        let o = ApplyOptions {
            whiteouts: if rng.below(2) == 0 { WhiteoutMode::Apply } else { WhiteoutMode::Overlay },
            allow_devices: rng.below(2) == 0,
            refuse_escaping_symlinks: rng.below(4) == 0,
            ..ApplyOptions::default()
        };
        let what = format!("iteration {i} ({} bytes, {o:?})", data.len());
        let target = s.path(&format!("t{i}"));
        let onto = i % 4 == 0;
        let res = if onto {
            std::fs::create_dir(&target).unwrap();
            apply_onto(&data[..], &target, &o)
        } else {
            apply(&data[..], &target, &o)
        };
        if res.is_ok() {
            ok += 1;
        } else {
            failed += 1;
        }
        check_outside(&outside, &what);
        let mut left: Vec<String> = s.names().into_iter().filter(|n| n != "outside").collect();
        left.sort();
        match res {
            Ok(_) => assert_eq!(left, vec![format!("t{i}")], "{what}"),
            Err(_) if onto => assert_eq!(left, vec![format!("t{i}")], "{what}"),
            Err(e) => assert!(left.is_empty(), "{what}: left behind after {e}: {left:?}"),
        }
        if !left.is_empty() {
            std::fs::remove_dir_all(&target).unwrap();
        }
    }
    eprintln!("mutation loop: {ok} applied, {failed} refused");
    // The loop must exercise both outcomes to mean anything.
    assert!(ok > 100 && failed > 100, "ok {ok}, failed {failed}");
}

/// Writes the seed archives (aimed at the fuzz target's canary directory) to the directory
/// `BERTH_FUZZ_SEEDS` names, for `cargo fuzz run apply CORPUS SEEDS`; does nothing without it.
#[test]
fn layer_write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("BERTH_FUZZ_SEEDS") else { return };
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in seeds("/tmp/berth-fuzz/outside").iter().enumerate() {
        for flags in [0u8, 1, 3, 8, 9] {
            let mut data = vec![flags];
            data.extend_from_slice(seed);
            std::fs::write(Path::new(&dir).join(format!("seed-{i}-{flags}")), data).unwrap();
        }
    }
}
