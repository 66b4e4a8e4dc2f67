//! The mesh (issue 3): seven real node processes form a mesh from one
//! bootstrap address; outsiders are refused at connection setup; a
//! revocation spreads and drops the revoked node; older, forged or broken
//! rosters are refused and the node keeps the one it had; a restarted node
//! keeps its PeerId and roster.

use dxmesh_tests::{Mesh, NodeDir, PROVINCE, edit_config};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");
const T: Duration = Duration::from_secs(30);

fn bootstrap(node: &NodeDir, addr: &str) {
    edit_config(
        &node.dir,
        "bootstrap = []",
        &format!("bootstrap = [\"{addr}\"]"),
    );
}

#[test]
fn seven_nodes_form_a_mesh_from_one_bootstrap_address() {
    let mut mesh = Mesh::new(BIN);
    let nodes: Vec<NodeDir> = PROVINCE.iter().map(|(d, r)| mesh.init(d, d, r)).collect();
    let refs: Vec<&NodeDir> = nodes.iter().collect();
    let roster = mesh.sign_roster("roster-v1", None, &refs, &[]);
    for n in &nodes {
        mesh.install(n, &[&roster]);
    }
    let first = mesh.start(&nodes[0]);
    let addr = first.addr();
    let mut procs = vec![first];
    for n in &nodes[1..] {
        bootstrap(n, &addr);
        procs.push(mesh.start(n));
    }
    for p in &mut procs {
        let s = p.wait_for("all six peers", T, |s| s.connected.len() == 6);
        assert_eq!(s.roster_version, 1);
        assert_eq!(s.self_admission, "admitted");
        for (dept, role) in PROVINCE.iter().filter(|(d, _)| *d != p.node.department) {
            let peer = s
                .connected
                .iter()
                .find(|c| c.department == *dept)
                .unwrap_or_else(|| panic!("{} does not see {dept}", p.node.name));
            assert_eq!(peer.role, *role);
            let expected = &nodes
                .iter()
                .find(|n| n.department == *dept)
                .unwrap()
                .peer_id;
            assert_eq!(&peer.peer_id, expected);
        }
    }
    // `dxmesh peers` shows the same as a table.
    let table = mesh.dx.ok(
        mesh.path(),
        &["peers", "--dir", nodes[5].dir.to_str().unwrap()],
    );
    assert!(table.contains("connected peers (6)"), "{table}");
    assert!(table.contains("disabled_federation"), "{table}");
}

#[test]
fn a_node_outside_the_roster_cannot_connect() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "health", "provider");
    let outsider = mesh.init("outsider", "unknown", "provider");
    let roster = mesh.sign_roster("roster-v1", None, &[&a], &[]);
    mesh.install(&a, &[&roster]);
    mesh.install(&outsider, &[&roster]);
    let mut pa = mesh.start(&a);
    bootstrap(&outsider, &pa.addr());
    let mut po = mesh.start(&outsider);
    let s = pa.wait_for("the outsider's refusal", T, |s| {
        s.refusals
            .iter()
            .any(|r| r.peer_id.as_deref() == Some(outsider.peer_id.as_str()))
    });
    let refusal = s
        .refusals
        .iter()
        .find(|r| r.peer_id.as_deref() == Some(outsider.peer_id.as_str()))
        .unwrap();
    assert!(
        refusal.reason.contains("not a roster member"),
        "{refusal:?}"
    );
    assert!(s.connected.is_empty(), "{:?}", s.connected);
    // Its handshake with `a` may complete before `a` closes it: what
    // matters is that it does not stay.
    let so = po.wait_for("its connection to be closed", T, |s| s.connected.is_empty());
    assert_eq!(so.self_admission, "not a roster member");
    assert!(pa.log_text().contains("refused"), "the refusal is logged");
}

#[test]
fn a_revocation_spreads_and_drops_the_revoked_node() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "public_security", "provider");
    let b = mesh.init("b", "comparator", "comparator");
    let c = mesh.init("c", "health", "provider");
    let v1 = mesh.sign_roster("roster-v1", None, &[&a, &b, &c], &[]);
    for n in [&a, &b, &c] {
        mesh.install(n, &[&v1]);
    }
    let mut pa = mesh.start(&a);
    let addr = pa.addr();
    bootstrap(&b, &addr);
    bootstrap(&c, &addr);
    let mut pb = mesh.start(&b);
    let mut pc = mesh.start(&c);
    for p in [&mut pa, &mut pb, &mut pc] {
        p.wait_for("two peers", T, |s| s.connected.len() == 2);
    }
    // The anchor revokes c; the new roster is installed on a only.
    let v2 = mesh.sign_roster("roster-v2", Some("roster-v1"), &[], &[&c]);
    let out = mesh.install(&a, &[&v2]);
    assert!(out.contains("roster version 2"), "{out}");
    let sa = pa.wait_for("c dropped at a", T, |s| {
        s.roster_version == 2 && s.connected.len() == 1
    });
    assert_eq!(sa.connected[0].peer_id, b.peer_id);
    // b gets v2 from a, without anyone copying files, and drops c too.
    let sb = pb.wait_for("v2 spread to b and c dropped", T, |s| {
        s.roster_version == 2 && s.connected.len() == 1
    });
    assert_eq!(sb.connected[0].peer_id, a.peer_id);
    // c keeps trying (bootstrap, peer exchange) and is refused as revoked.
    pa.wait_for("c refused as revoked", T, |s| {
        s.refusals.iter().any(|r| {
            r.peer_id.as_deref() == Some(c.peer_id.as_str()) && r.reason.contains("revoked")
        })
    });
    let sc = pc.wait_for("c isolated", T, |s| s.connected.is_empty());
    assert!(sc.connected.is_empty());
}

#[test]
fn older_forged_and_broken_rosters_are_refused_and_the_node_keeps_its_own() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "hr", "provider");
    let b = mesh.init("b", "health", "provider");
    let v1 = mesh.sign_roster("roster-v1", None, &[&a], &[]);
    let v2 = mesh.sign_roster("roster-v2", Some("roster-v1"), &[&b], &[]);
    mesh.install(&a, &[&v1, &v2]);

    // Older, offline: a no-op that keeps v2.
    let out = mesh.install(&a, &[&v1]);
    assert!(out.contains("roster version 2"), "{out}");

    // Forged: a draft signed by a key that is not the anchor.
    mesh.dx.ok(mesh.path(), &["keygen", "--out", "mallory.key"]);
    mesh.dx.ok(
        mesh.path(),
        &[
            "roster",
            "new",
            "--from",
            "roster-v2",
            "--out",
            "forged.toml",
        ],
    );
    mesh.dx.ok(
        mesh.path(),
        &[
            "roster",
            "sign",
            "forged.toml",
            "--anchor-key",
            "mallory.key",
            "--out",
            "forged",
        ],
    );
    let e = mesh
        .dx
        .fails(mesh.path(), &["roster", "install", "--dir", "a", "forged"]);
    assert!(e.contains("not validly signed by the trust anchor"), "{e}");
    let e = mesh.dx.fails(
        mesh.path(),
        &["roster", "verify", "forged", "--anchor", "anchor.pub.pem"],
    );
    assert!(e.contains("not validly signed by the trust anchor"), "{e}");

    // Malformed file.
    std::fs::write(mesh.path().join("garbage"), b"not a roster").unwrap();
    let e = mesh
        .dx
        .fails(mesh.path(), &["roster", "install", "--dir", "a", "garbage"]);
    assert!(e.contains("garbage: not a signed dxmesh roster"), "{e}");

    // The same refusals by the running node, through its admin socket.
    let mut pa = mesh.start(&a);
    assert_eq!(pa.status().roster_version, 2);
    let e = mesh
        .dx
        .fails(mesh.path(), &["roster", "install", "--dir", "a", "forged"]);
    assert!(e.contains("not validly signed by the trust anchor"), "{e}");
    // A v3 that skips its predecessor's digest (built from v1) does not chain.
    mesh.dx.ok(
        mesh.path(),
        &["roster", "new", "--from", "roster-v1", "--out", "skip.toml"],
    );
    let draft = std::fs::read_to_string(mesh.path().join("skip.toml")).unwrap();
    std::fs::write(
        mesh.path().join("skip.toml"),
        draft.replace("version = 2", "version = 3"),
    )
    .unwrap();
    mesh.dx.ok(
        mesh.path(),
        &[
            "roster",
            "sign",
            "skip.toml",
            "--anchor-key",
            "anchor.key",
            "--out",
            "skip",
        ],
    );
    let e = mesh
        .dx
        .fails(mesh.path(), &["roster", "install", "--dir", "a", "skip"]);
    assert!(e.contains("does not chain"), "{e}");
    let s = pa.wait_for("refusals recorded", T, |s| s.refusals.len() >= 2);
    assert_eq!(s.roster_version, 2, "the node keeps the roster it had");
    // Older: accepted as a no-op, still version 2.
    let out = mesh.install(&a, &[&v1]);
    assert!(out.contains("roster version 2"), "{out}");
}

#[test]
fn a_restarted_node_keeps_its_peer_id_and_roster() {
    let mut mesh = Mesh::new(BIN);
    let a = mesh.init("a", "civil_affairs", "provider");
    let v1 = mesh.sign_roster("roster-v1", None, &[&a], &[]);
    mesh.install(&a, &[&v1]);
    let pa = mesh.start(&a);
    let before = pa.status();
    assert_eq!(before.peer_id, a.peer_id);
    assert!(pa.stop(), "SIGTERM ends the node cleanly (exit 0)");
    assert!(
        !a.dir.join("admin.sock").exists(),
        "the admin socket is removed on shutdown"
    );
    let pa = mesh.start(&a);
    let after = pa.status();
    assert_eq!(after.peer_id, before.peer_id);
    assert_eq!(after.roster_version, 1);
    assert_eq!(after.public_key_pem, before.public_key_pem);
    // A crash (SIGKILL) is survivable too.
    pa.kill();
    let pa = mesh.start(&a);
    assert_eq!(pa.status().roster_version, 1);
}
