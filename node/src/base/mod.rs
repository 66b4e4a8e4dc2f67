//! What every part of a node stands on: the node directory's config and
//! identity file, logging, atomic and direct file writes, the data
//! directory's shared names, crash points for tests, the redb state store,
//! the clock with the stop signal, why a peer did not do what it was
//! asked, and the names of region codes.

pub mod clock;
pub mod config;
pub mod failpoint;
pub mod fsutil;
pub mod keyfile;
pub mod layout;
pub mod logging;
pub mod peer;
pub mod regions;
pub mod store;
