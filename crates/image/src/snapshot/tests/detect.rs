//! Driver choice.

use std::fs;

use super::*;
use crate::snapshot::{detect_with, overlay_supported};

#[test]
fn snapshot_detect_picks_overlay_here() {
    let root = TestRoot::new();
    let s = detect_with(root.path(), None).unwrap();
    assert_eq!(s.name(), "overlay");
    assert!(s.root().ends_with("snapshots/overlay"));
    // The probe leaves nothing behind.
    assert_eq!(names(root.path().join("snapshots")), ["overlay"]);
    assert_eq!(
        s.status()[0],
        ("Backing Filesystem".to_string(), "extfs".to_string())
    );
    let forced = detect_with(root.path(), Some(Driver::Copy)).unwrap();
    assert_eq!(forced.name(), "copy");
    assert!(forced
        .status()
        .iter()
        .all(|(k, _)| k != "Overlay unavailable"));
    // Once the copy driver holds images, it stays the choice.
    forced
        .add_layer(&chain(1), None, &mut layer(vec![E::File("a", "1")]))
        .unwrap();
    assert_eq!(detect_with(root.path(), None).unwrap().name(), "copy");
    assert_eq!(
        detect_with(root.path(), Some(Driver::Overlay))
            .unwrap()
            .name(),
        "overlay"
    );
}

#[test]
fn snapshot_detect_falls_back_to_copy_on_overlayfs() {
    // A data root that is itself an overlay mount: overlay cannot use it as an upper layer.
    let root = TestRoot::new();
    let d = |n: &str| root.path().join(n);
    for n in ["l", "u", "w", "data"] {
        fs::create_dir(d(n)).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        d("l").display(),
        d("u").display(),
        d("w").display()
    );
    let data = std::ffi::CString::new(opts).unwrap();
    rustix::mount::mount(
        "overlay",
        d("data"),
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .unwrap();
    let _outer = super::super::MountGuard::new(d("data"));

    let why = overlay_supported(&d("data")).unwrap_err();
    assert!(!why.is_empty());
    let s = detect_with(&d("data"), None).unwrap();
    assert_eq!(s.name(), "copy");
    let status = s.status();
    assert!(
        status.contains(&("Backing Filesystem".to_string(), "overlayfs".to_string())),
        "{status:?}"
    );
    assert!(
        status.iter().any(|(k, _)| k == "Overlay unavailable"),
        "{status:?}"
    );
    assert!(
        detect_with(&d("data"), Some(Driver::Overlay)).is_err(),
        "asking for overlay there is an error"
    );
    assert!(!names(d("data/snapshots"))
        .iter()
        .any(|n| n.starts_with("probe-")));

    // And the copy driver works there.
    let top = add_image(
        &*s,
        1,
        vec![
            vec![E::File("a", "1"), E::File("b", "2")],
            vec![E::Whiteout("b")],
        ],
    );
    s.prepare("c", Some(&top)).unwrap();
    let t = root.target("c");
    let g = s.mount("c", &t).unwrap();
    assert_eq!(names(&t), ["a"]);
    drop(g);
    s.remove("c").unwrap();
}

#[test]
fn snapshot_driver_names_parse() {
    assert_eq!("overlay2".parse::<Driver>().unwrap(), Driver::Overlay);
    assert_eq!("copy".parse::<Driver>().unwrap(), Driver::Copy);
    assert!("zfs".parse::<Driver>().is_err());
}
