//! The files a comparison cycle writes: one CSV per result (written
//! atomically, so a reader never sees half a file),
//! `verified_registrations.csv` (the findings the province uploads to the
//! ministry), `coverage.csv`; and the hash of a result file for the
//! `JobRun` audit event. `summary.json` is the cycle's own
//! ([`crate::compare::cycle`]). A leaf module: it uses the cycle's error and
//! summary types, not the cycle.

use crate::compare::error::CycleError;
use crate::compare::rows::{RowSort, write_csv_with};
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
    write_csv_with(path, header, |w| {
        for r in rows {
            w.write_record(r).map_err(|source| CycleError::Csv {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    })
}

/// Writes `verified_registrations.csv`: the ID numbers of every result file
/// that starts with `id_number`, each with the result's name, sorted and
/// each once (in `memory` bytes, the sort's runs under `data_dir`).
pub(crate) fn write_verified(
    out: &Path,
    results: &BTreeMap<String, ResultSummary>,
    data_dir: &Path,
    memory: usize,
) -> Result<(), CycleError> {
    let mut verified = RowSort::new(data_dir, memory)?;
    for (name, r) in results {
        if let Ok(mut rd) = csv::Reader::from_path(&r.file)
            && rd
                .headers()
                .map(|h| h.get(0) == Some("id_number"))
                .unwrap_or(false)
        {
            for rec in rd.byte_records().flatten() {
                if let Some(id) = rec.get(0) {
                    verified.push(&[id, name.as_bytes()])?;
                }
            }
        }
    }
    verified.write_csv(
        &out.join("verified_registrations.csv"),
        &["id_number".into(), "finding".into()],
        0..2,
    )?;
    Ok(())
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

/// The SHA-256 of a file, read a block at a time (of nothing if it
/// cannot be read).
pub(crate) fn sha256_of(path: &str) -> Hash {
    use std::io::Read;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    if let Ok(mut f) = std::fs::File::open(path) {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => ctx.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    ctx = ring::digest::Context::new(&ring::digest::SHA256);
                    break;
                }
            }
        }
    }
    let mut h = [0u8; 32];
    h.copy_from_slice(ctx.finish().as_ref());
    h
}
