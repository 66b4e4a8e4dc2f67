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
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Verifies bundles; the first is the main one, the others are its peers.
/// A bundle that cannot be loaded is one failure naming its path.
pub fn verify(paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let mut bundles = Vec::new();
    let mut transcripts = bundle::Transcripts::new();
    let mut rosters = Vec::new();
    for path in paths {
        match bundle::load(path, &mut report, &mut transcripts, &mut rosters) {
            Ok(b) => bundles.push(b),
            Err(e) => report.fail(&path.display().to_string(), None, e.to_string()),
        }
    }
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
