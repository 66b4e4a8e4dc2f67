//! The trust roster (X-Road's "global configuration"): which nodes are
//! members of the mesh, in which department and role, and which keys were
//! revoked. A provincial trust anchor signs every version; each version names
//! the digest of the previous one, and revocations are permanent.
//!
//! This module decides whether a roster (or a chain of them) may replace the
//! one a node holds, and whether a peer is admitted by a roster at a given
//! time. The node enforces those answers on every connection and stream.

use crate::hash::Hash;
use crate::identity::PublicKey;
use crate::signed::{SignatureError, Signed, SignedKind};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// What a member does in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Publishes datasets (a department).
    Provider,
    /// Pulls and compares (the provincial comparator).
    Comparator,
    /// The national level.
    Ministry,
}

impl Role {
    /// The lowercase name used in files and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Comparator => "comparator",
            Role::Ministry => "ministry",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "provider" => Ok(Role::Provider),
            "comparator" => Ok(Role::Comparator),
            "ministry" => Ok(Role::Ministry),
            other => Err(format!(
                "unknown role {other:?}: expected provider, comparator or ministry"
            )),
        }
    }
}

/// One member node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's identity key (its PeerId follows from it).
    pub public_key: PublicKey,
    /// Department: `public_security`, `civil_affairs`, `health`,
    /// `disabled_federation`, `hr`, `comparator`, `ministry` or another name.
    pub department: String,
    /// Role.
    pub role: Role,
    /// Name shown to people.
    pub display_name: String,
    /// Where the node listens (multiaddrs), may be empty.
    pub addresses: Vec<String>,
    /// Admitted from this instant.
    pub valid_from: Timestamp,
    /// Admitted until this instant (exclusive).
    pub valid_until: Timestamp,
}

/// One roster version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Name of the mesh (for example the province), the same in every version.
    pub mesh: String,
    /// Version number, from 1, each one more than the previous.
    pub version: u64,
    /// Digest ([`Signed::digest`]) of the previous signed version; `None` for version 1.
    pub previous: Option<Hash>,
    /// When the anchor signed it.
    pub issued_at: Timestamp,
    /// Members, ordered by public key.
    pub members: Vec<Member>,
    /// Revoked keys, ordered. Revocation is permanent.
    pub revoked: Vec<PublicKey>,
}

impl SignedKind for Roster {
    const TAG: &'static str = "dxmesh/roster/v1";
}

/// Why a roster was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum RosterError {
    /// Not signed (validly) by the trust anchor.
    #[error("roster version {version} is not validly signed by the trust anchor: {source}")]
    NotAnchorSigned {
        /// The version offered.
        version: u64,
        /// Why.
        source: SignatureError,
    },
    /// Not newer than the roster held.
    #[error("roster version {offered} is not newer than the held version {held}")]
    NotNewer {
        /// Held version.
        held: u64,
        /// Offered version.
        offered: u64,
    },
    /// The chain skips a version or names the wrong predecessor.
    #[error("roster version {version} does not chain to version {previous}")]
    BrokenChain {
        /// The version that does not chain.
        version: u64,
        /// The version it should follow.
        previous: u64,
    },
    /// A different mesh name than the roster held.
    #[error("roster is for mesh {offered:?}, not {held:?}")]
    WrongMesh {
        /// Held mesh.
        held: String,
        /// Offered mesh.
        offered: String,
    },
    /// A key revoked earlier is missing from the revoked list.
    #[error("roster version {version} drops the revocation of {key}")]
    RevocationDropped {
        /// Version.
        version: u64,
        /// The key.
        key: PublicKey,
    },
    /// The roster contradicts itself.
    #[error("roster version {version} is inconsistent: {problem}")]
    Inconsistent {
        /// Version.
        version: u64,
        /// What is wrong.
        problem: String,
    },
    /// An empty chain was offered.
    #[error("no roster offered")]
    Empty,
    /// More versions offered at once than a chain may hold.
    #[error(
        "a chain of {versions} roster versions is offered; at most {MAX_CHAIN_VERSIONS} are read"
    )]
    TooLong {
        /// Versions offered.
        versions: usize,
    },
}

/// The versions of `chain` newer than version `held` (0: none held), in
/// order: what a node offered a whole chain (a push, a sync answer, an
/// operator's files) goes on to check. A version that does not decode is
/// kept, for [`accept_chain`] to refuse.
pub fn newer_versions(chain: Vec<Signed<Roster>>, held: u64) -> Vec<Signed<Roster>> {
    chain
        .into_iter()
        .filter(|s| version_of(s).is_none_or(|v| v > held))
        .collect()
}

/// Each signed version of `chain` with its version number (0 for one that
/// does not decode), as a node stores them.
pub fn numbered(chain: &[Signed<Roster>]) -> Vec<(u64, &Signed<Roster>)> {
    chain
        .iter()
        .map(|s| (version_of(s).unwrap_or(0), s))
        .collect()
}

fn version_of(s: &Signed<Roster>) -> Option<u64> {
    crate::codec::decode::<Roster>(s.body())
        .ok()
        .map(|r| r.version)
}

/// The most roster versions one message may carry (a push or a sync
/// answer): a chain longer than that is refused before any version is
/// checked, so that a member cannot make a node verify thousands of
/// signatures with one request. A mesh changing its roster weekly reaches
/// it in 19 years.
pub const MAX_CHAIN_VERSIONS: usize = 1000;

/// Why a peer is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Admission {
    /// Admitted.
    Admitted,
    /// Not listed in the roster.
    NotMember,
    /// Listed as revoked.
    Revoked,
    /// Its validity has not started.
    NotYetValid,
    /// Its validity has ended.
    Expired,
}

impl fmt::Display for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admission::Admitted => "admitted",
            Admission::NotMember => "not a roster member",
            Admission::Revoked => "revoked",
            Admission::NotYetValid => "membership not yet valid",
            Admission::Expired => "membership expired",
        })
    }
}

impl Roster {
    /// Checks the roster on its own: versions, ordering, duplicates,
    /// validity periods, revoked keys not listed as members.
    pub fn validate(&self) -> Result<(), RosterError> {
        let bad = |problem: String| RosterError::Inconsistent {
            version: self.version,
            problem,
        };
        if self.version == 0 {
            return Err(bad("version numbers start at 1".into()));
        }
        if (self.version == 1) != self.previous.is_none() {
            return Err(bad("exactly version 1 has no previous digest".into()));
        }
        let mut seen = BTreeSet::new();
        for m in &self.members {
            if !seen.insert(m.public_key) {
                return Err(bad(format!("member {} listed twice", m.public_key)));
            }
            if m.valid_from >= m.valid_until {
                return Err(bad(format!(
                    "member {} has an empty validity period",
                    m.public_key
                )));
            }
            if self.revoked.contains(&m.public_key) {
                return Err(bad(format!("member {} is also revoked", m.public_key)));
            }
        }
        if !self
            .members
            .windows(2)
            .all(|w| w[0].public_key < w[1].public_key)
        {
            return Err(bad("members are not ordered by public key".into()));
        }
        if !self.revoked.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad("revoked keys are not ordered or repeat".into()));
        }
        Ok(())
    }

    /// The member with key `key`, if listed.
    pub fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.public_key.cmp(key))
            .ok()
            .map(|i| &self.members[i])
    }

    /// Whether `key` is admitted at `now`.
    pub fn admission(&self, key: &PublicKey, now: Timestamp) -> Admission {
        if self.revoked.binary_search(key).is_ok() {
            return Admission::Revoked;
        }
        match self.member(key) {
            None => Admission::NotMember,
            Some(m) if now < m.valid_from => Admission::NotYetValid,
            Some(m) if now >= m.valid_until => Admission::Expired,
            Some(_) => Admission::Admitted,
        }
    }

    /// Sorts members and revoked keys into canonical order (drafts call this before signing).
    pub fn canonicalize(&mut self) {
        self.members.sort_by_key(|m| m.public_key);
        self.revoked.sort();
        self.revoked.dedup();
    }
}

/// Accepts `offered` (consecutive versions, oldest first) on top of `held`.
///
/// Every offered version must be signed by `anchor`, be consistent, and
/// chain to the one before it; the first must follow `held` (any
/// anchor-signed roster is accepted as a starting point when none is held).
/// Returns the newest roster, decoded. Nothing is accepted unless all is.
pub fn accept_chain(
    held: Option<&Signed<Roster>>,
    offered: &[Signed<Roster>],
    anchor: &PublicKey,
) -> Result<Roster, RosterError> {
    if offered.is_empty() {
        return Err(RosterError::Empty);
    }
    if offered.len() > MAX_CHAIN_VERSIONS {
        return Err(RosterError::TooLong {
            versions: offered.len(),
        });
    }
    let mut prev: Option<(Roster, Hash)> = match held {
        Some(s) => {
            let r = s
                .verify_by(anchor)
                .map_err(|source| RosterError::NotAnchorSigned { version: 0, source })?;
            Some((r, s.digest()))
        }
        None => None,
    };
    for s in offered {
        let r = s
            .verify_by(anchor)
            .map_err(|source| RosterError::NotAnchorSigned {
                version: crate::codec::decode::<Roster>(s.body())
                    .map(|r| r.version)
                    .unwrap_or(0),
                source,
            })?;
        r.validate()?;
        if let Some((p, digest)) = &prev {
            if r.version <= p.version {
                return Err(RosterError::NotNewer {
                    held: p.version,
                    offered: r.version,
                });
            }
            if r.version != p.version + 1 || r.previous != Some(*digest) {
                return Err(RosterError::BrokenChain {
                    version: r.version,
                    previous: p.version,
                });
            }
            if r.mesh != p.mesh {
                return Err(RosterError::WrongMesh {
                    held: p.mesh.clone(),
                    offered: r.mesh.clone(),
                });
            }
            if let Some(key) = p
                .revoked
                .iter()
                .find(|k| r.revoked.binary_search(k).is_err())
            {
                return Err(RosterError::RevocationDropped {
                    version: r.version,
                    key: *key,
                });
            }
        }
        prev = Some((r, s.digest()));
    }
    Ok(prev.expect("offered is not empty").0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn member(seed: u8, role: Role) -> Member {
        Member {
            public_key: Identity::from_seed([seed; 32]).unwrap().public(),
            department: format!("dept{seed}"),
            role,
            display_name: format!("Node {seed}"),
            addresses: vec![],
            valid_from: Timestamp(0),
            valid_until: Timestamp(u64::MAX),
        }
    }

    fn v1() -> Roster {
        let mut r = Roster {
            mesh: "test".into(),
            version: 1,
            previous: None,
            issued_at: Timestamp(10),
            members: vec![member(1, Role::Provider), member(2, Role::Comparator)],
            revoked: vec![],
        };
        r.canonicalize();
        r
    }

    #[test]
    fn only_newer_versions_are_taken_and_numbered() {
        let anchor = Identity::from_seed([99; 32]).unwrap();
        let s1 = Signed::sign(&anchor, &v1()).unwrap();
        let mut r2 = v1();
        r2.version = 2;
        r2.previous = Some(s1.digest());
        let s2 = Signed::sign(&anchor, &r2).unwrap();
        let chain = vec![s1.clone(), s2.clone()];
        assert_eq!(newer_versions(chain.clone(), 0), chain);
        assert_eq!(newer_versions(chain.clone(), 1), vec![s2.clone()]);
        assert!(newer_versions(chain.clone(), 2).is_empty());
        assert_eq!(numbered(&chain), vec![(1, &s1), (2, &s2)]);
    }

    #[test]
    fn a_chain_too_long_is_refused_before_any_version_is_checked() {
        let anchor = Identity::from_seed([99; 32]).unwrap();
        let s1 = Signed::sign(&anchor, &v1()).unwrap();
        // Copies of version 1: the first check would refuse the second copy
        // (not newer); the length refuses the chain before that.
        let long = vec![s1.clone(); MAX_CHAIN_VERSIONS + 1];
        assert_eq!(
            accept_chain(None, &long, &anchor.public()),
            Err(RosterError::TooLong {
                versions: MAX_CHAIN_VERSIONS + 1
            })
        );
        let most = vec![s1; MAX_CHAIN_VERSIONS];
        assert!(!matches!(
            accept_chain(None, &most, &anchor.public()),
            Err(RosterError::TooLong { .. })
        ));
    }

    #[test]
    fn chain_acceptance_and_refusals() {
        let anchor = Identity::from_seed([99; 32]).unwrap();
        let s1 = Signed::sign(&anchor, &v1()).unwrap();
        assert_eq!(
            accept_chain(None, std::slice::from_ref(&s1), &anchor.public()).unwrap(),
            v1()
        );

        let mut r2 = v1();
        r2.version = 2;
        r2.previous = Some(s1.digest());
        let revoked = r2.members.remove(0).public_key;
        r2.revoked.push(revoked);
        let s2 = Signed::sign(&anchor, &r2).unwrap();
        assert_eq!(
            accept_chain(Some(&s1), std::slice::from_ref(&s2), &anchor.public()).unwrap(),
            r2
        );
        assert_eq!(r2.admission(&revoked, Timestamp(50)), Admission::Revoked);

        // Older or equal: refused.
        assert!(matches!(
            accept_chain(Some(&s2), std::slice::from_ref(&s1), &anchor.public()),
            Err(RosterError::NotNewer {
                held: 2,
                offered: 1
            })
        ));
        // Signed by someone else: refused.
        let mallory = Identity::from_seed([98; 32]).unwrap();
        let forged = Signed::sign(&mallory, &r2).unwrap();
        assert!(matches!(
            accept_chain(Some(&s1), &[forged], &anchor.public()),
            Err(RosterError::NotAnchorSigned { version: 2, .. })
        ));
        // Wrong predecessor digest: refused.
        let mut r2b = r2.clone();
        r2b.previous = Some([0; 32]);
        let s2b = Signed::sign(&anchor, &r2b).unwrap();
        assert!(matches!(
            accept_chain(Some(&s1), &[s2b], &anchor.public()),
            Err(RosterError::BrokenChain {
                version: 2,
                previous: 1
            })
        ));
        // Dropping a revocation: refused.
        let mut r3 = r2.clone();
        r3.version = 3;
        r3.previous = Some(s2.digest());
        r3.revoked.clear();
        let s3 = Signed::sign(&anchor, &r3).unwrap();
        assert!(matches!(
            accept_chain(Some(&s2), &[s3], &anchor.public()),
            Err(RosterError::RevocationDropped { version: 3, .. })
        ));
    }

    #[test]
    fn admission_by_validity() {
        let mut r = v1();
        r.members[0].valid_from = Timestamp(100);
        r.members[0].valid_until = Timestamp(200);
        let k = r.members[0].public_key;
        assert_eq!(r.admission(&k, Timestamp(99)), Admission::NotYetValid);
        assert_eq!(r.admission(&k, Timestamp(100)), Admission::Admitted);
        assert_eq!(r.admission(&k, Timestamp(200)), Admission::Expired);
        let stranger = Identity::from_seed([50; 32]).unwrap().public();
        assert_eq!(r.admission(&stranger, Timestamp(150)), Admission::NotMember);
    }

    #[test]
    fn inconsistent_rosters_are_refused() {
        let mut r = v1();
        r.members.push(r.members[0].clone());
        assert!(matches!(
            r.validate(),
            Err(RosterError::Inconsistent { .. })
        ));
        let mut r = v1();
        r.revoked.push(r.members[0].public_key);
        assert!(matches!(
            r.validate(),
            Err(RosterError::Inconsistent { .. })
        ));
        let mut r = v1();
        r.previous = Some([1; 32]);
        assert!(matches!(
            r.validate(),
            Err(RosterError::Inconsistent { .. })
        ));
    }
}
