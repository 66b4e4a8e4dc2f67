//! Installing signed roster versions into a node that is not running (the
//! daemon holds the state lock while it runs; then the admin socket is the
//! way in).

use crate::base::config::{Config, ConfigError};
use crate::base::store::{Store, StoreError};
use dxmesh_protocol::codec;
use dxmesh_protocol::roster::{self, Roster, RosterError};
use dxmesh_protocol::signed::Signed;
use std::path::Path;

/// Installs roster files into a node that is not running (the daemon holds
/// the state lock while it runs; then use the admin socket instead).
pub fn install_offline(dir: &Path, chain: Vec<Signed<Roster>>) -> Result<u64, InstallError> {
    let config = Config::load(dir)?;
    let anchor = config.anchor_key(dir)?;
    let store = Store::open(&config.data_dir(dir))?;
    let held = store.latest_roster()?;
    let held_version = held
        .as_ref()
        .and_then(|s| codec::decode::<Roster>(s.body()).ok())
        .map(|r| r.version)
        .unwrap_or(0);
    let newer = roster::newer_versions(chain, held_version);
    if newer.is_empty() {
        return Ok(held_version);
    }
    let accepted = roster::accept_chain(held.as_ref(), &newer, &anchor)?;
    let versions = roster::numbered(&newer);
    store.put_rosters(&versions)?;
    Ok(accepted.version)
}

/// Why an offline roster install failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// State problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The roster was refused.
    #[error("roster refused: {0}")]
    Roster(#[from] RosterError),
}
