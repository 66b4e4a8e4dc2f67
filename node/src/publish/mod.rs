//! The provider's side of a feed: building and storing signed feeds from
//! imported datasets, resolving disclosure requests ([`feeds`]), and the
//! token group keys feeds are made with ([`keys`]).

pub mod feeds;
pub mod keys;
