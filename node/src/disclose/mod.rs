//! Disclosure, both sides: a comparator asks a provider to resolve the
//! tokens of a committed result to the allowed fields of their records;
//! the provider checks the request against the agreement and the
//! commitment, reads just those records, and answers signed, with a
//! receipt for the ID numbers it disclosed; the comparator takes the answer
//! only if it is about exactly what it asked.
//!
//! - [`records`]: the provider resolving tokens through the epoch's private
//!   index to the records they came from.
//! - [`answer`]: the checks of both sides beyond the agreement (the
//!   commitment and its proof; the answer and its receipt), with their
//!   error, [`answer::Unverified`].
//!
//! A request is built from a result commitment by
//! [`crate::compare::commit::Committed::request`]; its network half (the
//! quota, the two passes around the event loop, the audit entries) is
//! the daemon's (`daemon/disclose.rs`).

pub mod answer;
pub mod records;
