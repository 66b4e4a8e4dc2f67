//! [`NodeDir`]: a node directory made by `dxmesh init`, and the edits to
//! its config.toml that tests make as an operator would.

use std::path::{Path, PathBuf};

/// A node directory made by `dxmesh init`.
#[derive(Debug, Clone)]
pub struct NodeDir {
    /// Short name (also the directory name).
    pub name: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Directory.
    pub dir: PathBuf,
    /// PeerId printed by init.
    pub peer_id: String,
}

/// Replaces `from` with `to` in the node's config.toml (as an operator would edit it).
pub fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(text.contains(from), "{from:?} not in {text}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write config");
}

/// Makes `node` the key custodian of `group` (or points it at `custodian`).
pub fn set_custodian(node: &NodeDir, group: &str, custodian: &str) {
    edit_config(
        &node.dir,
        "[key_custodians]\n",
        &format!("[key_custodians]\n{group} = \"{custodian}\"\n"),
    );
}

/// Turns the daemon's own publishing and pulling off (tests drive them).
pub fn manual_schedule(node: &NodeDir) {
    edit_config(&node.dir, "auto_publish = true", "auto_publish = false");
    edit_config(&node.dir, "auto_pull = true", "auto_pull = false");
}
