//! The audit trail: every node's tamper-evident log, its witnessing and
//! evidence bundles ([`log`]), the offline verification security officers
//! run over bundles ([`verify`]), and the offline recompute of the
//! comparator's committed results from its pulled feeds ([`recompute`]),
//! with the check of a result's ministry basis (`basis`); and the log in
//! words for the console ([`words`]).

mod basis;
pub mod log;
pub mod recompute;
pub mod verify;
pub mod words;
