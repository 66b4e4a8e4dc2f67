//! Offline verification of evidence bundles (`dxmesh audit verify`): for a
//! security officer on a machine with none of the nodes. Checks every file
//! of a bundle against its signed index, every signature, the log's Merkle
//! tree against every checkpoint, that each pull served was covered by an
//! active agreement, inside its epoch's window and pull maximum, and each
//! disclosure by an active agreement within its quota, to a roster member
//! not revoked at the time, that every manifest used was signed by the
//! provider the agreement names, and, across bundles, that what one node
//! served the other received and that witnesses' cosigned views match the
//! logs.
//!
//! The steps live in files of their own: `report` the findings, `bundle`
//! loading one bundle (with `files` reading its files, `index` every file
//! against the bundle's signed index, and `integrity` the log against its
//! links, checkpoints and cosignatures), `coverage` what
//! each node served against its agreements, `cross` the checks across
//! bundles, and `error` why a bundle could not be loaded at all.

mod bundle;
mod coverage;
mod cross;
mod error;
mod files;
mod index;
mod integrity;
mod report;

pub use report::{BundleSummary, Finding, Report};

use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::roster::Roster;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every bundle that holds a roster version holds the same one (the
/// anchor signed one roster per version; two different ones are a fork of
/// the roster, or a bundle that was not checked against this anchor).
fn check_roster_versions(rosters: &mut [(String, Roster, Hash)], report: &mut Report) {
    rosters.sort_by_key(|(_, r, _)| r.version);
    for w in rosters.windows(2) {
        let ((a, ra, da), (b, rb, db)) = (&w[0], &w[1]);
        if ra.version == rb.version && da != db {
            report.fail(
                b,
                None,
                format!(
                    "roster version {} differs from the one {a}'s bundle holds",
                    rb.version
                ),
            );
        }
    }
}

/// The roster versions of the bundle in `dir` that chain from `anchor`,
/// and the problems found (a version not signed by the anchor or not
/// chained, a file that cannot be read, a bundle carrying another anchor).
pub fn roster_chain(dir: &Path, anchor: &PublicKey) -> (Vec<Roster>, Vec<String>) {
    let mut report = Report::default();
    let mut problems = Vec::new();
    let carried = std::fs::read_to_string(dir.join("anchor.pub.pem"))
        .ok()
        .and_then(|pem| PublicKey::from_pem(&pem).ok());
    if carried.as_ref() != Some(anchor) {
        problems.push(
            "the bundle's anchor.pub.pem is not the trust anchor given (--anchor)".to_string(),
        );
    }
    let rosters = match bundle::check_rosters(dir, "bundle", anchor, &mut report) {
        Ok(r) => r.into_iter().map(|(r, _)| r).collect(),
        Err(e) => {
            problems.push(e.to_string());
            Vec::new()
        }
    };
    problems.extend(report.failures.into_iter().map(|f| f.problem));
    (rosters, problems)
}

/// The problems of the bundle in `dir` against its own signed index
/// (`index.bin`): a missing or badly signed index, and every file changed,
/// added or removed since the export (for `dxmesh audit recompute`, which
/// does not rely on `verify` having run).
pub fn index_problems(dir: &Path, peer: &str, key: &PublicKey) -> Vec<String> {
    let mut report = Report::default();
    index::check(dir, peer, key, &mut report);
    report.failures.into_iter().map(|f| f.problem).collect()
}

/// Verifies bundles against the trust anchor the security officer holds
/// (`anchor`: never a bundle's own copy); the first is the main one, the
/// others are its peers. A bundle that cannot be loaded is one failure
/// naming its path. Every bundle's roster chain must start at `anchor`,
/// and a roster version must be the same in every bundle that holds it.
pub fn verify(paths: &[PathBuf], anchor: &PublicKey) -> Report {
    let mut report = Report::default();
    let mut bundles = Vec::new();
    let mut transcripts = bundle::Transcripts::new();
    let mut rosters = Vec::new();
    for path in paths {
        match bundle::load(path, anchor, &mut report, &mut transcripts, &mut rosters) {
            Ok(b) => bundles.push(b),
            Err(e) => report.fail(&path.display().to_string(), None, e.to_string()),
        }
    }
    check_roster_versions(&mut rosters, &mut report);
    let mut rosters: Vec<Roster> = rosters.into_iter().map(|(_, r, _)| r).collect();
    rosters.sort_by_key(|r| r.version);
    rosters.dedup_by_key(|r| r.version);
    // Coverage of pulls and disclosures by agreements, per bundle.
    for b in &bundles {
        coverage::check_served(b, &transcripts, &rosters, &mut report);
        coverage::check_manifests(b, &mut report);
    }
    // Across bundles: served vs received; witnessed views vs logs.
    let by_key: BTreeMap<PublicKey, &bundle::Bundle> = bundles.iter().map(|b| (b.key, b)).collect();
    for b in &bundles {
        cross::check_exchanges(b, &by_key, &mut report);
        cross::check_witnessed(b, &bundles, &mut report);
    }
    report
}
