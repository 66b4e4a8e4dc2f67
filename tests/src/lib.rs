//! # dxmesh-tests
//!
//! Multi-node integration tests. The tests in `tests/tests/` start real
//! `dxmesh` processes (the binary `dxmesh-under-test`, which is the real CLI)
//! in temporary directories, on `127.0.0.1:0`.
//!
//! ## Layout
//! - [`run`]: run the `dxmesh` binary and capture its output.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `dxmesh ARGS` (the binary given by `bin`) in `cwd` and returns its output.
pub fn run(bin: &str, cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}
