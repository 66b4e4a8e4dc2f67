//! Property tests of the RFC 6962 / RFC 9162 Merkle module on random trees of
//! 1 to 299 leaves: every inclusion and consistency proof built by
//! `inclusion_proof` / `consistency_proof` verifies, and no altered proof
//! does (one flipped bit in one proof hash, a flipped bit in a root or the
//! leaf, a changed index or size, a truncated or extended proof, a hash of the
//! wrong length). `RootBuilder` and `root()` agree with an independent
//! recursive definition of the tree hash.
//!
//! About changed sizes: a root does not commit to its tree's size, so a proof
//! can also verify under another size whose audit path has the same shape
//! (leaf 0 of a 3-leaf tree has the path `[l1, l2]`, exactly as leaf 0 of a
//! 4-leaf tree whose last two leaves hash to `l2`). That is RFC 6962 itself,
//! and why whatever signs a root (a feed manifest with its chunk list, an
//! audit checkpoint with its size) signs the size with it. So for changed
//! indices and sizes the tests require: the altered proof verifies exactly
//! when its path shape (computed here from the RFC's recursive PATH and
//! SUBPROOF definitions) equals the original's, and fails otherwise.

use dxmesh_protocol::merkle::{
    self, Hash, MerkleError, RootBuilder, consistency_proof, empty_root, inclusion_proof,
    leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    assert!(n >= 2);
    let mut k = 1;
    while k < n - k {
        k *= 2;
    }
    k
}

/// MTH of RFC 6962 §2.1, straight from the definition.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// `n` distinct leaf hashes, varied by `seed`.
fn tree(seed: u64, n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| {
            let mut data = seed.to_be_bytes().to_vec();
            data.extend_from_slice(&i.to_be_bytes());
            leaf_hash(&data)
        })
        .collect()
}

/// Which side a proof hash joins on, leaf to root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The proof hash is the left child (it is older than the leaf / old tree).
    Left,
    /// The proof hash is the right child.
    Right,
    /// The proof hash is the old tree's own root (consistency proofs whose
    /// old size is not a power of two start from it).
    Seed,
}

/// Shape of the audit path of leaf `m` in a tree of `n` leaves (RFC 9162
/// §2.1.3.1 PATH), leaf to root; `None` if there is no such leaf.
fn path_shape(m: u64, n: u64) -> Option<Vec<Side>> {
    if m >= n {
        return None;
    }
    if n == 1 {
        return Some(Vec::new());
    }
    let k = split(n);
    let (mut inner, side) = if m < k {
        (path_shape(m, k)?, Side::Right)
    } else {
        (path_shape(m - k, n - k)?, Side::Left)
    };
    inner.push(side);
    Some(inner)
}

/// Shape of the consistency proof from `m` to `n` leaves (RFC 9162 §2.1.4.1
/// SUBPROOF), leaf to root; `None` if the sizes cannot have one.
fn consistency_shape(m: u64, n: u64) -> Option<Vec<Side>> {
    fn sub(m: u64, n: u64, complete: bool) -> Vec<Side> {
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![Side::Seed]
            };
        }
        let k = split(n);
        let mut inner;
        if m <= k {
            inner = sub(m, k, complete);
            inner.push(Side::Right);
        } else {
            inner = sub(m - k, n - k, false);
            inner.push(Side::Left);
        }
        inner
    }
    (m >= 1 && m <= n).then(|| sub(m, n, true))
}

/// Index and size variations around `(i, n)`, all different from it.
fn variations(i: u64, n: u64, extra: (u64, u64)) -> Vec<(u64, u64)> {
    let around = |x: u64| {
        [
            x.wrapping_sub(1),
            x + 1,
            x ^ 1,
            x ^ 2,
            x * 2,
            x + x.next_power_of_two(),
            0,
            1,
            u64::MAX,
        ]
    };
    let mut out = Vec::new();
    for i2 in around(i).into_iter().chain([n, n - 1, extra.0]) {
        out.push((i2, n));
    }
    for n2 in around(n).into_iter().chain([i, i + 1, extra.1]) {
        out.push((i, n2));
    }
    for (i2, n2) in [(i + 1, n + 1), (i * 2, n * 2), (extra.0, extra.1)] {
        out.push((i2, n2));
    }
    out.retain(|&v| v != (i, n));
    out
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8 % 32] ^= 1 << (bit % 8);
    h
}

/// A random tree: a seed, a size and two positions in it.
fn trees() -> impl Strategy<Value = (u64, usize, Index, Index)> {
    (any::<u64>(), 1usize..300, any::<Index>(), any::<Index>())
}

proptest! {
    // Building every proof of a tree is quadratic; fewer, larger cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_proof_of_a_random_tree_verifies(seed in any::<u64>(), n in 1usize..300) {
        let leaves = tree(seed, n);
        let mut builder = RootBuilder::default();
        let mut prefix_roots = vec![empty_root()];
        for l in &leaves {
            builder.push(*l);
            prefix_roots.push(builder.root());
        }
        let root = prefix_roots[n];
        prop_assert_eq!(root, mth(&leaves));
        let size = n as u64;
        for i in 0..size {
            let p = inclusion_proof(&leaves, i).unwrap();
            prop_assert_eq!((p.index, p.size), (i, size));
            prop_assert_eq!(p.path.len(), path_shape(i, size).unwrap().len());
            prop_assert_eq!(p.verify(&leaves[i as usize], &root), Ok(()), "leaf {} of {}", i, n);
        }
        for m in 1..=size {
            let p = consistency_proof(&leaves, m).unwrap();
            prop_assert_eq!((p.size1, p.size2), (m, size));
            prop_assert_eq!(p.path.len(), consistency_shape(m, size).unwrap().len());
            prop_assert_eq!(p.verify(&prefix_roots[m as usize], &root), Ok(()), "{} to {}", m, n);
        }
        prop_assert_eq!(
            inclusion_proof(&leaves, size),
            Err(MerkleError::IndexOutOfRange { index: size, size })
        );
        prop_assert!(consistency_proof(&leaves, 0).is_err());
        prop_assert!(consistency_proof(&leaves, size + 1).is_err());
    }
}

proptest! {
    #[test]
    fn altered_inclusion_proofs_fail(
        (seed, n, at, _) in trees(),
        element in any::<Index>(),
        bit in 0usize..256,
        extra in (0u64..600, 0u64..600),
        junk in any::<[u8; 32]>(),
    ) {
        let leaves = tree(seed, n);
        let root = merkle::root(&leaves);
        let (size, i) = (n as u64, at.index(n) as u64);
        let leaf = leaves[i as usize];
        let p = inclusion_proof(&leaves, i).unwrap();
        let path = p.path.clone();
        prop_assert_eq!(verify_inclusion(&leaf, i, size, &path, &root), Ok(()));

        // Altered root or leaf.
        prop_assert!(verify_inclusion(&leaf, i, size, &path, &flip(&root, bit)).is_err());
        prop_assert!(verify_inclusion(&flip(&leaf, bit), i, size, &path, &root).is_err());

        // One flipped bit in one proof hash.
        if !path.is_empty() {
            let mut bad = path.clone();
            let j = element.index(bad.len());
            bad[j] = flip(&bad[j], bit);
            prop_assert!(verify_inclusion(&leaf, i, size, &bad, &root).is_err(), "hash {}", j);
        }

        // Truncated (either end) or extended (either end).
        if !path.is_empty() {
            prop_assert!(verify_inclusion(&leaf, i, size, &path[1..], &root).is_err());
            prop_assert!(verify_inclusion(&leaf, i, size, &path[..path.len() - 1], &root).is_err());
        }
        for extended in [[&path[..], &[junk]].concat(), [&[junk], &path[..]].concat()] {
            prop_assert!(verify_inclusion(&leaf, i, size, &extended, &root).is_err());
        }
        let doubled = [&path[..], &path[..]].concat();
        if !path.is_empty() {
            prop_assert!(verify_inclusion(&leaf, i, size, &doubled, &root).is_err());
        }

        // Hashes of the wrong length are an error, never a panic.
        let mut wrong_len: Vec<Vec<u8>> = path.iter().map(|h| h.to_vec()).collect();
        if let Some(first) = wrong_len.first_mut() {
            first.pop();
            prop_assert_eq!(
                verify_inclusion(&leaf, i, size, &wrong_len, &root),
                Err(MerkleError::BadHashLength { len: 31 })
            );
        }
        prop_assert!(verify_inclusion(&leaf[..31], i, size, &path, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, i, size, &path, &root[..31]).is_err());

        // Changed index or size: verifies exactly when the path shape is the same.
        let shape = path_shape(i, size);
        for (i2, n2) in variations(i, size, extra) {
            let same_shape = path_shape(i2, n2).is_some() && path_shape(i2, n2) == shape;
            let got = verify_inclusion(&leaf, i2, n2, &path, &root);
            prop_assert_eq!(
                got.is_ok(), same_shape,
                "leaf {} of {} verified as leaf {} of {}: {:?}", i, size, i2, n2, got
            );
            if n2 == size {
                prop_assert!(got.is_err(), "another index of the same tree verified");
            }
        }
    }

    #[test]
    fn altered_consistency_proofs_fail(
        (seed, n, at, _) in trees(),
        element in any::<Index>(),
        bit in 0usize..256,
        extra in (0u64..600, 0u64..600),
        junk in any::<[u8; 32]>(),
    ) {
        let leaves = tree(seed, n);
        let size2 = n as u64;
        let size1 = at.index(n) as u64 + 1;
        let root1 = merkle::root(&leaves[..size1 as usize]);
        let root2 = merkle::root(&leaves);
        let path = consistency_proof(&leaves, size1).unwrap().path;
        prop_assert_eq!(verify_consistency(size1, size2, &path, &root1, &root2), Ok(()));

        // Altered roots, or roots swapped.
        prop_assert!(verify_consistency(size1, size2, &path, &flip(&root1, bit), &root2).is_err());
        prop_assert!(verify_consistency(size1, size2, &path, &root1, &flip(&root2, bit)).is_err());
        if size1 != size2 {
            prop_assert!(verify_consistency(size1, size2, &path, &root2, &root1).is_err());
        }

        // One flipped bit in one proof hash.
        if !path.is_empty() {
            let mut bad = path.clone();
            let j = element.index(bad.len());
            bad[j] = flip(&bad[j], bit);
            prop_assert!(verify_consistency(size1, size2, &bad, &root1, &root2).is_err(), "hash {}", j);
        }

        // Truncated (either end) or extended (either end).
        if !path.is_empty() {
            prop_assert!(verify_consistency(size1, size2, &path[1..], &root1, &root2).is_err());
            prop_assert!(
                verify_consistency(size1, size2, &path[..path.len() - 1], &root1, &root2).is_err()
            );
            let doubled = [&path[..], &path[..]].concat();
            prop_assert!(verify_consistency(size1, size2, &doubled, &root1, &root2).is_err());
        }
        for extended in [[&path[..], &[junk]].concat(), [&[junk], &path[..]].concat()] {
            prop_assert!(verify_consistency(size1, size2, &extended, &root1, &root2).is_err());
        }

        // Hashes of the wrong length are an error, never a panic.
        let mut wrong_len: Vec<Vec<u8>> = path.iter().map(|h| h.to_vec()).collect();
        if let Some(last) = wrong_len.last_mut() {
            last.push(0);
            prop_assert_eq!(
                verify_consistency(size1, size2, &wrong_len, &root1, &root2),
                Err(MerkleError::BadHashLength { len: 33 })
            );
        }
        prop_assert!(verify_consistency(size1, size2, &path, &root1[..31], &root2).is_err());
        prop_assert!(verify_consistency(size1, size2, &path, &root1, &root2[..31]).is_err());

        // Changed sizes: verifies exactly when the proof shape is the same
        // (two equal sizes need an empty proof and equal roots instead).
        let shape = consistency_shape(size1, size2);
        for (m2, n2) in variations(size1, size2, extra) {
            let expected = if m2 == n2 {
                m2 != 0 && path.is_empty() && root1 == root2
            } else {
                consistency_shape(m2, n2).is_some() && consistency_shape(m2, n2) == shape
            };
            let got = verify_consistency(m2, n2, &path, &root1, &root2);
            prop_assert_eq!(
                got.is_ok(), expected,
                "proof {} -> {} verified as {} -> {}: {:?}", size1, size2, m2, n2, got
            );
        }
    }

    #[test]
    fn root_builder_equals_root_and_the_definition(
        seed in any::<u64>(),
        n in 0usize..300,
        checkpoints in prop::collection::vec(any::<Index>(), 4),
    ) {
        let leaves = tree(seed, n);
        let mut checks: Vec<usize> = checkpoints.iter().map(|c| c.index(n + 1)).collect();
        checks.extend([0, n]);
        let mut builder = RootBuilder::default();
        for (pushed, l) in leaves.iter().enumerate() {
            if checks.contains(&pushed) {
                prop_assert_eq!(builder.root(), mth(&leaves[..pushed]), "after {} leaves", pushed);
            }
            builder.push(*l);
            prop_assert_eq!(builder.size(), pushed as u64 + 1);
        }
        prop_assert_eq!(builder.root(), mth(&leaves));
        prop_assert_eq!(merkle::root(&leaves), builder.root());
    }
}

#[test]
fn empty_and_tiny_trees() {
    assert_eq!(merkle::root(&[]), empty_root());
    assert_eq!(RootBuilder::default().root(), empty_root());
    let l = tree(7, 3);
    assert_eq!(merkle::root(&l[..1]), l[0]);
    assert_eq!(merkle::root(&l[..2]), node_hash(&l[0], &l[1]));
    assert_eq!(merkle::root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    // The shape coincidence described at the top of this file, concretely.
    let p = inclusion_proof(&l, 0).unwrap();
    assert_eq!(p.path, vec![l[1], l[2]]);
    assert_eq!(
        verify_inclusion(&l[0], 0, 4, &p.path, &merkle::root(&l)),
        Ok(())
    );
    assert!(verify_inclusion(&l[0], 0, 5, &p.path, &merkle::root(&l)).is_err());
}

#[test]
fn shape_models_match_the_builders_on_small_trees() {
    // The test's own models against the crate's builders, exhaustively.
    for n in 1..=64u64 {
        let leaves = tree(n, n as usize);
        for i in 0..n {
            let p = inclusion_proof(&leaves, i).unwrap();
            assert_eq!(p.path.len(), path_shape(i, n).unwrap().len());
        }
        for m in 1..=n {
            let p = consistency_proof(&leaves, m).unwrap();
            assert_eq!(p.path.len(), consistency_shape(m, n).unwrap().len());
        }
    }
}
