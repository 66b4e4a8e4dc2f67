//! The ministry's national index at scale (issue 16): builds an index of
//! `N` records (`IndexBuilder`, the code the ministry node builds its index
//! with) and answers `Q` queried IDs in batches of 100,000 (the
//! comparator's batch) with `NationalIndex::lookup`, the lookup behind
//! every ministry query. Half the queried IDs are in the index, half are
//! not. Each step reports its time and the process's peak memory.
//!
//! Run through `tests/bench/national.sh N Q`, which runs the two steps as
//! separate processes: `DXMESH_NATIONAL_STEP=build|query`,
//! `DXMESH_NATIONAL_N`, `DXMESH_NATIONAL_Q`, `DXMESH_BENCH_DIR`.

use dxmesh_node::ministry::index::{INDEX_FILE, IndexBuilder, NationalIndex};
use dxmesh_node::sim::synth::INSURANCE_TYPES;
use dxmesh_protocol::id::{IdNumber, check_character};
use std::path::PathBuf;
use std::time::Instant;

/// The comparator's ministry-query batch.
const BATCH: usize = 100_000;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The `i`-th generated person: a valid ID (one of 34 provinces, born
/// 1940-2009) and their province and insurance type.
fn person(i: u64) -> (IdNumber, String, &'static str) {
    let h = splitmix(i);
    let province = 11 + (h % 34) as u32 * 2;
    let city = (h >> 8) % 20;
    let year = 1940 + (h >> 16) % 70;
    let month = 1 + (h >> 24) % 12;
    let day = 1 + (h >> 28) % 28;
    let seq = (h >> 33) % 1000;
    let mut b = format!("{province:02}{city:02}01{year:04}{month:02}{day:02}{seq:03}").into_bytes();
    b.push(check_character(&b));
    let id = IdNumber::from_normalised(&b).expect("generated IDs are valid");
    (
        id,
        format!("{province:02}"),
        INSURANCE_TYPES[((h >> 43) % 7) as usize],
    )
}

fn peak_mib() -> u64 {
    dxmesh_tests::bench::peak_rss_kib() / 1024
}

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = var("DXMESH_NATIONAL_N", 1_000_000);
    let q = var("DXMESH_NATIONAL_Q", 100_000);
    let dir = std::env::var("DXMESH_BENCH_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-national"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("bench directory");
    let path = dir.join(INDEX_FILE);
    let step = std::env::var("DXMESH_NATIONAL_STEP").unwrap_or_else(|_| "both".into());
    if step == "build" || step == "both" {
        let started = Instant::now();
        let cols = vec!["province_code".to_string(), "insurance_type".to_string()];
        let mut b =
            IndexBuilder::new(&dir, cols, dxmesh_tests::bench::memory_bytes()).expect("builder");
        for i in 0..n {
            let (id, province, insurance) = person(i);
            b.push(&id, &[province.as_str(), insurance]).expect("push");
        }
        let index = b.finish(1, &path).expect("finish");
        let secs = started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "BUILD: {} records in {secs:.1}s ({:.2} M records/s), index {:.2} GB, peak {} MiB",
            index.len(),
            index.len() as f64 / secs / 1e6,
            bytes as f64 / 1e9,
            peak_mib()
        );
    }
    if step == "query" || step == "both" {
        let index = NationalIndex::open(&path).expect("open the index");
        let fields = ["province_code".to_string(), "insurance_type".to_string()];
        // Half present (people 0..n), half absent (people past n).
        let asked: Vec<IdNumber> = (0..q)
            .map(|k| {
                let r = splitmix(k ^ 0xA5A5);
                if k % 2 == 0 {
                    person(r % n.max(1)).0
                } else {
                    person(n + r % (1 << 40)).0
                }
            })
            .collect();
        let started = Instant::now();
        let mut found = 0usize;
        for batch in asked.chunks(BATCH) {
            found += index.lookup(batch, &fields).expect("lookup").len();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "QUERY: {q} IDs against {} records in {} batches of {BATCH}: {secs:.2}s ({:.2} M IDs/s), {found} records found, peak {} MiB (target: Q = 10 M in < 10 s at N = 200 M, < 1 GiB)",
            index.len(),
            q.div_ceil(BATCH as u64),
            q as f64 / secs / 1e6,
            peak_mib()
        );
    }
}
