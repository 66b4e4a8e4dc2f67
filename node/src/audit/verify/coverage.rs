//! Whether what a node's log says it did was allowed: every pull and
//! disclosure it served was covered by an agreement active at the time,
//! for the epoch current then (pulls inside its window), to the agreement's
//! consumer, admitted by the roster in force, within the pull maximum and
//! the disclosure quota; and every manifest it pulled was signed by the
//! provider the agreement names.

use super::bundle::{Bundle, Transcripts};
use super::report::Report;
use dxmesh_protocol::agreement::{Negotiation, Status, Step};
use dxmesh_protocol::audit::Event;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::roster::{Admission, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A feed pull.
    Pull,
    /// A disclosure of records.
    Disclosure,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Pull => "pull",
            Kind::Disclosure => "disclosure",
        })
    }
}

/// A pull or disclosure served, as its log entry records it.
struct Served {
    /// The agreement it was served under.
    agreement: Hash,
    /// The epoch it was for.
    epoch: u64,
    /// The node it was served to.
    requester: PublicKey,
    /// Pull or disclosure.
    kind: Kind,
}

/// Pulls opened and records asked for so far, per agreement and epoch.
#[derive(Default)]
struct Usage {
    /// Pull sessions opened.
    pulls: BTreeMap<(Hash, u64), BTreeSet<[u8; 16]>>,
    /// Records asked for in disclosures.
    disclosed: BTreeMap<(Hash, u64), u64>,
}

impl Usage {
    /// The pull or disclosure `event` records, counted; `None` for any
    /// other event.
    fn count(&mut self, event: &Event) -> Option<Served> {
        match event {
            Event::PullServed {
                agreement,
                epoch,
                consumer,
                pull_id,
                new_pull,
                ..
            } => {
                if *new_pull {
                    self.pulls
                        .entry((*agreement, *epoch))
                        .or_default()
                        .insert(*pull_id);
                }
                Some(Served {
                    agreement: *agreement,
                    epoch: *epoch,
                    requester: *consumer,
                    kind: Kind::Pull,
                })
            }
            Event::DisclosureServed {
                agreement,
                epoch,
                consumer,
                requested,
                ..
            } => {
                *self.disclosed.entry((*agreement, *epoch)).or_default() += requested;
                Some(Served {
                    agreement: *agreement,
                    epoch: *epoch,
                    requester: *consumer,
                    kind: Kind::Disclosure,
                })
            }
            _ => None,
        }
    }
}

/// The roster in force at `t`: the newest version issued at or before it.
fn roster_at(rosters: &[Roster], t: Timestamp) -> Option<&Roster> {
    rosters
        .iter()
        .rev()
        .find(|r| r.issued_at <= t)
        .or(rosters.first())
}

/// Status of an agreement at `t` from the steps taken up to `t`.
fn status_at(
    steps: &[(Timestamp, Step, PublicKey)],
    transcript: &[Signed<Step>],
    t: Timestamp,
) -> Option<(Status, Negotiation)> {
    let upto: Vec<Signed<Step>> = transcript
        .iter()
        .zip(steps)
        .take_while(|(_, (at, _, _))| *at <= t)
        .map(|(s, _)| s.clone())
        .collect();
    let n = Negotiation::replay(&upto).ok()?;
    Some((n.status(t, false), n))
}

/// Checks that every pull and disclosure bundle `b`'s node served was
/// covered by its agreement at the time (see the module doc), against the
/// agreements' `transcripts` and the `rosters` of every bundle.
pub(super) fn check_served(
    b: &Bundle,
    transcripts: &Transcripts,
    rosters: &[Roster],
    report: &mut Report,
) {
    let mut usage = Usage::default();
    for e in &b.entries {
        let Some(served) = usage.count(&e.event) else {
            continue;
        };
        let kind = served.kind;
        let Some((stored, steps)) = b.agreements.get(&served.agreement) else {
            report.fail(
                &b.peer,
                Some(e.seq),
                format!(
                    "{kind} under agreement {} with no transcript in the bundle",
                    dxmesh_protocol::hex(&served.agreement)
                ),
            );
            continue;
        };
        let Some(transcript) = transcripts.get(&stored.thread) else {
            continue;
        };
        let Some((status, n)) = status_at(steps, transcript, e.at) else {
            report.fail(
                &b.peer,
                Some(e.seq),
                format!("{kind} at {} before the agreement was even proposed", e.at),
            );
            continue;
        };
        let mut problems = agreement_problems(&served, e.at, status, &n, &b.key);
        problems.extend(limit_problems(&served, e.at, &n, rosters, &usage));
        if problems.is_empty() {
            report.pass(&format!("{kind}s covered by an active agreement"));
        }
        for p in problems {
            report.fail(&b.peer, Some(e.seq), p);
        }
    }
}

/// What is wrong with `served` at `at` under the agreement `n` (whose
/// status then was `status`) served by the node `provider`: an agreement
/// not active, another consumer or provider, another epoch than the
/// current one, or a pull outside the epoch's pull window.
fn agreement_problems(
    served: &Served,
    at: Timestamp,
    status: Status,
    n: &Negotiation,
    provider: &PublicKey,
) -> Vec<String> {
    let (kind, epoch) = (served.kind, served.epoch);
    let mut problems = Vec::new();
    if status != Status::Active {
        problems.push(format!("{kind} while the agreement was {status}"));
    }
    if served.requester != n.terms.consumer {
        problems.push(format!(
            "{kind} to a node that is not the agreement's consumer"
        ));
    }
    if n.terms.provider != *provider {
        problems.push(format!(
            "{kind} served by a node that is not the agreement's provider"
        ));
    }
    match n.terms.cycle.epoch_at(at) {
        Some(cur) if cur == epoch => {
            if kind == Kind::Pull
                && let Some((s, end)) = n.terms.cycle.window(epoch)
                && (at < s || at >= end)
            {
                problems.push(format!(
                    "pull outside the pull window of epoch {epoch} ({s} to {end}) at {at}"
                ));
            }
        }
        other => problems.push(format!(
            "{kind} for epoch {epoch} when the current epoch was {other:?}"
        )),
    }
    problems
}

/// What is wrong with `served` at `at` against the limits of the agreement
/// `n` and the roster: a requester not admitted by the roster in force, more
/// pulls in the epoch than allowed, or disclosures over the epoch's quota
/// (counting everything served up to and including it, per `usage`).
fn limit_problems(
    served: &Served,
    at: Timestamp,
    n: &Negotiation,
    rosters: &[Roster],
    usage: &Usage,
) -> Vec<String> {
    let (kind, epoch) = (served.kind, served.epoch);
    let key = (served.agreement, epoch);
    let mut problems = Vec::new();
    if let Some(r) = roster_at(rosters, at) {
        let adm = r.admission(&served.requester, at);
        if adm != Admission::Admitted {
            problems.push(format!(
                "{kind} to a node that was {adm} at the time (roster v{})",
                r.version
            ));
        }
    }
    if kind == Kind::Pull
        && usage.pulls.get(&key).map(|s| s.len()).unwrap_or(0) > n.terms.cycle.max_pulls as usize
    {
        problems.push(format!(
            "more than the {} pulls allowed in epoch {epoch}",
            n.terms.cycle.max_pulls
        ));
    }
    if kind == Kind::Disclosure
        && usage.disclosed.get(&key).copied().unwrap_or(0)
            > n.terms.disclosure.max_records_per_epoch
    {
        problems.push(format!(
            "disclosures over the quota of {} for epoch {epoch}",
            n.terms.disclosure.max_records_per_epoch
        ));
    }
    problems
}

/// Checks that every manifest bundle `b`'s node pulled is in the bundle
/// and was signed by the provider its agreement names.
pub(super) fn check_manifests(b: &Bundle, report: &mut Report) {
    for e in &b.entries {
        let Event::PullCompleted {
            agreement,
            manifest,
            provider,
            ..
        } = &e.event
        else {
            continue;
        };
        match (b.manifests.get(manifest), b.agreements.get(agreement)) {
            (Some(m), Some((n, _))) => {
                if m.verify_by(&n.terms.provider).is_ok() && *provider == n.terms.provider {
                    report.pass("pulled manifests signed by the agreement's provider");
                } else {
                    report.fail(
                        &b.peer,
                        Some(e.seq),
                        "a pulled manifest is not signed by the agreement's provider".into(),
                    );
                }
            }
            (None, _) => report.fail(
                &b.peer,
                Some(e.seq),
                "the pulled manifest is missing from the bundle".into(),
            ),
            (_, None) => report.fail(
                &b.peer,
                Some(e.seq),
                "pull under an agreement with no transcript in the bundle".into(),
            ),
        }
    }
}
