//! Control messages between nodes and their framing.
//!
//! Control traffic is request/response on the libp2p protocol
//! [`CONTROL_PROTOCOL`]. Each message is one frame: a 4-byte big-endian
//! length, then the canonical encoding of a [`Request`] or [`Response`]. A
//! reader checks the length against [`MAX_CONTROL_FRAME`] before reading the
//! body, so an oversized message is refused without being read. Bulk feed
//! transfers use separate one-directional libp2p streams (later protocols).

use crate::agreement::negotiation::Step;
use crate::agreement::terms::AgreementId;
use crate::codec::{self, CodecError};
use crate::commitment::{MultiProof, ResultCommitment};
use crate::feed::{Disclosure, DisclosureReceipt, Manifest};
use crate::hash::Hash;
use crate::identity::PublicKey;
use crate::roster::{Admission, Roster};
use crate::signed::Signed;
use crate::token::IdToken;
use serde::{Deserialize, Serialize};

/// The control request/response protocol name.
pub const CONTROL_PROTOCOL: &str = "/dxmesh/control/1";

/// Largest control frame body, in bytes (15 MiB: a batch of 150,000
/// disclosure tokens or national-query answers fits; below the codec's
/// 16 MiB decode limit).
pub const MAX_CONTROL_FRAME: usize = 15 * 1024 * 1024;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// One kind of control message: its name and the largest frame body it may
/// have. A frame's body begins with the kind's index (one byte), so a reader
/// knows the kind, and refuses a frame over its kind's limit, before it
/// reads the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The variant's name.
    pub name: &'static str,
    /// Largest body, in bytes.
    pub limit: usize,
}

const fn kind(name: &'static str, limit: usize) -> Kind {
    Kind { name, limit }
}

/// The kinds of [`Request`], in variant order (a kind's index is the first
/// byte of its frame body). `docs/protocol.md` lists the same limits.
pub const REQUEST_KINDS: [Kind; 10] = [
    kind("RosterSync", KIB),
    kind("RosterPush", 4 * MIB),
    kind("Peers", KIB),
    kind("AgreementStep", MIB),
    kind("AgreementSync", MIB),
    kind("PullOpen", 64 * KIB),
    kind("Disclose", MAX_CONTROL_FRAME),
    kind("MinistryQuery", MAX_CONTROL_FRAME),
    kind("Witness", 64 * KIB),
    kind("GroupKey", 4 * MIB),
];

/// The kinds of [`Response`], in variant order, as [`REQUEST_KINDS`].
pub const RESPONSE_KINDS: [Kind; 14] = [
    kind("Roster", 4 * MIB),
    kind("Peers", MIB),
    kind("Ack", KIB),
    kind("StepAccepted", KIB),
    kind("StepRefused", 4 * MIB),
    kind("Transcripts", MAX_CONTROL_FRAME),
    kind("PullGranted", 4 * MIB),
    kind("Disclosed", MAX_CONTROL_FRAME),
    kind("GroupKey", KIB),
    kind("Ministry", MAX_CONTROL_FRAME),
    kind("Cosigned", 64 * KIB),
    kind("NeedProof", KIB),
    kind("Denied", 64 * KIB),
    kind("Refused", 64 * KIB),
];

/// Checks a frame of `len` body bytes whose body begins with `first`
/// against `kinds`: the kind it is, or why it is refused (an unknown kind,
/// or a body over the kind's limit).
pub fn frame_kind(kinds: &[Kind], first: u8, len: usize) -> Result<Kind, FrameError> {
    let kind = *kinds
        .get(usize::from(first))
        .ok_or(FrameError::UnknownKind { index: first })?;
    if len > kind.limit {
        return Err(FrameError::KindTooLarge {
            kind: kind.name,
            len,
            limit: kind.limit,
        });
    }
    Ok(kind)
}

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// "I hold roster version `have_version` (0: none); send me anything newer."
    RosterSync {
        /// The requester's roster version.
        have_version: u64,
    },
    /// A newer roster chain, pushed after the sender accepted it.
    RosterPush {
        /// Consecutive signed versions, oldest first.
        chain: Vec<Signed<Roster>>,
    },
    /// "Which members are you connected to, and where do they listen?"
    Peers,
    /// A negotiation step. A consumer sends its steps to the provider, which
    /// sequences every transcript; a provider sends its own steps to the
    /// consumer as notifications.
    AgreementStep {
        /// The signed step.
        step: Signed<Step>,
    },
    /// "These are the threads (where I am the consumer) and how much of each
    /// I hold; send me what I am missing." Sent on every new connection.
    AgreementSync {
        /// Thread heads held by the requester.
        threads: Vec<ThreadHead>,
    },
    /// Opens (or resumes) a pull of the feed of `agreement` for `epoch`.
    PullOpen {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Fields the consumer asks for (must be within the terms).
        fields: Vec<String>,
        /// The consumer's id for this pull session; the same id resumes it.
        pull_id: [u8; 16],
    },
    /// Asks the provider to resolve result tokens to the allowed fields.
    Disclose(DisclosureRequest),
    /// The comparator asks the ministry which of these residents are in the
    /// national participation index (the ministry check).
    MinistryQuery {
        /// Agreement with the ministry (the ministry is its provider).
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Fields wanted (e.g. `province_code`, `insurance_type`).
        fields: Vec<String>,
        /// ID numbers, each with the token it was disclosed for, sorted and
        /// distinct: exactly the pairs of `receipt`.
        ids: Vec<(IdToken, crate::id::IdNumber)>,
        /// The comparator's commitment to the candidates these IDs are of.
        commitment: Signed<ResultCommitment>,
        /// The registry provider's receipt for these IDs, disclosed under
        /// `commitment`.
        receipt: Box<Signed<DisclosureReceipt>>,
    },
    /// "Witness my log": the sender's newest signed checkpoint, with a
    /// consistency proof from the size this peer last cosigned.
    Witness {
        /// The checkpoint note.
        note: String,
        /// Consistency proof from the witness's last seen size, if any.
        proof: Option<crate::merkle::ConsistencyProof>,
    },
    /// A provider asks the group's key custodian for the group master key,
    /// proving membership with its accepted agreement for that group.
    GroupKey {
        /// Token group.
        group: String,
        /// The requester's signed agreement transcript naming the group.
        transcript: Vec<Signed<Step>>,
    },
}

/// What a disclosure asks for. The one form of the request: the
/// comparator's cycle and `dxmesh disclose` build it, it travels in
/// [`Request::Disclose`], and the provider checks it against the agreement
/// and the result commitment it carries. (Its encoding is that of the
/// fields in this order.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureRequest {
    /// Agreement.
    pub agreement: AgreementId,
    /// Epoch whose tokens these are.
    pub epoch: u64,
    /// Result kind (e.g. `uninsured`).
    pub result_kind: String,
    /// Fields wanted.
    pub fields: Vec<String>,
    /// Tokens to resolve, in increasing order.
    pub tokens: Vec<IdToken>,
    /// The requester's signed commitment to the result the tokens are of.
    pub commitment: Signed<ResultCommitment>,
    /// Each token's leaf index in the committed result.
    pub indices: Vec<u64>,
    /// The proof that the tokens are those leaves of the committed tree.
    pub proof: MultiProof,
    /// The signed manifest of every input of the commitment (each once):
    /// the provider checks that each is its department's feed for this
    /// consumer and epoch.
    pub manifests: Vec<Signed<Manifest>>,
    /// For a result whose agreed job names its candidates: the signed
    /// commitment to those candidates, which the result's commitment names.
    pub candidates: Option<Box<Signed<ResultCommitment>>>,
}

/// How much of a negotiation thread a node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadHead {
    /// The thread (digest of its first step).
    pub thread: Hash,
    /// Steps held.
    pub len: u32,
}

/// A control response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Signed roster versions newer than the requester's, oldest first (may be empty).
    Roster {
        /// The chain.
        chain: Vec<Signed<Roster>>,
    },
    /// Connected members and their listen addresses.
    Peers {
        /// The peers.
        peers: Vec<PeerAddresses>,
    },
    /// Accepted (a push was stored, or it was not newer and ignored).
    Ack,
    /// The step was appended and persisted; the transcript now has `len` steps.
    StepAccepted {
        /// Transcript length after the step.
        len: u32,
    },
    /// The step was refused; here is the responder's transcript of the thread
    /// (empty if it has none) so the sender can converge.
    StepRefused {
        /// Why.
        reason: String,
        /// The responder's transcript.
        transcript: Vec<Signed<Step>>,
    },
    /// Transcripts the requester is missing (whole, oldest step first).
    Transcripts {
        /// One transcript per thread.
        transcripts: Vec<Vec<Signed<Step>>>,
    },
    /// The pull is authorised; here is the signed manifest.
    PullGranted {
        /// The feed's signed manifest.
        manifest: Signed<Manifest>,
    },
    /// The provider's signed answer to a disclosure request.
    Disclosed {
        /// The provider's signed disclosure.
        disclosure: Signed<Disclosure>,
        /// The provider's signed receipt for the ID numbers disclosed, if
        /// `id_number` was asked for.
        receipt: Option<Box<Signed<DisclosureReceipt>>>,
    },
    /// The group master key (sent only over the authenticated, encrypted mesh).
    GroupKey {
        /// Token group.
        group: String,
        /// The key.
        key: [u8; 32],
    },
    /// The ministry's answer to a ministry query.
    Ministry {
        /// The signed answer.
        answer: Signed<crate::feed::MinistryAnswer>,
    },
    /// The witness cosigned the checkpoint of `size`.
    Cosigned {
        /// Tree size cosigned.
        size: u64,
        /// The cosignature line.
        line: String,
    },
    /// The witness needs a consistency proof from `from`.
    NeedProof {
        /// The size the witness last saw.
        from: u64,
    },
    /// A pull or disclosure refused under the agreement.
    Denied {
        /// Why, typed.
        refusal: crate::agreement::enforcement::Refusal,
    },
    /// The request was refused.
    Refused {
        /// Why.
        reason: Refusal,
    },
}

/// A member and the addresses it listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddresses {
    /// The member.
    pub public_key: PublicKey,
    /// Its listen multiaddrs.
    pub addresses: Vec<String>,
}

/// Why a request was refused, as told to the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The requester is not admitted by the responder's roster.
    NotAdmitted(Admission),
    /// A pushed roster was refused.
    BadRoster(String),
    /// A group key request was refused.
    Key(String),
    /// The checkpoint is inconsistent with one seen before: evidence kept.
    Fork(String),
    /// The requester sent more requests than the responder allows a member
    /// (its sustained rate and burst); it may try again after this long.
    RateLimited {
        /// Milliseconds until the responder serves the requester again.
        retry_after_ms: u64,
    },
    /// The request's frame was refused before it was decoded: over its
    /// kind's limit or the connection's inbound budget, or not a message.
    Frame(String),
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum FrameError {
    /// The announced length exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit.
        limit: usize,
    },
    /// The body does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The body's first byte names no kind of message.
    #[error("a frame of unknown kind {index}")]
    UnknownKind {
        /// The kind index the body begins with.
        index: u8,
    },
    /// The body is larger than its kind allows.
    #[error("a {kind} frame of {len} bytes exceeds its limit of {limit} bytes")]
    KindTooLarge {
        /// The kind.
        kind: &'static str,
        /// Announced length.
        len: usize,
        /// The kind's limit.
        limit: usize,
    },
}

/// Encodes `value` as one frame (length prefix and body), refused if the
/// body is over `limit` or, for a kind of `kinds`, over the kind's limit
/// (so that a node never sends what its peer refuses to read).
pub fn encode_frame<T: Serialize>(
    value: &T,
    limit: usize,
    kinds: &[Kind],
) -> Result<Vec<u8>, FrameError> {
    let body = codec::encode(value)?;
    if body.len() > limit {
        return Err(FrameError::TooLarge {
            len: body.len(),
            limit,
        });
    }
    if let Some(first) = body.first() {
        frame_kind(kinds, *first, body.len())?;
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks a frame header; returns the body length to read.
pub fn frame_len(header: [u8; 4], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disclosure_request_encodes_as_its_fields_after_the_variant_index() {
        let identity = crate::identity::Identity::from_seed([3; 32]).unwrap();
        let commitment = Signed::sign(
            &identity,
            &ResultCommitment {
                epoch: 300,
                result_kind: "uninsured".into(),
                expr: "registry".into(),
                inputs: vec![],
                sets: vec![],
                count: 2,
                root: [9; 32],
                ministry: None,
            },
        )
        .unwrap();
        let r = DisclosureRequest {
            agreement: [7; 32],
            epoch: 300,
            result_kind: "uninsured".into(),
            fields: vec!["id_number".into(), "name".into()],
            tokens: vec![IdToken([1; 16]), IdToken([2; 16])],
            commitment,
            indices: vec![0, 1],
            proof: MultiProof::default(),
            manifests: vec![],
            candidates: None,
        };
        let bytes = codec::encode(&Request::Disclose(r.clone())).unwrap();
        // `Disclose` is the seventh request (index 6).
        let mut want = vec![6u8];
        want.extend(
            codec::encode(&(
                r.agreement,
                r.epoch,
                &r.result_kind,
                &r.fields,
                &r.tokens,
                &r.commitment,
                &r.indices,
                &r.proof,
                &r.manifests,
                &r.candidates,
            ))
            .unwrap(),
        );
        assert_eq!(bytes, want);
        assert_eq!(
            codec::decode::<Request>(&bytes).unwrap(),
            Request::Disclose(r)
        );
    }

    #[test]
    fn frames_round_trip_and_oversize_is_refused_from_the_header() {
        let f = encode_frame(
            &Request::RosterSync { have_version: 3 },
            MAX_CONTROL_FRAME,
            &REQUEST_KINDS,
        )
        .unwrap();
        let len = frame_len(f[..4].try_into().unwrap(), MAX_CONTROL_FRAME).unwrap();
        assert_eq!(len, f.len() - 4);
        let r: Request = codec::decode(&f[4..]).unwrap();
        assert_eq!(r, Request::RosterSync { have_version: 3 });
        assert_eq!(
            frame_len(
                (MAX_CONTROL_FRAME as u32 + 1).to_be_bytes(),
                MAX_CONTROL_FRAME
            ),
            Err(FrameError::TooLarge {
                len: MAX_CONTROL_FRAME + 1,
                limit: MAX_CONTROL_FRAME
            })
        );
    }

    fn sample_requests() -> Vec<Request> {
        let identity = crate::identity::Identity::from_seed([3; 32]).unwrap();
        let commitment = Signed::sign(
            &identity,
            &ResultCommitment {
                epoch: 1,
                result_kind: "uninsured".into(),
                expr: "registry".into(),
                inputs: vec![],
                sets: vec![],
                count: 0,
                root: [0; 32],
                ministry: None,
            },
        )
        .unwrap();
        let receipt = Signed::sign(
            &identity,
            &DisclosureReceipt {
                agreement: [1; 32],
                epoch: 1,
                consumer: identity.public(),
                result_kind: "uninsured".into(),
                commitment: [2; 32],
                count: 0,
                root: [3; 32],
            },
        )
        .unwrap();
        vec![
            Request::RosterSync { have_version: 0 },
            Request::RosterPush { chain: vec![] },
            Request::Peers,
            Request::AgreementStep {
                step: Signed::sign(
                    &identity,
                    &crate::agreement::negotiation::Step {
                        thread: None,
                        prev: None,
                        seq: 0,
                        at: crate::time::Timestamp(0),
                        action: crate::agreement::negotiation::Action::Resume,
                    },
                )
                .unwrap(),
            },
            Request::AgreementSync { threads: vec![] },
            Request::PullOpen {
                agreement: [0; 32],
                epoch: 0,
                fields: vec![],
                pull_id: [0; 16],
            },
            Request::Disclose(DisclosureRequest {
                agreement: [0; 32],
                epoch: 0,
                result_kind: String::new(),
                fields: vec![],
                tokens: vec![],
                commitment: commitment.clone(),
                indices: vec![],
                proof: MultiProof::default(),
                manifests: vec![],
                candidates: None,
            }),
            Request::MinistryQuery {
                agreement: [0; 32],
                epoch: 0,
                fields: vec![],
                ids: vec![],
                commitment,
                receipt: Box::new(receipt),
            },
            Request::Witness {
                note: String::new(),
                proof: None,
            },
            Request::GroupKey {
                group: String::new(),
                transcript: vec![],
            },
        ]
    }

    #[test]
    fn every_request_kind_is_named_in_variant_order_and_fits_its_limit() {
        let samples = sample_requests();
        assert_eq!(samples.len(), REQUEST_KINDS.len());
        for r in samples {
            let body = codec::encode(&r).unwrap();
            let kind = frame_kind(&REQUEST_KINDS, body[0], body.len()).unwrap();
            assert!(
                format!("{r:?}").starts_with(kind.name),
                "{r:?} is not {}",
                kind.name
            );
        }
    }

    #[test]
    fn every_response_kind_is_named_in_variant_order() {
        let samples = vec![
            Response::Roster { chain: vec![] },
            Response::Peers { peers: vec![] },
            Response::Ack,
            Response::StepAccepted { len: 1 },
            Response::StepRefused {
                reason: String::new(),
                transcript: vec![],
            },
            Response::Transcripts {
                transcripts: vec![],
            },
        ];
        for r in samples {
            let body = codec::encode(&r).unwrap();
            let kind = frame_kind(&RESPONSE_KINDS, body[0], body.len()).unwrap();
            assert!(
                format!("{r:?}").starts_with(kind.name),
                "{r:?} is not {}",
                kind.name
            );
        }
        let last = Response::Refused {
            reason: Refusal::Fork("x".into()),
        };
        let body = codec::encode(&last).unwrap();
        assert_eq!(usize::from(body[0]), RESPONSE_KINDS.len() - 1);
        assert_eq!(RESPONSE_KINDS[usize::from(body[0])].name, "Refused");
    }

    #[test]
    fn a_frame_over_its_kinds_limit_or_of_no_kind_is_refused_before_its_body() {
        // A roster sync of 2 KiB: its kind allows 1 KiB.
        assert_eq!(
            frame_kind(&REQUEST_KINDS, 0, 2048),
            Err(FrameError::KindTooLarge {
                kind: "RosterSync",
                len: 2048,
                limit: 1024
            })
        );
        assert_eq!(
            frame_kind(&REQUEST_KINDS, 6, MAX_CONTROL_FRAME).map(|k| k.name),
            Ok("Disclose")
        );
        assert_eq!(
            frame_kind(&REQUEST_KINDS, 10, 10),
            Err(FrameError::UnknownKind { index: 10 })
        );
        // The writer refuses what a reader would.
        let big = Request::PullOpen {
            agreement: [0; 32],
            epoch: 0,
            fields: vec!["f".repeat(70 * 1024)],
            pull_id: [0; 16],
        };
        assert!(matches!(
            encode_frame(&big, MAX_CONTROL_FRAME, &REQUEST_KINDS),
            Err(FrameError::KindTooLarge {
                kind: "PullOpen",
                ..
            })
        ));
    }
}
