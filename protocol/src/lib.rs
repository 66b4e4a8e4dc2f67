//! # dxmesh-protocol
//!
//! The pure core of dxmesh: the types that travel between department nodes
//! or are stored and signed, and the rules they obey. No I/O, no async, no
//! clocks: callers pass in bytes, dates and randomness. Everything here is
//! unit-tested, property-tested and fuzzable (`protocol/fuzz/`).
//!
//! ## Layout
//! - [`codec`]: the one canonical encoding (bincode 2.0.1, fixed config,
//!   limits, no trailing bytes). Nothing else names bincode.
//! - [`identity`]: node identities (Ed25519 seed -> ring key and libp2p
//!   `PeerId`), public keys (checked to be curve points once each), PEM
//!   export.
//! - [`hash`]: the 32-byte `Hash` type and SHA-256 (a leaf: imports nothing
//!   from the crate).
//! - [`display`]: lowercase hex for display and reports (a leaf).
//! - [`signed`]: `Signed<T>` with a domain-separation tag per message kind.
//! - [`merkle`]: RFC 6962 trees, inclusion and consistency proofs.
//! - [`commitment`]: the comparator's signed result commitments and the
//!   multi-leaf proofs that bind disclosed tokens to them.
//! - [`date`]: calendar dates for birth dates, ages and cycles.
//! - [`id`]: GB 11643-1999 resident ID normalisation and validation.
//! - [`token`]: epoch keys (HKDF), ID and attribute tokens (HMAC).
//! - [`cycle`]: exchange cycles: periods, epochs, pull windows.
//! - [`feed`]: feed chunks (columnar), signed manifests, chunk verification,
//!   disclosures.
//! - [`audit`]: audit events and entries, C2SP checkpoints and cosignatures.
//! - [`agreement`]: sharing-agreement terms, the negotiation state machine,
//!   and the provider's pull and disclosure checks (a folder: `terms`,
//!   `negotiation`, `enforcement`).
//! - [`time`]: signed instants (Unix seconds, RFC 3339 text).
//! - [`roster`]: the anchor-signed member roster, chain acceptance, admission.
//! - [`wire`]: control request/response messages and their length-prefixed framing.
//!
//! Modules import each other by the module that defines an item (for
//! example `crate::display::hex`, `crate::hash::Hash`), never through the
//! re-exports below, which exist for callers outside the crate.
//!
//! Design notes live in `docs/architecture.md` and `docs/protocol.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agreement;
pub mod audit;
pub mod codec;
pub mod commitment;
pub mod cycle;
pub mod date;
pub mod display;
pub mod feed;
pub mod hash;
pub mod id;
pub mod identity;
pub mod merkle;
pub mod roster;
pub mod signed;
pub mod time;
pub mod token;
pub mod wire;

pub use codec::{CodecError, decode, encode};
pub use date::Date;
pub use display::hex;
pub use id::{IdError, IdNumber, normalise};
pub use identity::{Identity, PublicKey};
pub use signed::{Signed, SignedKind};
