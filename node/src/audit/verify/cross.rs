//! Checks across bundles: what one node's log says it served, the other's
//! says it received (and the other way round for pulls), and the checkpoints
//! a node witnessed for a peer match the peer's own log.

use super::bundle::Bundle;
use super::report::Report;
use dxmesh_protocol::audit::Event;
use dxmesh_protocol::hash::Hash;
use dxmesh_protocol::identity::PublicKey;
use std::collections::BTreeMap;

/// Checks that every disclosure bundle `b`'s node served is logged as
/// received by its consumer, and every pull it completed is logged as
/// served by its provider, for the peers whose bundles are in `by_key`.
pub(super) fn check_exchanges(
    b: &Bundle,
    by_key: &BTreeMap<PublicKey, &Bundle>,
    report: &mut Report,
) {
    for e in &b.entries {
        match &e.event {
            Event::DisclosureServed {
                consumer, digest, ..
            } => {
                let Some(c) = by_key.get(consumer) else {
                    continue;
                };
                let received = c.entries.iter().any(
                    |x| matches!(&x.event, Event::DisclosureReceived { digest: d, .. } if d == digest),
                );
                if received {
                    report.pass("disclosures served were received");
                } else {
                    report.fail(
                        &b.peer,
                        Some(e.seq),
                        format!(
                            "disclosure served to {} that its log does not show received",
                            c.peer
                        ),
                    );
                }
            }
            Event::PullCompleted {
                provider,
                pull_id,
                manifest,
                ..
            } => {
                let Some(p) = by_key.get(provider) else {
                    continue;
                };
                let served = p.entries.iter().any(|x| {
                    matches!(&x.event, Event::PullServed { pull_id: i, manifest: m, .. } if i == pull_id && m == manifest)
                });
                if served {
                    report.pass("pulls received were served");
                } else {
                    report.fail(
                        &b.peer,
                        Some(e.seq),
                        format!("a pull from {} that its log does not show served", p.peer),
                    );
                }
            }
            Event::MinistryQuery {
                answered: true,
                peer,
                commitment,
                receipt,
                ..
            } => check_ministry_query(b, e.seq, (peer, commitment, receipt), by_key, report),
            _ => {}
        }
    }
}

/// A ministry query the ministry (bundle `b`) answered: a provider whose
/// bundle is at hand and that logged checking the candidates' commitment
/// the query carried (the registry) also logged serving the querying
/// comparator the disclosure with the query's receipt. Without the bundle
/// of a provider that checked the commitment there is nothing to compare.
fn check_ministry_query(
    b: &Bundle,
    seq: u64,
    (asker, commitment, receipt): (&PublicKey, &Hash, &Hash),
    by_key: &BTreeMap<PublicKey, &Bundle>,
    report: &mut Report,
) {
    let checked: Vec<&&Bundle> = by_key
        .values()
        .filter(|p| {
            p.entries.iter().any(|x| {
                matches!(&x.event, Event::CommitmentChecked { commitment: c, consumer, .. } if c == commitment && consumer == asker)
            })
        })
        .collect();
    if checked.is_empty() {
        return;
    }
    let served = checked.iter().any(|p| {
        p.entries.iter().any(|x| {
            matches!(&x.event, Event::DisclosureServed { consumer, receipt: Some(r), .. } if r == receipt && consumer == asker)
        })
    });
    if served {
        report.pass("ministry queries carried receipts their provider served");
    } else {
        report.fail(
            &b.peer,
            Some(seq),
            format!(
                "a ministry query was answered on a receipt that {} (which checked its commitment) never served",
                checked[0].peer
            ),
        );
    }
}

/// Checks that every checkpoint bundle `b`'s node witnessed for a peer
/// whose bundle is among `bundles` matches that peer's log at its size (a
/// mismatch means the peer rewrote its log), and that the peer's bundle
/// reaches that size: a bundle must prove consistency up to the largest
/// checkpoint any witness holds, so a log that was cut short, or rewritten
/// shorter, fails (with both signed notes, as a fork is shown); export a
/// node's bundle after its witnesses have seen its newest checkpoint.
pub(super) fn check_witnessed(b: &Bundle, bundles: &[Bundle], report: &mut Report) {
    for (peer, (cp, note)) in &b.witnessed {
        let Some(other) = bundles.iter().find(|o| &o.peer == peer) else {
            continue;
        };
        match other.prefix_roots.get(cp.size as usize).copied() {
            Some(root) if root == cp.root => {
                report.pass("witnessed checkpoints consistent with the logs")
            }
            Some(_) => report.fail(
                &other.peer,
                None,
                format!(
                    "{} witnessed a checkpoint of {} entries that this log does not reproduce: the log was rewritten",
                    b.peer, cp.size
                ),
            ),
            None => report.fail(
                &other.peer,
                None,
                format!(
                    "{} witnessed a checkpoint of {} entries, but this bundle's log holds {}: the log was cut short or rewritten (or the bundle is older than the witness's)\n--- witnessed by {}:\n{}--- the bundle's newest checkpoint:\n{}",
                    b.peer,
                    cp.size,
                    other.entries.len(),
                    b.peer,
                    note,
                    other.latest_note.as_deref().unwrap_or("(none)\n")
                ),
            ),
        }
    }
}
