//! Protocol micro-benchmarks (criterion): ID normalisation + token derivation
//! per record, each token kind alone (ring HMAC-SHA256), Merkle root over 1
//! million leaves, Ed25519 sign and verify.
//! Figures go to `docs/benchmarks.md`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::{check_character, normalise};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{RootBuilder, leaf_hash};
use dxmesh_protocol::token::GroupMasterKey;
use std::hint::black_box;

/// `n` valid ID numbers as an export would hold them; one in ten with a
/// lowercase `x`, full-width digits or stray spaces, one in fifty legacy.
fn raw_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let year = 1940 + (i % 80);
            let month = 1 + (i / 80) % 12;
            let day = 1 + (i / 960) % 28;
            let body = format!(
                "{:06}{year:04}{month:02}{day:02}{:03}",
                110101 + (i % 900) * 100,
                i % 1000
            );
            let check = check_character(body.as_bytes()) as char;
            match i % 50 {
                0 => format!("{}{}", &body[..6], &body[8..17]),
                1..=2 => format!("{body}{}", check.to_ascii_lowercase()),
                3..=4 => format!(" {body}{check}\u{3000}"),
                5 => format!("{body}{check}")
                    .chars()
                    .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
                    .collect(),
                _ => format!("{body}{check}"),
            }
        })
        .collect()
}

fn normalise_and_tokenise(c: &mut Criterion) {
    let ids = raw_ids(100_000);
    let reference = Date::new(2026, 11, 27).unwrap();
    let key = GroupMasterKey([7; 32]).epoch_key("registration", 12);
    let mut g = c.benchmark_group("id");
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("normalise+token/100k", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for raw in &ids {
                let id = normalise(raw, reference).unwrap();
                acc ^= key.id_token(&id).0[0];
            }
            black_box(acc)
        })
    });
    let normalised: Vec<_> = ids
        .iter()
        .map(|r| normalise(r, reference).unwrap())
        .collect();
    let name = dxmesh_protocol::token::AttrField::new("name").unwrap();
    g.bench_function("id_token/100k", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for id in &normalised {
                acc ^= key.id_token(id).0[0];
            }
            black_box(acc)
        })
    });
    g.bench_function("attr_token/100k", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for id in &normalised {
                acc ^= key.attr_token(&name, id, "王五").0[0];
            }
            black_box(acc)
        })
    });
    g.bench_function("normalise/100k", |b| {
        b.iter(|| {
            for raw in &ids {
                black_box(normalise(raw, reference).unwrap());
            }
        })
    });
    g.finish();
}

fn merkle_root(c: &mut Criterion) {
    let leaves: Vec<_> = (0..1_000_000u64)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut g = c.benchmark_group("merkle");
    g.sample_size(10);
    g.throughput(Throughput::Elements(leaves.len() as u64));
    g.bench_function("root/1M-leaves", |b| {
        b.iter(|| {
            let mut rb = RootBuilder::default();
            for l in &leaves {
                rb.push(*l);
            }
            black_box(rb.root())
        })
    });
    g.finish();
}

fn ed25519(c: &mut Criterion) {
    let id = Identity::from_seed([9; 32]).unwrap();
    let msg = [0x5au8; 256];
    let sig = id.sign_raw(&msg);
    let pk = id.public();
    let mut g = c.benchmark_group("ed25519");
    g.bench_function("sign/256B", |b| {
        b.iter(|| black_box(id.sign_raw(black_box(&msg))))
    });
    g.bench_function("verify/256B", |b| {
        b.iter_batched(
            || sig,
            |s| pk.verify(black_box(&msg), &s).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, normalise_and_tokenise, merkle_root, ed25519);
criterion_main!(benches);
