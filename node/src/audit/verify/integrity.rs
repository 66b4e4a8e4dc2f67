//! One bundle's log against itself and its signatures: the chain of entry
//! links (naming the first entry deleted, inserted, moved or edited), the
//! node's signed checkpoints against the Merkle tree of the log, and the
//! witnesses' cosignatures on those checkpoints.

use super::error::BundleError;
use super::files::{files, peer_key, read_text};
use super::report::Report;
use dxmesh_protocol::audit::{Checkpoint, Entry, NoteError, verify_cosignature};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::{Hash, RootBuilder};
use std::path::Path;

/// A bundle's log as loaded, for the checks of this module.
pub(super) struct Log<'a> {
    /// The node's PeerId (the bundle's name in the report).
    pub(super) peer: &'a str,
    /// The entries, in file order.
    pub(super) entries: &'a [Entry],
    /// Each entry's leaf hash.
    pub(super) leaves: &'a [Hash],
    /// The root of every prefix of the log, the empty one first.
    pub(super) prefix_roots: &'a [Hash],
}

/// The root of every prefix of a log with these leaves, the empty one first.
pub(super) fn prefix_roots(leaves: &[Hash]) -> Vec<Hash> {
    let mut roots = Vec::with_capacity(leaves.len() + 1);
    let mut builder = RootBuilder::default();
    roots.push(builder.root());
    for leaf in leaves {
        builder.push(*leaf);
        roots.push(builder.root());
    }
    roots
}

/// Checks the links between entries and names the first entry that is out
/// of place or was edited: a wrong position number (deleted, inserted or
/// moved), or an entry whose successor's link does not match it (edited).
/// Returns that entry's position.
pub(super) fn check_links(log: &Log<'_>, report: &mut Report) -> Option<u64> {
    for (i, e) in log.entries.iter().enumerate() {
        let expected_prev = if i == 0 { [0u8; 32] } else { log.leaves[i - 1] };
        let problem = if e.seq != i as u64 {
            format!(
                "entry at position {i} says it is entry {}: an entry was deleted, inserted or moved here",
                e.seq
            )
        } else if e.prev != expected_prev {
            "this entry's link to the previous one is broken".into()
        } else if let Some(next) = log.entries.get(i + 1)
            && next.seq == i as u64 + 1
            && next.prev != log.leaves[i]
        {
            "this entry was changed: the next entry's link to it does not match".into()
        } else {
            continue;
        };
        report.fail(log.peer, Some(i as u64), problem);
        return Some(i as u64);
    }
    None
}

/// Checks the node's signed checkpoints (folder `checkpoints`): each is
/// signed by the node, none is smaller than an earlier one, each matches
/// the log's tree at its size, and the last one covers the whole log.
/// `pinpointed` is the entry [`check_links`] named, if any. Returns how
/// many checkpoints verified.
pub(super) fn check_checkpoints(
    dir: &Path,
    log: &Log<'_>,
    key: &PublicKey,
    pinpointed: Option<u64>,
    report: &mut Report,
) -> Result<u64, BundleError> {
    let mut notes: Vec<String> = Vec::new();
    for f in files(&dir.join("checkpoints")) {
        notes.push(read_text(&f)?);
    }
    let verified: Vec<Result<Checkpoint, NoteError>> = {
        use rayon::prelude::*;
        notes
            .par_iter()
            .map(|note| Checkpoint::verify(note, log.peer, key))
            .collect()
    };
    let mut count = 0;
    let mut sizes = Sizes::default();
    for cp in verified {
        match cp {
            Ok(cp) => {
                count += 1;
                report.pass("checkpoint signatures");
                check_checkpoint(&cp, log, pinpointed, &mut sizes, report);
            }
            Err(e) => report.fail(log.peer, None, format!("a checkpoint does not verify: {e}")),
        }
    }
    let last_size = sizes.last;
    if last_size < log.entries.len() as u64 {
        report.fail(
            log.peer,
            Some(last_size),
            format!("entries after {last_size} are covered by no signed checkpoint"),
        );
    }
    Ok(count)
}

/// Checkpoint sizes seen so far, in file order.
#[derive(Default)]
struct Sizes {
    /// The last checkpoint's size.
    last: u64,
    /// The last size at which the log matched its checkpoint.
    good: u64,
}

/// Checks one signed checkpoint against the ones before it and against the
/// log's tree at its size.
fn check_checkpoint(
    cp: &Checkpoint,
    log: &Log<'_>,
    pinpointed: Option<u64>,
    sizes: &mut Sizes,
    report: &mut Report,
) {
    if cp.size < sizes.last {
        report.fail(
            log.peer,
            None,
            format!("checkpoint {} is smaller than an earlier one", cp.size),
        );
    }
    sizes.last = cp.size;
    let last_good = sizes.good;
    match log.prefix_roots.get(cp.size as usize) {
        Some(root) if *root == cp.root => {
            report.pass("log matches its checkpoints");
            sizes.good = cp.size;
        }
        Some(_) => report.fail(
            log.peer,
            Some(
                pinpointed
                    .filter(|k| (last_good..cp.size).contains(k))
                    .unwrap_or(last_good),
            ),
            format!(
                "the log does not match its signed checkpoint of {} entries: an entry from {last_good} to {} was changed",
                cp.size,
                cp.size - 1
            ),
        ),
        None => report.fail(
            log.peer,
            Some(log.entries.len() as u64),
            format!(
                "a signed checkpoint covers {} entries but the log has {}: entries were deleted",
                cp.size,
                log.entries.len()
            ),
        ),
    }
}

/// Checks the witnesses' cosignatures on the node's checkpoints (folder
/// `cosignatures`, files `<size>-<witness PeerId>.line`) against the log's
/// tree at that size; files named otherwise are skipped. Returns how many
/// cosignatures verified.
pub(super) fn check_cosignatures(
    dir: &Path,
    log: &Log<'_>,
    origin: &str,
    report: &mut Report,
) -> Result<u64, BundleError> {
    let mut count = 0;
    for f in files(&dir.join("cosignatures")) {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((size, witness)) = name.trim_end_matches(".line").split_once('-') else {
            continue;
        };
        let Ok(size) = size.parse::<u64>() else {
            continue;
        };
        let line = read_text(&f)?;
        let Some(wkey) = peer_key(witness) else {
            continue;
        };
        let body = Checkpoint {
            origin: origin.to_string(),
            size,
            root: log
                .prefix_roots
                .get(size as usize)
                .copied()
                .unwrap_or([0; 32]),
        }
        .body();
        match verify_cosignature(&line, witness, &wkey, &body) {
            Ok(_) => {
                count += 1;
                report.pass("cosignatures by witnesses");
            }
            Err(_) => report.fail(
                log.peer,
                Some(size.saturating_sub(1)),
                format!("the cosignature of {witness} on {size} entries does not match this log"),
            ),
        }
    }
    Ok(count)
}
