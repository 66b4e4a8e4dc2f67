//! Token group master keys at a provider: stored one file per group under
//! `keys/` (mode 0600, written atomically), created by the group's key
//! custodian, and handed by the custodian only to other **providers** whose
//! accepted agreement names the group. Comparator and ministry nodes never
//! hold a group key: the custodian refuses to send one to them, and they
//! refuse to store one. Epoch keys are derived from the master key per
//! epoch (`protocol::token`), so tokens of different epochs cannot be linked.

use crate::base::fsutil;
use dxmesh_protocol::agreement::{Negotiation, Status, Step};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{Admission, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::GroupMasterKey;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a key could not be read, stored or handed out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The key file is malformed or readable by others.
    #[error("{path}: {problem}", path = .path.display())]
    Bad {
        /// File.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// This node's role may not hold group keys.
    #[error("a {role} node never stores token group keys")]
    RoleMayNotHold {
        /// The role.
        role: Role,
    },
    /// A request for a key was refused.
    #[error("group key refused: {0}")]
    Refused(String),
}

/// The group keys of one node.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    role: Role,
}

fn valid_group(group: &str) -> bool {
    !group.is_empty()
        && group.len() <= 64
        && group
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl KeyStore {
    /// The key store of the node in `node_dir`, whose role is `role`.
    pub fn new(node_dir: &Path, role: Role) -> KeyStore {
        KeyStore {
            dir: node_dir.join("keys"),
            role,
        }
    }

    fn path(&self, group: &str) -> Result<PathBuf, KeyError> {
        if !valid_group(group) {
            return Err(KeyError::Bad {
                path: self.dir.clone(),
                problem: format!("{group:?} is not a token group name"),
            });
        }
        Ok(self.dir.join(format!("{group}.key")))
    }

    /// The master key of `group`, if held.
    pub fn get(&self, group: &str) -> Result<Option<GroupMasterKey>, KeyError> {
        let path = self.path(group)?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KeyError::Io { path, source }),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::Bad {
                path,
                problem: format!(
                    "permissions {:04o} are too open; a group key must be 0600",
                    meta.permissions().mode() & 0o777
                ),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        let bytes = hex::decode(text.trim()).map_err(|e| KeyError::Bad {
            path: path.clone(),
            problem: format!("not hex: {e}"),
        })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Bad {
            path: path.clone(),
            problem: "a group key is 32 bytes".into(),
        })?;
        Ok(Some(GroupMasterKey(key)))
    }

    /// Stores the master key of `group` (0600, atomically). Refused on
    /// comparator and ministry nodes.
    pub fn put(&self, group: &str, key: &GroupMasterKey) -> Result<(), KeyError> {
        if self.role != Role::Provider {
            return Err(KeyError::RoleMayNotHold { role: self.role });
        }
        let path = self.path(group)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| KeyError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        fsutil::write_atomic(&path, format!("{}\n", hex::encode(key.0)).as_bytes(), 0o600)
            .map_err(|source| KeyError::Io { path, source })
    }

    /// As the custodian: the group's key, created on first use.
    pub fn custodian_key(&self, group: &str) -> Result<GroupMasterKey, KeyError> {
        if let Some(k) = self.get(group)? {
            return Ok(k);
        }
        let rng = ring::rand::SystemRandom::new();
        let key = GroupMasterKey::generate(&rng).map_err(|e| KeyError::Refused(e.to_string()))?;
        self.put(group, &key)?;
        tracing::info!(%group, "created the token group master key (this node is its custodian)");
        Ok(key)
    }
}

/// The custodian's decision on a key request from `requester`: a current
/// roster member with role `provider`, presenting an accepted, unexpired
/// agreement in which it is the provider and which names `group`.
pub fn check_key_request(
    roster: &Roster,
    requester: &PublicKey,
    group: &str,
    transcript: &[Signed<Step>],
    now: Timestamp,
) -> Result<(), KeyError> {
    let refuse = |m: String| Err(KeyError::Refused(m));
    match roster.admission(requester, now) {
        Admission::Admitted => {}
        other => {
            return refuse(format!(
                "the requester is not admitted by the roster ({other})"
            ));
        }
    }
    let role = roster.member(requester).map(|m| m.role);
    if role != Some(Role::Provider) {
        return refuse(format!(
            "the requester's roster role is {}; only providers may hold token group keys",
            role.map(|r| r.to_string())
                .unwrap_or_else(|| "unknown".into())
        ));
    }
    let n = Negotiation::replay(transcript)
        .map_err(|e| KeyError::Refused(format!("the agreement transcript does not verify: {e}")))?;
    if n.terms.provider != *requester {
        return refuse("the requester is not the provider of the agreement it presents".into());
    }
    if n.terms.token_group != group {
        return refuse(format!(
            "the agreement presented is for group {:?}, not {group:?}",
            n.terms.token_group
        ));
    }
    match n.status(now, false) {
        Status::Active | Status::Accepted | Status::Suspended => Ok(()),
        other => refuse(format!("the agreement presented is {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_files_and_only_providers_store_them() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::new(dir.path(), Role::Provider);
        assert!(ks.get("registration").unwrap().is_none());
        let k = ks.custodian_key("registration").unwrap();
        assert_eq!(ks.get("registration").unwrap(), Some(k.clone()));
        let mode = std::fs::metadata(dir.path().join("keys/registration.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ks.custodian_key("registration").unwrap(), k, "created once");
        std::fs::set_permissions(
            dir.path().join("keys/registration.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(ks.get("registration"), Err(KeyError::Bad { .. })));
        for role in [Role::Comparator, Role::Ministry] {
            let other = KeyStore::new(dir.path(), role);
            assert!(matches!(
                other.put("x", &k),
                Err(KeyError::RoleMayNotHold { .. })
            ));
        }
        assert!(ks.get("../etc").is_err());
    }
}
