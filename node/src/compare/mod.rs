//! The provincial comparator: job files and their expressions ([`jobs`]),
//! jobs as agreements state them ([`agreed`]),
//! the one-pass comparison over pulled feeds ([`pass`]), and the cycle that
//! runs a job end to end ([`cycle`]: pull, pass, ministry check, pass,
//! disclosures, result files), its typed network steps through the node
//! ([`ops`]), with its errors ([`error`]), the files it
//! writes (`files`, their rows sorted in the node's memory budget by
//! `rows`), what it reports in `summary.json` (`summary`) and
//! what changed since a previous comparison ([`changes`]), and the list of
//! comparisons run, for the console ([`history`]).

pub mod agreed;
pub mod changes;
pub mod commit;
pub mod cycle;
pub mod error;
mod files;
pub mod history;
pub mod jobs;
pub mod ops;
pub mod pass;
mod rows;
mod summary;
