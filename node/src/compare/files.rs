//! The files a comparison cycle writes: one CSV per result (written
//! atomically, so a reader never sees half a file),
//! `verified_registrations.csv` (the findings the province uploads to the
//! ministry), `coverage.csv`; and the hash of a result file for the
//! `JobRun` audit event. `summary.json` is the cycle's own
//! ([`crate::compare::cycle`]). A leaf module: it uses the cycle's error and
//! summary types, not the cycle.

use crate::compare::error::CycleError;
use crate::compare::summary::ResultSummary;
use dxmesh_protocol::merkle::Hash;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes a CSV file (header, then rows) in one atomic step.
pub(crate) fn write_csv(
    path: &Path,
    header: &[String],
    rows: &[Vec<String>],
) -> Result<(), CycleError> {
    let csv_error = |source| CycleError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(csv_error)?;
    for r in rows {
        w.write_record(r).map_err(csv_error)?;
    }
    let bytes = w.into_inner().map_err(|e| CycleError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    crate::base::fsutil::write_atomic(path, &bytes, 0o600).map_err(|source| CycleError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `verified_registrations.csv`: the ID numbers of every result file
/// that starts with `id_number`, each with the result's name.
pub(crate) fn write_verified(
    out: &Path,
    results: &BTreeMap<String, ResultSummary>,
) -> Result<(), CycleError> {
    let mut verified: Vec<Vec<String>> = Vec::new();
    for (name, r) in results {
        if let Ok(mut rd) = csv::Reader::from_path(&r.file)
            && rd
                .headers()
                .map(|h| h.get(0) == Some("id_number"))
                .unwrap_or(false)
        {
            for rec in rd.records().flatten() {
                if let Some(id) = rec.get(0) {
                    verified.push(vec![id.to_string(), name.clone()]);
                }
            }
        }
    }
    verified.sort();
    verified.dedup();
    write_csv(
        &out.join("verified_registrations.csv"),
        &["id_number".into(), "finding".into()],
        &verified,
    )
}

/// Writes `coverage.csv`: eligible and covered per region.
pub(crate) fn write_coverage(
    out: &Path,
    coverage: &BTreeMap<String, (u64, u64)>,
) -> Result<(), CycleError> {
    let rows: Vec<Vec<String>> = coverage
        .iter()
        .map(|(r, (e, c))| vec![r.clone(), e.to_string(), c.to_string()])
        .collect();
    write_csv(
        &out.join("coverage.csv"),
        &["region_code".into(), "eligible".into(), "covered".into()],
        &rows,
    )
}

/// The SHA-256 of a file (of nothing if it cannot be read).
pub(crate) fn sha256_of(path: &str) -> Hash {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut h = [0u8; 32];
    h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    h
}
