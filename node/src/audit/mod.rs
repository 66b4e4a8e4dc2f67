//! The audit trail: every node's tamper-evident log, its witnessing and
//! evidence bundles ([`log`]), the offline verification security officers
//! run over bundles ([`verify`]), and the offline recompute of the
//! comparator's committed results from its pulled feeds ([`recompute`]).

pub mod log;
pub mod recompute;
pub mod verify;
