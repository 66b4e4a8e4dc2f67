//! Interoperability (issue 19): a standard libp2p implementation in another
//! language, js-libp2p (`tests/interop/dial.mjs`, versions pinned in
//! `tests/interop/package-lock.json`), dials a real node. With a roster
//! member's key it completes identify (protocol version `/dxmesh/id/1`,
//! `/dxmesh/control/1` among the protocols) and ping; with a key the roster
//! does not hold, the node refuses the connection at setup: the dialer
//! never identifies, and the node records the refusal.
//!
//! The test runs `npm ci` in `tests/interop` when its `node_modules` is
//! missing or older than the lock file. Without `node` and `npm` it skips,
//! except under CI (`.ci/run` installs Node.js and the packages).

use dxmesh_tests::{Mesh, NodeDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// `tests/interop`, with its npm packages installed; `None` (a skip) where
/// Node.js is absent and this is not CI.
fn js_dialer() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !runs("node") || !runs("npm") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Node.js and npm (.ci/run does)"
        );
        eprintln!("SKIPPED: no node/npm here (.ci/run installs them)");
        return None;
    }
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let installed = mtime(&dir.join("node_modules/.package-lock.json"));
    let locked = mtime(&dir.join("package-lock.json")).expect("tests/interop/package-lock.json");
    if installed.is_none_or(|i| i < locked) {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .output()
            .expect("run npm ci");
        assert!(
            out.status.success(),
            "npm ci --prefix tests/interop failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(dir)
}

/// Runs `node dial.mjs ADDR SEED`: (exit success, its JSON report, stderr).
fn dial(dir: &Path, addr: &str, seed: &[u8; 32]) -> (bool, Value, String) {
    let out = Command::new("node")
        .arg(dir.join("dial.mjs"))
        .arg(addr)
        .arg(hex::encode(seed))
        .env("DXMESH_TIMEOUT_MS", "10000")
        .output()
        .expect("run node dial.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("dial.mjs printed no JSON report ({e}): {stdout}{stderr}"));
    (out.status.success(), report, stderr)
}

/// A key made by `dxmesh keygen` (as an operator makes one): its PeerId,
/// and its 32-byte Ed25519 seed for the JS side.
fn keygen(mesh: &Mesh, file: &str) -> (String, [u8; 32]) {
    let out = mesh.dx.ok(mesh.path(), &["keygen", "--out", file]);
    let identity =
        dxmesh_node::base::keyfile::read_identity(&mesh.path().join(file)).expect("key file");
    let peer_id = dxmesh_tests::field(&out, "peer_id");
    assert_eq!(peer_id, identity.peer_id().to_string());
    (peer_id, *identity.seed())
}

#[test]
fn js_libp2p_identifies_and_pings_as_a_member_and_is_refused_with_an_unknown_key() {
    let Some(js) = js_dialer() else { return };
    let started = Instant::now();
    let mut mesh = Mesh::new(BIN);
    let node = mesh.init("health", "health", "provider");
    let (member_peer, member_seed) = keygen(&mesh, "js.key");
    let member = NodeDir {
        name: "js".into(),
        department: "civil_affairs".into(),
        role: "provider".into(),
        dir: mesh.path().join("js"),
        peer_id: member_peer.clone(),
    };
    let roster = mesh.sign_roster("roster-v1", None, &[&node, &member], &[]);
    mesh.install(&node, &[&roster]);
    let mut proc = mesh.start(&node);
    let addr = proc.addr();
    assert!(addr.ends_with(&format!("/p2p/{}", node.peer_id)), "{addr}");

    // A roster member's key: identify and ping complete.
    let (ok, report, stderr) = dial(&js, &addr, &member_seed);
    assert!(ok, "{report}\n{stderr}\nnode log:\n{}", proc.log_text());
    assert_eq!(report["identified"], true, "{report}");
    assert_eq!(report["peer_id"], member_peer.as_str(), "{report}");
    assert_eq!(report["remote"], node.peer_id.as_str(), "{report}");
    assert_eq!(report["protocol_version"], "/dxmesh/id/1", "{report}");
    let agent = report["agent"].as_str().unwrap_or_default();
    assert!(agent.starts_with("dxmesh/"), "{report}");
    let protocols: Vec<&str> = report["protocols"]
        .as_array()
        .expect("protocols")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for p in [
        "/dxmesh/control/1",
        "/dxmesh/feed/1",
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
    ] {
        assert!(protocols.contains(&p), "{p} not in {protocols:?}");
    }
    assert!(report["rtt_ms"].as_f64().is_some(), "{report}");
    let log = proc.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("connected") && l.contains(&member_peer)),
        "the node logs the member's connection:\n{log}"
    );

    // A fresh key the roster does not hold: refused at connection setup.
    let (stranger_peer, stranger_seed) = keygen(&mesh, "stranger.key");
    let (ok, report, stderr) = dial(&js, &addr, &stranger_seed);
    assert!(!ok, "an unknown key completed the dial: {report}\n{stderr}");
    assert_eq!(report["identified"], false, "{report}");
    assert!(report.get("protocols").is_none(), "{report}");
    assert!(report.get("rtt_ms").is_none(), "{report}");
    // The node drops the connection once noise has authenticated the key:
    // the dial fails, or succeeds and the connection closes before identify.
    assert!(
        report["stage"] == "dial" || report["stage"] == "identify",
        "{report}"
    );
    let error = report["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        ["closed", "reset", "eof", "denied", "refused"]
            .iter()
            .any(|w| error.contains(w)),
        "{report}"
    );
    let status = proc.wait_for("the unknown key's refusal", Duration::from_secs(10), |s| {
        s.refusals
            .iter()
            .any(|r| r.peer_id.as_deref() == Some(stranger_peer.as_str()))
    });
    let refusal = status
        .refusals
        .iter()
        .find(|r| r.peer_id.as_deref() == Some(stranger_peer.as_str()))
        .unwrap();
    assert!(
        refusal.reason.starts_with("connection:") && refusal.reason.contains("not a roster member"),
        "{refusal:?}"
    );
    assert!(
        status
            .refusals
            .iter()
            .all(|r| r.peer_id.as_deref() != Some(member_peer.as_str())),
        "the member was never refused: {:?}",
        status.refusals
    );
    assert!(
        status.connected.iter().all(|c| c.peer_id != stranger_peer),
        "{:?}",
        status.connected
    );
    assert!(
        proc.log_text()
            .lines()
            .any(|l| l.contains("refused") && l.contains(&stranger_peer)),
        "the node logs the refusal"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
