//! Set-algebra benchmarks (criterion): `MergeBits` over 6 sorted inputs of
//! 1 million random tokens each (throughput counted in input tokens), and
//! `difference` / `intersection` of two sorted 1-million-token streams.
//! Figures go to `docs/benchmarks.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dxmesh_protocol::setops::{MergeBits, difference, intersection};
use dxmesh_protocol::token::IdToken;
use std::hint::black_box;

/// splitmix64: a deterministic stream of random words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn token(&mut self) -> IdToken {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        IdToken(b)
    }
}

/// `k` sorted inputs of `n` tokens each, drawn from a shared pool of
/// `pool` random tokens (so inputs overlap when `pool` is small enough;
/// `pool == 0` means fresh random tokens, effectively disjoint).
fn inputs(seed: u64, k: usize, n: usize, pool: usize) -> Vec<Vec<IdToken>> {
    let mut rng = Rng(seed);
    let shared: Vec<IdToken> = (0..pool).map(|_| rng.token()).collect();
    (0..k)
        .map(|_| {
            let mut v: Vec<IdToken> = (0..n)
                .map(|_| {
                    if pool == 0 {
                        rng.token()
                    } else {
                        shared[(rng.next() % pool as u64) as usize]
                    }
                })
                .collect();
            v.sort_unstable();
            v
        })
        .collect()
}

fn merge_bits(c: &mut Criterion) {
    let mut g = c.benchmark_group("setops");
    g.sample_size(10);
    for (name, pool) in [("disjoint", 0), ("overlap", 2_000_000)] {
        let ins = inputs(1, 6, 1_000_000, pool);
        let total: usize = ins.iter().map(Vec::len).sum();
        g.throughput(Throughput::Elements(total as u64));
        g.bench_function(format!("merge_bits/6x1M/{name}"), |b| {
            b.iter(|| {
                let mut m = MergeBits::new(ins.iter().map(|v| v.iter().copied())).unwrap();
                let mut acc = 0u64;
                let mut n = 0usize;
                for (t, mask) in m.by_ref() {
                    acc ^= mask ^ u64::from(t.0[0]);
                    n += 1;
                }
                assert!(m.error().is_none());
                black_box((acc, n))
            })
        });
    }
    g.finish();
}

fn two_way(c: &mut Criterion) {
    let ins = inputs(2, 2, 1_000_000, 1_500_000);
    let (a, b) = (&ins[0], &ins[1]);
    let mut g = c.benchmark_group("setops");
    g.sample_size(20);
    g.throughput(Throughput::Elements((a.len() + b.len()) as u64));
    g.bench_function("difference/2x1M", |bch| {
        bch.iter(|| {
            let mut d = difference(a.iter().copied(), b.iter().copied());
            let n = d.by_ref().count();
            assert!(d.error().is_none());
            black_box(n)
        })
    });
    g.bench_function("intersection/2x1M", |bch| {
        bch.iter(|| {
            let mut i = intersection(a.iter().copied(), b.iter().copied());
            let n = i.by_ref().count();
            assert!(i.error().is_none());
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, merge_bits, two_way);
criterion_main!(benches);
