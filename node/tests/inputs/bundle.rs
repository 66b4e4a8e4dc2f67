//! One evidence bundle, as `dxmesh audit export` writes it, signed for
//! real: a node's roster, log entries, two checkpoints, a witness's
//! cosignature and the witness's checkpoint it saw, an accepted agreement
//! transcript, a published manifest, member keys, and the signed index.

use super::{TERMS, files_below, party_identity};
use dxmesh_node::agreements::terms_file::TermsFile;
use dxmesh_node::audit::log::{BUNDLE_INDEX, frame_entries};
use dxmesh_protocol::agreement::{Action, Negotiation, sign_step};
use dxmesh_protocol::audit::{BundleIndex, Checkpoint, Entry, Event, cosign};
use dxmesh_protocol::codec::encode;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{Manifest, Quality};
use dxmesh_protocol::hash::sha256;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{self, RootBuilder};
use dxmesh_protocol::roster::{Member, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A bundle's folder and its files (relative paths, sorted).
pub struct Bundle {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

/// The bundle, written once per test run (and kept until it ends).
pub fn bundle() -> &'static Bundle {
    static B: OnceLock<Bundle> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep().join("bundle");
        write_bundle(&dir);
        let mut files = Vec::new();
        files_below(&dir, "", &mut files);
        Bundle { dir, files }
    })
}

fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn write_bundle(dir: &Path) {
    let (anchor, node, witness) = (party_identity(1), party_identity(2), party_identity(3));
    let name = node.peer_id().to_string();
    let wname = witness.peer_id().to_string();
    let origin = format!("dxmesh/{name}");
    write(dir, "anchor.pub.pem", anchor.public().to_pem());
    write(
        dir,
        "node.json",
        serde_json::json!({"peer_id": name, "department": "public_security", "role": "provider",
            "origin": origin, "exported_at": "2026-12-05T00:00:00Z"})
        .to_string(),
    );
    write(
        dir,
        "roster/v000001.roster",
        encode(&signed_roster(&anchor, &[&node, &witness])).unwrap(),
    );
    for id in [&node, &witness] {
        write(
            dir,
            &format!("keys/{}.pem", id.peer_id()),
            id.public().to_pem(),
        );
    }
    write_log(dir, &node, &witness, &origin);
    let cp = Checkpoint {
        origin: format!("dxmesh/{wname}"),
        size: 9,
        root: [9; 32],
    };
    write(
        dir,
        &format!("witnessed/{wname}.note"),
        cp.sign(&witness, &wname),
    );
    let (thread, steps) = transcript(&node, &witness);
    write(
        dir,
        &format!("transcripts/{}.dxt", dxmesh_protocol::hex(&thread)),
        encode(&steps).unwrap(),
    );
    write(
        dir,
        "manifests/published-registry-3.bin",
        encode(&manifest(&node)).unwrap(),
    );
    write_index(dir, &node, &origin);
}

fn signed_roster(anchor: &Identity, members: &[&Identity]) -> Signed<Roster> {
    let mut r = Roster {
        mesh: "test".into(),
        version: 1,
        previous: None,
        issued_at: Timestamp(0),
        members: members
            .iter()
            .map(|id| Member {
                public_key: id.public(),
                department: "public_security".into(),
                role: Role::Provider,
                display_name: "节点".into(),
                addresses: vec![],
                valid_from: Timestamp(0),
                valid_until: Timestamp(u64::MAX),
            })
            .collect(),
        revoked: vec![],
    };
    r.canonicalize();
    Signed::sign(anchor, &r).unwrap()
}

/// `entries.bin`, checkpoints of 3 and 5 entries, and the witness's
/// cosignature of the second.
fn write_log(dir: &Path, node: &Identity, witness: &Identity, origin: &str) {
    let name = node.peer_id().to_string();
    let mut prev = [0u8; 32];
    let mut builder = RootBuilder::default();
    let mut raw = Vec::new();
    for seq in 0..5u64 {
        let event = if seq == 0 {
            Event::NodeStarted {
                version: "0.1.0".into(),
            }
        } else {
            Event::Witnessed {
                peer: witness.public(),
                size: seq,
                root: [seq as u8; 32],
            }
        };
        let e = Entry {
            seq,
            prev,
            at: Timestamp(1_796_083_200 + seq),
            event,
        };
        prev = e.leaf_hash();
        builder.push(prev);
        raw.push(encode(&e).unwrap());
        if seq == 2 || seq == 4 {
            let cp = Checkpoint {
                origin: origin.to_string(),
                size: seq + 1,
                root: builder.root(),
            };
            write(
                dir,
                &format!("checkpoints/{:010}.note", seq + 1),
                cp.sign(node, &name),
            );
            if seq == 4 {
                let wname = witness.peer_id().to_string();
                let line = cosign(witness, &wname, &cp.body(), 1_796_083_300);
                write(
                    dir,
                    &format!("cosignatures/{:010}-{wname}.line", seq + 1),
                    line,
                );
            }
        }
    }
    write(dir, "entries.bin", frame_entries(&raw));
}

/// An agreement the witness proposed and the node accepted.
fn transcript(
    node: &Identity,
    witness: &Identity,
) -> ([u8; 32], Vec<Signed<dxmesh_protocol::agreement::Step>>) {
    let f: TermsFile = toml::from_str(TERMS).unwrap();
    let terms = f
        .to_terms(
            Path::new("terms.toml"),
            Some(node.public()),
            Some(witness.public()),
        )
        .unwrap();
    let at = Timestamp::parse("2026-11-20").unwrap();
    let s0 = sign_step(witness, None, at, Action::Propose(terms.clone())).unwrap();
    let n = Negotiation::start(&s0).unwrap();
    let accept = Action::Accept {
        agreement: terms.id(),
    };
    let s1 = sign_step(node, Some(&n), at.plus(60), accept).unwrap();
    (n.thread, vec![s0, s1])
}

fn manifest(node: &Identity) -> Signed<Manifest> {
    let m = Manifest {
        provider: node.public(),
        agreement: [7; 32],
        consumer: node.public(),
        dataset: "registry".into(),
        epoch: 3,
        reference_date: Date::new(2026, 12, 1).unwrap(),
        schema: vec![],
        records: 0,
        chunk_hashes: vec![],
        first_tokens: vec![],
        root: merkle::root(&[]),
        quality: Quality::default(),
        created_at: Timestamp(1_796_083_200),
        previous: None,
    };
    Signed::sign(node, &m).unwrap()
}

/// Signs the list of every file with its SHA-256, as `dxmesh audit export` does.
fn write_index(dir: &Path, node: &Identity, origin: &str) {
    let mut rels = Vec::new();
    files_below(dir, "", &mut rels);
    let files = rels
        .into_iter()
        .map(|rel| {
            let hash = sha256(&std::fs::read(dir.join(&rel)).unwrap());
            (rel, hash)
        })
        .collect();
    let index = BundleIndex {
        origin: origin.to_string(),
        exported_at: Timestamp(1_796_083_400),
        files,
    };
    write(
        dir,
        BUNDLE_INDEX,
        encode(&Signed::sign(node, &index).unwrap()).unwrap(),
    );
}
