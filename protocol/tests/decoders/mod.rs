//! Valid values of every kind of outside data the protocol decodes, made
//! and signed for real (`Identity::from_seed`), for `prop_decoders.rs`;
//! and the damage done to their encodings: bytes overwritten, inserted and
//! cut off.

use crate::common::{accepted, consumer, provider, t};
use dxmesh_protocol::agreement::{self, Action, Step, Treatment, sign_step};
use dxmesh_protocol::audit::{BundleIndex, Checkpoint, Entry, Event};
use dxmesh_protocol::codec::encode;
use dxmesh_protocol::commitment::{MultiProof, ResultCommitment, token_leaves};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{
    Chunk, DisclosedRecord, Disclosure, DisclosureReceipt, Manifest, MinistryAnswer, Quality,
};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::merkle::{self, ConsistencyProof, Hash};
use dxmesh_protocol::roster::{Member, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::{AttrToken, IdToken};
use dxmesh_protocol::wire::{
    self, DisclosureRequest, MAX_CONTROL_FRAME, PeerAddresses, Request, Response, ThreadHead,
};
use proptest::prelude::*;
use proptest::sample::Index;
use std::sync::OnceLock;

pub fn id(seed: u8) -> Identity {
    Identity::from_seed([seed; 32]).expect("any seed is accepted")
}

/// The trust anchor that signs every roster here.
pub fn anchor() -> Identity {
    id(99)
}

/// Text as peers and files may hold it: ASCII, Chinese, controls, newlines.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{0,12}",
        "\\PC{0,12}",
        "[\\x00-\\x7f张伟\u{3000}\n\r—]{0,16}"
    ]
}

pub fn names() -> impl Strategy<Value = String> {
    "[a-z_]{1,12}"
}

pub fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![0..300u64, any::<u64>()]
}

/// Bytes overwritten, inserted and cut off, the way a link or a disk
/// damages them.
#[derive(Debug, Clone)]
pub struct Damage {
    overwrite: Vec<(Index, u8)>,
    insert: Vec<(Index, u8)>,
    cut: Option<Index>,
}

pub fn damages() -> impl Strategy<Value = Damage> {
    (
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        prop::option::weighted(0.3, any::<Index>()),
    )
        .prop_map(|(overwrite, insert, cut)| Damage {
            overwrite,
            insert,
            cut,
        })
}

impl Damage {
    pub fn apply(&self, valid: &[u8]) -> Vec<u8> {
        let mut b = valid.to_vec();
        if !b.is_empty() {
            for (at, v) in &self.overwrite {
                let i = at.index(b.len());
                b[i] = *v;
            }
        }
        for (at, v) in &self.insert {
            let i = at.index(b.len() + 1);
            b.insert(i, *v);
        }
        if let Some(cut) = &self.cut {
            b.truncate(cut.index(b.len() + 1));
        }
        b
    }
}

// ---- Fixed signed values (signing is the slow part) ----

/// A signed manifest over two real chunks, with the chunks' encodings.
pub struct Feed {
    pub manifest: Signed<Manifest>,
    pub chunks: Vec<Vec<u8>>,
}

pub fn fixed_feed() -> &'static Feed {
    static F: OnceLock<Feed> = OnceLock::new();
    F.get_or_init(|| {
        let schema = schema_of(1, 1);
        let mut chunks = Vec::new();
        for (index, first) in [(0u32, 1u8), (1, 40)] {
            let mut c = Chunk::new(index, &schema);
            for i in 0..3u8 {
                c.push(&IdToken([first + i; 16]), &[AttrToken([i; 8])], &["广州"]);
            }
            chunks.push(c);
        }
        let (manifest, bytes) = signed_feed(&provider(), schema, &chunks);
        Feed {
            manifest,
            chunks: bytes,
        }
    })
}

/// A schema of one token field, `attrs` attribute-token fields and `clear` clear ones.
pub fn schema_of(attrs: usize, clear: usize) -> Vec<agreement::FieldTerm> {
    let field = |name: String, treatment| agreement::FieldTerm { name, treatment };
    let mut s = vec![field("id_number".into(), Treatment::Token)];
    s.extend((0..attrs).map(|i| field(format!("attr_{i}"), Treatment::AttrToken)));
    s.extend((0..clear).map(|i| field(format!("clear_{i}"), Treatment::Clear)));
    s
}

/// Signs a manifest over `chunks` (as a provider publishes them).
pub fn signed_feed(
    by: &Identity,
    schema: Vec<agreement::FieldTerm>,
    chunks: &[Chunk],
) -> (Signed<Manifest>, Vec<Vec<u8>>) {
    let bytes: Vec<Vec<u8>> = chunks.iter().map(|c| encode(c).unwrap()).collect();
    let hashes: Vec<Hash> = bytes.iter().map(|b| merkle::leaf_hash(b)).collect();
    let m = Manifest {
        provider: by.public(),
        agreement: accepted().0.terms.id(),
        consumer: accepted().0.terms.consumer,
        dataset: "registry".into(),
        epoch: 3,
        reference_date: Date::new(2026, 12, 1).unwrap(),
        schema,
        records: chunks.iter().map(|c| u64::from(c.count)).sum(),
        root: merkle::root(&hashes),
        chunk_hashes: hashes,
        first_tokens: chunks.iter().map(|c| c.id(0)).collect(),
        quality: Quality::default(),
        created_at: Timestamp(1_796_083_200),
        previous: None,
    };
    (Signed::sign(by, &m).unwrap(), bytes)
}

pub fn fixed_commitment() -> &'static Signed<ResultCommitment> {
    static C: OnceLock<Signed<ResultCommitment>> = OnceLock::new();
    C.get_or_init(|| {
        let tokens: Vec<IdToken> = (1..=5u8).map(|i| IdToken([i; 16])).collect();
        let c = ResultCommitment {
            epoch: 3,
            result_kind: "uninsured".into(),
            expr: "(registry - other_province)".into(),
            inputs: vec![],
            sets: vec![],
            count: tokens.len() as u64,
            root: merkle::root(&token_leaves(&tokens)),
            ministry: None,
        };
        Signed::sign(&consumer(), &c).unwrap()
    })
}

pub fn fixed_disclosure() -> Signed<Disclosure> {
    let d = Disclosure {
        agreement: [7; 32],
        epoch: 3,
        result_kind: "uninsured".into(),
        fields: vec!["name".into()],
        records: vec![DisclosedRecord {
            token: IdToken([1; 16]),
            values: vec!["张伟".into()],
        }],
        unknown: vec![IdToken([2; 16])],
        at: t("2026-12-03T10:00:00Z"),
    };
    Signed::sign(&provider(), &d).unwrap()
}

pub fn fixed_answer() -> Signed<MinistryAnswer> {
    let a = MinistryAnswer {
        agreement: [8; 32],
        epoch: 3,
        commitment: [4; 32],
        receipt: [5; 32],
        fields: vec!["province_code".into()],
        found: vec![(IdToken([1; 16]), vec!["44".into()])],
        asked: 2,
        at: Timestamp(u64::MAX),
    };
    Signed::sign(&id(50), &a).unwrap()
}

pub fn fixed_receipt() -> Signed<DisclosureReceipt> {
    let number = dxmesh_protocol::normalise("11010519491231002X", Date::new(2026, 1, 1).unwrap());
    let (count, root) =
        dxmesh_protocol::feed::id_pairs_root(&[(IdToken([1; 16]), number.unwrap())]);
    let r = DisclosureReceipt {
        agreement: [8; 32],
        epoch: 3,
        consumer: consumer().public(),
        result_kind: "uninsured_candidates".into(),
        commitment: fixed_commitment().digest(),
        count,
        root,
    };
    Signed::sign(&provider(), &r).unwrap()
}

// ---- Generators of valid values ----

/// A transcript: the accepted negotiation of `common`, then random
/// suspensions, resumptions and a termination, each step kept only if the
/// negotiation takes it (so the whole replays).
pub fn transcripts() -> impl Strategy<Value = Vec<Signed<Step>>> {
    prop::collection::vec((0..3u8, any::<bool>(), text(), any_u64()), 0..4).prop_map(|tail| {
        let (mut n, mut steps) = accepted();
        for (kind, by_provider, reason, at) in tail {
            let action = match kind {
                0 => Action::Suspend { reason },
                1 => Action::Resume,
                _ => Action::Terminate { reason },
            };
            let by = if by_provider { provider() } else { consumer() };
            let s = sign_step(&by, Some(&n), Timestamp(at), action).unwrap();
            if n.apply(&s).is_ok() {
                steps.push(s);
            }
        }
        steps
    })
}

pub fn members() -> impl Strategy<Value = Member> {
    (
        1..8u8,
        (names(), 0..3usize, text()),
        prop::collection::vec(text(), 0..2),
        (any_u64(), any_u64()),
    )
        .prop_map(
            |(seed, (department, role, display_name), addresses, (from, len))| Member {
                public_key: id(seed).public(),
                department,
                role: [Role::Provider, Role::Comparator, Role::Ministry][role],
                display_name,
                addresses,
                valid_from: Timestamp(from),
                valid_until: Timestamp(from.saturating_add(len.max(1))),
            },
        )
}

/// A roster chain of 1 to 3 versions signed by the anchor: members come
/// and go, a revoked key stays revoked.
pub fn roster_chains() -> impl Strategy<Value = Vec<Signed<Roster>>> {
    (
        text(),
        any_u64(),
        prop::collection::vec(
            (
                prop::collection::vec(members(), 0..4),
                prop::option::of(1..8u8),
            ),
            1..4,
        ),
    )
        .prop_map(|(mesh, issued, versions)| {
            let mut chain: Vec<Signed<Roster>> = Vec::new();
            let mut revoked: Vec<PublicKey> = Vec::new();
            for (v, (mut members, revoke)) in versions.into_iter().enumerate() {
                revoked.extend(revoke.map(|s| id(s).public()));
                members.retain(|m| !revoked.contains(&m.public_key));
                members.sort_by_key(|m| m.public_key);
                members.dedup_by_key(|m| m.public_key);
                let mut r = Roster {
                    mesh: mesh.clone(),
                    version: v as u64 + 1,
                    previous: chain.last().map(Signed::digest),
                    issued_at: Timestamp(issued.saturating_add(v as u64)),
                    members,
                    revoked: revoked.clone(),
                };
                r.canonicalize();
                chain.push(Signed::sign(&anchor(), &r).unwrap());
            }
            chain
        })
}

/// A checkpoint, its signer's seed and key name.
pub fn checkpoints() -> impl Strategy<Value = (Checkpoint, u8, String)> {
    (
        "[!-~]{1,24}|dxmesh/[1-9A-Za-z]{8,52}",
        any_u64(),
        any::<Hash>(),
        1..8u8,
        "[!-~]{1,20}",
    )
        .prop_map(|(origin, size, root, seed, name)| {
            (Checkpoint { origin, size, root }, seed, name)
        })
}

pub fn requests() -> impl Strategy<Value = Request> {
    let commitment = fixed_commitment().clone();
    prop_oneof![
        any_u64().prop_map(|have_version| Request::RosterSync { have_version }),
        roster_chains().prop_map(|chain| Request::RosterPush { chain }),
        Just(Request::Peers),
        transcripts().prop_map(|s| Request::AgreementStep {
            step: s.last().unwrap().clone()
        }),
        prop::collection::vec((any::<Hash>(), any::<u32>()), 0..3).prop_map(|h| {
            Request::AgreementSync {
                threads: h
                    .into_iter()
                    .map(|(thread, len)| ThreadHead { thread, len })
                    .collect(),
            }
        }),
        (
            any::<Hash>(),
            any_u64(),
            prop::collection::vec(names(), 0..3),
            any::<[u8; 16]>()
        )
            .prop_map(|(agreement, epoch, fields, pull_id)| Request::PullOpen {
                agreement,
                epoch,
                fields,
                pull_id,
            }),
        (any_u64(), prop::collection::vec(0..5u64, 0..4)).prop_map(move |(epoch, mut idx)| {
            idx.sort_unstable();
            idx.dedup();
            let tokens: Vec<IdToken> = idx.iter().map(|&i| IdToken([i as u8 + 1; 16])).collect();
            let leaves = token_leaves(&(1..=5u8).map(|i| IdToken([i; 16])).collect::<Vec<_>>());
            Request::Disclose(DisclosureRequest {
                agreement: [7; 32],
                epoch,
                result_kind: "uninsured".into(),
                fields: vec!["name".into()],
                tokens,
                commitment: commitment.clone(),
                proof: MultiProof::prove(&leaves, &idx).unwrap(),
                indices: idx,
                manifests: vec![signed_feed(&id(1), vec![], &[]).0],
                candidates: Some(Box::new(commitment.clone())),
            })
        }),
        (checkpoints(), prop::option::of(any_u64())).prop_map(|((cp, seed, name), from)| {
            Request::Witness {
                note: cp.sign(&id(seed), &name),
                proof: from.map(|size1| ConsistencyProof {
                    size1,
                    size2: cp.size,
                    path: vec![cp.root],
                }),
            }
        }),
        (names(), transcripts())
            .prop_map(|(group, transcript)| Request::GroupKey { group, transcript }),
    ]
}

pub fn responses() -> impl Strategy<Value = Response> {
    let m = fixed_feed().manifest.clone();
    prop_oneof![
        roster_chains().prop_map(|chain| Response::Roster { chain }),
        prop::collection::vec(text(), 0..3).prop_map(|addresses| Response::Peers {
            peers: vec![PeerAddresses {
                public_key: provider().public(),
                addresses,
            }],
        }),
        Just(Response::Ack),
        any::<u32>().prop_map(|len| Response::StepAccepted { len }),
        (text(), transcripts())
            .prop_map(|(reason, transcript)| Response::StepRefused { reason, transcript }),
        transcripts().prop_map(|t| Response::Transcripts {
            transcripts: vec![t]
        }),
        Just(Response::PullGranted { manifest: m }),
        Just(Response::Disclosed {
            disclosure: fixed_disclosure(),
            receipt: Some(Box::new(fixed_receipt())),
        }),
        (names(), any::<[u8; 32]>()).prop_map(|(group, key)| Response::GroupKey { group, key }),
        Just(Response::Ministry {
            answer: fixed_answer()
        }),
        (any_u64(), text()).prop_map(|(size, line)| Response::Cosigned { size, line }),
        any_u64().prop_map(|from| Response::NeedProof { from }),
        any::<u64>().prop_map(|s| Response::Denied {
            refusal: agreement::Refusal::Expired {
                not_after: Timestamp(s)
            }
        }),
        text().prop_map(|s| Response::Refused {
            reason: wire::Refusal::Fork(s)
        }),
    ]
}

/// Feeds of 1 to 3 chunks over a random schema, sorted by token, with
/// Chinese and control characters in the clear columns.
pub fn feeds() -> impl Strategy<Value = (Vec<Chunk>, Vec<agreement::FieldTerm>)> {
    let record = (any::<[u8; 16]>(), any::<[[u8; 8]; 2]>(), [text(), text()]);
    (
        0..3usize,
        0..3usize,
        prop::collection::vec(record, 1..16),
        1..8usize,
    )
        .prop_map(|(attrs, clear, mut records, per_chunk)| {
            let schema = schema_of(attrs, clear);
            records.sort_by_key(|r| r.0);
            let chunks = records
                .chunks(per_chunk)
                .take(3)
                .enumerate()
                .map(|(index, rs)| {
                    let mut c = Chunk::new(index as u32, &schema);
                    for (token, a, cl) in rs {
                        let a: Vec<AttrToken> = a[..attrs].iter().map(|t| AttrToken(*t)).collect();
                        let cl: Vec<&str> = cl[..clear].iter().map(String::as_str).collect();
                        c.push(&IdToken(*token), &a, &cl);
                    }
                    c
                })
                .collect();
            (chunks, schema)
        })
}

pub fn entries() -> impl Strategy<Value = Entry> {
    let events = prop_oneof![
        text().prop_map(|version| Event::NodeStarted { version }),
        (any_u64(), any::<Hash>()).prop_map(|(size, root)| Event::Witnessed {
            peer: provider().public(),
            size,
            root,
        }),
        (text(), prop::option::of(text()), any::<bool>())
            .prop_map(|(user, role, ok)| Event::ConsoleLogin { user, role, ok }),
    ];
    (any_u64(), any::<Hash>(), any::<u64>(), events).prop_map(|(seq, prev, at, event)| Entry {
        seq,
        prev,
        at: Timestamp(at),
        event,
    })
}

pub fn bundle_indexes() -> impl Strategy<Value = Signed<BundleIndex>> {
    (
        text(),
        any::<u64>(),
        prop::collection::vec((text(), any::<Hash>()), 0..4),
    )
        .prop_map(|(origin, at, files)| {
            let index = BundleIndex {
                origin,
                exported_at: Timestamp(at),
                files,
            };
            Signed::sign(&provider(), &index).unwrap()
        })
}

/// A valid encoding of some kind of outside data.
pub fn valid_encodings() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        requests()
            .prop_map(|r| wire::encode_frame(&r, MAX_CONTROL_FRAME, &wire::REQUEST_KINDS).unwrap()),
        responses().prop_map(|r| encode(&r).unwrap()),
        transcripts().prop_map(|s| encode(&s).unwrap()),
        roster_chains().prop_map(|c| encode(&c).unwrap()),
        feeds().prop_map(|(c, _)| encode(&c[0]).unwrap()),
        entries().prop_map(|e| encode(&e).unwrap()),
        bundle_indexes().prop_map(|s| encode(&s).unwrap()),
        checkpoints().prop_map(|(cp, seed, name)| cp.sign(&id(seed), &name).into_bytes()),
    ]
}
