//! The provider's side of a feed: building the epoch's signed feed from an
//! imported dataset ([`build`], with what it takes of each record in
//! [`plan`]), the stored feeds ([`store`]), resolving disclosure requests
//! ([`disclose`]), and the token group keys feeds are made with ([`keys`]).

pub mod build;
pub mod disclose;
pub mod keys;
pub mod plan;
pub mod store;
