//! The provider's side of a feed: building the epoch's signed feed from an
//! imported dataset ([`build`], with what it takes of each record in
//! [`plan`]), the stored feeds ([`store`]), and the token group keys feeds
//! are made with ([`keys`]). Resolving disclosure requests is
//! [`crate::disclose`]'s.

pub mod build;
pub mod keys;
pub mod plan;
pub mod store;
