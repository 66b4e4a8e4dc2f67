//! Token group master keys at a provider: stored one file per group under
//! `keys/` (mode 0600, written atomically), created by the group's key
//! custodian, and handed by the custodian only to other **providers** whose
//! accepted agreement names the group *and serves the group's purpose*: it
//! has the consumer of one of the custodian's own accepted or active
//! agreements in the group, the node whose comparison the group's tokens
//! are for ([`check_key_request`]). Feeds of one group may serve different
//! purposes at that consumer (outreach, the deceased check).
//! Comparator and ministry nodes never hold a group key: the custodian
//! refuses to send one to them, and they refuse to store one. Epoch keys are
//! derived from the master key per epoch (`protocol::token`), so tokens of
//! different epochs cannot be linked.

use crate::base::fsutil;
use dxmesh_protocol::agreement::{Negotiation, Status, Step, Terms};
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
    /// The custodian has no accepted or active agreement of its own in the
    /// group, so the group has no purpose a key could be handed out for.
    #[error(
        "group key refused: the custodian has no agreement in group {group:?} that defines its purpose"
    )]
    NoGroupPurpose {
        /// The token group.
        group: String,
    },
    /// The requester's agreement names another consumer than the
    /// custodian's own agreements in the group.
    #[error(
        "group key refused: the agreement's consumer {label} is not the consumer of group {group:?} ({})",
        .group_consumers.join(", ")
    )]
    OtherConsumer {
        /// The consumer of the requester's agreement.
        consumer: PublicKey,
        /// That consumer as people read it: department and PeerId.
        label: String,
        /// The token group.
        group: String,
        /// The consumers of the custodian's own agreements in the group.
        group_consumers: Vec<String>,
    },
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

/// A roster member as people read it: department and PeerId.
fn label(roster: &Roster, key: &PublicKey) -> String {
    let department = roster
        .member(key)
        .map(|m| m.department.as_str())
        .unwrap_or("unknown");
    format!("{department} ({})", key.peer_id())
}

/// The custodian's decision on a key request from `requester`: a current
/// roster member with role `provider`, presenting an accepted, unexpired
/// agreement in which it is the provider, which names `group`, and which
/// serves the group's purpose.
///
/// The group's purpose is defined by `own`: the custodian's own accepted or
/// active agreements in which it is the provider (terms of another group are
/// ignored). The presented agreement must have the consumer of one of them;
/// a custodian with no such agreement of its own hands out no key
/// ([`KeyError::NoGroupPurpose`]). Pure: the caller collects `own` and
/// records the decision.
pub fn check_key_request(
    roster: &Roster,
    requester: &PublicKey,
    group: &str,
    transcript: &[Signed<Step>],
    own: &[Terms],
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
        Status::Active | Status::Accepted | Status::Suspended => {}
        other => return refuse(format!("the agreement presented is {other}")),
    }
    check_group_purpose(roster, group, &n.terms, own)
}

/// Whether `terms` (the requester's agreement in `group`) has the consumer
/// of one of the custodian's own agreements `own` in it.
fn check_group_purpose(
    roster: &Roster,
    group: &str,
    terms: &Terms,
    own: &[Terms],
) -> Result<(), KeyError> {
    let own: Vec<&Terms> = own.iter().filter(|t| t.token_group == group).collect();
    if own.is_empty() {
        return Err(KeyError::NoGroupPurpose {
            group: group.to_string(),
        });
    }
    if !own.iter().any(|t| t.consumer == terms.consumer) {
        let consumers: std::collections::BTreeSet<String> =
            own.iter().map(|t| label(roster, &t.consumer)).collect();
        return Err(KeyError::OtherConsumer {
            consumer: terms.consumer,
            label: label(roster, &terms.consumer),
            group: group.to_string(),
            group_consumers: consumers.into_iter().collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxmesh_protocol::agreement::{Action, DisclosureTerms, FieldTerm, Treatment, sign_step};
    use dxmesh_protocol::cycle::{Cycle, Period};
    use dxmesh_protocol::date::Date;
    use dxmesh_protocol::identity::Identity;
    use dxmesh_protocol::roster::Member;

    const OUTREACH: &str = "registration/uninsured-outreach";
    const DECEASED: &str = "registration/deceased-check";

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn id(seed: u8) -> Identity {
        Identity::from_seed([seed; 32]).unwrap()
    }

    /// The custodian (public security), a second provider (hr), a
    /// comparator and a ministry; `id(9)` is not a member.
    fn nodes() -> [Identity; 4] {
        [id(1), id(2), id(3), id(4)]
    }

    fn roster() -> Roster {
        let [ps, hr, cmp, min] = nodes();
        let member = |i: &Identity, department: &str, role: Role| Member {
            public_key: i.public(),
            department: department.into(),
            role,
            display_name: department.into(),
            addresses: vec![],
            valid_from: t("2020-01-01"),
            valid_until: t("2099-01-01"),
        };
        let mut r = Roster {
            mesh: "test".into(),
            version: 1,
            previous: None,
            issued_at: t("2026-01-01"),
            members: vec![
                member(&ps, "public_security", Role::Provider),
                member(&hr, "hr", Role::Provider),
                member(&cmp, "comparator", Role::Comparator),
                member(&min, "ministry", Role::Ministry),
            ],
            revoked: vec![],
        };
        r.canonicalize();
        r
    }

    /// Terms of a feed of `provider` to `consumer` in `group` for `purpose`.
    fn terms(provider: &Identity, consumer: &Identity, group: &str, purpose: &str) -> Terms {
        Terms {
            provider: provider.public(),
            consumer: consumer.public(),
            dataset: "insured".into(),
            fields: vec![FieldTerm {
                name: "id_number".into(),
                treatment: Treatment::Token,
            }],
            rows: vec![],
            purpose_code: purpose.into(),
            purpose: "A test purpose.".into(),
            token_group: group.into(),
            cycle: Cycle {
                period: Period::Days(1),
                anchor: Date::new(2026, 1, 1).unwrap(),
                window_secs: 86_400,
                max_pulls: 1,
            },
            disclosure: DisclosureTerms {
                fields: vec![],
                inputs: vec![],
                jobs: vec![],
                max_records_per_epoch: 0,
            },
            retention_days: 90,
            not_before: t("2026-01-01"),
            not_after: t("2027-01-01"),
            version: 1,
            supersedes: None,
        }
    }

    /// The transcript of `terms` proposed by the consumer and accepted by the provider.
    fn accepted(terms: &Terms, provider: &Identity, consumer: &Identity) -> Vec<Signed<Step>> {
        let s0 = sign_step(
            consumer,
            None,
            t("2026-01-01"),
            Action::Propose(terms.clone()),
        )
        .unwrap();
        let n = Negotiation::start(&s0).unwrap();
        let s1 = sign_step(
            provider,
            Some(&n),
            t("2026-01-01"),
            Action::Accept {
                agreement: terms.id(),
            },
        )
        .unwrap();
        vec![s0, s1]
    }

    /// hr asks for the `registration` key with its agreement `(consumer,
    /// purpose)` while the custodian's own agreements are `own`.
    fn hr_asks(consumer: &Identity, purpose: &str, own: &[Terms]) -> Result<(), KeyError> {
        let [_, hr, ..] = nodes();
        let mine = terms(&hr, consumer, "registration", purpose);
        check_key_request(
            &roster(),
            &hr.public(),
            "registration",
            &accepted(&mine, &hr, consumer),
            own,
            t("2026-06-01"),
        )
    }

    #[test]
    fn a_provider_of_the_groups_consumer_and_purpose_gets_the_key() {
        let [ps, _, cmp, min] = nodes();
        let own = [terms(&ps, &cmp, "registration", OUTREACH)];
        hr_asks(&cmp, OUTREACH, &own).unwrap();
        // A group of two purposes: either one, each with its own consumer.
        let two = [
            terms(&ps, &cmp, "registration", OUTREACH),
            terms(&ps, &min, "registration", DECEASED),
        ];
        hr_asks(&cmp, OUTREACH, &two).unwrap();
        hr_asks(&min, DECEASED, &two).unwrap();
    }

    #[test]
    fn a_custodian_without_an_agreement_in_the_group_hands_out_no_key() {
        let [ps, _, cmp, _] = nodes();
        let e = hr_asks(&cmp, OUTREACH, &[]).unwrap_err();
        assert!(matches!(&e, KeyError::NoGroupPurpose { group } if group == "registration"));
        assert_eq!(
            e.to_string(),
            "group key refused: the custodian has no agreement in group \"registration\" that defines its purpose"
        );
        // Its agreements in other groups do not count.
        let other_group = [terms(&ps, &cmp, "upload", OUTREACH)];
        assert!(matches!(
            hr_asks(&cmp, OUTREACH, &other_group),
            Err(KeyError::NoGroupPurpose { .. })
        ));
    }

    #[test]
    fn an_agreement_for_another_purpose_with_the_groups_consumer_gets_the_key() {
        let [ps, _, cmp, _] = nodes();
        let own = [terms(&ps, &cmp, "registration", OUTREACH)];
        hr_asks(&cmp, DECEASED, &own).unwrap();
    }

    #[test]
    fn an_agreement_with_another_consumer_is_refused() {
        let [ps, _, cmp, min] = nodes();
        let own = [terms(&ps, &cmp, "registration", OUTREACH)];
        let e = hr_asks(&min, OUTREACH, &own).unwrap_err();
        assert!(
            matches!(&e, KeyError::OtherConsumer { consumer, .. } if *consumer == min.public())
        );
        assert_eq!(
            e.to_string(),
            format!(
                "group key refused: the agreement's consumer ministry ({}) is not the consumer of group \"registration\" (comparator ({}))",
                min.public().peer_id(),
                cmp.public().peer_id()
            )
        );
        // Any consumer of the custodian's own agreements in the group will do.
        let two = [
            terms(&ps, &cmp, "registration", OUTREACH),
            terms(&ps, &min, "registration", DECEASED),
        ];
        hr_asks(&min, OUTREACH, &two).unwrap();
        // Another provider as consumer (not a roster comparator or ministry).
        assert!(matches!(
            hr_asks(&ps, OUTREACH, &own),
            Err(KeyError::OtherConsumer { .. })
        ));
    }

    #[test]
    fn comparators_ministries_strangers_and_bad_transcripts_are_refused() {
        let [ps, hr, cmp, min] = nodes();
        let own = [terms(&ps, &cmp, "registration", OUTREACH)];
        let now = t("2026-06-01");
        let refused = |requester: &Identity, transcript: &[Signed<Step>], group: &str| {
            match check_key_request(&roster(), &requester.public(), group, transcript, &own, now) {
                Err(KeyError::Refused(m)) => m,
                other => panic!("expected a refusal, got {other:?}"),
            }
        };
        let hr_terms = terms(&hr, &cmp, "registration", OUTREACH);
        let good = accepted(&hr_terms, &hr, &cmp);
        // Consumers never get a key, even with a valid agreement of the group's purpose.
        for (node, role) in [(&cmp, "comparator"), (&min, "ministry")] {
            let m = refused(node, &good, "registration");
            assert!(
                m.contains(&format!(
                    "roster role is {role}; only providers may hold token group keys"
                )),
                "{m}"
            );
        }
        let m = refused(&id(9), &good, "registration");
        assert!(m.contains("not admitted by the roster"), "{m}");
        // The custodian's own agreement, presented by another provider.
        let ps_terms = &own[0];
        let m = refused(&hr, &accepted(ps_terms, &ps, &cmp), "registration");
        assert!(m.contains("not the provider of the agreement"), "{m}");
        let m = refused(&hr, &good, "upload");
        assert!(m.contains("is for group \"registration\""), "{m}");
        let m = refused(&hr, &good[..1], "registration");
        assert!(m.contains("the agreement presented is proposed"), "{m}");
        let m = refused(&hr, &good[1..], "registration");
        assert!(m.contains("does not verify"), "{m}");
    }

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
