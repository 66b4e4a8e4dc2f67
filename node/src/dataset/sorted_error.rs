//! Why a sorted file ([`super::sorted`]) or an external sort
//! ([`super::extsort`]) fails: the error both share, apart from the files
//! they use, so that the import's own error can carry it.

use std::path::PathBuf;

/// Why a sorted file cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SortedError {
    /// The file cannot be created, written, synced or read.
    #[error("{path}: {message}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The file is not a sorted file this version reads, or is damaged.
    #[error("{path} is damaged: {problem}", path = .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The filesystem has less free space than a job needs.
    #[error(
        "{path}: {what} needs {} of free disk here, {} is free (free some, or move the data directory to a larger disk)",
        crate::base::fsutil::bytes_text(*.needed),
        crate::base::fsutil::bytes_text(*.available),
        path = .path.display()
    )]
    NoSpace {
        /// The directory the job writes to.
        path: PathBuf,
        /// The job.
        what: String,
        /// Bytes it needs.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The writer was given an entry out of order or of the wrong width (a
    /// bug in the caller).
    #[error("{path}: {problem}", path = .path.display())]
    Misuse {
        /// The file.
        path: PathBuf,
        /// What the caller did.
        problem: String,
    },
}
