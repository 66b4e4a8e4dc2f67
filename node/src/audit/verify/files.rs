//! Reading a bundle's files: one whole file, a folder's files in name order,
//! and the public key a PeerId (a file or folder name) stands for.

use super::error::BundleError;
use dxmesh_protocol::identity::PublicKey;
use std::path::{Path, PathBuf};

/// The bytes of the file at `path`.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, BundleError> {
    std::fs::read(path).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of the file at `path` as text (invalid UTF-8 replaced).
pub(super) fn read_text(path: &Path) -> Result<String, BundleError> {
    Ok(String::from_utf8_lossy(&read(path)?).into_owned())
}

/// The entries of folder `dir`, sorted by name; none if it cannot be read.
pub(super) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The Ed25519 key behind the PeerId `peer`, if it is one.
pub(super) fn peer_key(peer: &str) -> Option<PublicKey> {
    peer.parse::<libp2p::PeerId>()
        .ok()
        .and_then(|p| PublicKey::from_peer_id(&p))
}
