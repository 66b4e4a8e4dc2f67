//! Result commitments: what the comparator signs before it asks anyone to
//! disclose a result, and the proofs that tie each disclosed token to it.
//!
//! A [`ResultCommitment`] names the epoch, the result kind, the agreed
//! expression of its job, every input feed (its agreed definition and the
//! digest of the manifest its provider signed), the sets the expression
//! uses that are not feeds (`other_province`, as a count and a root), the
//! number of result tokens and the RFC 6962 root over the sorted result
//! tokens (leaf data: the 16 token bytes). A provider checks a request
//! against it online (the agreement names that job; its own feed is an
//! input; each token is a leaf of the committed tree, by a [`MultiProof`]);
//! an auditor recomputes the result from the same feeds offline and
//! compares the root. The commitment hides nothing the comparator does not
//! already hold: tokens, counts and digests.
//!
//! A [`MultiProof`] proves several leaves of one tree at once: the hashes
//! of the maximal subtrees that hold none of the proven leaves, in the
//! order a left-to-right recursion meets them (RFC 6962's split at the
//! largest power of two below the size). For a contiguous run of leaves it
//! holds at most two hashes per tree level.

use crate::agreement::terms::AgreedInput;
use crate::hash::Hash;
use crate::merkle::{empty_root, leaf_hash, node_hash, split_point, subtree_root};
use crate::signed::SignedKind;
use crate::token::IdToken;
use serde::{Deserialize, Serialize};

/// One input feed of a committed result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedInput {
    /// The input as the agreement defines it.
    pub input: AgreedInput,
    /// Digest of the provider-signed manifest of the feed that was read.
    pub manifest: Hash,
}

/// A set the expression uses that is not a feed (`other_province`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedSet {
    /// Its name in the expression.
    pub name: String,
    /// Tokens in it.
    pub count: u64,
    /// RFC 6962 root over its sorted tokens.
    pub root: Hash,
}

/// A comparator's signed statement of one result of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultCommitment {
    /// The epoch whose feeds were compared.
    pub epoch: u64,
    /// The result kind (e.g. `uninsured`).
    pub result_kind: String,
    /// The job's expression, as the agreement states it.
    pub expr: String,
    /// The input feeds, sorted by input name.
    pub inputs: Vec<CommittedInput>,
    /// The non-feed sets, sorted by name.
    pub sets: Vec<CommittedSet>,
    /// Result tokens.
    pub count: u64,
    /// RFC 6962 root over the sorted result tokens.
    pub root: Hash,
}

impl SignedKind for ResultCommitment {
    const TAG: &'static str = "dxmesh/result-commitment/v1";
}

/// The leaf hashes of sorted tokens, in order.
pub fn token_leaves(tokens: &[IdToken]) -> Vec<Hash> {
    tokens.iter().map(|t| leaf_hash(&t.0)).collect()
}

/// The count and root of a sorted token set.
pub fn set_root(tokens: &[IdToken]) -> (u64, Hash) {
    (
        tokens.len() as u64,
        crate::merkle::root(&token_leaves(tokens)),
    )
}

/// Why a multi-leaf proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultiProofError {
    /// The leaf indices are not strictly increasing inside the tree.
    #[error("leaf indices must increase strictly and lie below the tree size {size}")]
    BadIndices {
        /// The tree size.
        size: u64,
    },
    /// The proof has too few or too many hashes.
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    /// The leaves and the proof make another root.
    #[error("the leaves and the proof do not make the committed root")]
    RootMismatch,
}

/// A proof that some leaves belong to a tree of `size` leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiProof {
    /// The hashes of the subtrees without a proven leaf, left to right.
    pub hashes: Vec<Hash>,
}

impl MultiProof {
    /// The proof for the leaves at `indices` (strictly increasing) of the
    /// tree whose leaf hashes are `leaves`.
    pub fn prove(leaves: &[Hash], indices: &[u64]) -> Result<MultiProof, MultiProofError> {
        let size = leaves.len() as u64;
        check_indices(indices, size)?;
        let mut hashes = Vec::new();
        if !leaves.is_empty() {
            prove_range(leaves, 0, indices, &mut hashes);
        }
        Ok(MultiProof { hashes })
    }

    /// Checks that `items` (leaf index, leaf hash; indices strictly
    /// increasing) are leaves of the tree of `size` leaves whose root is
    /// `root`.
    pub fn verify(
        &self,
        size: u64,
        items: &[(u64, Hash)],
        root: &Hash,
    ) -> Result<(), MultiProofError> {
        let indices: Vec<u64> = items.iter().map(|(i, _)| *i).collect();
        check_indices(&indices, size)?;
        let got = if size == 0 {
            if !self.hashes.is_empty() {
                return Err(MultiProofError::WrongLength);
            }
            empty_root()
        } else {
            let mut next = self.hashes.iter();
            let r = verify_range(0, size, items, &mut next)?;
            if next.next().is_some() {
                return Err(MultiProofError::WrongLength);
            }
            r
        };
        if got == *root {
            Ok(())
        } else {
            Err(MultiProofError::RootMismatch)
        }
    }
}

fn check_indices(indices: &[u64], size: u64) -> Result<(), MultiProofError> {
    let increasing = indices.windows(2).all(|w| w[0] < w[1]);
    if !increasing || indices.last().is_some_and(|&i| i >= size) {
        return Err(MultiProofError::BadIndices { size });
    }
    Ok(())
}

/// Proof hashes for `leaves` (the subtree starting at leaf `lo`), given the
/// proven indices inside it.
fn prove_range(leaves: &[Hash], lo: u64, indices: &[u64], out: &mut Vec<Hash>) {
    if indices.is_empty() {
        out.push(subtree_root(leaves));
        return;
    }
    if leaves.len() == 1 {
        return;
    }
    let k = split_point(leaves.len() as u64);
    let cut = indices.partition_point(|&i| i < lo + k);
    prove_range(&leaves[..k as usize], lo, &indices[..cut], out);
    prove_range(&leaves[k as usize..], lo + k, &indices[cut..], out);
}

/// The root of the subtree `[lo, hi)` from the proven `items` inside it and
/// the proof hashes.
fn verify_range<'a>(
    lo: u64,
    hi: u64,
    items: &[(u64, Hash)],
    next: &mut impl Iterator<Item = &'a Hash>,
) -> Result<Hash, MultiProofError> {
    if items.is_empty() {
        return next.next().copied().ok_or(MultiProofError::WrongLength);
    }
    if hi - lo == 1 {
        return Ok(items[0].1);
    }
    let k = split_point(hi - lo);
    let cut = items.partition_point(|(i, _)| *i < lo + k);
    let left = verify_range(lo, lo + k, &items[..cut], next)?;
    let right = verify_range(lo + k, hi, &items[cut..], next)?;
    Ok(node_hash(&left, &right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::root;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_subset_of_small_trees_proves_and_nothing_else_does() {
        for n in 0..=9u64 {
            let l = leaves(n);
            let r = root(&l);
            for mask in 0u32..(1 << n) {
                let idx: Vec<u64> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
                let p = MultiProof::prove(&l, &idx).unwrap();
                let items: Vec<(u64, Hash)> = idx.iter().map(|&i| (i, l[i as usize])).collect();
                p.verify(n, &items, &r).unwrap();
                if let Some(&(i, _)) = items.first() {
                    // Another leaf at a proven place fails.
                    let mut bad = items.clone();
                    bad[0].1 = leaf_hash(b"other");
                    assert_eq!(p.verify(n, &bad, &r), Err(MultiProofError::RootMismatch));
                    // The proof does not carry over to another index.
                    if i + 1 < n && !idx.contains(&(i + 1)) {
                        let mut moved = items.clone();
                        moved[0].0 = i + 1;
                        assert!(p.verify(n, &moved, &r).is_err(), "n {n} mask {mask}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_run_takes_at_most_two_hashes_per_level_and_bad_input_is_refused() {
        let l = leaves(100_000);
        let idx: Vec<u64> = (30_000..70_000).collect();
        let p = MultiProof::prove(&l, &idx).unwrap();
        assert!(p.hashes.len() <= 2 * 17, "{}", p.hashes.len());
        assert_eq!(
            MultiProof::prove(&l, &[5, 5]),
            Err(MultiProofError::BadIndices { size: 100_000 })
        );
        assert!(MultiProof::prove(&l, &[100_000]).is_err());
        let items: Vec<(u64, Hash)> = idx.iter().map(|&i| (i, l[i as usize])).collect();
        let r = root(&l);
        let mut short = p.clone();
        short.hashes.pop();
        assert_eq!(
            short.verify(100_000, &items, &r),
            Err(MultiProofError::WrongLength)
        );
        let mut long = p.clone();
        long.hashes.push([0; 32]);
        assert_eq!(
            long.verify(100_000, &items, &r),
            Err(MultiProofError::WrongLength)
        );
        // The tree size is part of the proof's shape: a size that splits
        // the run differently does not verify (the size itself is bound by
        // the signed count of the commitment).
        assert!(p.verify(50_000, &items, &r).is_err());
    }
}
