//! The audit log's wire and stored forms: events (never raw identifiers,
//! names or addresses), entries (the leaves of an RFC 6962 Merkle tree),
//! checkpoints in the C2SP `tlog-checkpoint` / `signed-note` text format,
//! and witness cosignatures in the C2SP `tlog-cosignature` style.
//!
//! The node signs a checkpoint after each batch of appends (every event the
//! daemon handles), before showing it to anyone. A checkpoint note is
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\n\n— <key name> <base64(key id || signature)>\n
//! ```
//!
//! signed with Ed25519 over the note text (the first three lines, with
//! their newlines). The key id is the first 4 bytes of
//! `SHA-256(key name || 0x0A || 0x01 || public key)`. A cosignature signs
//! `cosignature/v1\ntime <unix seconds>\n` followed by the note text, with
//! key id type `0x04`, and its signature line carries the 8-byte big-endian
//! time before the signature.

use crate::agreement::enforcement::Refusal;
use crate::agreement::terms::AgreementId;
use crate::hash::Hash;
use crate::identity::{Identity, PublicKey};
use crate::signed::SignedKind;
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// The list of an evidence bundle's files, each with its SHA-256, signed by
/// the node that exported the bundle (its `index.bin`). An auditor checks
/// every file against it, so a changed, missing or added file is caught,
/// including files (such as `entries.json`) that no other signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleIndex {
    /// The exporting node's checkpoint origin (`dxmesh/<PeerId>`).
    pub origin: String,
    /// When the bundle was written.
    pub exported_at: Timestamp,
    /// Every other file of the bundle: its `/`-separated path relative to
    /// the bundle and its SHA-256, sorted by path.
    pub files: Vec<(String, Hash)>,
}

impl SignedKind for BundleIndex {
    const TAG: &'static str = "dxmesh/bundle-index/v1";
}

/// Something that happened, as the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The node started.
    NodeStarted {
        /// Software version.
        version: String,
    },
    /// A roster version was accepted.
    RosterAccepted {
        /// Version.
        version: u64,
        /// Digest of the signed roster.
        digest: Hash,
    },
    /// A connection or request was refused.
    PeerRefused {
        /// The peer, when known.
        peer: Option<PublicKey>,
        /// Why.
        reason: String,
    },
    /// A negotiation step was recorded.
    AgreementStep {
        /// Thread.
        thread: Hash,
        /// Position.
        seq: u32,
        /// `propose`, `counter`, ...
        action: String,
        /// Who signed it.
        signer: PublicKey,
        /// Digest of the signed step.
        digest: Hash,
        /// Id of the terms current after the step.
        agreement: AgreementId,
    },
    /// A token group key was handed to a provider.
    KeyDistributed {
        /// Group.
        group: String,
        /// To whom.
        to: PublicKey,
    },
    /// A token group key was received.
    KeyReceived {
        /// Group.
        group: String,
        /// From whom.
        from: PublicKey,
    },
    /// A department export was imported (statistics only).
    Imported {
        /// Dataset.
        dataset: String,
        /// Generation.
        generation: u64,
        /// Rows read.
        rows_read: u64,
        /// Rows kept.
        rows_kept: u64,
        /// Rows quarantined.
        rows_quarantined: u64,
        /// SHA-256 of the source file (hex).
        source_sha256: String,
    },
    /// A feed was published.
    FeedPublished {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Digest of the signed manifest.
        manifest: Hash,
        /// Records.
        records: u64,
    },
    /// A pull was authorised and served (provider side).
    PullServed {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Consumer.
        consumer: PublicKey,
        /// Pull session.
        pull_id: [u8; 16],
        /// Whether it opened a new pull (counted against the maximum).
        new_pull: bool,
        /// Digest of the manifest handed out.
        manifest: Hash,
    },
    /// A pull completed (consumer side).
    PullCompleted {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Provider.
        provider: PublicKey,
        /// Pull session.
        pull_id: [u8; 16],
        /// Digest of the manifest verified.
        manifest: Hash,
        /// Chunks held.
        chunks: u32,
    },
    /// A request refused under an agreement (provider side).
    RequestRefused {
        /// `pull`, `disclosure`, `feed stream`, `ministry query`.
        kind: String,
        /// Requester.
        requester: Option<PublicKey>,
        /// Agreement, if known.
        agreement: Option<AgreementId>,
        /// The typed reason (the latest, if several).
        refusal: Refusal,
        /// Refusals this entry stands for: the same kind, requester,
        /// agreement and code are logged at most once a minute, each entry
        /// counting those since the one before.
        count: u64,
    },
    /// Records were disclosed (provider side): counts and a hash, never records.
    DisclosureServed {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Consumer.
        consumer: PublicKey,
        /// Result kind.
        result_kind: String,
        /// Tokens asked for (counted against the quota).
        requested: u64,
        /// Records returned.
        records: u64,
        /// SHA-256 of the encoded disclosure.
        digest: Hash,
        /// Digest of the signed receipt for the ID numbers disclosed, if
        /// `id_number` was among the fields.
        receipt: Option<Hash>,
        /// Digest of the commitment the disclosure was made under.
        commitment: Hash,
    },
    /// Records were received (consumer side).
    DisclosureReceived {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Provider.
        provider: PublicKey,
        /// Result kind.
        result_kind: String,
        /// Records.
        records: u64,
        /// SHA-256 of the encoded disclosure.
        digest: Hash,
    },
    /// A comparison job ran.
    JobRun {
        /// Epoch.
        epoch: u64,
        /// Inputs: name and digest of the manifest used.
        inputs: Vec<(String, Hash)>,
        /// Results: name, count and SHA-256 of the result file.
        results: Vec<(String, u64, Hash)>,
    },
    /// A ministry query was answered (ministry) or asked (comparator).
    MinistryQuery {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// The other party.
        peer: PublicKey,
        /// IDs asked.
        asked: u64,
        /// Records found.
        found: u64,
        /// Whether this node answered (true) or asked (false).
        answered: bool,
        /// Digest of the commitment to the candidates the query carried.
        commitment: Hash,
        /// Digest of the registry provider's disclosure receipt it carried.
        receipt: Hash,
        /// Digest of the ministry's signed answer.
        answer: Hash,
    },
    /// A peer's checkpoint was witnessed (cosigned). Read in logs written
    /// before cosignatures were kept as evidence instead; no longer written
    /// (an entry per cosignature made the peers' logs grow by themselves).
    Witnessed {
        /// Peer.
        peer: PublicKey,
        /// Its tree size.
        size: u64,
        /// Its root.
        root: Hash,
    },
    /// A peer showed a checkpoint inconsistent with one seen before.
    ForkDetected {
        /// Peer.
        peer: PublicKey,
        /// Size of the earlier checkpoint.
        earlier_size: u64,
        /// Size of the conflicting one.
        later_size: u64,
    },
    /// A feed (pulled, at the consumer, or published, at the provider) was
    /// erased because its agreement's retention ended (written before the
    /// erasure).
    FeedErased {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// The last day the agreement allowed it to be kept.
        kept_until: crate::date::Date,
    },
    /// The comparator signed a result commitment (before any disclosure
    /// of that result).
    ResultCommitted {
        /// Epoch.
        epoch: u64,
        /// Result kind.
        result_kind: String,
        /// Result tokens.
        count: u64,
        /// Root over the sorted result tokens.
        root: Hash,
        /// Digest of the signed commitment.
        commitment: Hash,
    },
    /// A provider accepted a disclosure request bound to a consumer's
    /// result commitment (logged before the records are resolved).
    CommitmentChecked {
        /// Agreement.
        agreement: AgreementId,
        /// The consumer that signed the commitment.
        consumer: PublicKey,
        /// Epoch.
        epoch: u64,
        /// Result kind.
        result_kind: String,
        /// Result tokens committed.
        count: u64,
        /// Root over the sorted result tokens.
        root: Hash,
        /// Digest of the signed commitment.
        commitment: Hash,
        /// Tokens asked for in this request.
        requested: u64,
    },
    /// Someone tried to log in to the node's operator console (an account
    /// name, never a password).
    ConsoleLogin {
        /// The account name given.
        user: String,
        /// Its role, if the login succeeded.
        role: Option<String>,
        /// Whether the login succeeded.
        ok: bool,
    },
    /// A console account asked for an action (accept or suspend an
    /// agreement, publish): logged before it is carried out, and when its
    /// role does not allow it.
    ConsoleAction {
        /// The account.
        user: String,
        /// Its role.
        role: String,
        /// The action (`agreement_accept`, `agreement_suspend`, ...).
        action: String,
        /// What it acts on (an agreement or thread id prefix).
        target: String,
        /// Whether the role allows it.
        allowed: bool,
    },
    /// The token files of an epoch's result commitments were erased, once
    /// every pulled feed of the epoch was (the signed commitments stay).
    TokensErased {
        /// Epoch.
        epoch: u64,
        /// Token files erased.
        files: u32,
    },
    /// An epoch's feed was republished (at the provider) or pulled again
    /// as republished (at the consumer): the manifest `by` supersedes
    /// `superseded`, whose feed is erased.
    FeedSuperseded {
        /// Agreement.
        agreement: AgreementId,
        /// Epoch.
        epoch: u64,
        /// Digest of the signed manifest superseded.
        superseded: Hash,
        /// Digest of the signed manifest that supersedes it.
        by: Hash,
    },
}

impl Event {
    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::NodeStarted { .. } => "node_started",
            Event::RosterAccepted { .. } => "roster_accepted",
            Event::PeerRefused { .. } => "peer_refused",
            Event::AgreementStep { .. } => "agreement_step",
            Event::KeyDistributed { .. } => "key_distributed",
            Event::KeyReceived { .. } => "key_received",
            Event::Imported { .. } => "imported",
            Event::FeedPublished { .. } => "feed_published",
            Event::PullServed { .. } => "pull_served",
            Event::PullCompleted { .. } => "pull_completed",
            Event::RequestRefused { .. } => "request_refused",
            Event::DisclosureServed { .. } => "disclosure_served",
            Event::DisclosureReceived { .. } => "disclosure_received",
            Event::JobRun { .. } => "job_run",
            Event::MinistryQuery { .. } => "ministry_query",
            Event::Witnessed { .. } => "witnessed",
            Event::ForkDetected { .. } => "fork_detected",
            Event::FeedErased { .. } => "feed_erased",
            Event::ResultCommitted { .. } => "result_committed",
            Event::CommitmentChecked { .. } => "commitment_checked",
            Event::ConsoleLogin { .. } => "console_login",
            Event::ConsoleAction { .. } => "console_action",
            Event::FeedSuperseded { .. } => "feed_superseded",
            Event::TokensErased { .. } => "tokens_erased",
        }
    }
}

/// One log entry: a leaf of the log's Merkle tree is `encode(Entry)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position, from 0.
    pub seq: u64,
    /// Leaf hash of the previous entry (zeros for the first): a deleted,
    /// inserted, moved or edited entry breaks the chain right there, so a
    /// verifier can name it.
    pub prev: Hash,
    /// When.
    pub at: Timestamp,
    /// What.
    pub event: Event,
}

impl Entry {
    /// The entry's Merkle leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        crate::merkle::leaf_hash(&crate::codec::encode(self).expect("entries encode"))
    }
}

/// Why a note did not parse or verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum NoteError {
    /// Not the checkpoint text format.
    #[error("malformed checkpoint note: {0}")]
    Malformed(String),
    /// No signature line by the expected key.
    #[error("no valid signature by {0}")]
    NoSignature(String),
}

/// A parsed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Origin line (`dxmesh/<PeerId>`).
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

fn key_id(name: &str, kind: u8, key: &PublicKey) -> [u8; 4] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[kind]);
    ctx.update(key.as_bytes());
    let d = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(&d.as_ref()[..4]);
    id
}

impl Checkpoint {
    /// The note body (three lines).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Signs as `name` (the signer's key name in the note).
    pub fn sign(&self, identity: &Identity, name: &str) -> String {
        let body = self.body();
        let sig = identity.sign_raw(body.as_bytes());
        let mut blob = key_id(name, 0x01, &identity.public()).to_vec();
        blob.extend_from_slice(&sig);
        format!("{body}\n\u{2014} {name} {}\n", B64.encode(blob))
    }

    /// Parses a signed note and verifies the signature of `name` with `key`.
    pub fn verify(note: &str, name: &str, key: &PublicKey) -> Result<Checkpoint, NoteError> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines.next().unwrap_or_default().to_string();
        let size: u64 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| NoteError::Malformed("the second line is not a tree size".into()))?;
        let root_b64 = lines
            .next()
            .ok_or_else(|| NoteError::Malformed("no root line".into()))?;
        let root: Hash = B64
            .decode(root_b64)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| NoteError::Malformed("the root is not base64 of 32 bytes".into()))?;
        if origin.is_empty() || lines.next().is_some() {
            return Err(NoteError::Malformed(
                "a checkpoint body has exactly three lines".into(),
            ));
        }
        let want = key_id(name, 0x01, key);
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                continue;
            };
            let Some((n, b64)) = rest.split_once(' ') else {
                continue;
            };
            if n != name {
                continue;
            }
            let Ok(blob) = B64.decode(b64) else { continue };
            if blob.len() == 68
                && blob[..4] == want
                && key.verify(body.as_bytes(), &blob[4..]).is_ok()
            {
                return Ok(Checkpoint { origin, size, root });
            }
        }
        Err(NoteError::NoSignature(name.to_string()))
    }
}

/// A witness's cosignature line for a checkpoint note body.
pub fn cosign(identity: &Identity, name: &str, body: &str, time: u64) -> String {
    let msg = format!("cosignature/v1\ntime {time}\n{body}");
    let sig = identity.sign_raw(msg.as_bytes());
    let mut blob = key_id(name, 0x04, &identity.public()).to_vec();
    blob.extend_from_slice(&time.to_be_bytes());
    blob.extend_from_slice(&sig);
    format!("\u{2014} {name} {}\n", B64.encode(blob))
}

/// Verifies a cosignature line over `body` by `key`; returns its time.
pub fn verify_cosignature(
    line: &str,
    name: &str,
    key: &PublicKey,
    body: &str,
) -> Result<u64, NoteError> {
    let bad = || NoteError::NoSignature(name.to_string());
    let rest = line.trim_end().strip_prefix("\u{2014} ").ok_or_else(bad)?;
    let (n, b64) = rest.split_once(' ').ok_or_else(bad)?;
    let blob = B64.decode(b64).map_err(|_| bad())?;
    if n != name || blob.len() != 76 || blob[..4] != key_id(name, 0x04, key) {
        return Err(bad());
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&blob[4..12]);
    let time = u64::from_be_bytes(t);
    let msg = format!("cosignature/v1\ntime {time}\n{body}");
    key.verify(msg.as_bytes(), &blob[12..]).map_err(|_| bad())?;
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_and_cosignatures_round_trip_and_refuse_tampering() {
        let id = Identity::from_seed([5; 32]).unwrap();
        let cp = Checkpoint {
            origin: "dxmesh/test/node".into(),
            size: 42,
            root: [7; 32],
        };
        let note = cp.sign(&id, "node");
        assert!(note.starts_with("dxmesh/test/node\n42\n"));
        assert_eq!(Checkpoint::verify(&note, "node", &id.public()).unwrap(), cp);
        let other = Identity::from_seed([6; 32]).unwrap();
        assert!(Checkpoint::verify(&note, "node", &other.public()).is_err());
        assert!(
            Checkpoint::verify(&note.replace("\n42\n", "\n43\n"), "node", &id.public()).is_err()
        );
        let line = cosign(&other, "witness", &cp.body(), 1_790_000_000);
        assert_eq!(
            verify_cosignature(&line, "witness", &other.public(), &cp.body()),
            Ok(1_790_000_000)
        );
        assert!(verify_cosignature(&line, "witness", &id.public(), &cp.body()).is_err());
        let mut cp2 = cp.clone();
        cp2.size = 41;
        assert!(verify_cosignature(&line, "witness", &other.public(), &cp2.body()).is_err());
    }
}
