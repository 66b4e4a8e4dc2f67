//! The trust roster as files: drafts the trust anchor edits and signs
//! ([`roster_file`]) and installing signed versions into a stopped node
//! ([`install`]). The acceptance rules themselves are `protocol::roster`.

pub mod install;
pub mod roster_file;
