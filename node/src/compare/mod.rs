//! The provincial comparator: job files and their expressions ([`jobs`]),
//! the one-pass comparison over pulled feeds ([`pass`]), and the cycle that
//! runs a job end to end ([`cycle`]: pull, pass, ministry check, pass,
//! disclosures, result files).

pub mod cycle;
pub mod jobs;
pub mod pass;
