//! # dxmesh-node
//!
//! The department node: the daemon and the `dxmesh` command. It drives the
//! pure `dxmesh-protocol` crate with storage, networking, clocks and files.
//!
//! ## Layout
//! - [`cli`]: the `dxmesh` command line (clap) and dispatch; the only place
//!   `anyhow` is used.
//! - [`keyfile`]: identity seed files (PKCS#8 PEM, 0600, atomic, no overwrite).
//! - [`logging`]: tracing setup (`RUST_LOG` filter, human or JSON lines).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod agreements;
pub mod audit;
pub mod audit_verify;
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
pub mod roster_file;
pub mod store;
pub mod synth;
pub mod terms_file;
