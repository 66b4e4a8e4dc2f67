//! # dxmesh-tests
//!
//! Multi-node integration tests. The tests in `tests/tests/` start real
//! `dxmesh` processes (the binary `dxmesh-under-test`, which is the real CLI)
//! in temporary directories, listening on `127.0.0.1:0`, and talk to them
//! only as an operator would: through the command line and the admin socket.
//!
//! ## Layout
//! - [`Dxmesh`] (`command.rs`): runs one `dxmesh` command and checks its outcome;
//!   [`run_demo`] runs `dxmesh demo`.
//! - [`NodeDir`] (`node_dir.rs`): a node directory and edits to its config.
//! - [`NodeProc`] (`node_proc.rs`): one running node process; killed when
//!   dropped, so no test leaves a process behind.
//! - [`Mesh`] (`mesh.rs`): a trust anchor, a roster, and node directories.
//! - [`Setup`] (`setup.rs`): a provider and the comparator with an agreement.
//! - `registry.rs`: generated registry rows, ID numbers, dates, feed terms.
//! - [`bench`]: what the benchmarks under `bench/` share.
//! - [`browser`]: headless Chromium rendering pages, with screenshots.
//! - [`scan_for`] (`scan.rs`) and [`raw_request`], [`raw_requests`] (`raw.rs`): looking for
//!   leaked bytes, and playing a foreign member over libp2p.
//! - [`hold_streams`] (`hold.rs`): a member holding many half-sent streams open.
//! - [`fake_member`] (`fake.rs`): a member's key answering a node as a test says.

#![forbid(unsafe_code)]

pub mod bench;
pub mod browser;
mod command;
mod fake;
mod hold;
mod mesh;
mod node_dir;
mod node_proc;
mod raw;
mod registry;
mod scan;
mod setup;

pub use command::{Dxmesh, field, run_demo};
pub use fake::{Answerer, FakeMember, fake_member};
pub use hold::{HeldStreams, hold_streams, raw_stream};
pub use mesh::{Mesh, PROVINCE};
pub use node_dir::{NodeDir, edit_config, manual_schedule, set_custodian};
pub use node_proc::NodeProc;
pub use raw::{raw_request, raw_requests, raw_requests_after};
pub use registry::{
    REGISTRY_JOB, RegistryRow, day, make_id, registry_csv, registry_feed_terms, registry_input,
    registry_rows, registry_terms, short_retention_terms,
};
pub use scan::scan_for;
pub use setup::{Setup, agree, setup};
