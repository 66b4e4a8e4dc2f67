//! Property tests of every protocol decoder that reads outside data (those
//! of `prop_codec.rs` aside): control frames (`wire::frame_len`, then
//! `wire::Request` and `wire::Response`), feed chunks checked against their
//! signed manifest, bulk-stream `feed::ChunkRequest`s, agreement
//! transcripts (`Vec<Signed<Step>>`, replayed), signed rosters and roster
//! chains (accepted against the anchor), checkpoint notes and cosignature
//! lines (their text format), audit `Entry`s, signed `BundleIndex`es,
//! disclosures, ministry answers and result commitments, and the text
//! parsers of times, dates, periods, durations, roles and PEM keys.
//!
//! For each: arbitrary input never panics, and whatever decodes is used as
//! a node uses it (verified, replayed, formatted with `{:?}` and `{}`);
//! valid values, signed for real with `Identity::from_seed`, round-trip;
//! and damaged valid encodings (bytes overwritten, inserted, cut off) never
//! panic and, where a signature or hash protects the value, are refused by
//! the verification a node runs, or give back the very value signed.

mod common;
mod decoders;

use common::{accepted, provider};
use decoders::*;
use dxmesh_protocol::agreement::{Negotiation, Step};
use dxmesh_protocol::audit::{BundleIndex, Checkpoint, Entry, cosign, verify_cosignature};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::commitment::{ResultCommitment, token_leaves};
use dxmesh_protocol::cycle::{Period, format_duration_secs, parse_duration_secs};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{Chunk, ChunkRequest, Disclosure, Manifest, MinistryAnswer};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::roster::{self, Role, Roster};
use dxmesh_protocol::signed::{Signed, SignedKind};
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{self, MAX_CONTROL_FRAME, Request, Response};
use dxmesh_protocol::{agreement, feed};
use proptest::prelude::*;
use proptest::sample::Index;
use std::fmt::Debug;
use std::sync::OnceLock;

// ---- Using decoded values the way a node does ----

fn accepted_once() -> &'static (Negotiation, Vec<Signed<Step>>) {
    static A: OnceLock<(Negotiation, Vec<Signed<Step>>)> = OnceLock::new();
    A.get_or_init(accepted)
}

/// Decodes `bytes` as `T`; whatever decodes is formatted, re-encoded and
/// decoded again, then handed to `then`.
fn try_decode<T>(bytes: &[u8], then: impl FnOnce(&T))
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    if let Ok(v) = decode::<T>(bytes) {
        let _ = format!("{v:?}");
        assert_eq!(decode::<T>(&encode(&v).unwrap()).as_ref(), Ok(&v));
        then(&v);
    }
}

/// Replays a transcript, and checks it against the local one of `common`.
fn use_transcript(steps: &[Signed<Step>]) {
    if let Ok(n) = Negotiation::replay(steps) {
        let _ = (n.status(Timestamp(u64::MAX), false), n.agreement_id());
        let _ = n.terms.cycle.epoch_at(Timestamp(u64::MAX));
        let _ = n.terms.cycle.window(u64::MAX);
    }
    let _ = agreement::reconcile(&accepted_once().1, steps);
    for s in steps {
        let _ = accepted_once().0.check(s).map(|st| format!("{st:?}"));
    }
}

fn use_roster_chain(chain: &[Signed<Roster>]) {
    let key = anchor().public();
    if let Ok(r) = roster::accept_chain(None, chain, &key) {
        for m in &r.members {
            let _ = r.admission(&m.public_key, m.valid_until);
            let _ = (m.valid_from.to_string(), m.valid_until.date());
        }
        let _ = r.issued_at.to_string();
    }
}

/// Checks a checkpoint note as a witness does (named after its signer).
fn use_note(note: &str) {
    let signer = provider();
    let name = signer.peer_id().to_string();
    if let Ok(cp) = Checkpoint::verify(note, &name, &signer.public()) {
        let _ = verify_cosignature(note, &name, &signer.public(), &cp.body());
    }
    let _ = Checkpoint::verify(note, "", &signer.public());
    let _ = verify_cosignature(note, "w", &signer.public(), note);
}

fn use_request(r: &Request) {
    let _ = format!("{r:?}");
    match r {
        Request::RosterPush { chain } => use_roster_chain(chain),
        Request::AgreementStep { step } => use_transcript(std::slice::from_ref(step)),
        Request::GroupKey { transcript, .. } => use_transcript(transcript),
        Request::Disclose(req) => {
            if let Ok(c) = req.commitment.verify() {
                let items: Vec<(u64, Hash)> = req
                    .indices
                    .iter()
                    .copied()
                    .zip(token_leaves(&req.tokens))
                    .collect();
                let _ = req.proof.verify(c.count, &items, &c.root);
            }
        }
        Request::MinistryQuery {
            commitment,
            receipt,
            ..
        } => {
            let _ = commitment.verify();
            let _ = receipt.verify();
        }
        Request::Witness { note, proof } => {
            use_note(note);
            if let Some(p) = proof {
                let _ = p.verify(&[1; 32], &[2; 32]);
            }
        }
        _ => {}
    }
}

fn use_response(r: &Response) {
    let _ = format!("{r:?}");
    match r {
        Response::Roster { chain } => use_roster_chain(chain),
        Response::StepRefused { transcript, .. } => use_transcript(transcript),
        Response::Transcripts { transcripts } => transcripts.iter().for_each(|t| use_transcript(t)),
        Response::PullGranted { manifest } => use_manifest(manifest),
        Response::Disclosed {
            disclosure,
            receipt,
        } => {
            let _ = disclosure.verify().map(|d| d.at.to_string());
            let _ = receipt.as_ref().map(|r| r.verify());
        }
        Response::Ministry { answer } => {
            let _ = answer.verify().map(|a| a.at.to_string());
        }
        Response::Cosigned { line, .. } => use_note(line),
        Response::Denied { refusal } => {
            let _ = (refusal.to_string(), refusal.code());
        }
        _ => {}
    }
}

/// What a consumer does with a granted manifest: signature, consistency,
/// then each chunk as it arrives.
fn use_manifest(signed: &Signed<Manifest>) {
    let Ok(m) = signed.verify() else { return };
    let _ = m.created_at.to_string();
    if m.check().is_err() {
        return;
    }
    for (i, bytes) in fixed_feed().chunks.iter().enumerate() {
        let _ = m.verify_chunk(i as u32, bytes);
    }
    let _ = m.chunks_for_range(&IdToken([0; 16]), &IdToken([0xFF; 16]));
}

/// Reads every value of a chunk that validates against `schema`.
fn use_chunk(c: &Chunk, schema: &[agreement::FieldTerm]) {
    if c.validate(schema).is_err() {
        return;
    }
    let (attrs, clear) = feed::schema_shape(schema);
    for i in 0..c.count as usize {
        let _ = c.id(i);
        for col in 0..attrs {
            let _ = c.attr(col, i);
        }
        for col in 0..clear {
            let _ = c.clear_value(col, i);
        }
    }
}

/// Reads `bytes` as every kind of outside data the protocol decodes, and
/// as text for every text parser.
fn decode_everything(bytes: &[u8]) {
    if let Some((header, body)) = bytes.split_first_chunk::<4>()
        && let Ok(len) = wire::frame_len(*header, MAX_CONTROL_FRAME)
        && let Some(body) = body.get(..len)
    {
        try_decode::<Request>(body, use_request);
        try_decode::<Response>(body, use_response);
    }
    try_decode::<Request>(bytes, use_request);
    try_decode::<Response>(bytes, use_response);
    try_decode::<Chunk>(bytes, |c| {
        for (a, cl) in [(0, 0), (1, 1), (2, 0), (0, 2)] {
            use_chunk(c, &schema_of(a, cl));
        }
        let m = fixed_feed().manifest.verify().unwrap();
        if !fixed_feed().chunks.iter().any(|b| b == bytes) {
            assert!(m.verify_chunk(c.index, bytes).is_err());
        }
    });
    try_decode::<ChunkRequest>(bytes, |_| {});
    try_decode::<Vec<Signed<Step>>>(bytes, |s| use_transcript(s));
    try_decode::<Signed<Step>>(bytes, |s| use_transcript(std::slice::from_ref(s)));
    try_decode::<Vec<Signed<Roster>>>(bytes, |c| use_roster_chain(c));
    try_decode::<Signed<Roster>>(bytes, |s| use_roster_chain(std::slice::from_ref(s)));
    try_decode::<Signed<Manifest>>(bytes, use_manifest);
    try_decode::<Entry>(bytes, |e| {
        let _ = (e.leaf_hash(), e.event.kind(), e.at.to_string());
    });
    try_decode::<Signed<BundleIndex>>(bytes, |s| drop(s.verify()));
    try_decode::<Signed<Disclosure>>(bytes, |s| drop(s.verify()));
    try_decode::<Signed<MinistryAnswer>>(bytes, |s| drop(s.verify()));
    try_decode::<Signed<ResultCommitment>>(bytes, |s| drop(s.verify()));
    parse_text(&String::from_utf8_lossy(bytes));
}

/// Every text parser of the protocol on `s`, and what a caller does next.
fn parse_text(s: &str) {
    use_note(s);
    if let Ok(t) = Timestamp::parse(s) {
        assert!(t <= Timestamp::LAST_DATED);
        assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
    }
    if let Ok(d) = Date::parse(s) {
        assert_eq!(Date::parse(&d.to_string()), Ok(d));
    }
    if let Ok(p) = Period::parse(s) {
        assert_eq!(Period::parse(&p.to_iso()), Ok(p));
    }
    if let Ok(secs) = parse_duration_secs(s) {
        assert_eq!(parse_duration_secs(&format_duration_secs(secs)), Ok(secs));
    }
    let _ = s.parse::<Role>();
    let _ = PublicKey::from_pem(s);
    let _ = Identity::from_pkcs8_pem(s);
}

/// The encoding of a signed value, damaged by `d`, is refused by its
/// signature check, or is the value signed.
fn refused_or_same<T: SignedKind + PartialEq + Debug>(valid: &Signed<T>, d: &Damage) {
    let damaged = d.apply(&encode(valid).unwrap());
    if let Ok(s) = decode::<Signed<T>>(&damaged)
        && let Ok(v) = s.verify_by(valid.signer())
    {
        assert_eq!(v, valid.verify().unwrap(), "a damaged {} verified", T::TAG);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip_in_frames(r in requests()) {
        let frame = wire::encode_frame(&r, MAX_CONTROL_FRAME, &wire::REQUEST_KINDS).unwrap();
        let (header, body) = frame.split_first_chunk::<4>().unwrap();
        prop_assert_eq!(wire::frame_len(*header, MAX_CONTROL_FRAME), Ok(body.len()));
        prop_assert_eq!(decode::<Request>(body), Ok(r.clone()));
        use_request(&r);
    }

    #[test]
    fn responses_round_trip_in_frames(r in responses()) {
        let frame = wire::encode_frame(&r, MAX_CONTROL_FRAME, &wire::RESPONSE_KINDS).unwrap();
        let (header, body) = frame.split_first_chunk::<4>().unwrap();
        prop_assert_eq!(wire::frame_len(*header, MAX_CONTROL_FRAME), Ok(body.len()));
        prop_assert_eq!(decode::<Response>(body), Ok(r.clone()));
        use_response(&r);
    }

    #[test]
    fn transcripts_round_trip_and_replay(steps in transcripts()) {
        let back: Vec<Signed<Step>> = decode(&encode(&steps).unwrap()).unwrap();
        prop_assert_eq!(&back, &steps);
        let n = Negotiation::replay(&back).unwrap();
        prop_assert_eq!(n.len as usize, steps.len());
        prop_assert!(agreement::reconcile(&accepted_once().1, &back).is_ok());
    }

    /// Each step is signed, and names the one before: what survives damage
    /// and still replays is the transcript or a prefix of it.
    #[test]
    fn damaged_transcripts_are_refused_or_a_prefix(steps in transcripts(), d in damages()) {
        let damaged = d.apply(&encode(&steps).unwrap());
        decode_everything(&damaged);
        if let Ok(back) = decode::<Vec<Signed<Step>>>(&damaged)
            && Negotiation::replay(&back).is_ok()
        {
            prop_assert!(steps.starts_with(&back), "a damaged transcript replayed");
        }
    }

    #[test]
    fn roster_chains_round_trip_and_are_accepted(chain in roster_chains()) {
        let back: Vec<Signed<Roster>> = decode(&encode(&chain).unwrap()).unwrap();
        prop_assert_eq!(&back, &chain);
        let newest = roster::accept_chain(None, &back, &anchor().public()).unwrap();
        prop_assert_eq!(newest, chain.last().unwrap().verify().unwrap());
        use_roster_chain(&back);
    }

    /// A signed roster file, damaged, is refused by the anchor's signature
    /// (or still is the roster signed), on its own and on top of the
    /// version before it.
    #[test]
    fn damaged_roster_files_are_refused(chain in roster_chains(), at in any::<Index>(), d in damages()) {
        let i = at.index(chain.len());
        let damaged = d.apply(&encode(&chain[i]).unwrap());
        decode_everything(&damaged);
        refused_or_same(&chain[i], &d);
        if let Ok(s) = decode::<Signed<Roster>>(&damaged) {
            let held = i.checked_sub(1).map(|p| &chain[p]);
            if let Ok(r) = roster::accept_chain(held, &[s], &anchor().public()) {
                prop_assert_eq!(r, chain[i].verify().unwrap());
            }
        }
    }

    #[test]
    fn checkpoints_and_cosignatures_round_trip((cp, seed, name) in checkpoints(), time in any::<u64>()) {
        let signer = id(seed);
        let note = cp.sign(&signer, &name);
        prop_assert_eq!(Checkpoint::verify(&note, &name, &signer.public()), Ok(cp.clone()));
        let witness = id(seed.wrapping_add(1));
        let line = cosign(&witness, "witness", &cp.body(), time);
        prop_assert_eq!(verify_cosignature(&line, "witness", &witness.public(), &cp.body()), Ok(time));
    }

    /// A damaged note or cosignature line (as text, the way a bundle holds
    /// it) fails its signature check, or says what was signed.
    #[test]
    fn damaged_notes_and_cosignatures_are_refused(
        (cp, seed, name) in checkpoints(),
        time in any::<u64>(),
        d in damages(),
    ) {
        let signer = id(seed);
        let note = String::from_utf8_lossy(&d.apply(cp.sign(&signer, &name).as_bytes())).into_owned();
        parse_text(&note);
        if let Ok(got) = Checkpoint::verify(&note, &name, &signer.public()) {
            prop_assert_eq!(got, cp.clone());
        }
        let witness = id(seed.wrapping_add(1));
        let line = cosign(&witness, "witness", &cp.body(), time);
        let damaged = String::from_utf8_lossy(&d.apply(line.as_bytes())).into_owned();
        if let Ok(got) = verify_cosignature(&damaged, "witness", &witness.public(), &cp.body()) {
            prop_assert_eq!(got, time);
        }
        // The right line over a damaged note body.
        let body = String::from_utf8_lossy(&d.apply(cp.body().as_bytes())).into_owned();
        if body != cp.body() {
            prop_assert!(verify_cosignature(&line, "witness", &witness.public(), &body).is_err());
        }
    }

    #[test]
    fn chunks_verify_against_their_signed_manifest((chunks, schema) in feeds()) {
        let (signed, bytes) = signed_feed(&provider(), schema, &chunks);
        let m: Manifest = decode::<Signed<Manifest>>(&encode(&signed).unwrap())
            .unwrap()
            .verify_by(&provider().public())
            .unwrap();
        m.check().unwrap();
        for (i, (c, b)) in chunks.iter().zip(&bytes).enumerate() {
            prop_assert_eq!(&m.verify_chunk(i as u32, b).unwrap(), c);
            use_chunk(c, &m.schema);
        }
    }

    /// A chunk whose bytes changed on the way is refused at that chunk.
    #[test]
    fn damaged_chunks_are_refused((chunks, schema) in feeds(), at in any::<Index>(), d in damages()) {
        let (signed, bytes) = signed_feed(&provider(), schema, &chunks);
        let m = signed.verify().unwrap();
        let i = at.index(bytes.len());
        let damaged = d.apply(&bytes[i]);
        decode_everything(&damaged);
        if damaged != bytes[i] {
            prop_assert!(m.verify_chunk_hash(i as u32, &damaged).is_err());
            prop_assert!(m.verify_chunk(i as u32, &damaged).is_err());
        }
        // Another chunk's bytes, or any chunk at an index the feed lacks.
        let j = (i + 1) % bytes.len();
        if bytes[j] != bytes[i] {
            prop_assert!(m.verify_chunk(i as u32, &bytes[j]).is_err());
        }
        prop_assert!(m.verify_chunk(bytes.len() as u32, &bytes[i]).is_err());
    }

    #[test]
    fn other_signed_values_round_trip_and_damage_is_refused(
        e in entries(),
        index in bundle_indexes(),
        d in damages(),
    ) {
        prop_assert_eq!(decode::<Entry>(&encode(&e).unwrap()), Ok(e.clone()));
        prop_assert_eq!(decode::<Signed<BundleIndex>>(&encode(&index).unwrap()), Ok(index.clone()));
        decode_everything(&d.apply(&encode(&index).unwrap()));
        decode_everything(&d.apply(&encode(&e).unwrap()));
        refused_or_same(&index, &d);
        refused_or_same(&fixed_disclosure(), &d);
        refused_or_same(&fixed_answer(), &d);
        refused_or_same(fixed_commitment(), &d);
        refused_or_same(&fixed_feed().manifest, &d);
        refused_or_same(&accepted_once().1[1], &d);
    }

    #[test]
    fn damaged_encodings_never_panic(valid in valid_encodings(), d in damages()) {
        decode_everything(&d.apply(&valid));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        decode_everything(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(s in text(), more in "\\PC{0,40}") {
        parse_text(&s);
        parse_text(&format!("{s}\n{more}\n\n\u{2014} {s} {more}\n"));
    }

    #[test]
    fn text_forms_round_trip(
        secs in 0..=Timestamp::LAST_DATED.0,
        days in 1..10_000u32,
        duration in 1..u64::MAX / 2,
        seed in any::<[u8; 32]>(),
    ) {
        let t = Timestamp(secs);
        prop_assert_eq!(Timestamp::parse(&t.to_string()), Ok(t));
        prop_assert_eq!(Date::parse(&t.date().to_string()), Ok(t.date()));
        for p in [Period::Days(days), Period::Months(days)] {
            prop_assert_eq!(Period::parse(&p.to_iso()), Ok(p));
        }
        prop_assert_eq!(parse_duration_secs(&format_duration_secs(duration)), Ok(duration));
        let me = Identity::from_seed(seed).unwrap();
        prop_assert_eq!(PublicKey::from_pem(&me.public().to_pem()), Ok(me.public()));
        prop_assert_eq!(Identity::from_pkcs8_pem(&me.to_pkcs8_pem()).unwrap().public(), me.public());
    }
}
