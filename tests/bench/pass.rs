//! The comparison pass alone (issue 6): `run_pass` over the feeds the
//! comparator pulled in the last `tests/bench/cycle.sh` run (10 M residents
//! by default), with the default job file. Reports input records merged per
//! second and the process's peak memory.
//!
//! Run: `tests/bench/cycle.sh` once, then `cargo bench -p dxmesh-tests --bench pass`.

use dxmesh_node::compare::jobs::JobFile;
use dxmesh_node::compare::pass::{Input, run_pass};
use dxmesh_node::pull::pulls::FeedReader;
use std::path::Path;
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cycle/demo/nodes/comparator");
    if !root.exists() {
        println!(
            "no pulled feeds at {}: run tests/bench/cycle.sh first",
            root.display()
        );
        return;
    }
    let data = root.join("data");
    let store = dxmesh_node::base::store::Store::open(&data).expect("comparator state");
    let agreements =
        dxmesh_node::agreements::threads::Agreements::load(&store).expect("agreements");
    let roster: dxmesh_protocol::roster::Roster = store
        .latest_roster()
        .expect("roster")
        .map(|s| dxmesh_protocol::codec::decode(s.body()).expect("roster body"))
        .expect("a roster");
    let jobs_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/jobs.toml");
    let job = JobFile::load(&jobs_path)
        .unwrap()
        .compile(&jobs_path)
        .unwrap();
    let open = || -> Vec<Input> {
        job.inputs
            .iter()
            .map(|(name, spec)| {
                let th = agreements
                    .threads()
                    .find(|t| {
                        t.state.terms.dataset == spec.dataset
                            && roster
                                .member(&t.state.terms.provider)
                                .is_some_and(|m| m.department == spec.provider)
                    })
                    .expect("agreement for input");
                Input {
                    name: name.clone(),
                    reader: FeedReader::open(&data, &th.state.terms, 0).expect("pulled feed"),
                }
            })
            .collect()
    };
    for round in 0..2 {
        let t = Instant::now();
        let out = run_pass(&job, open(), &[]).expect("pass");
        let secs = t.elapsed().as_secs_f64();
        let records: u64 = out.records.iter().sum();
        println!(
            "PASS (round {round}): {records} input records, {} distinct tokens, in {secs:.2}s = {:.1} M records/s (target >= 20)",
            out.distinct_tokens,
            records as f64 / secs / 1e6
        );
    }
    println!(
        "peak memory of the pass: {} MiB (target < 1 GiB)",
        dxmesh_tests::bench::peak_rss_kib() / 1024
    );
}
