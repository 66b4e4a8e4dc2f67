//! The node's tamper-evident audit log: every event is appended as a leaf
//! of an RFC 6962 Merkle tree in the state store (each entry naming the
//! previous one's hash), and after each batch of appends a signed C2SP
//! checkpoint over the new tree is stored, before anything is shown to
//! anyone. Peers witness each other's checkpoints:
//! a witness verifies the consistency proof from the last checkpoint it
//! saw, cosigns, and keeps the newest; an inconsistent checkpoint (same
//! size with another root, a smaller tree, a failing proof) is kept with
//! the earlier one as evidence. `export` writes an evidence bundle for
//! offline verification (`crate::audit::verify`). Witnessing and exporting
//! fail with an [`AuditLogError`]; reading a bundle's `entries.bin` back
//! with a [`FramingError`].

use crate::base::store::{Store, StoreError};
use dxmesh_protocol::audit::{BundleIndex, Checkpoint, Entry, Event, NoteError, cosign};
use dxmesh_protocol::codec::{self, CodecError};
use dxmesh_protocol::identity::{Identity, KeyError, PublicKey};
use dxmesh_protocol::merkle::{self, ConsistencyProof, Hash, RootBuilder};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why witnessing a peer's checkpoint or exporting a bundle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditLogError {
    /// The peer's checkpoint note does not parse or is not signed by it.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The node state could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be encoded (a witness state, a roster version).
    #[error(transparent)]
    Encode(#[from] CodecError),
    /// A JSON document (fork evidence, `node.json`, `entries.json`) could
    /// not be produced.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A stored audit entry does not decode (the state is corrupt).
    #[error("a stored audit entry does not decode: {0}")]
    StoredEntry(#[source] CodecError),
    /// A stored cosignature names a witness key that is not a valid key.
    #[error(transparent)]
    StoredKey(KeyError),
    /// The bundle's folder already holds files: a bundle is written into
    /// an empty folder, so that its index covers everything in it.
    #[error("{path}: the folder is not empty; export a bundle into a new folder", path = .path.display())]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// A file or folder of the bundle could not be written.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why it could not be written.
        source: std::io::Error,
    },
}

/// Why `entries.bin` does not split into entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The file ends inside an entry's 4-byte length.
    #[error("entries.bin: truncated length at byte {at}")]
    TruncatedLength {
        /// Offset of the length.
        at: usize,
    },
    /// The file ends inside an entry.
    #[error("entries.bin: truncated entry {index} at byte {at}")]
    TruncatedEntry {
        /// Position of the entry.
        index: usize,
        /// Offset of its length.
        at: usize,
    },
}

/// The node's audit log.
pub struct AuditLog {
    origin: String,
    name: String,
    leaves: Vec<Hash>,
    builder: RootBuilder,
    latest: Option<String>,
    sealed: u64,
}

/// A witness's stored view of a peer's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    /// The peer's newest consistent checkpoint note.
    pub note: String,
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Hash,
}

/// Evidence of a fork: both signed checkpoints and what failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The peer (PeerId).
    pub peer: String,
    /// The checkpoint seen earlier.
    pub earlier: String,
    /// The inconsistent checkpoint.
    pub later: String,
    /// The proof offered, if any.
    pub proof: Option<ConsistencyProof>,
    /// What is inconsistent.
    pub reason: String,
    /// When it was detected.
    pub detected_at: String,
}

/// A witness's decision on a peer's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witness {
    /// Consistent (or first seen): cosign and keep.
    Accept,
    /// A consistency proof from this size is needed.
    NeedProof(u64),
    /// Inconsistent with what was seen before.
    Fork(String),
}

/// Decides on `new` given the stored view and the proof offered.
pub fn judge(
    stored: Option<&WitnessState>,
    new: &Checkpoint,
    proof: Option<&ConsistencyProof>,
) -> Witness {
    let Some(s) = stored else {
        return Witness::Accept;
    };
    if new.size < s.size {
        return Witness::Fork(format!(
            "the tree shrank from {} to {} entries",
            s.size, new.size
        ));
    }
    if new.size == s.size {
        return if new.root == s.root {
            Witness::Accept
        } else {
            Witness::Fork(format!(
                "two different roots for a tree of {} entries",
                s.size
            ))
        };
    }
    if s.size == 0 {
        return Witness::Accept;
    }
    match proof {
        Some(p) if p.size1 == s.size && p.size2 == new.size => match p.verify(&s.root, &new.root) {
            Ok(()) => Witness::Accept,
            Err(e) => Witness::Fork(format!(
                "the consistency proof from {} to {} entries fails: {e}",
                s.size, new.size
            )),
        },
        _ => Witness::NeedProof(s.size),
    }
}

/// The audit meta key `<kind>/<key>`.
fn meta_key(kind: &str, key: &[u8]) -> Vec<u8> {
    let mut k = kind.as_bytes().to_vec();
    k.push(b'/');
    k.extend_from_slice(key);
    k
}

impl AuditLog {
    /// Opens the log of the node `identity` (origin `dxmesh/<PeerId>`).
    pub fn open(store: &Store, identity: &Identity) -> Result<AuditLog, StoreError> {
        let name = identity.peer_id().to_string();
        let mut log = AuditLog {
            origin: format!("dxmesh/{name}"),
            name,
            leaves: Vec::new(),
            builder: RootBuilder::default(),
            latest: None,
            sealed: 0,
        };
        for bytes in store.audit_entries()? {
            let leaf = merkle::leaf_hash(&bytes);
            log.leaves.push(leaf);
            log.builder.push(leaf);
        }
        if let Some((size, note)) = store.audit_checkpoints()?.pop() {
            log.sealed = size;
            log.latest = Some(note);
        }
        Ok(log)
    }

    /// The key name in notes (the node's PeerId).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Entries so far.
    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The newest signed checkpoint note.
    pub fn latest(&self) -> Option<&str> {
        self.latest.as_deref()
    }

    /// The size of the latest checkpoint.
    pub fn sealed(&self) -> u64 {
        self.sealed
    }

    /// Appends an event at `at` (durably). Call [`AuditLog::seal`] after a
    /// batch of appends, before anything is shown to a peer.
    pub fn append(
        &mut self,
        store: &Store,
        at: Timestamp,
        event: Event,
    ) -> Result<u64, StoreError> {
        let seq = self.leaves.len() as u64;
        let prev = self.leaves.last().copied().unwrap_or([0; 32]);
        let entry = Entry {
            seq,
            prev,
            at,
            event,
        };
        let bytes = codec::encode(&entry).map_err(|e| StoreError::Db(e.to_string()))?;
        let leaf = merkle::leaf_hash(&bytes);
        store.audit_append(seq, &bytes)?;
        self.leaves.push(leaf);
        self.builder.push(leaf);
        Ok(seq)
    }

    /// Signs and stores a checkpoint of the current tree if it grew since
    /// the last one. Returns whether a new checkpoint was made.
    pub fn seal(&mut self, store: &Store, identity: &Identity) -> Result<bool, StoreError> {
        if self.sealed == self.size() {
            return Ok(false);
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: self.size(),
            root: self.builder.root(),
        };
        let note = cp.sign(identity, &self.name);
        store.audit_put_checkpoint(cp.size, &note)?;
        self.sealed = cp.size;
        self.latest = Some(note);
        Ok(true)
    }

    /// A consistency proof from `size1` to the current size.
    pub fn proof_from(&self, size1: u64) -> Option<ConsistencyProof> {
        self.proof_to(size1, self.size())
    }

    /// A consistency proof from `size1` to `size2` (an earlier checkpoint's
    /// size, or the current size).
    pub fn proof_to(&self, size1: u64, size2: u64) -> Option<ConsistencyProof> {
        if size1 == 0 || size1 >= size2 || size2 > self.size() {
            return None;
        }
        merkle::consistency_proof(&self.leaves[..size2 as usize], size1).ok()
    }
}

/// The witness side: judge a peer's checkpoint, store it and cosign it, or
/// keep the evidence. Returns the response decision and, on accept, the
/// cosignature line.
pub fn witness(
    store: &Store,
    me: &Identity,
    peer: &PublicKey,
    note: &str,
    proof: Option<&ConsistencyProof>,
    now: Timestamp,
) -> Result<(Witness, Option<String>, Option<Checkpoint>), AuditLogError> {
    let name = peer.peer_id().to_string();
    let cp = Checkpoint::verify(note, &name, peer)?;
    let key = meta_key("witness", peer.as_bytes());
    let stored: Option<WitnessState> = store.audit_meta(&key)?.and_then(|b| codec::decode(&b).ok());
    let decision = judge(stored.as_ref(), &cp, proof);
    match &decision {
        Witness::Accept => {
            let state = WitnessState {
                note: note.to_string(),
                size: cp.size,
                root: cp.root,
            };
            store.set_audit_meta(&key, &codec::encode(&state)?)?;
            let line = cosign(me, &me.peer_id().to_string(), &cp.body(), now.0);
            Ok((decision, Some(line), Some(cp)))
        }
        Witness::Fork(reason) => {
            let ev = Evidence {
                peer: name,
                earlier: stored.map(|s| s.note).unwrap_or_default(),
                later: note.to_string(),
                proof: proof.cloned(),
                reason: reason.clone(),
                detected_at: now.to_string(),
            };
            let bytes = serde_json::to_vec_pretty(&ev)?;
            let mut k = meta_key("evidence", peer.as_bytes());
            k.extend_from_slice(&now.0.to_be_bytes());
            k.extend_from_slice(&cp.size.to_be_bytes());
            store.set_audit_meta(&k, &bytes)?;
            Ok((decision, None, Some(cp)))
        }
        Witness::NeedProof(_) => Ok((decision, None, Some(cp))),
    }
}

/// Stores a cosignature a peer gave on our checkpoint of `size`.
pub fn store_cosignature(
    store: &Store,
    witness: &PublicKey,
    size: u64,
    line: &str,
) -> Result<(), StoreError> {
    let mut k = meta_key("cosig", &size.to_be_bytes());
    k.extend_from_slice(witness.as_bytes());
    store.set_audit_meta(&k, line.as_bytes())?;
    store.set_audit_meta(
        &meta_key("cosigned_size", witness.as_bytes()),
        &size.to_be_bytes(),
    )
}

/// The cosignature lines peers gave on our checkpoint of `size`.
pub fn cosignatures(store: &Store, size: u64) -> Result<Vec<String>, StoreError> {
    Ok(store
        .audit_meta_prefix(&meta_key("cosig", &size.to_be_bytes()))?
        .into_iter()
        .filter_map(|(_, v)| String::from_utf8(v).ok())
        .collect())
}

/// The size of our log that `witness` last cosigned.
pub fn cosigned_size(store: &Store, witness: &PublicKey) -> u64 {
    store
        .audit_meta(&meta_key("cosigned_size", witness.as_bytes()))
        .ok()
        .flatten()
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Every fork evidence record.
pub fn evidence(store: &Store) -> Result<Vec<Evidence>, StoreError> {
    Ok(store
        .audit_meta_prefix(b"evidence/")?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

/// `entries.bin`: each entry as a 4-byte big-endian length and its encoding.
pub fn frame_entries(raw: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.iter().map(|b| b.len() + 4).sum());
    for b in raw {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
    out
}

/// Splits `entries.bin` into the encoded entries.
pub fn unframe_entries(bytes: &[u8]) -> Result<Vec<&[u8]>, FramingError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let header: [u8; 4] = bytes
            .get(pos..pos + 4)
            .and_then(|h| h.try_into().ok())
            .ok_or(FramingError::TruncatedLength { at: pos })?;
        let len = u32::from_be_bytes(header) as usize;
        let body = bytes
            .get(pos + 4..pos + 4 + len)
            .ok_or(FramingError::TruncatedEntry {
                index: out.len(),
                at: pos,
            })?;
        out.push(body);
        pos += 4 + len;
    }
    Ok(out)
}

/// What a bundle's `node.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleNode {
    /// PeerId.
    pub peer_id: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Checkpoint origin line.
    pub origin: String,
    /// When the bundle was written.
    pub exported_at: String,
}

/// The folders of an evidence bundle.
const BUNDLE_FOLDERS: [&str; 10] = [
    "commitments",
    "answers",
    "checkpoints",
    "cosignatures",
    "witnessed",
    "evidence",
    "transcripts",
    "manifests",
    "roster",
    "keys",
];

/// The file of a bundle that lists (and signs) all the others.
pub const BUNDLE_INDEX: &str = "index.bin";

/// An evidence bundle being written: its folder, and each file written
/// with its SHA-256 (for the index).
struct BundleOut<'a> {
    dir: &'a Path,
    written: std::cell::RefCell<Vec<(String, Hash)>>,
}

impl BundleOut<'_> {
    /// Creates the bundle's folders in `out`, which must be new or empty.
    fn create(out: &Path) -> Result<BundleOut<'_>, AuditLogError> {
        if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
            return Err(AuditLogError::NotEmpty {
                path: out.to_path_buf(),
            });
        }
        for sub in BUNDLE_FOLDERS {
            let d = out.join(sub);
            std::fs::create_dir_all(&d).map_err(|source| AuditLogError::Io { path: d, source })?;
        }
        Ok(BundleOut {
            dir: out,
            written: Default::default(),
        })
    }

    /// Writes the file `rel` of the bundle and notes it for the index (a
    /// new folder: nothing to replace, so no temporary file and no fsync
    /// per file; [`BundleOut::seal`] flushes them all before it writes the
    /// index, so a bundle with an index is whole on disk).
    fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), AuditLogError> {
        let path = self.dir.join(rel);
        std::fs::write(&path, bytes).map_err(|source| AuditLogError::Io {
            path: path.clone(),
            source,
        })?;
        self.written
            .borrow_mut()
            .push((rel.to_string(), dxmesh_protocol::hash::sha256(bytes)));
        Ok(())
    }

    /// Flushes every file written, and every folder, to disk (in
    /// parallel), signs the list of the files and writes it as the bundle's
    /// index, last (atomically).
    fn seal(self, identity: &Identity, origin: &str) -> Result<(), AuditLogError> {
        use rayon::prelude::*;
        let mut dirs: Vec<PathBuf> = BUNDLE_FOLDERS.iter().map(|d| self.dir.join(d)).collect();
        dirs.push(self.dir.to_path_buf());
        let written: Vec<PathBuf> = self
            .written
            .borrow()
            .iter()
            .map(|(rel, _)| self.dir.join(rel))
            .chain(dirs)
            .collect();
        written.par_iter().try_for_each(|path| {
            std::fs::File::open(path)
                .and_then(|f| f.sync_all())
                .map_err(|source| AuditLogError::Io {
                    path: path.clone(),
                    source,
                })
        })?;
        let mut files = self.written.into_inner();
        files.sort();
        let index = BundleIndex {
            origin: origin.to_string(),
            exported_at: crate::base::clock::now(),
            files,
        };
        let signed = Signed::sign(identity, &index)?;
        let path = self.dir.join(BUNDLE_INDEX);
        crate::base::fsutil::write_atomic(&path, &codec::encode(&signed)?, 0o644)
            .map_err(|source| AuditLogError::Io { path, source })
    }
}

/// Writes an evidence bundle of the node's audit trail into `out`, with
/// the index of its files signed by `identity`. Returns the number of log
/// entries written.
pub fn export(
    store: &Store,
    identity: &Identity,
    data_dir: &Path,
    node: &BundleNode,
    anchor_pem: &str,
    transcripts: &[(Hash, Vec<u8>)],
    out: &Path,
) -> Result<u64, AuditLogError> {
    let bundle = BundleOut::create(out)?;
    bundle.write("node.json", &serde_json::to_vec_pretty(node)?)?;
    bundle.write("anchor.pub.pem", anchor_pem.as_bytes())?;
    let entries = export_entries(store, &bundle)?;
    export_signatures(store, &bundle)?;
    for (i, ev) in evidence(store)?.iter().enumerate() {
        bundle.write(
            &format!("evidence/{i:04}.json"),
            &serde_json::to_vec_pretty(ev)?,
        )?;
    }
    for (thread, bytes) in transcripts {
        bundle.write(
            &format!("transcripts/{}.dxt", dxmesh_protocol::hex(thread)),
            bytes,
        )?;
    }
    export_manifests(data_dir, &bundle)?;
    export_commitments(data_dir, &bundle)?;
    export_rosters(store, &bundle)?;
    bundle.seal(identity, &node.origin)?;
    Ok(entries)
}

/// Writes the log: `entries.bin` (what is verified) and `entries.json` (a
/// readable listing). Returns the number of entries.
fn export_entries(store: &Store, bundle: &BundleOut<'_>) -> Result<u64, AuditLogError> {
    use rayon::prelude::*;
    let raw = store.audit_entries()?;
    bundle.write("entries.bin", &frame_entries(&raw))?;
    // A JSON array, one entry a line; each entry decoded and rendered in
    // parallel (decoding checks every key it names, the costly part).
    let lines: Vec<String> = raw
        .par_iter()
        .map(|b| {
            codec::decode::<Entry>(b).map(|e| {
                serde_json::json!({"seq": e.seq, "at": e.at.to_string(), "kind": e.event.kind(), "event": format!("{:?}", e.event)})
                    .to_string()
            })
        })
        .collect::<Result<_, _>>()
        .map_err(AuditLogError::StoredEntry)?;
    let mut readable = String::with_capacity(lines.iter().map(|l| l.len() + 4).sum::<usize>() + 4);
    readable.push_str("[\n");
    for (i, l) in lines.iter().enumerate() {
        readable.push_str("  ");
        readable.push_str(l);
        readable.push_str(if i + 1 < lines.len() { ",\n" } else { "\n" });
    }
    readable.push_str("]\n");
    bundle.write("entries.json", readable.as_bytes())?;
    Ok(raw.len() as u64)
}

/// Writes the node's signed checkpoints, the witnesses' cosignatures on
/// them and the newest checkpoint of each peer the node witnessed.
fn export_signatures(store: &Store, bundle: &BundleOut<'_>) -> Result<(), AuditLogError> {
    for (size, note) in store.audit_checkpoints()? {
        bundle.write(&format!("checkpoints/{size:010}.note"), note.as_bytes())?;
    }
    // Keys `cosig/<size, 8 bytes><witness key, 32 bytes>`.
    for (k, v) in store.audit_meta_prefix(b"cosig/")? {
        let Some((size, key)) = k[6..].split_first_chunk::<8>() else {
            continue;
        };
        let Ok(key) = <[u8; 32]>::try_from(key) else {
            continue;
        };
        let key = PublicKey::from_bytes(key).map_err(AuditLogError::StoredKey)?;
        let size = u64::from_be_bytes(*size);
        bundle.write(
            &format!("cosignatures/{size:010}-{}.line", key.peer_id()),
            &v,
        )?;
    }
    for (k, v) in store.audit_meta_prefix(b"witness/")? {
        if let Ok(key) = <[u8; 32]>::try_from(&k[8..])
            .map_err(|_| ())
            .and_then(|b| PublicKey::from_bytes(b).map_err(|_| ()))
            && let Ok(state) = codec::decode::<WitnessState>(&v)
        {
            bundle.write(
                &format!("witnessed/{}.note", key.peer_id()),
                state.note.as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// Writes the manifest of every feed the node published or pulled that is
/// still on disk under `data_dir`, and of every feed erased under
/// retention (kept as evidence).
fn export_manifests(data_dir: &Path, bundle: &BundleOut<'_>) -> Result<(), AuditLogError> {
    use crate::base::layout::{EVIDENCE, FEEDS, MANIFEST_FILE, PULLS};
    for (kind, live, evidence) in [
        ("published", FEEDS, false),
        ("pulled", PULLS, false),
        ("published", FEEDS, true),
        ("pulled", PULLS, true),
    ] {
        let root = if evidence {
            data_dir.join(EVIDENCE).join(live)
        } else {
            data_dir.join(live)
        };
        let Ok(agreements) = std::fs::read_dir(&root) else {
            continue;
        };
        for a in agreements.flatten() {
            let Ok(epochs) = std::fs::read_dir(a.path()) else {
                continue;
            };
            for e in epochs.flatten() {
                let m = e.path().join(MANIFEST_FILE);
                // The evidence of an erased feed, unless the feed is held
                // (the copy is made just before the feed is erased).
                let held = data_dir
                    .join(live)
                    .join(a.file_name())
                    .join(e.file_name())
                    .join(MANIFEST_FILE);
                if evidence && held.exists() {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(&m) {
                    bundle.write(
                        &format!(
                            "manifests/{kind}-{}-{}.bin",
                            a.file_name().to_string_lossy(),
                            e.file_name().to_string_lossy()
                        ),
                        &bytes,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Writes every signed result commitment the node made (a comparator's),
/// as `commitments/<epoch>-<digest>.commitment`, and every signed ministry
/// answer it kept (tokens and province codes, no ID number), as
/// `answers/<epoch>-<digest>.answer`; `dxmesh audit recompute` checks each
/// commitment against the feeds and each `other_province` against the
/// answers.
fn export_commitments(data_dir: &Path, bundle: &BundleOut<'_>) -> Result<(), AuditLogError> {
    let Ok(epochs) = std::fs::read_dir(data_dir.join(crate::base::layout::COMMITMENTS)) else {
        return Ok(());
    };
    for e in epochs.flatten() {
        let epoch = e.file_name().to_string_lossy().into_owned();
        for (folder, ext, out) in [
            (crate::compare::commit::ALL, ".commitment", "commitments"),
            (crate::compare::commit::ANSWERS, ".answer", "answers"),
        ] {
            let Ok(files) = std::fs::read_dir(e.path().join(folder)) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(ext)
                    && let Ok(bytes) = std::fs::read(f.path())
                {
                    bundle.write(&format!("{out}/{epoch}-{name}"), &bytes)?;
                }
            }
        }
    }
    Ok(())
}

/// Writes the roster chain and the public key of every member of any
/// version.
fn export_rosters(store: &Store, bundle: &BundleOut<'_>) -> Result<(), AuditLogError> {
    let mut members = std::collections::BTreeMap::new();
    for r in store.rosters_after(0)? {
        let bytes = codec::encode(&r)?;
        if let Ok(roster) = codec::decode::<dxmesh_protocol::roster::Roster>(r.body()) {
            bundle.write(&format!("roster/v{:06}.roster", roster.version), &bytes)?;
            for m in roster.members {
                members.insert(m.public_key.peer_id().to_string(), m.public_key.to_pem());
            }
        }
    }
    for (peer, pem) in members {
        bundle.write(&format!("keys/{peer}.pem"), pem.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(size: u64, root: u8) -> Checkpoint {
        Checkpoint {
            origin: "o".into(),
            size,
            root: [root; 32],
        }
    }

    /// A witness that asks for a proof about a checkpoint gets one to that
    /// checkpoint, even if the log has grown since it was sent.
    #[test]
    fn proofs_reach_an_earlier_checkpoint() {
        let leaves: Vec<Hash> = (0u8..10).map(|i| merkle::leaf_hash(&[i])).collect();
        let log = AuditLog {
            origin: "o".into(),
            name: "n".into(),
            leaves: leaves.clone(),
            builder: RootBuilder::default(),
            latest: None,
            sealed: 10,
        };
        let (root4, root6) = (merkle::root(&leaves[..4]), merkle::root(&leaves[..6]));
        let proof = log.proof_to(4, 6).expect("a proof from 4 to 6");
        proof.verify(&root4, &root6).unwrap();
        // The proof to the current size is a different one and does not
        // prove the earlier checkpoint.
        let to_now = log.proof_from(4).unwrap();
        to_now.verify(&root4, &merkle::root(&leaves)).unwrap();
        assert!(to_now.verify(&root4, &root6).is_err());
        for (a, b) in [(0, 6), (6, 6), (7, 6), (4, 11)] {
            assert!(log.proof_to(a, b).is_none(), "{a}..{b}");
        }
    }

    #[test]
    fn judging_checkpoints() {
        let leaves: Vec<Hash> = (0u8..10).map(|i| merkle::leaf_hash(&[i])).collect();
        let s4 = WitnessState {
            note: String::new(),
            size: 4,
            root: merkle::root(&leaves[..4]),
        };
        let new = Checkpoint {
            origin: "o".into(),
            size: 10,
            root: merkle::root(&leaves),
        };
        let proof = merkle::consistency_proof(&leaves, 4).unwrap();
        assert_eq!(judge(None, &new, None), Witness::Accept);
        assert_eq!(judge(Some(&s4), &new, None), Witness::NeedProof(4));
        assert_eq!(judge(Some(&s4), &new, Some(&proof)), Witness::Accept);
        assert!(matches!(
            judge(Some(&s4), &cp(3, 1), None),
            Witness::Fork(_)
        ));
        assert!(matches!(
            judge(Some(&s4), &cp(4, 1), None),
            Witness::Fork(_)
        ));
        let other: Vec<Hash> = (0u8..10).map(|i| merkle::leaf_hash(&[i + 100])).collect();
        let forked = Checkpoint {
            origin: "o".into(),
            size: 10,
            root: merkle::root(&other),
        };
        assert!(matches!(
            judge(Some(&s4), &forked, Some(&proof)),
            Witness::Fork(_)
        ));
    }
}
