//! Audit benchmark (issue 7): `dxmesh audit verify` over a bundle of
//! 1,000,000 log entries (target: under 30 s on this machine), the export
//! of a log of that size from a node's store (target: under 10 s), and the cost
//! of one durable audit append (redb commit) next to the operations it
//! records (publish and pull take seconds; an append must cost < 5% of them).
//!
//! Run: `cargo bench -p dxmesh-tests --bench audit` (DXMESH_BENCH_ENTRIES to change the size).

use dxmesh_protocol::audit::{Checkpoint, Entry, Event};
use dxmesh_protocol::codec;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::RootBuilder;
use dxmesh_protocol::time::Timestamp;
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("DXMESH_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batch: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let anchor = Identity::from_seed([1; 32]).unwrap();
    let node = Identity::from_seed([2; 32]).unwrap();
    let peer = Identity::from_seed([3; 32]).unwrap();
    let name = node.peer_id().to_string();
    // Roster with the node.
    let roster = dxmesh_protocol::roster::Roster {
        mesh: "bench".into(),
        version: 1,
        previous: None,
        issued_at: Timestamp(0),
        members: {
            let mut m = vec![node.public(), peer.public()]
                .into_iter()
                .map(|k| dxmesh_protocol::roster::Member {
                    public_key: k,
                    department: "health".into(),
                    role: dxmesh_protocol::roster::Role::Provider,
                    display_name: "n".into(),
                    addresses: vec![],
                    valid_from: Timestamp(0),
                    valid_until: Timestamp(u64::MAX),
                })
                .collect::<Vec<_>>();
            m.sort_by_key(|x| x.public_key);
            m
        },
        revoked: vec![],
    };
    for d in [
        "checkpoints",
        "roster",
        "transcripts",
        "manifests",
        "cosignatures",
        "witnessed",
        "evidence",
    ] {
        std::fs::create_dir_all(bundle.join(d)).unwrap();
    }
    let signed_roster = dxmesh_protocol::signed::Signed::sign(&anchor, &roster).unwrap();
    std::fs::write(
        bundle.join("roster/v000001.roster"),
        codec::encode(&signed_roster).unwrap(),
    )
    .unwrap();
    std::fs::write(bundle.join("anchor.pub.pem"), anchor.public().to_pem()).unwrap();
    std::fs::write(
        bundle.join("node.json"),
        serde_json::json!({"peer_id": name, "department": "health", "role": "provider", "origin": format!("dxmesh/{name}"), "exported_at": "now"}).to_string(),
    )
    .unwrap();
    let t = Instant::now();
    let mut entries = Vec::with_capacity(n as usize);
    let mut builder = RootBuilder::default();
    let mut prev = [0u8; 32];
    for seq in 0..n {
        let event = if seq % 3 == 0 {
            Event::PeerRefused {
                peer: Some(peer.public()),
                reason: "connection: not a roster member".into(),
            }
        } else {
            Event::Witnessed {
                peer: peer.public(),
                size: seq,
                root: [seq as u8; 32],
            }
        };
        let e = Entry {
            seq,
            prev,
            at: Timestamp(1_790_000_000 + seq),
            event,
        };
        prev = e.leaf_hash();
        builder.push(prev);
        entries.push(e);
        if (seq + 1) % batch == 0 || seq + 1 == n {
            let cp = Checkpoint {
                origin: format!("dxmesh/{name}"),
                size: seq + 1,
                root: builder.root(),
            };
            std::fs::write(
                bundle.join(format!("checkpoints/{:010}.note", seq + 1)),
                cp.sign(&node, &name),
            )
            .unwrap();
        }
    }
    let raw: Vec<Vec<u8>> = entries.iter().map(|e| codec::encode(e).unwrap()).collect();
    std::fs::write(
        bundle.join("entries.bin"),
        dxmesh_node::audit::log::frame_entries(&raw),
    )
    .unwrap();
    export(dir.path(), &raw, &bundle, &node, &name);
    println!(
        "built a bundle of {n} entries, {} checkpoints, in {:.1}s",
        n.div_ceil(batch),
        t.elapsed().as_secs_f64()
    );
    drop(entries);
    write_index(&bundle, &node, &name);

    let t = Instant::now();
    let report =
        dxmesh_node::audit::verify::verify(std::slice::from_ref(&bundle), &anchor.public());
    let secs = t.elapsed().as_secs_f64();
    assert!(report.ok(), "{}", report.render());
    println!("VERIFY: {n} entries in {secs:.2}s (target < 30 s)");

    // Cost of one durable append.
    let store = dxmesh_node::base::store::Store::open(&dir.path().join("state")).unwrap();
    let mut log = dxmesh_node::audit::log::AuditLog::open(&store, &node).unwrap();
    let k = 300;
    let t = Instant::now();
    for i in 0..k {
        log.append(
            &store,
            Timestamp(i),
            Event::NodeStarted {
                version: "bench".into(),
            },
        )
        .unwrap();
        log.seal(&store, &node).unwrap();
    }
    let per = t.elapsed().as_secs_f64() / k as f64;
    println!(
        "APPEND: {:.2} ms per durable append + signed checkpoint (each publish or pull records 1-2 entries)",
        per * 1000.0
    );
}

/// `dxmesh audit export` of the same log from a node's store: the entries
/// and checkpoints loaded into a store, then exported as the daemon does.
fn export(
    dir: &std::path::Path,
    raw: &[Vec<u8>],
    bundle: &std::path::Path,
    node: &Identity,
    name: &str,
) {
    let store = dxmesh_node::base::store::Store::open(&dir.join("export-state")).unwrap();
    let entries: Vec<(u64, Vec<u8>)> = raw
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u64, b.clone()))
        .collect();
    let checkpoints: Vec<(u64, String)> = std::fs::read_dir(bundle.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| {
            let size = e
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".note")
                .parse()
                .unwrap();
            (size, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    store.audit_load(&entries, &checkpoints).unwrap();
    drop(entries);
    let info = dxmesh_node::audit::log::BundleNode {
        peer_id: name.to_string(),
        department: "health".into(),
        role: "provider".into(),
        origin: format!("dxmesh/{name}"),
        exported_at: "now".into(),
    };
    let out = dir.join("exported");
    let t = Instant::now();
    let n = dxmesh_node::audit::log::export(
        &store,
        node,
        &dir.join("export-data"),
        &info,
        "",
        &[],
        &out,
    )
    .unwrap();
    println!(
        "EXPORT: {n} entries in {:.2}s (target < 10 s)",
        t.elapsed().as_secs_f64()
    );
}

/// Signs the bundle's index, as `dxmesh audit export` does: every file with
/// its SHA-256.
fn write_index(bundle: &std::path::Path, node: &Identity, name: &str) {
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<(String, [u8; 32])>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.path().is_dir() {
                walk(&e.path(), &format!("{rel}/"), out);
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                out.push((rel, dxmesh_protocol::hash::sha256(&bytes)));
            }
        }
    }
    let mut files = Vec::new();
    walk(bundle, "", &mut files);
    files.sort();
    let index = dxmesh_protocol::audit::BundleIndex {
        origin: format!("dxmesh/{name}"),
        exported_at: Timestamp(1_790_000_000),
        files,
    };
    let signed = dxmesh_protocol::signed::Signed::sign(node, &index).unwrap();
    std::fs::write(
        bundle.join(dxmesh_node::audit::log::BUNDLE_INDEX),
        codec::encode(&signed).unwrap(),
    )
    .unwrap();
}
