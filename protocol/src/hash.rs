//! SHA-256 and the 32-byte [`tyalias@Hash`] type that the other modules
//! share: Merkle leaves, nodes and roots, content addresses of signed
//! values, agreement ids. A leaf module: it imports nothing from the crate,
//! so every module can use it without forming an import cycle.

use ring::digest::{SHA256, digest};

/// A SHA-256 hash: a leaf hash, an interior node, a root or a content address.
pub type Hash = [u8; 32];

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(digest(&SHA256, bytes).as_ref());
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_nothing_and_of_abc() {
        let hex = |h: &[u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(&super::sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&super::sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
