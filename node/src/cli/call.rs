//! The command line's way to a running node: the async runtime and one
//! admin-socket request, with the node's error turned into the command's.

use crate::admin::{self, AdminRequest, AdminResponse};
use anyhow::{Context, bail};
use std::path::Path;

/// A runtime for the command's async calls.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Sends `request` to the node in `dir`; an error answer becomes an error.
pub fn admin_call(dir: &Path, request: AdminRequest) -> anyhow::Result<AdminResponse> {
    let response = runtime()?.block_on(admin::call(dir, &request))?;
    if let AdminResponse::Error { message } = response {
        bail!("{message}");
    }
    Ok(response)
}
