//! Sharing agreements at a node: the negotiation threads this node is a
//! party to, sequenced and persisted ([`threads`]), and agreement terms as
//! the TOML files operators write ([`terms_file`]). The state machine and
//! the enforcement checks are `protocol::agreement`.

pub mod terms_file;
pub mod threads;
