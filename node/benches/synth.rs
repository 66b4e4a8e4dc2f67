//! Times one synthetic-province run (`dxmesh_node::sim::synth::synth`).
//!
//! `cargo bench -p dxmesh-node --bench synth` generates
//! `DXMESH_SYNTH_RESIDENTS` residents (default 10,000,000) into a temporary
//! directory (or `DXMESH_SYNTH_OUT`, kept) and prints the wall time, the
//! bytes written and the expected-result counts. Run as a test (without
//! `--bench`, e.g. by `cargo test --all-targets`) it generates 2,000
//! residents only.

use dxmesh_node::sim::synth::{SynthOptions, synth};
use dxmesh_protocol::date::Date;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let residents = match std::env::var("DXMESH_SYNTH_RESIDENTS") {
        Ok(v) => v.parse().expect("DXMESH_SYNTH_RESIDENTS must be a number"),
        Err(_) if bench => 10_000_000,
        Err(_) => 2_000,
    };
    let temp = tempfile::tempdir().expect("temporary directory");
    let out = std::env::var_os("DXMESH_SYNTH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let opts = SynthOptions {
        residents,
        out: out.clone(),
        seed: 1,
        reference: Date::new(2026, 6, 30).expect("valid date"),
        home_province: "44".to_string(),
        cycle: 0,
        period_days: 30,
    };
    let start = Instant::now();
    let report = synth(&opts).expect("synth");
    let secs = start.elapsed().as_secs_f64();
    let bytes = bytes_under(&out);
    println!(
        "synth: {residents} residents in {secs:.2} s ({:.0} MB written, {:.0} MB/s)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    for (file, rows) in &report.files {
        println!("  {file}: {rows} rows");
    }
    println!("  expected: {:?}", report.counts);
}
