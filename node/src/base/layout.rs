//! The names of a node's data directory, said once: the folders the stages
//! share (`feeds/`, `pulls/`, `commitments/`, `evidence/`) and the files
//! more than one stage reads (a feed's `manifest.bin`, a pull's `complete`
//! mark). The stage that owns a folder builds its paths from these
//! (`publish::store::feed_dir`, `pull::pulls::pull_dir`); the others ask
//! it, or use these names.

use std::path::{Path, PathBuf};

/// Published feeds: `feeds/<agreement>/<epoch>/`.
pub const FEEDS: &str = "feeds";
/// Pulled feeds: `pulls/<agreement>/<epoch>/`.
pub const PULLS: &str = "pulls";
/// The comparator's signed commitments: `commitments/<epoch>/`.
pub const COMMITMENTS: &str = "commitments";
/// What retention keeps of erased feeds: `evidence/pulls/<agreement>/<epoch>/`.
pub const EVIDENCE: &str = "evidence";
/// A feed's signed manifest, in its feed, pull or evidence directory.
pub const MANIFEST_FILE: &str = "manifest.bin";
/// The mark of a pull verified whole, in its pull directory.
pub const COMPLETE_MARK: &str = "complete";

/// `data_dir/<kind>/<agreement>/<epoch>`.
pub fn epoch_dir(data_dir: &Path, kind: &str, agreement: &[u8; 32], epoch: u64) -> PathBuf {
    data_dir
        .join(kind)
        .join(dxmesh_protocol::hex(agreement))
        .join(epoch.to_string())
}
