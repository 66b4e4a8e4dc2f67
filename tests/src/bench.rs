//! What the benchmarks under `bench/` share: the memory of a process (this
//! one or a node's), and the data directory of a node of the last
//! `tests/bench/cycle.sh` run.

use std::path::PathBuf;

/// The memory a benchmark's sort is given: `DXMESH_BENCH_MEMORY_MIB` MiB
/// (a node's `[limits] memory_mib`), else the default node budget, as the
/// node gives it to a job's sort.
pub fn memory_bytes() -> usize {
    let mib = std::env::var("DXMESH_BENCH_MEMORY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(dxmesh_node::base::config::DEFAULT_MEMORY_MIB);
    dxmesh_node::base::config::LimitsConfig { memory_mib: mib }.sort_bytes()
}

/// The process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("self", "VmHWM:")
}

/// A memory line of `/proc/<pid>/status` (`field` is `VmRSS:`, `VmHWM:`,
/// ...) of process `pid` (or `self`), in KiB; 0 if it cannot be read.
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// The data directory of `node` in the last `tests/bench/cycle.sh` run, if
/// there is one (else says how to make it and returns `None`).
pub fn cycle_node_data(node: &str) -> Option<PathBuf> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-cycle/demo/nodes")
        .join(node)
        .join("data");
    if data.exists() {
        Some(data)
    } else {
        println!(
            "no data of node {node} at {}: run tests/bench/cycle.sh first",
            data.display()
        );
        None
    }
}
