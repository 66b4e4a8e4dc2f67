//! Bad input and faults at start-up: each gets one clear error naming the
//! file or setting, and a non-zero exit. Also: `init` refuses to overwrite a
//! node directory.

use dxmesh_tests::{Mesh, edit_config};
use std::os::unix::fs::PermissionsExt;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn run_fails(mesh: &Mesh, dir: &str) -> String {
    let path = mesh.path().join(dir);
    mesh.dx
        .fails(mesh.path(), &["run", "--dir", path.to_str().unwrap()])
}

#[test]
fn a_config_that_does_not_parse_is_named_with_its_line() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    edit_config(&a.dir, "role = \"provider\"", "role = \"chief\"");
    let e = run_fails(&mesh, "a");
    assert!(
        e.contains("a/config.toml") && e.contains("line 3") && e.contains("role"),
        "{e}"
    );
}

#[test]
fn a_bad_listen_address_names_the_setting() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    edit_config(&a.dir, "/ip4/127.0.0.1/tcp/0", "127.0.0.1:7400");
    let e = run_fails(&mesh, "a");
    assert!(e.contains("network.listen[0]"), "{e}");
}

#[test]
fn a_missing_seed_file_is_named() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    std::fs::remove_file(a.dir.join("node.key")).unwrap();
    let e = run_fails(&mesh, "a");
    assert!(
        e.contains("a/node.key") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn a_seed_file_with_loose_permissions_is_refused() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    std::fs::set_permissions(
        a.dir.join("node.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let e = run_fails(&mesh, "a");
    assert!(
        e.contains("a/node.key") && e.contains("0640") && e.contains("too open"),
        "{e}"
    );
}

#[test]
fn a_missing_or_bad_anchor_key_is_named() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    std::fs::write(
        a.dir.join("anchor.pub.pem"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let e = run_fails(&mesh, "a");
    assert!(
        e.contains("trust.anchor_public_key") && e.contains("anchor.pub.pem"),
        "{e}"
    );
    std::fs::remove_file(a.dir.join("anchor.pub.pem")).unwrap();
    let e = run_fails(&mesh, "a");
    assert!(e.contains("a/anchor.pub.pem"), "{e}");
}

#[test]
fn a_port_already_in_use_names_the_setting() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    edit_config(
        &a.dir,
        "/ip4/127.0.0.1/tcp/0",
        &format!("/ip4/127.0.0.1/tcp/{port}"),
    );
    let e = run_fails(&mesh, "a");
    assert!(
        e.contains("network.listen") && e.contains(&port.to_string()) && e.contains("in use"),
        "{e}"
    );
}

#[test]
fn the_same_node_cannot_run_twice() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    let _running = mesh.start(&a);
    let e = run_fails(&mesh, "a");
    assert!(
        e.contains("state.redb") && e.contains("cannot open node state"),
        "{e}"
    );
}

#[test]
fn init_refuses_to_overwrite_a_node_directory() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    let key_before = std::fs::read(a.dir.join("node.key")).unwrap();
    let e = mesh.dx.fails(
        mesh.path(),
        &[
            "init",
            "--dir",
            "a",
            "--department",
            "health",
            "--role",
            "provider",
            "--anchor",
            "anchor.pub.pem",
        ],
    );
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(std::fs::read(a.dir.join("node.key")).unwrap(), key_before);
    let e = mesh.dx.fails(
        mesh.path(),
        &[
            "init",
            "--dir",
            "b",
            "--department",
            "health",
            "--role",
            "boss",
            "--anchor",
            "anchor.pub.pem",
        ],
    );
    assert!(e.contains("unknown role"), "{e}");
}

#[test]
fn status_without_a_running_node_says_how_to_start_it() {
    let mut mesh = Mesh::new(BIN);
    mesh.init("a", "health", "provider");
    let e = mesh.dx.fails(mesh.path(), &["status", "--dir", "a"]);
    assert!(
        e.contains("no running node at a") && e.contains("dxmesh run --dir a"),
        "{e}"
    );
}
