//! Decodes arbitrary bytes as an `InclusionProof` and verifies it against a
//! fixed 7-leaf tree, for each of its leaves. Must never panic; a proof that
//! verifies for the tree's own size must be the honest proof of that leaf.

#![no_main]

use dxmesh_protocol::codec::{decode, encode};
use dxmesh_protocol::merkle::{Hash, InclusionProof, inclusion_proof, leaf_hash, root};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const LEAVES: u64 = 7;

fn tree() -> &'static (Vec<Hash>, Hash) {
    static TREE: OnceLock<(Vec<Hash>, Hash)> = OnceLock::new();
    TREE.get_or_init(|| {
        let leaves: Vec<Hash> = (0..LEAVES).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let r = root(&leaves);
        (leaves, r)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = decode::<InclusionProof>(data) else {
        return;
    };
    assert_eq!(
        decode::<InclusionProof>(&encode(&proof).unwrap()).as_ref(),
        Ok(&proof)
    );
    let (leaves, r) = tree();
    for (i, leaf) in leaves.iter().enumerate() {
        if proof.verify(leaf, r).is_ok() && proof.size == LEAVES {
            assert_eq!(proof.index, i as u64);
            assert_eq!(proof, inclusion_proof(leaves, i as u64).unwrap());
        }
    }
    // And against a root that is no tree's.
    let _ = proof.verify(&leaves[0], &[0xAA; 32]);
});
