//! Publishing alone (issue 16): `publish::build::publish` of the HR node's
//! insured-persons feed (about 29 M rows at 10 M residents, the largest
//! feed of the cycle) from the dataset the last `tests/bench/cycle.sh` run
//! imported, into a scratch epoch that is removed afterwards; rows per
//! second on both cores (target >= 1.5 M/s) and the process's peak memory.
//!
//! Run: `tests/bench/cycle.sh` once, then
//! `cargo bench -p dxmesh-tests --bench publish`.

use dxmesh_node::publish::build::{PublishInput, publish};
use dxmesh_node::publish::store::feed_dir;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::token::EpochKey;
use std::time::Instant;

/// Epochs the bench run's cycle (epoch 0) never reaches.
const SCRATCH_EPOCH: u64 = 1;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let node = std::env::var("DXMESH_BENCH_NODE").unwrap_or_else(|_| "hr".into());
    let Some(data) = dxmesh_tests::bench::cycle_node_data(&node) else {
        return;
    };
    let store = dxmesh_node::base::store::Store::open(&data).expect("provider state");
    let agreements =
        dxmesh_node::agreements::threads::Agreements::load(&store).expect("agreements");
    drop(store);
    let identity = Identity::from_seed([9; 32]).expect("identity");
    let key = EpochKey::from_bytes([7; 32]);
    let terms = agreements
        .threads()
        .map(|t| t.state.terms.clone())
        .find(|t| t.consumer != identity.public() && t.dataset != "verified_registrations")
        .expect("an agreement of this node's");
    for round in 0..2 {
        let epoch = SCRATCH_EPOCH + round;
        let dir = feed_dir(&data, &terms.id(), epoch);
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        let m = publish(&PublishInput {
            data_dir: &data,
            terms: &terms,
            epoch,
            key: Some(&key),
            identity: &identity,
            previous: None,
            now: dxmesh_node::base::clock::now(),
            republish: false,
            memory: dxmesh_tests::bench::memory_bytes(),
        })
        .expect("publish")
        .manifest;
        let secs = t.elapsed().as_secs_f64();
        let m = m.verify_by(&identity.public()).expect("signed manifest");
        let rows = m.quality.rows_kept;
        println!(
            "PUBLISH (round {round}, {node}, dataset {}): {rows} rows read, {} feed records in {secs:.2}s = {:.2} M rows/s (target >= 1.5)",
            terms.dataset,
            m.records,
            rows as f64 / secs / 1e6
        );
        std::fs::remove_dir_all(&dir).expect("remove the scratch feed");
    }
    println!(
        "peak memory: {} MiB",
        dxmesh_tests::bench::peak_rss_kib() / 1024
    );
}
