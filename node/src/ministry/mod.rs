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
use dxmesh_protocol::hash::Hash;
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::token::IdToken;
use std::collections::BTreeMap;
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

/// What a ministry query asks, once it is admitted: the fields, the
/// (token, ID number) pairs, and the digests of the commitment and the
/// receipt it carried (the answer names them).
pub struct Query<'a> {
    /// The epoch.
    pub epoch: u64,
    /// The fields of the national index asked for.
    pub fields: &'a [String],
    /// The pairs asked about.
    pub ids: &'a [(IdToken, IdNumber)],
    /// Digest of the commitment to the candidates.
    pub commitment: Hash,
    /// Digest of the registry provider's receipt.
    pub receipt: Hash,
}

/// Looks the query's IDs up in the national index of the agreement's
/// dataset (built on first use for each imported generation) and answers
/// each found one under the token it was asked with.
pub fn answer_query(
    indexes: &index::Indexes,
    data_dir: &Path,
    terms: &Terms,
    q: &Query<'_>,
) -> Result<MinistryAnswer, MinistryError> {
    let index = indexes.for_dataset(data_dir, &terms.dataset)?;
    let mut ids: Vec<IdNumber> = q.ids.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tokens_of: BTreeMap<IdNumber, Vec<IdToken>> = BTreeMap::new();
    for (t, id) in q.ids {
        tokens_of.entry(*id).or_default().push(*t);
    }
    let mut found = Vec::new();
    for (id, values) in index.lookup(&ids, q.fields)? {
        for t in tokens_of.get(&id).into_iter().flatten() {
            found.push((*t, values.clone()));
        }
    }
    found.sort();
    Ok(MinistryAnswer {
        agreement: terms.id(),
        epoch: q.epoch,
        commitment: q.commitment,
        receipt: q.receipt,
        fields: q.fields.to_vec(),
        found,
        asked: q.ids.len() as u64,
        at: now(),
    })
}
