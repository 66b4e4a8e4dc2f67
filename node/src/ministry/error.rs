//! What can keep the ministry from answering a query from its national
//! index.

use crate::dataset::sorted::SortedError;
use crate::dataset::{BlockError, ImportError};

/// Why the national index could not answer a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinistryError {
    /// The national index dataset cannot be opened or read.
    #[error(transparent)]
    Dataset(#[from] ImportError),
    /// A stored block of the national dataset does not decode.
    #[error("the national dataset is damaged: {0}")]
    Damaged(#[from] BlockError),
    /// The national index file cannot be written or read, or is damaged.
    #[error("the national index: {0}")]
    Index(#[from] SortedError),
    /// The national dataset cannot be indexed.
    #[error("cannot build the national index: {0}")]
    Build(String),
    /// A field the query asks for is not a column of the index.
    #[error("the national index has no column {0:?}")]
    NoColumn(String),
}
