//! A local mesh's shared clock (`DXMESH_CLOCK_FILE`): moved forward, a
//! running node sees the next epoch at once; a clock file someone else
//! could write is refused before a command or a node starts.

use dxmesh_tests::{registry_terms, setup};
use std::os::unix::fs::PermissionsExt;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn moving_the_shared_clock_moves_the_nodes_epoch() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    let clock = s.mesh.path().join("clock");
    std::fs::write(&clock, "0\n").unwrap();
    std::fs::set_permissions(&clock, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.restart_provider(&[("DXMESH_CLOCK_FILE", clock.to_str().unwrap())]);
    let epoch = |s: &dxmesh_tests::Setup| -> u64 {
        let status: serde_json::Value =
            serde_json::from_str(&s.pps.cli(&["status", "--json"])).unwrap();
        status["epochs"][0]["epoch"]["epoch"].as_u64().unwrap()
    };
    assert_eq!(epoch(&s), 1);
    // A day later for every process that shares the file.
    std::fs::write(&clock, "86400\n").unwrap();
    let t = std::time::Instant::now();
    while epoch(&s) != 2 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "the epoch did not move"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_clock_file_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "86400\n").unwrap();
    std::fs::set_permissions(&clock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(dir.path().join("node.key"))
        .env("DXMESH_CLOCK_FILE", &clock)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DXMESH_CLOCK_FILE=") && err.contains("writable by others"),
        "{err}"
    );
    assert!(!dir.path().join("node.key").exists(), "nothing ran");
}
