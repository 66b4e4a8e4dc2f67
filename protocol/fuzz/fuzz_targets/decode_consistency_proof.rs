//! Decodes arbitrary bytes as a `ConsistencyProof` and verifies it between the
//! prefix roots of a fixed 7-leaf tree. Must never panic; a proof that
//! verifies between two real prefix sizes must be the honest proof.

#![no_main]

use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::merkle::{ConsistencyProof, Hash, consistency_proof, leaf_hash, root};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const LEAVES: usize = 7;

/// The leaves and the roots of every prefix (`roots[m]` is the root of `m` leaves).
fn tree() -> &'static (Vec<Hash>, Vec<Hash>) {
    static TREE: OnceLock<(Vec<Hash>, Vec<Hash>)> = OnceLock::new();
    TREE.get_or_init(|| {
        let leaves: Vec<Hash> = (0..LEAVES as u64)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let roots = (0..=LEAVES).map(|m| root(&leaves[..m])).collect();
        (leaves, roots)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = decode::<ConsistencyProof>(data) else {
        return;
    };
    assert_eq!(
        decode::<ConsistencyProof>(&encode(&proof).unwrap()).as_ref(),
        Ok(&proof)
    );
    let (leaves, roots) = tree();
    let root_of = |size: u64| roots[usize::try_from(size).unwrap_or(0).min(LEAVES)];
    let (r1, r2) = (root_of(proof.size1), root_of(proof.size2));
    let ok = proof.verify(&r1, &r2).is_ok();
    if ok && proof.size2 == LEAVES as u64 && proof.size1 >= 1 && proof.size1 < proof.size2 {
        assert_eq!(proof, consistency_proof(leaves, proof.size1).unwrap());
    }
    let _ = proof.verify(&roots[LEAVES], &roots[1]);
    let _ = proof.verify(&[0x55; 32], &[0xAA; 32]);
});
