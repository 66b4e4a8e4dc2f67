//! # dxmesh-node
//!
//! The department node: the daemon and the `dxmesh` command. It drives the
//! pure `dxmesh-protocol` crate with storage, networking, clocks and files.
//!
//! ## Layout
//! The folders follow the chain a cycle walks, trust to audit:
//! - [`base`]: config, identity file, logging, file writes, the data
//!   directory's shared names, failpoints, the redb store, the clock and the
//!   stop signal, region names.
//! - [`trust`]: roster drafts and signed roster files; offline install.
//! - [`agreements`]: negotiation threads and agreement terms files.
//! - [`dataset`]: importing department exports (normalise, quarantine,
//!   deduplicate, store) and reading them back.
//! - [`publish`]: building and serving feeds, group keys.
//! - [`pull`]: verified pulls, pulled feeds' chunk files, retention (of
//!   pulled and published feeds).
//! - [`compare`]: job files, agreed jobs and result commitments, the
//!   comparison pass, the comparator's cycle, the changes between cycles,
//!   the comparisons run.
//! - [`disclose`]: disclosure, both sides: resolving tokens to records at
//!   the provider, and what each side checks of the other.
//! - [`ministry`]: the national index and its queries.
//! - [`results`]: a compare output as analysts' files (CSV with a
//!   byte-order mark or GB18030, `results.xlsx`), leaving the canonical
//!   files as they are.
//! - [`audit`]: the audit log, witnessing, bundles, offline verification,
//!   the recompute of committed results, the log in words.
//! - [`daemon`]: `dxmesh run`: the event loop, the `Core` every stage
//!   shares and one desk per stage (trust, publish, pull, audit).
//! - [`admin`]: the Unix-socket admin interface (requests and answers).
//! - [`console`]: the HTTPS operator console, its accounts and sessions,
//!   its pages (the audit log in words, a results page per cycle),
//!   `/metrics`, `/healthz` and `/readyz`.
//! - [`cli`]: the `dxmesh` command line, one file per command group, and
//!   `dxmesh demo` (whole cycles on a local mesh of node processes); the
//!   only place `anyhow` is used.
//! - [`sim`]: the synthetic province and the demo's report page.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod agreements;
pub mod audit;
pub mod base;
pub mod cli;
pub mod compare;
pub mod console;
pub mod daemon;
pub mod dataset;
pub mod disclose;
pub mod ministry;
pub mod publish;
pub mod pull;
pub mod results;
pub mod sim;
pub mod trust;
