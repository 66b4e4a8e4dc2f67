//! Golden vectors: the exact bytes of every encoded and signed structure and
//! every derived key and token the protocol defines, compared with committed
//! files under `tests/golden/`. Any format change shows up here as a failing
//! test and, once accepted, as a reviewed diff of those files.
//!
//! To accept an intended change: `DXMESH_BLESS=1 cargo test -p dxmesh-protocol --test golden`,
//! then review `git diff protocol/tests/golden/`.

use dxmesh_protocol::agreement::{
    Action, AgreedInput, AgreedJob, DisclosureTerms, FieldTerm, RowPredicate, Terms, Treatment,
    sign_step,
};
use dxmesh_protocol::codec::encode;
use dxmesh_protocol::cycle::{Cycle, Period};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::normalise;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{consistency_proof, inclusion_proof, leaf_hash};
use dxmesh_protocol::roster::{Member, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::{AttrField, GroupMasterKey, normalise_attr};
use dxmesh_protocol::wire::{MAX_CONTROL_FRAME, Request, encode_frame};
use std::path::PathBuf;

fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    let reference = Date::new(2026, 11, 27).unwrap();
    let id = normalise("11010519491231002X", reference).unwrap();
    let signer = Identity::from_seed([0x11; 32]).unwrap();
    let leaves: Vec<_> = (0u8..7).map(|i| leaf_hash(&[i])).collect();
    let epoch_key = GroupMasterKey([0x42; 32]).epoch_key("registration", 7);
    let name = AttrField::new("name").unwrap();
    let consumer = Identity::from_seed([0x22; 32]).unwrap();
    let roster = Roster {
        mesh: "golden".into(),
        version: 1,
        previous: None,
        issued_at: Timestamp(1_790_000_000),
        members: vec![Member {
            public_key: signer.public(),
            department: "health".into(),
            role: Role::Provider,
            display_name: "Health".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/7400".into()],
            valid_from: Timestamp(1_780_000_000),
            valid_until: Timestamp(1_820_000_000),
        }],
        revoked: vec![consumer.public()],
    };
    let anchor = Identity::from_seed([0x33; 32]).unwrap();
    let signed_roster = Signed::sign(&anchor, &roster).unwrap();
    let terms = Terms {
        provider: signer.public(),
        consumer: consumer.public(),
        dataset: "registry".into(),
        fields: vec![
            FieldTerm {
                name: "id_number".into(),
                treatment: Treatment::Token,
            },
            FieldTerm {
                name: "name".into(),
                treatment: Treatment::AttrToken,
            },
            FieldTerm {
                name: "region_code".into(),
                treatment: Treatment::Clear,
            },
        ],
        rows: vec![
            RowPredicate::Equals {
                field: "status".into(),
                value: "active".into(),
            },
            RowPredicate::AgeAtLeast { years: 16 },
        ],
        purpose_code: "registration/uninsured-outreach".into(),
        purpose: "Outreach.".into(),
        token_group: "registration".into(),
        cycle: Cycle {
            period: Period::Months(1),
            anchor: Date::new(2026, 12, 1).unwrap(),
            window_secs: 7 * 86_400,
            max_pulls: 2,
        },
        disclosure: DisclosureTerms {
            fields: vec!["id_number".into(), "name".into(), "address".into()],
            inputs: vec![AgreedInput {
                name: "registry".into(),
                dataset: "registry".into(),
                provider: "public_security".into(),
                filter: vec![],
            }],
            jobs: vec![AgreedJob {
                kind: "uninsured".into(),
                expr: "(registry - other_province)".into(),
                inputs: vec!["registry".into()],
                fields: vec![],
                candidates: None,
            }],
            max_records_per_epoch: 100_000,
        },
        retention_days: 90,
        not_before: Timestamp(1_796_083_200),
        not_after: Timestamp(1_827_619_200),
        version: 1,
        supersedes: None,
    };
    let propose = sign_step(
        &consumer,
        None,
        Timestamp(1_795_000_000),
        Action::Propose(terms.clone()),
    )
    .unwrap();
    vec![
        ("signed_roster", encode(&signed_roster).unwrap()),
        ("agreement_terms", encode(&terms).unwrap()),
        ("agreement_id", terms.id().to_vec()),
        ("signed_agreement_step_propose", encode(&propose).unwrap()),
        (
            "control_frame_roster_sync",
            encode_frame(
                &Request::RosterSync { have_version: 7 },
                MAX_CONTROL_FRAME,
                &dxmesh_protocol::wire::REQUEST_KINDS,
            )
            .unwrap(),
        ),
        (
            "inclusion_proof_3_of_7",
            encode(&inclusion_proof(&leaves, 3).unwrap()).unwrap(),
        ),
        (
            "consistency_proof_3_to_7",
            encode(&consistency_proof(&leaves, 3).unwrap()).unwrap(),
        ),
        ("id_number", encode(&id).unwrap()),
        ("date", encode(&Date::new(2026, 11, 27).unwrap()).unwrap()),
        ("public_key", encode(&signer.public()).unwrap()),
        ("public_key.spki.der", signer.public().to_spki_der()),
        ("public_key.pem", signer.public().to_pem().into_bytes()),
        ("identity.pkcs8.pem", signer.to_pkcs8_pem().into_bytes()),
        ("peer_id", signer.peer_id().to_bytes()),
        ("epoch_key_registration_7", epoch_key.as_bytes().to_vec()),
        ("id_token", epoch_key.id_token(&id).0.to_vec()),
        (
            "attr_token_name",
            epoch_key
                .attr_token(&name, &id, &normalise_attr("张 三"))
                .0
                .to_vec(),
        ),
        (
            "id_token.encoded",
            encode(&epoch_key.id_token(&id)).unwrap(),
        ),
    ]
}

fn to_hex_lines(bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let mut out = String::new();
    for line in hex.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn golden_vectors_match_committed_bytes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("DXMESH_BLESS").is_some();
    let mut failures = Vec::new();
    for (name, bytes) in vectors() {
        let path = dir.join(format!("{name}.hex"));
        let want = to_hex_lines(&bytes);
        if bless {
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            Ok(have) => failures.push(format!("{name}: committed\n{have}computed\n{want}")),
            Err(e) => failures.push(format!("{name}: cannot read {}: {e}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "golden vectors differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_signed_roster_still_verifies() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let hex: String = std::fs::read_to_string(dir.join("signed_roster.hex"))
        .unwrap()
        .split_whitespace()
        .collect();
    let signed: Signed<Roster> = dxmesh_protocol::decode(&hex::decode(hex).unwrap()).unwrap();
    let anchor = Identity::from_seed([0x33; 32]).unwrap();
    let roster = signed.verify_by(&anchor.public()).unwrap();
    assert_eq!((roster.mesh.as_str(), roster.version), ("golden", 1));
}

/// `docs/protocol.md` lists each control message kind's largest body; the
/// list and the code are the same.
#[test]
fn the_documented_frame_limits_are_the_codes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let size = |text: &str| -> usize {
        let (n, unit) = text.trim().split_once(' ').unwrap();
        let unit = match unit {
            "KiB" => 1024,
            "MiB" => 1024 * 1024,
            other => panic!("unit {other}"),
        };
        n.parse::<usize>().unwrap() * unit
    };
    let mut documented = (Vec::new(), Vec::new());
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let list = match cells[2] {
            "request" => &mut documented.0,
            "response" => &mut documented.1,
            _ => continue,
        };
        list.push((cells[1].trim_matches('`').to_string(), size(cells[3])));
    }
    let code = |kinds: &[dxmesh_protocol::wire::Kind]| -> Vec<(String, usize)> {
        kinds
            .iter()
            .map(|k| (k.name.to_string(), k.limit))
            .collect()
    };
    assert_eq!(documented.0, code(&dxmesh_protocol::wire::REQUEST_KINDS));
    assert_eq!(documented.1, code(&dxmesh_protocol::wire::RESPONSE_KINDS));
}
