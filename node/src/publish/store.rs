//! The provider's stored feeds: where a feed lives, reading its signed
//! manifest back, and the error every feed operation ends with.
//!
//! Layout under the data directory:
//! `feeds/<agreement hex>/<epoch>/` holds `manifest.bin` (the encoded
//! `Signed<Manifest>`), `chunk-00000.bin` ... (encoded chunks, exactly the
//! bytes whose hashes the manifest lists) and `index.bin` (private, used
//! only for disclosure, never sent: a sorted file, see
//! [`crate::dataset::sorted`], of `(ID token, record offset, record length)`
//! entries into the dataset generation its meta names). A feed is built in a temporary directory and
//! renamed into place, so a half-built feed is never visible.

use crate::dataset::ImportError;
use dxmesh_protocol::agreement::AgreementId;
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::signed::Signed;
use std::path::{Path, PathBuf};

/// Why a feed could not be built, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedStoreError {
    /// The dataset is missing or unreadable.
    #[error(transparent)]
    Dataset(#[from] ImportError),
    /// The agreement's terms do not fit the dataset.
    #[error("dataset {dataset}: {problem}")]
    Schema {
        /// Dataset.
        dataset: String,
        /// What does not fit.
        problem: String,
    },
    /// File trouble.
    #[error("{path}: {message}", path = .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The feed's private index cannot be written or read, or is damaged.
    #[error("the feed's index: {0}")]
    Index(#[from] crate::dataset::sorted::SortedError),
    /// The epoch has no start date.
    #[error("epoch {0} is outside the cycle's calendar")]
    Epoch(u64),
    /// The generation the feed was built from is no longer held.
    #[error(
        "dataset {dataset} no longer holds generation {generation}, which the feed of epoch {epoch} was built from; republish the epoch (dxmesh publish --epoch {epoch} --republish)"
    )]
    GenerationGone {
        /// Dataset.
        dataset: String,
        /// Epoch.
        epoch: u64,
        /// Generation needed.
        generation: u64,
    },
}

/// Turns an I/O error on `path` into a [`FeedStoreError`].
pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> FeedStoreError + '_ {
    move |e| FeedStoreError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Directory of the feed of `agreement` for `epoch`.
pub fn feed_dir(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> PathBuf {
    crate::base::layout::epoch_dir(data_dir, crate::base::layout::FEEDS, agreement, epoch)
}

/// The stored signed manifest of a feed, if published.
pub fn read_manifest(
    data_dir: &Path,
    agreement: &AgreementId,
    epoch: u64,
) -> Result<Option<Signed<Manifest>>, FeedStoreError> {
    let path = feed_dir(data_dir, agreement, epoch).join(crate::base::layout::MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    codec::decode(&bytes)
        .map(Some)
        .map_err(|e| FeedStoreError::Io {
            path,
            message: format!("does not decode: {e}"),
        })
}
