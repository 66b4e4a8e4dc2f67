//! Roster files as the trust anchor's operators handle them: an editable
//! TOML **draft** (`dxmesh roster new`, `add-member`, `revoke`) and the
//! **signed** binary file (`dxmesh roster sign`), which is the canonical
//! encoding of a `Signed<Roster>`. Also the table `dxmesh roster show` prints.

use dxmesh_protocol::codec;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{Member, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a roster file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RosterFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The draft is malformed.
    #[error("{path}: {message}", path = .path.display())]
    Draft {
        /// File.
        path: PathBuf,
        /// What is wrong (with line and field where known).
        message: String,
    },
    /// The signed file does not decode.
    #[error("{path}: not a signed dxmesh roster: {source}", path = .path.display())]
    Signed {
        /// File.
        path: PathBuf,
        /// Decoder error.
        source: codec::CodecError,
    },
    /// Writing a new file failed.
    #[error(transparent)]
    Write(#[from] crate::base::keyfile::KeyFileError),
}

/// The editable draft of the next roster version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Mesh name.
    pub mesh: String,
    /// Version this draft will have when signed.
    pub version: u64,
    /// Hex digest of the previous signed version (absent for version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Revoked PeerIds (permanent).
    #[serde(default)]
    pub revoked: Vec<String>,
    /// Members.
    #[serde(default)]
    pub members: Vec<DraftMember>,
}

/// A member in a draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftMember {
    /// PeerId.
    pub peer_id: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: Role,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Listen multiaddrs.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// RFC 3339 or date.
    pub valid_from: String,
    /// RFC 3339 or date.
    pub valid_until: String,
}

/// A PeerId given as text that names no member key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIdError {
    /// The text does not parse as a PeerId.
    #[error("{text:?} is not a PeerId: {problem}")]
    NotAPeerId {
        /// The text given.
        text: String,
        /// Why it does not parse.
        problem: String,
    },
    /// A PeerId, but not of an Ed25519 key (dxmesh keys are Ed25519).
    #[error("{0:?} is not an Ed25519 PeerId")]
    NotEd25519(String),
}

/// Parses a PeerId string into the Ed25519 key it embeds.
pub fn key_of_peer_id(s: &str) -> Result<PublicKey, PeerIdError> {
    let peer: libp2p::PeerId = s.trim().parse().map_err(|e| PeerIdError::NotAPeerId {
        text: s.to_string(),
        problem: format!("{e}"),
    })?;
    PublicKey::from_peer_id(&peer).ok_or_else(|| PeerIdError::NotEd25519(s.to_string()))
}

impl Draft {
    /// Reads a draft.
    pub fn load(path: &Path) -> Result<Draft, RosterFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| RosterFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| RosterFileError::Draft {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Writes the draft (replacing the file atomically).
    pub fn save(&self, path: &Path) -> Result<(), RosterFileError> {
        let mut text = String::from("# dxmesh roster draft: edit, then `dxmesh roster sign`.\n");
        text.push_str(&toml::to_string_pretty(self).expect("drafts serialise"));
        crate::base::fsutil::write_atomic(path, text.as_bytes(), 0o644).map_err(|source| {
            RosterFileError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// The draft that follows signed roster `prev`.
    pub fn next_after(prev: &Signed<Roster>, roster: &Roster) -> Draft {
        Draft {
            mesh: roster.mesh.clone(),
            version: roster.version + 1,
            previous: Some(dxmesh_protocol::hex(&prev.digest())),
            revoked: roster
                .revoked
                .iter()
                .map(|k| k.peer_id().to_string())
                .collect(),
            members: roster
                .members
                .iter()
                .map(|m| DraftMember {
                    peer_id: m.public_key.peer_id().to_string(),
                    department: m.department.clone(),
                    role: m.role,
                    display_name: m.display_name.clone(),
                    addresses: m.addresses.clone(),
                    valid_from: m.valid_from.to_string(),
                    valid_until: m.valid_until.to_string(),
                })
                .collect(),
        }
    }

    /// Converts to a roster (canonical order, validated), stamped `issued_at`.
    pub fn to_roster(&self, path: &Path, issued_at: Timestamp) -> Result<Roster, RosterFileError> {
        let err = |message: String| RosterFileError::Draft {
            path: path.to_path_buf(),
            message,
        };
        let previous = match &self.previous {
            None => None,
            Some(h) => {
                let bytes = hex::decode(h).map_err(|e| err(format!("field `previous`: {e}")))?;
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| err("field `previous`: must be 32 bytes of hex".into()))?;
                Some(arr)
            }
        };
        let mut members = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let field = |f: &str, e: String| err(format!("members[{i}].{f}: {e}"));
            members.push(Member {
                public_key: key_of_peer_id(&m.peer_id)
                    .map_err(|e| field("peer_id", e.to_string()))?,
                department: m.department.clone(),
                role: m.role,
                display_name: m.display_name.clone(),
                addresses: m.addresses.clone(),
                valid_from: Timestamp::parse(&m.valid_from)
                    .map_err(|e| field("valid_from", e.to_string()))?,
                valid_until: Timestamp::parse(&m.valid_until)
                    .map_err(|e| field("valid_until", e.to_string()))?,
            });
        }
        let mut revoked = Vec::new();
        for (i, r) in self.revoked.iter().enumerate() {
            revoked.push(key_of_peer_id(r).map_err(|e| err(format!("revoked[{i}]: {e}")))?);
        }
        let mut roster = Roster {
            mesh: self.mesh.clone(),
            version: self.version,
            previous,
            issued_at,
            members,
            revoked,
        };
        roster.canonicalize();
        roster.validate().map_err(|e| err(e.to_string()))?;
        Ok(roster)
    }
}

/// Reads a signed roster file.
pub fn load_signed(path: &Path) -> Result<Signed<Roster>, RosterFileError> {
    let bytes = std::fs::read(path).map_err(|source| RosterFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    codec::decode(&bytes).map_err(|source| RosterFileError::Signed {
        path: path.to_path_buf(),
        source,
    })
}

/// A table of the roster for people.
pub fn render(
    roster: &Roster,
    signer: Option<&PublicKey>,
    digest: Option<&[u8; 32]>,
    now: Timestamp,
) -> String {
    let mut out = String::new();
    out.push_str(&format!("mesh:      {}\n", roster.mesh));
    out.push_str(&format!("version:   {}\n", roster.version));
    out.push_str(&format!(
        "previous:  {}\n",
        roster
            .previous
            .map(|h| dxmesh_protocol::hex(&h))
            .unwrap_or_else(|| "(none: first version)".into())
    ));
    match signer {
        Some(_) => out.push_str(&format!("issued at: {}\n", roster.issued_at)),
        None => out.push_str("issued at: (not yet: stamped when the anchor signs it)\n"),
    }
    if let Some(s) = signer {
        out.push_str(&format!(
            "signed by: {s} (signature not checked by `show`; use `verify`)\n"
        ));
    }
    if let Some(d) = digest {
        out.push_str(&format!("digest:    {}\n", dxmesh_protocol::hex(d)));
    }
    out.push_str(&format!("\nmembers ({}):\n", roster.members.len()));
    let rows: Vec<[String; 6]> = roster
        .members
        .iter()
        .map(|m| {
            [
                m.department.clone(),
                m.role.to_string(),
                m.display_name.clone(),
                m.public_key.peer_id().to_string(),
                format!("{} .. {}", m.valid_from.date(), m.valid_until.date()),
                roster.admission(&m.public_key, now).to_string(),
            ]
        })
        .collect();
    let header = ["DEPARTMENT", "ROLE", "NAME", "PEER ID", "VALID", "NOW"];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(c);
            s.push_str(&" ".repeat(w - c.chars().count() + 2));
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(header.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
    }
    out.push_str(&format!("\nrevoked ({}):\n", roster.revoked.len()));
    for k in &roster.revoked {
        out.push_str(&format!("  {}\n", k.peer_id()));
    }
    out
}
