//! Property tests of the canonical codec on the wire types: `encode` then
//! `decode` gives back the same value (and the same bytes) for
//! `merkle::InclusionProof`, `merkle::ConsistencyProof`, `feed::Manifest`,
//! `Signed<Manifest>`, `IdNumber`, `token::IdToken` and `date::Date`;
//! `codec::decode` of arbitrary bytes, and of damaged valid encodings, never
//! panics for any of them (and whatever decodes is used the way a node would
//! use it: verified, re-encoded); and flipping any single bit of an encoded
//! `Signed<Manifest>` makes either decoding or `verify()` fail.

use dxmesh_protocol::agreement::{FieldTerm, Treatment};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{Manifest, Quality};
use dxmesh_protocol::id::{IdNumber, check_character, normalise};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{self, ConsistencyProof, Hash, InclusionProof, leaf_hash};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::IdToken;
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Days since 1970-01-01 of 0001-01-01 and 9999-12-31.
const FIRST_DAY: i64 = -719_162;
const LAST_DAY: i64 = 2_932_896;

fn any_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>()
}

/// Small values more often than not, so one-byte and multi-byte varints both occur.
fn any_size() -> impl Strategy<Value = u64> {
    prop_oneof![0..300u64, any::<u64>()]
}

fn inclusion_proofs() -> impl Strategy<Value = InclusionProof> {
    (
        any_size(),
        any_size(),
        prop::collection::vec(any_hash(), 0..40),
    )
        .prop_map(|(index, size, path)| InclusionProof { index, size, path })
}

fn consistency_proofs() -> impl Strategy<Value = ConsistencyProof> {
    (
        any_size(),
        any_size(),
        prop::collection::vec(any_hash(), 0..40),
    )
        .prop_map(|(size1, size2, path)| ConsistencyProof { size1, size2, path })
}

fn names() -> impl Strategy<Value = String> {
    "[a-z_]{1,16}"
}

fn schemas() -> impl Strategy<Value = Vec<FieldTerm>> {
    let treatments = [Treatment::Token, Treatment::AttrToken, Treatment::Clear];
    prop::collection::vec((names(), 0..3usize), 0..4).prop_map(move |fields| {
        fields
            .into_iter()
            .map(|(name, t)| FieldTerm {
                name,
                treatment: treatments[t],
            })
            .collect()
    })
}

fn qualities() -> impl Strategy<Value = Quality> {
    let counts = || prop::collection::vec((names(), any_size()), 0..3);
    (
        (any_size(), counts(), counts()),
        (any_size(), any_size(), any_size(), any_size()),
    )
        .prop_map(
            |(
                (rows_read, quarantined, fixes),
                (duplicate_rows, rows_kept, rows_out_of_scope, distinct_ids),
            )| {
                Quality {
                    rows_read,
                    quarantined,
                    fixes,
                    duplicate_rows,
                    rows_kept,
                    rows_out_of_scope,
                    distinct_ids,
                }
            },
        )
}

/// A manifest whose provider is the identity of `seed`, its root over its
/// chunk hashes (as a provider signs it).
fn manifest(seed: [u8; 32], chunks: Vec<(Hash, [u8; 16])>) -> Manifest {
    let provider = Identity::from_seed(seed)
        .expect("any 32-byte seed is accepted")
        .public();
    let (chunk_hashes, first): (Vec<Hash>, Vec<[u8; 16]>) = chunks.into_iter().unzip();
    Manifest {
        provider,
        agreement: [0x11; 32],
        consumer: provider,
        dataset: "registry".into(),
        epoch: 0,
        reference_date: Date::new(2026, 12, 1).unwrap(),
        schema: Vec::new(),
        records: 0,
        root: merkle::root(&chunk_hashes),
        chunk_hashes,
        first_tokens: first.into_iter().map(IdToken).collect(),
        quality: Quality::default(),
        created_at: Timestamp(0),
        previous: None,
    }
}

/// Manifests with every field random, with the seed of their provider.
fn manifests() -> impl Strategy<Value = ([u8; 32], Manifest)> {
    (
        (any::<[u8; 32]>(), any_hash(), names(), any_size(), dates()),
        (
            schemas(),
            any_size(),
            prop::collection::vec(any::<(Hash, [u8; 16])>(), 0..20),
        ),
        (qualities(), any::<u64>(), prop::option::of(any_hash())),
    )
        .prop_map(
            |(
                (seed, agreement, dataset, epoch, reference_date),
                (schema, records, chunks),
                (quality, created_at, previous),
            )| {
                let m = Manifest {
                    agreement,
                    dataset,
                    epoch,
                    reference_date,
                    schema,
                    records,
                    quality,
                    created_at: Timestamp(created_at),
                    previous,
                    ..manifest(seed, chunks)
                };
                (seed, m)
            },
        )
}

fn dates() -> impl Strategy<Value = Date> {
    (FIRST_DAY..=LAST_DAY).prop_map(|d| Date::from_days_since_epoch(d).expect("in range"))
}

/// Valid 18-character ID numbers: any region, a real birth date (before
/// 2026-11-27), any sequence number, the right check character.
fn id_numbers() -> impl Strategy<Value = IdNumber> {
    let last = Date::new(2026, 11, 27).unwrap().days_since_epoch();
    (0u32..1_000_000, FIRST_DAY..=last, 0u16..1000).prop_map(|(region, day, seq)| {
        let birth = Date::from_days_since_epoch(day).unwrap();
        let body = format!(
            "{region:06}{:04}{:02}{:02}{seq:03}",
            birth.year(),
            birth.month(),
            birth.day()
        );
        let check = check_character(body.as_bytes()) as char;
        normalise(&format!("{body}{check}"), Date::new(9999, 12, 31).unwrap())
            .expect("generated ID numbers are valid")
    })
}

fn signed_manifests() -> impl Strategy<Value = (Signed<Manifest>, Manifest)> {
    manifests().prop_map(|(seed, m)| {
        let id = Identity::from_seed(seed).expect("any 32-byte seed is accepted");
        (Signed::sign(&id, &m).expect("a manifest encodes"), m)
    })
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let bytes = encode(value).expect("encodes");
    let back: T = decode(&bytes).expect("decodes its own encoding");
    assert_eq!(&back, value);
    assert_eq!(
        encode(&back).unwrap(),
        bytes,
        "re-encoding changed the bytes"
    );
    // Any trailing byte is refused.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode::<T>(&longer).is_err(), "trailing byte accepted");
}

/// A fixed tree the decoded proofs are checked against (as a node would).
fn fixed_leaf_and_roots() -> (Hash, Hash, Hash) {
    (
        leaf_hash(b"leaf"),
        leaf_hash(b"root one"),
        leaf_hash(b"root two"),
    )
}

/// Decodes `bytes` as every wire type and uses whatever decodes; must not panic.
fn decode_everything(bytes: &[u8]) {
    let (leaf, root1, root2) = fixed_leaf_and_roots();
    if let Ok(p) = decode::<InclusionProof>(bytes) {
        let _ = p.verify(&leaf, &root1);
        assert_eq!(decode::<InclusionProof>(&encode(&p).unwrap()).unwrap(), p);
    }
    if let Ok(p) = decode::<ConsistencyProof>(bytes) {
        let _ = p.verify(&root1, &root2);
        assert_eq!(decode::<ConsistencyProof>(&encode(&p).unwrap()).unwrap(), p);
    }
    if let Ok(m) = decode::<Manifest>(bytes) {
        let _ = m.check();
        assert_eq!(decode::<Manifest>(&encode(&m).unwrap()).unwrap(), m);
    }
    if let Ok(s) = decode::<Signed<Manifest>>(bytes) {
        let _ = s.verify();
        let _ = s.signing_input();
        let _ = s.digest();
    }
    if let Ok(id) = decode::<IdNumber>(bytes) {
        // Decoding re-validates: what comes out is a normalised, valid number.
        let s = id.as_str();
        assert_eq!(check_character(&s.as_bytes()[..17]), s.as_bytes()[17]);
        assert_eq!(normalise(s, Date::new(9999, 12, 31).unwrap()), Ok(id));
        let _ = (id.birth_date(), id.gender(), id.region_code());
    }
    if let Ok(t) = decode::<IdToken>(bytes) {
        assert_eq!(encode(&t).unwrap(), bytes);
    }
    if let Ok(d) = decode::<Date>(bytes) {
        let _ = (d.to_string(), d.days_since_epoch(), d.add_days(1));
        let _ = (d.add_months(1), d.age_on(d));
    }
}

/// A valid encoding of some wire type, then damaged: bytes overwritten,
/// truncated, or extended.
fn damaged_encodings() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        inclusion_proofs().prop_map(|v| encode(&v).unwrap()),
        consistency_proofs().prop_map(|v| encode(&v).unwrap()),
        manifests().prop_map(|(_, v)| encode(&v).unwrap()),
        signed_manifests().prop_map(|(s, _)| encode(&s).unwrap()),
        id_numbers().prop_map(|v| encode(&v).unwrap()),
        dates().prop_map(|v| encode(&v).unwrap()),
    ];
    (
        valid,
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        any::<Index>(),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(mut bytes, edits, cut, tail)| {
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if tail.is_empty() {
                bytes.truncate(cut.index(bytes.len() + 1));
            } else {
                bytes.extend(tail);
            }
            bytes
        })
}

proptest! {
    #[test]
    fn inclusion_proof_round_trips(p in inclusion_proofs()) {
        round_trip(&p);
    }

    #[test]
    fn consistency_proof_round_trips(p in consistency_proofs()) {
        round_trip(&p);
    }

    #[test]
    fn manifest_round_trips((_, m) in manifests()) {
        round_trip(&m);
    }

    #[test]
    fn signed_manifest_round_trips((s, m) in signed_manifests()) {
        round_trip(&s);
        let back: Signed<Manifest> = decode(&encode(&s).unwrap()).unwrap();
        prop_assert_eq!(back.verify_by(&m.provider).unwrap(), m);
        prop_assert_eq!(back.digest(), s.digest());
    }

    #[test]
    fn id_number_round_trips(id in id_numbers()) {
        round_trip(&id);
    }

    #[test]
    fn id_token_round_trips(t in any::<[u8; 16]>().prop_map(IdToken)) {
        round_trip(&t);
    }

    #[test]
    fn date_round_trips(d in dates()) {
        round_trip(&d);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoding_damaged_encodings_never_panics(bytes in damaged_encodings()) {
        decode_everything(&bytes);
    }

    #[test]
    fn any_flipped_bit_of_a_signed_manifest_is_caught(
        (s, _) in signed_manifests(),
        bit in any::<Index>(),
    ) {
        let bytes = encode(&s).unwrap();
        let bit = bit.index(bytes.len() * 8);
        prop_assert!(flip_is_caught(&bytes, bit), "flipping bit {} went unnoticed", bit);
    }
}

/// Whether flipping `bit` of `bytes` makes decoding or verification fail.
fn flip_is_caught(bytes: &[u8], bit: usize) -> bool {
    let mut b = bytes.to_vec();
    b[bit / 8] ^= 1 << (bit % 8);
    match decode::<Signed<Manifest>>(&b) {
        Err(_) => true,
        Ok(s) => s.verify().is_err(),
    }
}

#[test]
fn every_flipped_bit_of_fixed_signed_manifests_is_caught() {
    let seed = |n: u8| [n + 1; 32];
    let manifests = [
        manifest(seed(0), Vec::new()),
        Manifest {
            epoch: 250,
            records: 70_000,
            ..manifest(seed(1), vec![([0xA5; 32], [0; 16])])
        },
        Manifest {
            epoch: 70_000,
            created_at: Timestamp(1_796_083_200),
            previous: Some([0; 32]),
            ..manifest(seed(2), vec![([0; 32], [1; 16]), ([2; 32], [3; 16])])
        },
        Manifest {
            epoch: u64::MAX,
            records: u64::MAX,
            created_at: Timestamp(u64::MAX),
            previous: Some([0xFF; 32]),
            ..manifest(seed(3), vec![([0xFF; 32], [0xFF; 16])])
        },
    ];
    for (n, m) in manifests.iter().enumerate() {
        let id = Identity::from_seed(seed(n as u8)).unwrap();
        let bytes = encode(&Signed::sign(&id, m).unwrap()).unwrap();
        for bit in 0..bytes.len() * 8 {
            assert!(
                flip_is_caught(&bytes, bit),
                "manifest {n}: flipping bit {bit} went unnoticed"
            );
        }
    }
}

#[test]
fn fixed_encodings() {
    // Pin a few bytes so a change of integer encoding is noticed here too.
    let proof = ConsistencyProof {
        size1: 251,
        size2: 7,
        path: vec![[7; 32]],
    };
    let bytes = encode(&proof).unwrap();
    assert_eq!(&bytes[..3], &[0xFB, 0xFB, 0x00], "251 is a varint u16");
    assert_eq!(
        &bytes[3..5],
        &[7, 1],
        "7 and the path length are one byte each"
    );
    assert_eq!(bytes.len(), 5 + 32);
    let date = Date::new(2026, 11, 27).unwrap();
    assert_eq!(encode(&date).unwrap(), [0xFB, 0xEA, 0x07, 11, 27]);
    let id = normalise("11010519491231002X", date).unwrap();
    let mut want = vec![18u8];
    want.extend_from_slice(b"11010519491231002X");
    assert_eq!(encode(&id).unwrap(), want);
}

#[test]
fn id_number_decoding_revalidates() {
    let encode_str = |s: &str| encode(&s.to_string()).unwrap();
    // Valid.
    assert!(decode::<IdNumber>(&encode_str("11010519491231002X")).is_ok());
    // Wrong check character, lowercase x, impossible date, 17 characters,
    // full-width digit: all refused on the wire (no normalisation there).
    for bad in [
        "110105194912310021",
        "11010519491231002x",
        "110105194902300029",
        "11010519491231002",
        "１1010519491231002X",
        "",
    ] {
        assert!(
            decode::<IdNumber>(&encode_str(bad)).is_err(),
            "{bad:?} decoded"
        );
    }
}

/// Regression (found by fuzzing the protocol crate): `Date` decoded without
/// checking the date exists (`0000-00-00`, `2026-02-30`). It now validates.
#[test]
fn decoded_dates_are_real_calendar_dates() {
    for bytes in [
        &[0u8, 0, 0][..],
        &[0xFB, 0xEA, 0x07, 2, 30],
        &[0xFB, 0xEA, 0x07, 13, 1],
    ] {
        let decoded = decode::<Date>(bytes);
        assert!(
            decoded.is_err(),
            "{bytes:?} decoded to the impossible date {decoded:?}"
        );
    }
}

/// Regression (found by the fuzz target `decode_signed_tree_head`, since
/// removed with the tree-head kind it decoded): a signer key that is not a
/// curve point made formatting the refusal panic, so a peer could crash
/// whoever logged it. Such keys are now refused at decode.
#[test]
fn formatting_a_refused_signature_from_the_wire_never_panics() {
    let id = Identity::from_seed([1; 32]).unwrap();
    let m = manifest([1; 32], vec![([0; 32], [0; 16])]);
    let mut bytes = encode(&Signed::sign(&id, &m).unwrap()).unwrap();
    // Layout: body length (varint), body, signer (32 bytes), signature (64 bytes).
    let signer_at = bytes.len() - 96;
    bytes[signer_at..signer_at + 32].copy_from_slice(&[2; 32]);
    // Keys that are not curve points are refused at decode time...
    let refused = decode::<Signed<Manifest>>(&bytes);
    assert!(
        refused.is_err(),
        "a signer [2; 32] (not a curve point) decoded: {refused:?}"
    );
    // ...and a key that is a point but did not sign decodes, is refused at
    // verification, and formatting the refusal does not panic.
    let other = Identity::from_seed([9; 32]).unwrap().public();
    let other_bytes = encode(&other).unwrap();
    assert_eq!(
        other_bytes.len(),
        32,
        "a public key encodes as its 32 bytes"
    );
    bytes[signer_at..signer_at + 32].copy_from_slice(&other_bytes);
    let signed = decode::<Signed<Manifest>>(&bytes).expect("a curve point decodes");
    let err = signed.verify().expect_err("the signer was replaced");
    let formatted = std::panic::catch_unwind(|| format!("{err} {err:?} {signed:?}"));
    assert!(
        formatted.is_ok(),
        "formatting the refusal of a Signed<Manifest> with a replaced signer panicked"
    );
}

/// Regression: day and month arithmetic overflowed `i64` on extreme inputs
/// instead of returning `None`.
#[test]
fn date_arithmetic_never_overflows() {
    let d = Date::new(2026, 11, 27).unwrap();
    let old = Date::new(1900, 1, 1).unwrap();
    type Case = (
        &'static str,
        Box<dyn Fn() -> Option<Date> + std::panic::RefUnwindSafe>,
    );
    let cases: Vec<Case> = vec![
        (
            "from_days_since_epoch(i64::MAX)",
            Box::new(|| Date::from_days_since_epoch(i64::MAX)),
        ),
        (
            "from_days_since_epoch(i64::MIN)",
            Box::new(|| Date::from_days_since_epoch(i64::MIN)),
        ),
        (
            "2026-11-27 add_days(i64::MAX)",
            Box::new(move || d.add_days(i64::MAX)),
        ),
        (
            "1900-01-01 add_days(i64::MIN)",
            Box::new(move || old.add_days(i64::MIN)),
        ),
        (
            "2026-11-27 add_months(i64::MAX)",
            Box::new(move || d.add_months(i64::MAX)),
        ),
        (
            "2026-11-27 add_months(i64::MIN)",
            Box::new(move || d.add_months(i64::MIN)),
        ),
    ];
    let panicking: Vec<&str> = cases
        .iter()
        .filter(|(_, f)| std::panic::catch_unwind(f).map_or(true, |r| r.is_some()))
        .map(|(name, _)| *name)
        .collect();
    assert!(
        panicking.is_empty(),
        "panicked or gave a date: {panicking:?}"
    );
}
