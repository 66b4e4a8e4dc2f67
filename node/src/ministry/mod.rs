//! The ministry's national participation index and its queries: which of
//! the ID numbers a province asks about are insured, where and how. The
//! national dataset is imported like any other; [`index`] keeps it sorted
//! by ID on disk so that a query costs in proportion to the IDs asked.

mod error;
pub mod index;

pub use error::MinistryError;

use crate::base::clock::now;
use dxmesh_protocol::agreement::Terms;
use dxmesh_protocol::feed::MinistryAnswer;
use dxmesh_protocol::id::IdNumber;
use index::NationalIndex;
use std::path::Path;

/// The result kind of a ministry query (the job an agreement names).
pub const MINISTRY_QUERY: &str = "ministry_query";

/// Whether `terms` let a consumer ask ministry queries of their dataset
/// (the provider then keeps a national index of it).
pub fn answers_ministry_queries(terms: &Terms) -> bool {
    terms
        .disclosure
        .jobs
        .iter()
        .any(|j| j.kind == MINISTRY_QUERY)
}

/// Looks IDs up in the national index of the agreement's dataset (built
/// on first use for each imported generation).
pub fn answer_query(
    data_dir: &Path,
    terms: &Terms,
    epoch: u64,
    fields: &[String],
    ids: &[IdNumber],
) -> Result<MinistryAnswer, MinistryError> {
    let index = NationalIndex::for_dataset(data_dir, &terms.dataset)?;
    let found = index.lookup(ids, fields)?;
    Ok(MinistryAnswer {
        agreement: terms.id(),
        epoch,
        fields: fields.to_vec(),
        found,
        asked: ids.len() as u64,
        at: now(),
    })
}
