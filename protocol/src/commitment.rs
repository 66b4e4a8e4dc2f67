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

/// What a result's `other_province` was made from, for a job whose
/// agreement names its candidates: the comparator's commitment to the
/// candidates the ministry was asked about, the ministry's signed answers,
/// and the rule that picked the tokens insured in another province from
/// them (a province code other than `home_province`, one of
/// `insurance_types`). An auditor recomputes `other_province` from the
/// answers, and the result from the candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinistryBasis {
    /// Digest of the signed commitment to the candidates.
    pub candidates: Hash,
    /// Digests of the ministry's signed answers, in the order they came.
    pub answers: Vec<Hash>,
    /// The comparator's province code.
    pub home_province: String,
    /// The insurance types that count as insured elsewhere.
    pub insurance_types: Vec<String>,
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
    /// For a job whose agreement names its candidates: what its
    /// `other_province` was made from. None otherwise (and then
    /// `other_province` is empty).
    pub ministry: Option<MinistryBasis>,
}

impl SignedKind for ResultCommitment {
    const TAG: &'static str = "dxmesh/result-commitment/v1";
}

/// The rows of a provider's feed that a disclosure under a commitment may
/// return: the rows of some input the commitment reads from that feed (an
/// input's `where` keeps the rows whose clear field has one of its values).
/// The feed itself holds only the agreement's row scope, so a disclosed
/// row lies inside both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowScope {
    /// Every row of the feed: some input reads it unfiltered.
    Every,
    /// The rows that pass at least one of these filters (each: clear field
    /// -> values kept, every field must match). None: no input reads the
    /// feed, so no row may be disclosed.
    AnyOf(Vec<Vec<(String, Vec<String>)>>),
}

impl RowScope {
    /// The clear fields whose values decide the scope.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = match self {
            RowScope::Every => Vec::new(),
            RowScope::AnyOf(filters) => filters.iter().flatten().map(|(f, _)| f.as_str()).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether a row whose clear field values are `value_of(field)` is in
    /// scope (a field the row lacks matches no value).
    pub fn keeps<'v>(&self, value_of: impl Fn(&str) -> Option<&'v str>) -> bool {
        match self {
            RowScope::Every => true,
            RowScope::AnyOf(filters) => filters.iter().any(|filter| {
                filter.iter().all(|(field, values)| {
                    value_of(field).is_some_and(|v| values.iter().any(|x| x == v))
                })
            }),
        }
    }
}

impl ResultCommitment {
    /// The committed `other_province` set's count (0 if it states none).
    pub fn other_province_count(&self) -> u64 {
        self.sets
            .iter()
            .find(|s| s.name == "other_province")
            .map_or(0, |s| s.count)
    }

    /// The rows of the feed of `dataset` published by `department` that a
    /// disclosure under this commitment may return (see [`RowScope`]).
    pub fn row_scope(&self, dataset: &str, department: &str) -> RowScope {
        let mut filters = Vec::new();
        for i in &self.inputs {
            if i.input.dataset == dataset && i.input.provider == department {
                if i.input.filter.is_empty() {
                    return RowScope::Every;
                }
                filters.push(i.input.filter.clone());
            }
        }
        RowScope::AnyOf(filters)
    }
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
    /// tree whose leaf hashes are `leaves` (a pass over the leaves; see
    /// [`LeafTree`] for many proofs of one tree).
    pub fn prove(leaves: &[Hash], indices: &[u64]) -> Result<MultiProof, MultiProofError> {
        let size = leaves.len() as u64;
        check_indices(indices, size)?;
        let mut hashes = Vec::new();
        if !leaves.is_empty() {
            let root_of = |lo: u64, hi: u64| subtree_root(&leaves[lo as usize..hi as usize]);
            prove_range((0, size), indices, &root_of, &mut hashes);
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

/// Proof hashes for the subtree `[lo, hi)`, given the proven indices inside
/// it; `root_of(lo, hi)` is the hash of a subtree without one.
fn prove_range(
    (lo, hi): (u64, u64),
    indices: &[u64],
    root_of: &impl Fn(u64, u64) -> Hash,
    out: &mut Vec<Hash>,
) {
    if indices.is_empty() {
        out.push(root_of(lo, hi));
        return;
    }
    if hi - lo == 1 {
        return;
    }
    let k = split_point(hi - lo);
    let cut = indices.partition_point(|&i| i < lo + k);
    prove_range((lo, lo + k), &indices[..cut], root_of, out);
    prove_range((lo + k, hi), &indices[cut..], root_of, out);
}

/// The hashes of every complete, aligned subtree of a tree of leaves (level
/// 0 the leaves, level `h` the subtrees of `2^h` leaves), so that the
/// proofs for many batches of one committed result cost `O(log n)` a
/// subtree instead of a pass over all the leaves each: in an RFC 6962 tree
/// every left subtree is complete and aligned, and only the right spine of
/// a subtree is not. About twice the leaves' memory.
#[derive(Clone)]
pub struct LeafTree {
    levels: Vec<Vec<Hash>>,
}

impl std::fmt::Debug for LeafTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafTree")
            .field("size", &self.size())
            .finish()
    }
}

impl LeafTree {
    /// The tree of the sorted result `tokens`.
    pub fn of_tokens(tokens: &[IdToken]) -> LeafTree {
        let mut levels = vec![token_leaves(tokens)];
        while let Some(below) = levels.last().filter(|l| l.len() >= 2) {
            let above = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        LeafTree { levels }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The RFC 6962 root (the same as [`set_root`] gives).
    pub fn root(&self) -> Hash {
        match self.size() {
            0 => empty_root(),
            n => self.subtree(0, n),
        }
    }

    /// The hash of the subtree `[lo, hi)` (one of the tree's subtrees).
    fn subtree(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            if let Some(hash) = self.levels.get(h).and_then(|l| l.get((lo >> h) as usize)) {
                return *hash;
            }
        }
        let k = split_point(n);
        node_hash(&self.subtree(lo, lo + k), &self.subtree(lo + k, hi))
    }

    /// The proof for the leaves at `indices` (strictly increasing).
    pub fn prove(&self, indices: &[u64]) -> Result<MultiProof, MultiProofError> {
        let size = self.size();
        check_indices(indices, size)?;
        let mut hashes = Vec::new();
        if size > 0 {
            let root_of = |lo: u64, hi: u64| self.subtree(lo, hi);
            prove_range((0, size), indices, &root_of, &mut hashes);
        }
        Ok(MultiProof { hashes })
    }
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

    fn input(
        name: &str,
        dataset: &str,
        provider: &str,
        filter: &[(&str, &[&str])],
    ) -> CommittedInput {
        CommittedInput {
            input: AgreedInput {
                name: name.into(),
                dataset: dataset.into(),
                provider: provider.into(),
                filter: filter
                    .iter()
                    .map(|(f, v)| (f.to_string(), v.iter().map(|x| x.to_string()).collect()))
                    .collect(),
            },
            manifest: [0; 32],
        }
    }

    #[test]
    fn the_row_scope_is_the_union_of_the_inputs_read_from_the_feed() {
        let pension: &[&str] = &["enterprise_pension", "resident_pension"];
        let mut c = ResultCommitment {
            epoch: 1,
            result_kind: "deceased_insured".into(),
            expr: "(insured_pension & deaths_ca)".into(),
            inputs: vec![
                input("deaths_ca", "deaths", "civil_affairs", &[]),
                input(
                    "insured_pension",
                    "insured",
                    "hr",
                    &[("insurance_type", pension)],
                ),
            ],
            sets: vec![],
            count: 0,
            root: empty_root(),
            ministry: None,
        };
        let scope = c.row_scope("insured", "hr");
        assert_eq!(scope.fields(), vec!["insurance_type"]);
        let row = |t: &'static str| move |f: &str| (f == "insurance_type").then_some(t);
        assert!(scope.keeps(row("resident_pension")));
        assert!(!scope.keeps(row("medical")));
        assert!(!scope.keeps(|_| None));
        // Another provider's feed of the same dataset is not read.
        assert_eq!(c.row_scope("insured", "health"), RowScope::AnyOf(vec![]));
        assert!(
            !c.row_scope("insured", "health")
                .keeps(row("resident_pension"))
        );
        // An unfiltered input of the same feed opens every row.
        c.inputs.push(input("insured_any", "insured", "hr", &[]));
        assert_eq!(c.row_scope("insured", "hr"), RowScope::Every);
        assert!(c.row_scope("insured", "hr").keeps(row("medical")));
        // Two filters: a row passing either is kept; all fields of one must match.
        c.inputs.pop();
        c.inputs.push(input(
            "insured_medical",
            "insured",
            "hr",
            &[("insurance_type", &["medical"]), ("status", &["active"])],
        ));
        let scope = c.row_scope("insured", "hr");
        assert_eq!(scope.fields(), vec!["insurance_type", "status"]);
        let two = |t: &'static str, s: &'static str| {
            move |f: &str| match f {
                "insurance_type" => Some(t),
                "status" => Some(s),
                _ => None,
            }
        };
        assert!(scope.keeps(two("medical", "active")));
        assert!(!scope.keeps(two("medical", "ended")));
        assert!(scope.keeps(two("enterprise_pension", "ended")));
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
    fn the_leaf_tree_proves_and_roots_like_the_leaves() {
        for n in [0u64, 1, 2, 3, 5, 8, 13, 64, 100, 1000, 1025] {
            let tokens: Vec<IdToken> = (0..n)
                .map(|i| {
                    let mut t = [0u8; 16];
                    t[8..].copy_from_slice(&i.to_be_bytes());
                    IdToken(t)
                })
                .collect();
            let tree = LeafTree::of_tokens(&tokens);
            let l = token_leaves(&tokens);
            assert_eq!((tree.size(), tree.root()), set_root(&tokens), "n {n}");
            // Batches as the comparator sends them, and scattered leaves.
            let batches: Vec<Vec<u64>> = vec![
                (0..n.min(7)).collect(),
                (n / 3..n / 2).collect(),
                (0..n).step_by(17).collect(),
                (n.saturating_sub(5)..n).collect(),
            ];
            for idx in batches {
                assert_eq!(tree.prove(&idx), MultiProof::prove(&l, &idx), "n {n}");
            }
            assert!(tree.prove(&[n]).is_err());
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
