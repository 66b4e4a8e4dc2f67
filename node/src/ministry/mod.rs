//! The ministry's national participation index and its queries: which of
//! the ID numbers a province asks about are insured, where and how.

use crate::base::clock::now;
use crate::dataset::{BlockError, ImportError};
use dxmesh_protocol::agreement::Terms;
use dxmesh_protocol::feed::MinistryAnswer;
use dxmesh_protocol::id::IdNumber;
use std::path::Path;

/// Why the national index could not answer a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinistryError {
    /// The national index dataset cannot be opened or read.
    #[error(transparent)]
    Dataset(#[from] ImportError),
    /// A stored block of the national index does not decode.
    #[error("the national index is damaged: {0}")]
    Damaged(#[from] BlockError),
    /// A field the query asks for is not a column of the index.
    #[error("the national index has no column {0:?}")]
    NoColumn(String),
}

/// An ID and the national index values asked for.
type IndexRecord = (IdNumber, Vec<String>);

/// Looks IDs up in the national index dataset (one scan for the whole batch).
pub fn answer_query(
    data_dir: &Path,
    terms: &Terms,
    epoch: u64,
    fields: &[String],
    ids: &[IdNumber],
) -> Result<MinistryAnswer, MinistryError> {
    let reader = crate::dataset::DatasetReader::open(data_dir, &terms.dataset)?;
    let cols: Vec<usize> = fields
        .iter()
        .map(|f| {
            reader
                .columns()
                .iter()
                .position(|c| c == f)
                .ok_or_else(|| MinistryError::NoColumn(f.clone()))
        })
        .collect::<Result<_, _>>()?;
    let wanted: std::collections::HashSet<IdNumber> = ids.iter().copied().collect();
    let mut found = Vec::new();
    let mut raw = crate::dataset::RawBlocks::open(&reader, false)?;
    loop {
        let mut group = Vec::new();
        while group.len() < 16 {
            match raw.next_block()? {
                Some(b) => group.push(b),
                None => break,
            }
        }
        if group.is_empty() {
            break;
        }
        use rayon::prelude::*;
        let parts: Vec<Result<Vec<IndexRecord>, BlockError>> = group
            .par_iter()
            .map(|bytes| {
                let mut cursor = crate::dataset::BlockCursor::new(bytes)?;
                let mut values = Vec::new();
                let mut found = Vec::new();
                while let Some(id) = cursor.next_record(|i| cols.contains(&i), &mut values)? {
                    if wanted.contains(&id) {
                        let record = cols
                            .iter()
                            .map(|c| values.get(*c).copied().unwrap_or("").to_string())
                            .collect();
                        found.push((id, record));
                    }
                }
                Ok(found)
            })
            .collect();
        for p in parts {
            found.extend(p?);
        }
    }
    found.sort();
    Ok(MinistryAnswer {
        agreement: terms.id(),
        epoch,
        fields: fields.to_vec(),
        found,
        asked: ids.len() as u64,
        at: now(),
    })
}
