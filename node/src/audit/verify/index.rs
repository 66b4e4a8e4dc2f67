//! The bundle's own index (`index.bin`): the list of every other file with
//! its SHA-256, signed by the node that exported the bundle. Every file is
//! checked against it, so a byte changed in any file (even one no other
//! signature covers, such as `entries.json`, `node.json` or a key file), a
//! file removed and a file added after the export are each reported by
//! name. The index must be signed by the key of the PeerId the bundle says
//! it is from, for the origin of that node.

use super::files::read;
use super::report::Report;
use crate::audit::log::BUNDLE_INDEX;
use dxmesh_protocol::audit::BundleIndex;
use dxmesh_protocol::codec;
use dxmesh_protocol::hash::sha256;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use std::collections::BTreeMap;
use std::path::Path;

/// Checks every file of the bundle in `dir` against its signed index.
/// Problems go into `report` for `peer`.
pub(super) fn check(dir: &Path, peer: &str, key: &PublicKey, report: &mut Report) {
    let problems = match load(dir, peer, key) {
        Ok(index) => compare(dir, peer, &index),
        Err(problem) => vec![problem],
    };
    if problems.is_empty() {
        report.pass("bundle files match the signed index");
    }
    for p in problems {
        report.fail(peer, None, p);
    }
}

/// Reads `index.bin` and checks that `peer` signed it.
fn load(dir: &Path, peer: &str, key: &PublicKey) -> Result<BundleIndex, String> {
    let bytes = read(&dir.join(BUNDLE_INDEX)).map_err(|e| {
        format!("{BUNDLE_INDEX}: {e}; no file of the bundle can be checked against the export")
    })?;
    codec::decode::<Signed<BundleIndex>>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|s| s.verify_by(key).map_err(|e| e.to_string()))
        .map_err(|e| format!("{BUNDLE_INDEX} is not signed by {peer}: {e}"))
}

/// Every difference between the bundle's files and its index.
fn compare(dir: &Path, peer: &str, index: &BundleIndex) -> Vec<String> {
    let mut problems = Vec::new();
    let origin = format!("dxmesh/{peer}");
    if index.origin != origin {
        problems.push(format!(
            "{BUNDLE_INDEX} is the index of {:?}, not of {origin:?}",
            index.origin
        ));
    }
    let listed: BTreeMap<&str, &[u8; 32]> =
        index.files.iter().map(|(p, h)| (p.as_str(), h)).collect();
    let mut present = Vec::new();
    walk(dir, "", &mut present);
    for rel in present.iter().filter(|r| *r != BUNDLE_INDEX) {
        let problem = match (listed.get(rel.as_str()), std::fs::read(dir.join(rel))) {
            (None, _) => "not in the bundle's index (added after the export)".to_string(),
            (Some(want), Ok(b)) if sha256(&b) == **want => continue,
            (Some(_), Ok(_)) => {
                "changed since the export (its SHA-256 is not the one the index lists)".into()
            }
            (Some(_), Err(e)) => format!("cannot be read: {e}"),
        };
        problems.push(format!("{rel}: {problem}"));
    }
    for rel in listed.keys() {
        if !present.iter().any(|p| p == rel) {
            problems.push(format!("{rel}: listed in the bundle's index but missing"));
        }
    }
    problems
}

/// Every file under `dir`, as `/`-separated paths relative to the bundle,
/// sorted. A link or other special file is listed too, so it is reported.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), &rel, out),
            _ => out.push(rel),
        }
    }
}
