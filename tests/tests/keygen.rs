//! `dxmesh keygen` as an operator runs it: the file is 0600, the printed
//! PeerId and PEM are those of the seed in the file, and an existing file is
//! never overwritten.

use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_tests::Dxmesh;
use std::os::unix::fs::PermissionsExt;

fn dx() -> Dxmesh {
    Dxmesh::new(env!("CARGO_BIN_EXE_dxmesh-under-test"))
}

#[test]
fn keygen_writes_a_private_seed_and_prints_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = dx().ok(dir.path(), &["keygen", "--out", "node.key"]);
    let path = dir.path().join("node.key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let id = Identity::from_pkcs8_pem(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        stdout.contains(&format!("peer_id: {}", id.peer_id())),
        "{stdout}"
    );
    let pem_start = stdout
        .find("-----BEGIN PUBLIC KEY-----")
        .expect("PEM printed");
    assert_eq!(
        PublicKey::from_pem(&stdout[pem_start..]).unwrap(),
        id.public()
    );
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("node.key"), "precious").unwrap();
    let stderr = dx().fails(dir.path(), &["keygen", "--out", "node.key"]);
    assert!(stderr.contains("node.key: already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("node.key")).unwrap(),
        "precious"
    );
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = dx().ok(dir.path(), &["--version"]);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    let out = dx().ok(dir.path(), &["--help"]);
    for cmd in ["keygen", "init", "run", "status", "peers", "roster"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    dx().fails(dir.path(), &["no-such-command"]);
}
