//! What a comparison cycle reports in `summary.json`: per result its count,
//! the records disclosed and its file; per input the feed it read and how
//! much; coverage by region; the ministry check's figures; the seconds
//! each stage took; and what changed since a previous comparison (filled
//! by `changes`). Data only, filled by the cycle's stages
//! ([`crate::compare::cycle`]); a leaf module.

use serde::Serialize;
use std::collections::BTreeMap;

/// What `summary.json` says.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// The epoch (cycle number) compared.
    pub(crate) epoch: u64,
    /// The reference date of the feeds.
    pub(crate) reference_date: String,
    /// Each result by name.
    pub(crate) results: BTreeMap<String, ResultSummary>,
    /// Each input by name.
    pub(crate) inputs: BTreeMap<String, InputSummary>,
    /// Coverage by region.
    pub(crate) coverage: BTreeMap<String, CoverageRow>,
    /// The ministry check, if the job has one.
    pub(crate) ministry: Option<MinistrySummary>,
    /// Seconds per stage (`pull`, `pass_1`, `ministry`, `pass`,
    /// `disclose_and_write`, `total`).
    pub(crate) timing_secs: BTreeMap<String, f64>,
    /// Distinct tokens the counting pass merged.
    pub(crate) distinct_tokens_merged: u64,
    /// What changed since the previous comparison, if one was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) changes: Option<Changes>,
}

/// One result in `summary.json`.
#[derive(Debug, Serialize)]
pub(crate) struct ResultSummary {
    /// Persons in the result (one token each).
    pub(crate) count: u64,
    /// Records (rows of the provider's dataset) disclosed for it (0 if it
    /// discloses nothing): a person with several rows inside the input's
    /// scope (two registry addresses, two pension schemes) gives a record
    /// each.
    pub(crate) disclosed_records: u64,
    /// Persons with at least one record disclosed.
    pub(crate) persons_disclosed: u64,
    /// Persons with more than one record disclosed (why the records
    /// outnumber the persons).
    pub(crate) persons_with_several_rows: u64,
    /// Its CSV file (empty if none was written).
    pub(crate) file: String,
    /// The code of the provider's refusal to disclose it, if it refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<String>,
}

/// One input in `summary.json`.
#[derive(Debug, Serialize)]
pub(crate) struct InputSummary {
    /// The agreement, in hex.
    pub(crate) agreement: String,
    /// The provider's peer id.
    pub(crate) provider: String,
    /// The dataset.
    pub(crate) dataset: String,
    /// Records the counting pass read.
    pub(crate) records_read: u64,
    /// Distinct tokens in the input (after its filter).
    pub(crate) ids_in_input: u64,
    /// The feed's Merkle root, in hex.
    pub(crate) manifest_root: String,
    /// Records in the feed.
    pub(crate) manifest_records: u64,
    /// Chunks in the feed.
    pub(crate) manifest_chunks: u32,
}

/// One region's coverage in `summary.json`.
#[derive(Debug, Serialize)]
pub(crate) struct CoverageRow {
    /// Tokens eligible.
    pub(crate) eligible: u64,
    /// Tokens covered.
    pub(crate) covered: u64,
}

impl CoverageRow {
    /// The rows of a pass's coverage counts (region -> (eligible, covered)).
    pub(crate) fn table(coverage: &BTreeMap<String, (u64, u64)>) -> BTreeMap<String, CoverageRow> {
        coverage
            .iter()
            .map(|(r, (e, c))| {
                (
                    r.clone(),
                    CoverageRow {
                        eligible: *e,
                        covered: *c,
                    },
                )
            })
            .collect()
    }
}

/// The ministry check in `summary.json`.
#[derive(Debug, Serialize)]
pub(crate) struct MinistrySummary {
    /// Candidates the first pass found.
    pub(crate) candidates: u64,
    /// Distinct ID numbers asked of the ministry.
    pub(crate) ids_queried: u64,
    /// Of those, found in the national index.
    pub(crate) found_in_national_index: u64,
    /// Candidates insured in another province, removed by the second pass.
    pub(crate) removed_other_province: u64,
}

/// The changes since a previous comparison, in `summary.json`.
#[derive(Debug, Serialize)]
pub(crate) struct Changes {
    /// The previous comparison's output folder.
    pub(crate) previous: String,
    /// The epoch it compared, if its summary says.
    pub(crate) previous_epoch: Option<u64>,
    /// Per result matched: how many are new, left, stayed, and its file.
    pub(crate) results: BTreeMap<String, ResultChanges>,
    /// Per result not matched: why.
    pub(crate) not_compared: BTreeMap<String, String>,
}

/// One result's changes.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct ResultChanges {
    /// In this cycle's result, not in the previous one's.
    pub(crate) new: u64,
    /// In the previous one's, not in this one's.
    pub(crate) left: u64,
    /// In both.
    pub(crate) stayed: u64,
    /// The change list.
    pub(crate) file: String,
}
