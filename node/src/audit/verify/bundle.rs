//! Loading one evidence bundle (the folder `dxmesh audit export` writes):
//! `node.json`, the anchor key, the roster chain, `entries.bin`, the
//! checkpoints and cosignatures, the checkpoints the node witnessed, fork
//! evidence, agreement transcripts and manifests. The checks that need only
//! the bundle itself run while it loads; what is kept is a [`Bundle`] for
//! the checks across entries and bundles.

use super::error::{BundleError, FileProblem};
use super::files::{files, peer_key, read, read_text};
use super::integrity::{self, Log};
use super::report::{BundleSummary, Report};
use crate::audit::log::{BundleNode, unframe_entries};
use dxmesh_protocol::agreement::{Negotiation, Step};
use dxmesh_protocol::audit::{Checkpoint, Entry};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::roster::{self, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use std::collections::BTreeMap;
use std::path::Path;

/// Agreement id -> (its state, its steps with time and signer).
pub(super) type Agreements = BTreeMap<Hash, (Negotiation, Vec<(Timestamp, Step, PublicKey)>)>;

/// Agreement thread -> its signed steps, from every bundle's transcripts.
pub(super) type Transcripts = BTreeMap<Hash, Vec<Signed<Step>>>;

/// A loaded bundle: what the checks across entries and bundles need.
pub(super) struct Bundle {
    /// The node's PeerId.
    pub(super) peer: String,
    /// The node's key.
    pub(super) key: PublicKey,
    /// The log's entries.
    pub(super) entries: Vec<Entry>,
    /// The root of every prefix of the log, the empty one first.
    pub(super) prefix_roots: Vec<Hash>,
    /// The agreements whose transcripts verified.
    pub(super) agreements: Agreements,
    /// Signed manifests that decode, by digest.
    pub(super) manifests: BTreeMap<Hash, Signed<Manifest>>,
    /// The newest checkpoint of each peer the node witnessed, by PeerId,
    /// with its signed note.
    pub(super) witnessed: BTreeMap<String, (Checkpoint, String)>,
    /// The bundle's own newest signed checkpoint note, if any.
    pub(super) latest_note: Option<String>,
}

/// Loads the bundle in folder `dir`, checking the roster chain, the log,
/// checkpoints, cosignatures and transcripts as it goes (into `report`,
/// which also gets the bundle's summary). Adds the bundle's transcripts to
/// `transcripts` and its rosters to `rosters`. An error is a bundle that
/// cannot be read or parsed; the findings before it stay in `report`.
pub(super) fn load(
    dir: &Path,
    anchor: &PublicKey,
    report: &mut Report,
    transcripts: &mut Transcripts,
    rosters: &mut Vec<(String, Roster, Hash)>,
) -> Result<Bundle, BundleError> {
    let node = read_node(dir)?;
    let peer = node.peer_id.clone();
    if read_anchor(dir)? != *anchor {
        report.fail(
            &peer,
            None,
            "the bundle's anchor.pub.pem is not the trust anchor given (--anchor); its roster chain is checked against the given one".into(),
        );
    }
    let own_rosters = check_rosters(dir, &peer, anchor, report)?;
    rosters.extend(
        own_rosters
            .iter()
            .map(|(r, d)| (peer.clone(), r.clone(), *d)),
    );
    let own_rosters: Vec<Roster> = own_rosters.into_iter().map(|(r, _)| r).collect();
    let key = peer_key(&peer)
        .ok_or_else(|| BundleError::malformed("node.json", FileProblem::NotEd25519PeerId))?;
    if !own_rosters.iter().any(|r| r.member(&key).is_some()) {
        report.fail(&peer, None, "the node is in no roster version".into());
    }
    super::index::check(dir, &peer, &key, report);
    let entries = read_entries(dir)?;
    let leaves: Vec<Hash> = {
        use rayon::prelude::*;
        entries.par_iter().map(Entry::leaf_hash).collect()
    };
    let prefix_roots = integrity::prefix_roots(&leaves);
    let log = Log {
        peer: &peer,
        entries: &entries,
        leaves: &leaves,
        prefix_roots: &prefix_roots,
    };
    let pinpointed = integrity::check_links(&log, report);
    let mut summary = BundleSummary {
        department: node.department.clone(),
        entries: entries.len() as u64,
        ..Default::default()
    };
    summary.checkpoints = integrity::check_checkpoints(dir, &log, &key, pinpointed, report)?;
    summary.cosignatures = integrity::check_cosignatures(dir, &log, &node.origin, report)?;
    let witnessed = read_witnessed(dir)?;
    report_evidence(dir, &peer, report);
    let (agreements, count) = check_transcripts(dir, &peer, transcripts, report)?;
    summary.transcripts = count;
    let manifests = read_manifests(dir)?;
    report.bundles.insert(peer.clone(), summary);
    Ok(Bundle {
        peer,
        key,
        entries,
        prefix_roots,
        agreements,
        manifests,
        witnessed,
        latest_note: read_latest_note(dir),
    })
}

/// Reads `node.json`: who the node is.
fn read_node(dir: &Path) -> Result<BundleNode, BundleError> {
    serde_json::from_slice(&read(&dir.join("node.json"))?)
        .map_err(|e| BundleError::malformed("node.json", e))
}

/// Reads `anchor.pub.pem`: the trust anchor the roster chain starts from.
fn read_anchor(dir: &Path) -> Result<PublicKey, BundleError> {
    PublicKey::from_pem(&read_text(&dir.join("anchor.pub.pem"))?)
        .map_err(|e| BundleError::malformed("anchor.pub.pem", e))
}

/// Checks the roster chain (folder `roster`): every version signed by the
/// anchor and chained to the one before. Returns the versions accepted,
/// each with the digest of its signed file.
pub(crate) fn check_rosters(
    dir: &Path,
    peer: &str,
    anchor: &PublicKey,
    report: &mut Report,
) -> Result<Vec<(Roster, Hash)>, BundleError> {
    let mut chain: Vec<Signed<Roster>> = Vec::new();
    for f in files(&dir.join("roster")) {
        chain.push(codec::decode(&read(&f)?).map_err(|e| BundleError::malformed(&f, e))?);
    }
    let mut rosters = Vec::new();
    let mut held: Option<Signed<Roster>> = None;
    for s in &chain {
        match roster::accept_chain(held.as_ref(), std::slice::from_ref(s), anchor) {
            Ok(r) => {
                rosters.push((r, s.digest()));
                held = Some(s.clone());
                report.pass("roster versions signed by the anchor and chained");
            }
            Err(e) => report.fail(peer, None, format!("roster: {e}")),
        }
    }
    Ok(rosters)
}

/// Reads `entries.bin`: the log's entries, each of which must decode.
fn read_entries(dir: &Path) -> Result<Vec<Entry>, BundleError> {
    let raw = read(&dir.join("entries.bin"))?;
    let frames = unframe_entries(&raw)?;
    use rayon::prelude::*;
    frames
        .par_iter()
        .enumerate()
        .map(|(position, b)| {
            codec::decode::<Entry>(b).map_err(|source| {
                BundleError::malformed("entries.bin", FileProblem::Entry { position, source })
            })
        })
        .collect()
}

/// The newest checkpoint note of the bundle (folder `checkpoints`, files
/// named by size, zero-padded), as it is written there.
fn read_latest_note(dir: &Path) -> Option<String> {
    files(&dir.join("checkpoints"))
        .last()
        .and_then(|f| read_text(f).ok())
}

/// Reads the checkpoints the node witnessed (folder `witnessed`, files
/// `<PeerId>.note`), keeping those signed by the peer they are named after.
fn read_witnessed(dir: &Path) -> Result<BTreeMap<String, (Checkpoint, String)>, BundleError> {
    let mut witnessed = BTreeMap::new();
    for f in files(&dir.join("witnessed")) {
        let name = f
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let note = read_text(&f)?;
        if let Some(k) = peer_key(&name)
            && let Ok(cp) = Checkpoint::verify(&note, &name, &k)
        {
            witnessed.insert(name, (cp, note));
        }
    }
    Ok(witnessed)
}

/// Reports every fork evidence record the node holds (folder `evidence`).
fn report_evidence(dir: &Path, peer: &str, report: &mut Report) {
    for f in files(&dir.join("evidence")) {
        report.fail(
            peer,
            None,
            format!("the node holds fork evidence: {}", f.display()),
        );
    }
}

/// Checks the agreement transcripts (folder `transcripts`): signatures,
/// chain and transitions, by replaying each. Adds each to `transcripts`;
/// returns the agreements that replayed and how many.
fn check_transcripts(
    dir: &Path,
    peer: &str,
    transcripts: &mut Transcripts,
    report: &mut Report,
) -> Result<(Agreements, u64), BundleError> {
    let mut agreements = BTreeMap::new();
    let mut count = 0;
    for f in files(&dir.join("transcripts")) {
        let steps: Vec<Signed<Step>> =
            codec::decode(&read(&f)?).map_err(|e| BundleError::malformed(&f, e))?;
        match Negotiation::replay(&steps) {
            Ok(n) => {
                count += 1;
                report.pass("agreement transcripts (signatures, chain, transitions)");
                let timed: Vec<(Timestamp, Step, PublicKey)> = steps
                    .iter()
                    .filter_map(|s| {
                        codec::decode::<Step>(s.body())
                            .ok()
                            .map(|st| (st.at, st, *s.signer()))
                    })
                    .collect();
                transcripts.insert(n.thread, steps);
                agreements.insert(n.terms.id(), (n, timed));
            }
            Err(e) => report.fail(peer, None, format!("{}: {e}", f.display())),
        }
    }
    Ok((agreements, count))
}

/// Reads the manifests (folder `manifests`), keeping those that decode.
fn read_manifests(dir: &Path) -> Result<BTreeMap<Hash, Signed<Manifest>>, BundleError> {
    let mut manifests = BTreeMap::new();
    for f in files(&dir.join("manifests")) {
        if let Ok(m) = codec::decode::<Signed<Manifest>>(&read(&f)?) {
            manifests.insert(m.digest(), m);
        }
    }
    Ok(manifests)
}
