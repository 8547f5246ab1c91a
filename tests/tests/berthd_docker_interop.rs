//! Images between berthd and the real Docker engine, both ways, through `docker save` /
//! `docker load` with the same docker CLI: multi-layer images keep their IDs and run.

use std::time::Duration;

use berth_e2e::berthd::Berthd;
use berth_e2e::dockerd::{find_exe, report_problems, run_with_timeout, Daemon, HostTools};

#[test]
fn multi_layer_images_both_ways() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let (Ok(tools), Some(runc)) = (HostTools::find(), find_exe("runc")) else {
        eprintln!("skipped: dockerd/containerd/runc not installed");
        return;
    };
    let mut dockerd = Daemon::new(&tools, &runc, "overlay2");
    if let Err(e) = dockerd.launch() {
        report_problems(&dockerd.teardown());
        panic!("dockerd did not start: {e}");
    }
    let berthd = Berthd::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tar = berth_e2e::busybox_rootfs();
        let rootfs_tar = std::process::Command::new("tar").arg("-C").arg(&tar).args(["-c", "."]).output().unwrap().stdout;
        let mut import = dockerd.docker_cmd(&["import", "-", "busybox:latest"]);
        import.stdin(std::process::Stdio::piped());
        let o = run_with_timeout(import, Some(rootfs_tar), Duration::from_secs(60));
        assert_eq!(o.code, Some(0), "{o}");
        berthd.import_busybox("busybox:latest");

        // Docker -> Berth: a two-layer image made by docker commit.
        dockerd.ok(&["run", "--name", "mk", "busybox", "sh", "-c", "echo from-docker > /marker"]);
        dockerd.ok(&["commit", "-c", "CMD [\"cat\", \"/marker\"]", "mk", "interop/docker:2"]);
        let id = dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop/docker:2"]);
        let archive = berthd.dir.path().join("from-docker.tar");
        dockerd.ok(&["save", "-o", archive.to_str().unwrap(), "interop/docker:2"]);
        let o = berthd.docker(&["load", "-i", archive.to_str().unwrap()]);
        assert!(o.stdout.contains("Loaded image: interop/docker:2"), "{o}");
        assert_eq!(berthd.ok(&["image", "inspect", "-f", "{{.Id}} {{len .RootFS.Layers}}", "interop/docker:2"]), format!("{} 2", id.trim()));
        assert_eq!(berthd.ok(&["run", "--rm", "interop/docker:2"]), "from-docker");

        // Berth -> Docker: a two-layer image made by berthd's commit.
        berthd.ok(&["run", "--name", "mk", "busybox", "sh", "-c", "echo from-berth > /marker"]);
        berthd.ok(&["commit", "-c", "CMD [\"cat\", \"/marker\"]", "mk", "interop/berth:2"]);
        let id = berthd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop/berth:2"]);
        let archive = berthd.dir.path().join("from-berth.tar");
        berthd.ok(&["save", "-o", archive.to_str().unwrap(), "interop/berth:2"]);
        let o = dockerd.docker(&["load", "-i", archive.to_str().unwrap()]);
        assert!(o.stdout.contains("interop/berth:2"), "{o}");
        assert_eq!(dockerd.ok(&["image", "inspect", "-f", "{{.Id}}", "interop/berth:2"]).trim(), id);
        assert_eq!(dockerd.ok(&["run", "--rm", "interop/berth:2"]).trim(), "from-berth");
    }));
    dockerd.remove_all_containers();
    report_problems(&dockerd.teardown());
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
