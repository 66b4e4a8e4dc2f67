//! RFC 6962 / RFC 9162 Merkle trees: leaf and node hashing, the root of a
//! list of leaves, a streaming root builder, inclusion and consistency
//! proofs, and their verifiers.
//!
//! Hashing: leaf `SHA-256(0x00 || data)`, interior node
//! `SHA-256(0x01 || left || right)`, the split at the largest power of two
//! below the number of leaves. The empty tree's root is `SHA-256("")`.
//! Feed manifests (chunk hashes) and audit logs (events) both use this module;
//! it holds no storage and does no I/O. The verifiers take byte slices so that
//! a malformed proof from the wire (wrong hash length, garbage) is an error,
//! never a panic; they pass every case of the transparency-dev test vectors.
//! The [`tyalias@Hash`] type itself is defined in [`crate::hash`] and
//! re-exported here.

pub use crate::hash::Hash;
use crate::hash::sha256;
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

/// Why a proof did not verify or could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Index asked for.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof was asked between sizes that cannot have one.
    #[error("no consistency proof from size {size1} to size {size2}")]
    BadSizes {
        /// Older tree size.
        size1: u64,
        /// Newer tree size.
        size2: u64,
    },
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("proof has the wrong number of hashes")]
    WrongProofLength,
    /// A hash in the proof, or the leaf hash, is not 32 bytes.
    #[error("a hash is {len} bytes, not 32")]
    BadHashLength {
        /// Its length.
        len: usize,
    },
    /// The recomputed root is not the expected root.
    #[error("recomputed root does not match the expected root")]
    RootMismatch,
}

/// The hash of a leaf holding `data`: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    to_hash(ctx.finish().as_ref())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&buf)
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    sha256(b"")
}

fn to_hash(bytes: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(bytes);
    h
}

/// Largest power of two strictly below `n` (`n >= 2`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// An inclusion proof as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Index of the leaf.
    pub index: u64,
    /// Size of the tree the proof is for.
    pub size: u64,
    /// Audit path, leaf to root.
    pub path: Vec<Hash>,
}

/// A consistency proof as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Older tree size.
    pub size1: u64,
    /// Newer tree size.
    pub size2: u64,
    /// Proof hashes.
    pub path: Vec<Hash>,
}

/// Root of the tree whose leaf hashes are `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut b = RootBuilder::default();
    for l in leaves {
        b.push(*l);
    }
    b.root()
}

/// Builds a root over a stream of leaf hashes in `O(log n)` memory: a stack
/// of perfect subtrees, merged as they fill (a "compact range").
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    size: u64,
    /// Roots of perfect subtrees, largest first.
    stack: Vec<Hash>,
}

impl RootBuilder {
    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut size = self.size;
        // Each trailing one bit of `size` is a full subtree to merge with.
        while size & 1 == 1 {
            let left = self
                .stack
                .pop()
                .expect("stack holds one subtree per set bit");
            h = node_hash(&left, &h);
            size >>= 1;
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// Number of leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root over the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// Root of a sub-slice by recursion (used by the proof builders).
pub(crate) fn subtree_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

/// Inclusion proof (RFC 9162 §2.1.3.1) for leaf `index` of `leaves`.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<InclusionProof, MerkleError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    let (mut lo, mut hi, m) = (0usize, leaves.len(), index as usize);
    // Walk down, remembering the sibling roots; the path is leaf-to-root.
    while hi - lo > 1 {
        let k = split_point((hi - lo) as u64) as usize;
        if m < lo + k {
            path.push(subtree_root(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(subtree_root(&leaves[lo..lo + k]));
            lo += k;
        }
    }
    path.reverse();
    Ok(InclusionProof { index, size, path })
}

/// Consistency proof (RFC 9162 §2.1.4.1) from the first `size1` leaves to all of `leaves`.
pub fn consistency_proof(leaves: &[Hash], size1: u64) -> Result<ConsistencyProof, MerkleError> {
    let size2 = leaves.len() as u64;
    if size1 == 0 || size1 > size2 {
        return Err(MerkleError::BadSizes { size1, size2 });
    }
    let mut path = Vec::new();
    subproof(size1 as usize, leaves, true, &mut path);
    path.reverse();
    Ok(ConsistencyProof { size1, size2, path })
}

/// SUBPROOF of RFC 9162, pushing hashes root-to-leaf (reversed by the caller).
fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(subtree_root(leaves));
        }
        return;
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        out.push(subtree_root(&leaves[k..]));
        subproof(m, &leaves[..k], complete, out);
    } else {
        out.push(subtree_root(&leaves[..k]));
        subproof(m - k, &leaves[k..], false, out);
    }
}

fn hash_of(bytes: &[u8]) -> Result<Hash, MerkleError> {
    if bytes.len() != 32 {
        return Err(MerkleError::BadHashLength { len: bytes.len() });
    }
    Ok(to_hash(bytes))
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves with root `root`.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut r = hash_of(leaf_hash)?;
    let (mut fnode, mut snode) = (index, size - 1);
    for p in proof {
        let p = hash_of(p.as_ref())?;
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(&p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, &p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if r.as_slice() != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the
/// tree of `size1` leaves with root `root1`.
///
/// A consistency check from the empty tree proves nothing and is refused.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), MerkleError> {
    if size1 == 0 || size2 < size1 {
        return Err(MerkleError::BadSizes { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(MerkleError::WrongProofLength);
    }
    let mut path = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(hash_of(root1)?);
    }
    for p in proof {
        path.push(hash_of(p.as_ref())?);
    }
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if fr.as_slice() != root1 || sr.as_slice() != root2 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

impl InclusionProof {
    /// Verifies this proof for `leaf_hash` against `root`.
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), MerkleError> {
        verify_inclusion(leaf_hash, self.index, self.size, &self.path, root)
    }
}

impl ConsistencyProof {
    /// Verifies this proof between `root1` (at `size1`) and `root2` (at `size2`).
    pub fn verify(&self, root1: &Hash, root2: &Hash) -> Result<(), MerkleError> {
        verify_consistency(self.size1, self.size2, &self.path, root1, root2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn builder_matches_recursive_definition() {
        for n in 0..70 {
            let l = leaves(n);
            assert_eq!(root(&l), subtree_root(&l), "n = {n}");
        }
    }

    #[test]
    fn every_proof_of_small_trees_verifies() {
        for n in 1..40u64 {
            let l = leaves(n as usize);
            let r = root(&l);
            for i in 0..n {
                let p = inclusion_proof(&l, i).unwrap();
                p.verify(&l[i as usize], &r).unwrap();
            }
            for m in 1..=n {
                let p = consistency_proof(&l, m).unwrap();
                p.verify(&root(&l[..m as usize]), &r).unwrap();
            }
        }
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex_of(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn hex_of(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }
}
