//! The audit trail: every node's tamper-evident log, its witnessing and
//! evidence bundles ([`log`]), and the offline verification security
//! officers run over bundles ([`verify`]).

pub mod log;
pub mod verify;
