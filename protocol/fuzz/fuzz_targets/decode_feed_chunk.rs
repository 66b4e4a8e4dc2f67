//! Decodes arbitrary bytes as a feed `Chunk` (and as the `ChunkRequest`
//! that opens a bulk stream), validates the chunk against several schemas
//! and reads every value of one that validates, then checks the bytes as
//! chunk 0 and 1 of a fixed signed feed, as a pull does. Must never panic;
//! bytes that are not the feed's own chunks are always refused.

#![no_main]

use dxmesh_protocol::agreement::{FieldTerm, Treatment};
use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{Chunk, ChunkRequest, Manifest, Quality, schema_shape};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{Hash, leaf_hash, root};
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::{AttrToken, IdToken};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A schema of one token field, `attrs` attribute tokens and `clear` clear fields.
fn schema(attrs: usize, clear: usize) -> Vec<FieldTerm> {
    let field = |name: String, treatment| FieldTerm { name, treatment };
    let mut s = vec![field("id_number".into(), Treatment::Token)];
    s.extend((0..attrs).map(|i| field(format!("a{i}"), Treatment::AttrToken)));
    s.extend((0..clear).map(|i| field(format!("c{i}"), Treatment::Clear)));
    s
}

/// A feed of two chunks over `schema(1, 1)`: its manifest and chunk bytes.
fn feed() -> &'static (Manifest, Vec<Vec<u8>>) {
    static F: OnceLock<(Manifest, Vec<Vec<u8>>)> = OnceLock::new();
    F.get_or_init(|| {
        let mut bytes = Vec::new();
        let mut first = Vec::new();
        for (index, start) in [(0u32, 1u8), (1, 40)] {
            let mut c = Chunk::new(index, &schema(1, 1));
            for i in 0..3u8 {
                c.push(&IdToken([start + i; 16]), &[AttrToken([i; 8])], &["广州"]);
            }
            first.push(c.id(0));
            bytes.push(encode(&c).unwrap());
        }
        let hashes: Vec<Hash> = bytes.iter().map(|b| leaf_hash(b)).collect();
        let m = Manifest {
            provider: Identity::from_seed([1; 32]).expect("a seed").public(),
            agreement: [7; 32],
            consumer: Identity::from_seed([2; 32]).expect("a seed").public(),
            dataset: "registry".into(),
            epoch: 3,
            reference_date: Date::new(2026, 12, 1).expect("a date"),
            schema: schema(1, 1),
            records: 6,
            root: root(&hashes),
            chunk_hashes: hashes,
            first_tokens: first,
            quality: Quality::default(),
            created_at: Timestamp(0),
            previous: None,
        };
        (m, bytes)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = decode::<ChunkRequest>(data);
    let (m, own) = feed();
    for index in 0..3 {
        let verified = m.verify_chunk(index, data);
        if own.get(index as usize).is_none_or(|b| b != data) {
            assert!(verified.is_err());
        }
    }
    let Ok(chunk) = decode::<Chunk>(data) else {
        return;
    };
    assert_eq!(
        decode::<Chunk>(&encode(&chunk).unwrap()).as_ref(),
        Ok(&chunk)
    );
    for (attrs, clear) in [(0, 0), (1, 1), (2, 0), (0, 2)] {
        let s = schema(attrs, clear);
        if chunk.validate(&s).is_err() {
            continue;
        }
        let (a, c) = schema_shape(&s);
        for i in 0..chunk.count as usize {
            let _ = chunk.id(i);
            for col in 0..a {
                let _ = chunk.attr(col, i);
            }
            for col in 0..c {
                let _ = chunk.clear_value(col, i);
            }
        }
    }
});
