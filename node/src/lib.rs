//! # dxmesh-node
//!
//! The department node: the daemon and the `dxmesh` command. It drives the
//! pure `dxmesh-protocol` crate with storage, networking, clocks and files.
//!
//! ## Layout
//! - [`cli`]: the `dxmesh` command line (clap) and dispatch; the only place
//!   `anyhow` is used. [`demo`]: `dxmesh demo`, a province on seven node
//!   processes; [`synth`]: the synthetic province generator; [`report`]: `report.html`.
//! - [`config`], [`keyfile`], [`logging`], [`fsutil`], [`failpoint`]: the node
//!   directory, identity files, logs, atomic writes, crash points for tests.
//! - [`store`]: redb state (rosters, transcripts, counters, the audit log).
//! - [`daemon`]: `dxmesh run`, one task owning the swarm and the state; its
//!   submodules handle agreements, feeds, the comparator task and audit.
//! - [`net`]: libp2p behaviour, transport and the control codec.
//! - [`admin`]: the Unix-socket admin interface (requests and answers).
//! - [`roster_file`], [`terms_file`]: roster drafts and agreement terms as files.
//! - [`agreements`]: negotiation threads, provider sequencing, reconciliation.
//! - [`dataset`]: importing department exports (normalise, quarantine, store).
//! - [`keys`]: token group keys and the custodian's rules.
//! - [`feeds`]: building, storing and serving feeds; disclosure lookups.
//! - [`pulls`]: verified, resumable pulls at the consumer; reading pulled
//!   feeds. [`chunkfile`]: the one append-only file of a pulled feed's chunks.
//! - [`retention`]: erasing pulled feeds once their agreement's retention ends.
//! - [`jobs`], [`compare`]: comparison job files and the one-pass engine.
//! - [`audit`], [`audit_verify`]: the audit log, witnessing, evidence
//!   bundles and their offline verification.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod agreements;
pub mod audit;
pub mod audit_verify;
pub mod chunkfile;
pub mod cli;
pub mod compare;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod demo;
pub mod failpoint;
pub mod feeds;
pub mod fsutil;
pub mod jobs;
pub mod keyfile;
pub mod keys;
pub mod logging;
pub mod net;
pub mod pulls;
pub mod report;
pub mod retention;
pub mod roster_file;
pub mod store;
pub mod synth;
pub mod terms_file;
