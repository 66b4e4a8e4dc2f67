//! Disclosure at the provider alone (issue 16): `disclose::records::disclose`
//! of 500,000 tokens (every 20th of the feed, so spread over the whole
//! dataset) with `id_number`, `name` and `address`, over the registry feed
//! the public security node published in the last `tests/bench/cycle.sh`
//! run (10 M residents by default), first as one request, then as the
//! comparator sends them (batches of 100,000). Target: well under a second.
//!
//! Run: `tests/bench/cycle.sh` once, then
//! `cargo bench -p dxmesh-tests --bench disclose`.

use dxmesh_node::disclose::records::{Asked, disclose};
use dxmesh_protocol::commitment::RowScope;
use dxmesh_protocol::token::IdToken;
use std::time::Instant;

/// Tokens disclosed.
const ASKED: usize = 500_000;
/// Bytes per entry of a feed's private index: the token comes first.
const ENTRY: usize = 28;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(data) = dxmesh_tests::bench::cycle_node_data("public_security") else {
        return;
    };
    let store = dxmesh_node::base::store::Store::open(&data).expect("provider state");
    let agreements =
        dxmesh_node::agreements::threads::Agreements::load(&store).expect("agreements");
    let terms = agreements
        .threads()
        .map(|t| t.state.terms.clone())
        .find(|t| t.dataset == "registry")
        .expect("the registry agreement");
    let index = dxmesh_node::publish::store::feed_dir(&data, &terms.id(), 0).join("index.bin");
    let bytes = std::fs::read(&index).expect("the feed's index");
    let entries = bytes.len() / ENTRY;
    let step = (entries / ASKED).max(1);
    let tokens: Vec<IdToken> = (0..ASKED.min(entries))
        .map(|k| {
            let at = (k * step) * ENTRY;
            let mut t = [0u8; 16];
            t.copy_from_slice(&bytes[at..at + 16]);
            IdToken(t)
        })
        .collect();
    drop(bytes);
    let fields = [
        "id_number".to_string(),
        "name".to_string(),
        "address".to_string(),
    ];
    let now = dxmesh_node::base::clock::now();
    for round in 0..2 {
        let t = Instant::now();
        let ask = |tokens: &[IdToken]| {
            let asked = Asked {
                result_kind: "uninsured",
                fields: &fields,
                tokens,
                scope: &RowScope::Every,
            };
            disclose(&data, &terms, 0, &asked, now).expect("disclose")
        };
        let d = ask(&tokens);
        let one = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut batched = 0;
        for batch in tokens.chunks(100_000) {
            batched += ask(batch).records.len();
        }
        let batches = t.elapsed().as_secs_f64();
        println!(
            "DISCLOSE (round {round}): {} of {entries} rows in {one:.2}s as one request, {batched} in {batches:.2}s in batches of 100,000 (target: 500 k well under 1 s)",
            d.records.len()
        );
    }
}
