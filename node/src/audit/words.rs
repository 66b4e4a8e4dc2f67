//! The audit log in words, for the console's audit page: each event's kind
//! as a phrase, the other party by department and name (not a key), the
//! agreement by its dataset and parties with a short id, counts, and
//! digests cut to twelve characters. How keys and agreements are named is
//! the caller's ([`Names`]: the daemon's roster and agreements).

use dxmesh_protocol::audit::Event;
use dxmesh_protocol::hash::Hash as AgreementId;
use dxmesh_protocol::identity::PublicKey;

/// How the page names a node and an agreement.
pub trait Names {
    /// A node: `health (卫健委, …KooWab12)`.
    fn peer(&self, key: &PublicKey) -> String;
    /// An agreement: `deaths, health → comparator (1a2b3c4d…)`.
    fn agreement(&self, id: &AgreementId) -> String;
}

/// One entry in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The event's kind as a phrase (`feed published`).
    pub kind: &'static str,
    /// The other node, named, when there is one.
    pub party: Option<String>,
    /// What happened, in a sentence.
    pub what: String,
    /// The agreement it is about, for a link to its page.
    pub agreement: Option<AgreementId>,
}

/// Every kind of event, as the page's filter offers them: (kind, phrase).
pub const KINDS: [(&str, &str); 24] = [
    ("node_started", "node started"),
    ("roster_accepted", "roster accepted"),
    ("peer_refused", "connection refused"),
    ("agreement_step", "agreement step"),
    ("key_distributed", "token key handed out"),
    ("key_received", "token key received"),
    ("imported", "export imported"),
    ("feed_published", "feed published"),
    ("pull_served", "pull served"),
    ("pull_completed", "pull completed"),
    ("request_refused", "request refused"),
    ("disclosure_served", "records disclosed"),
    ("disclosure_received", "records received"),
    ("job_run", "comparison run"),
    ("ministry_query", "ministry query"),
    ("witnessed", "checkpoint witnessed"),
    ("fork_detected", "FORK DETECTED"),
    ("feed_erased", "feed erased (retention)"),
    ("result_committed", "result committed"),
    ("commitment_checked", "commitment checked"),
    ("console_login", "console login"),
    ("console_action", "console action"),
    ("feed_superseded", "feed superseded"),
    ("tokens_erased", "tokens erased (retention)"),
];

/// The phrase of a kind (the kind itself if unknown).
pub fn kind_words(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("other", |(_, w)| w)
}

/// A digest as the page shows it: its first twelve hex characters.
pub fn short(bytes: &[u8]) -> String {
    let hex = dxmesh_protocol::hex(bytes);
    format!("{}…", &hex[..hex.len().min(12)])
}

/// The feed an event is about, if it names one still kept (published,
/// pulled or superseded; not an erased one): its agreement and epoch.
pub fn feed_of(event: &Event) -> Option<(AgreementId, u64)> {
    match event {
        Event::FeedPublished {
            agreement, epoch, ..
        }
        | Event::PullServed {
            agreement, epoch, ..
        }
        | Event::PullCompleted {
            agreement, epoch, ..
        }
        | Event::FeedSuperseded {
            agreement, epoch, ..
        } => Some((*agreement, *epoch)),
        _ => None,
    }
}

/// An entry's event in words.
pub fn describe(event: &Event, names: &dyn Names) -> Words {
    let mut party = None;
    let mut agreement = None;
    let what = match feed(event, &mut agreement) {
        Some(what) => what,
        None => match exchange(event, names, &mut party, &mut agreement) {
            Some(what) => what,
            None => local(event, names, &mut party),
        },
    };
    Words {
        kind: kind_words(event.kind()),
        party,
        what,
        agreement,
    }
}

/// An event about a feed (published, superseded, erased) in words; None
/// for the others.
fn feed(event: &Event, agreement: &mut Option<AgreementId>) -> Option<String> {
    Some(match event {
        Event::FeedPublished {
            agreement: id,
            epoch,
            manifest,
            records,
        } => {
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: {records} records signed (manifest {})",
                short(manifest)
            )
        }
        Event::FeedErased {
            agreement: id,
            epoch,
            kept_until,
        } => {
            *agreement = Some(*id);
            format!("epoch {epoch}: feed erased, its retention ended on {kept_until}")
        }
        Event::FeedSuperseded {
            agreement: id,
            epoch,
            superseded,
            by,
        } => {
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: manifest {} superseded by {}",
                short(superseded),
                short(by)
            )
        }
        _ => return None,
    })
}

/// An event about an agreement's exchanges (steps, pulls, refusals,
/// disclosures, the ministry's answers) in words; None for the
/// others.
fn exchange(
    event: &Event,
    names: &dyn Names,
    party: &mut Option<String>,
    agreement: &mut Option<AgreementId>,
) -> Option<String> {
    Some(match event {
        Event::AgreementStep {
            seq,
            action,
            signer,
            agreement: id,
            ..
        } => {
            *party = Some(names.peer(signer));
            *agreement = Some(*id);
            format!("step {seq}: {action}, signed by {}", names.peer(signer))
        }
        Event::PullServed {
            agreement: id,
            epoch,
            consumer,
            new_pull,
            manifest,
            ..
        } => {
            *party = Some(names.peer(consumer));
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: {} pulled manifest {}{}",
                names.peer(consumer),
                short(manifest),
                if *new_pull {
                    " (a new pull, counted)"
                } else {
                    " (resumed)"
                }
            )
        }
        Event::PullCompleted {
            agreement: id,
            epoch,
            provider,
            manifest,
            chunks,
            ..
        } => {
            *party = Some(names.peer(provider));
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: {chunks} chunks from {} verified (manifest {})",
                names.peer(provider),
                short(manifest)
            )
        }
        Event::RequestRefused {
            kind,
            requester,
            agreement: id,
            refusal,
            count,
        } => {
            *party = requester.as_ref().map(|p| names.peer(p));
            *agreement = *id;
            let times = if *count > 1 {
                format!(" ({count} times)")
            } else {
                String::new()
            };
            format!("{kind} refused [{}]: {refusal}{times}", refusal.code())
        }
        Event::DisclosureServed {
            agreement: id,
            epoch,
            consumer,
            result_kind,
            requested,
            records,
            commitment,
            ..
        } => {
            *party = Some(names.peer(consumer));
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: {records} records of {result_kind} disclosed to {} for {requested} persons asked (commitment {})",
                names.peer(consumer),
                short(commitment)
            )
        }
        Event::DisclosureReceived {
            agreement: id,
            epoch,
            provider,
            result_kind,
            records,
            ..
        } => {
            *party = Some(names.peer(provider));
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: {records} records of {result_kind} received from {}",
                names.peer(provider)
            )
        }
        Event::MinistryQuery {
            agreement: id,
            epoch,
            peer,
            asked,
            found,
            answered,
            ..
        } => {
            *party = Some(names.peer(peer));
            *agreement = Some(*id);
            if *answered {
                format!(
                    "epoch {epoch}: answered {} for {asked} ID numbers, {found} records found",
                    names.peer(peer)
                )
            } else {
                format!(
                    "epoch {epoch}: asked {} about {asked} ID numbers, {found} records found",
                    names.peer(peer)
                )
            }
        }
        Event::CommitmentChecked {
            agreement: id,
            consumer,
            epoch,
            result_kind,
            count,
            commitment,
            requested,
            ..
        } => {
            *party = Some(names.peer(consumer));
            *agreement = Some(*id);
            format!(
                "epoch {epoch}: {}'s commitment {} to {result_kind} ({count} persons) checked for a request of {requested}",
                names.peer(consumer),
                short(commitment)
            )
        }
        _ => return None,
    })
}

/// An event of the node itself (start, roster, keys, imports, jobs,
/// witnessing, retention, the console) in words.
fn local(event: &Event, names: &dyn Names, party: &mut Option<String>) -> String {
    match event {
        Event::NodeStarted { version } => format!("dxmesh {version} started"),
        Event::RosterAccepted { version, digest } => {
            format!("roster version {version} ({}) in force", short(digest))
        }
        Event::PeerRefused { peer, reason } => {
            *party = peer.as_ref().map(|p| names.peer(p));
            format!("refused: {reason}")
        }
        Event::KeyDistributed { group, to } => {
            *party = Some(names.peer(to));
            format!(
                "the key of token group {group} handed to {}",
                names.peer(to)
            )
        }
        Event::KeyReceived { group, from } => {
            *party = Some(names.peer(from));
            format!(
                "the key of token group {group} received from {}",
                names.peer(from)
            )
        }
        Event::Imported {
            dataset,
            generation,
            rows_read,
            rows_kept,
            rows_quarantined,
            source_sha256,
        } => format!(
            "dataset {dataset} generation {generation}: {rows_read} rows read, {rows_kept} kept, {rows_quarantined} quarantined (file {}…)",
            &source_sha256[..source_sha256.len().min(12)]
        ),
        Event::JobRun {
            epoch,
            inputs,
            results,
        } => {
            let counts: Vec<String> = results
                .iter()
                .map(|(name, count, _)| format!("{name} {count}"))
                .collect();
            format!(
                "epoch {epoch}: {} inputs compared; {}",
                inputs.len(),
                counts.join(", ")
            )
        }
        Event::Witnessed { peer, size, root } => {
            *party = Some(names.peer(peer));
            format!(
                "cosigned {}'s log at {size} entries (root {})",
                names.peer(peer),
                short(root)
            )
        }
        Event::ForkDetected {
            peer,
            earlier_size,
            later_size,
        } => {
            *party = Some(names.peer(peer));
            format!(
                "{} showed a log of {later_size} entries inconsistent with the one of {earlier_size} seen before: evidence kept",
                names.peer(peer)
            )
        }
        Event::ResultCommitted {
            epoch,
            result_kind,
            count,
            commitment,
            ..
        } => format!(
            "epoch {epoch}: {result_kind}, {count} persons, committed (commitment {})",
            short(commitment)
        ),
        Event::ConsoleLogin { user, role, ok } => match (ok, role) {
            (true, Some(role)) => format!("{user} logged in ({role})"),
            _ => format!("failed login as {user}"),
        },
        Event::ConsoleAction {
            user,
            role,
            action,
            target,
            allowed,
        } => format!(
            "{user} ({role}) asked to {} {target}{}",
            action.replace('_', " "),
            if *allowed { "" } else { ": not allowed" }
        ),
        Event::TokensErased { epoch, files } => {
            format!(
                "epoch {epoch}: {files} commitment token files erased (the signed commitments stay)"
            )
        }
        other => other.kind().replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxmesh_protocol::identity::Identity;

    struct Fixed;
    impl Names for Fixed {
        fn peer(&self, _: &PublicKey) -> String {
            "health (卫健委)".into()
        }
        fn agreement(&self, _: &AgreementId) -> String {
            "deaths, health → comparator".into()
        }
    }

    #[test]
    fn events_read_as_sentences_with_names_and_short_digests() {
        let key = Identity::from_seed([1; 32]).unwrap().public();
        let w = describe(
            &Event::PullServed {
                agreement: [7; 32],
                epoch: 3,
                consumer: key,
                pull_id: [0; 16],
                new_pull: true,
                manifest: [0xab; 32],
            },
            &Fixed,
        );
        assert_eq!(w.kind, "pull served");
        assert_eq!(w.party.as_deref(), Some("health (卫健委)"));
        assert_eq!(w.agreement, Some([7; 32]));
        assert_eq!(
            w.what,
            "epoch 3: health (卫健委) pulled manifest abababababab… (a new pull, counted)"
        );
        // No byte arrays, whatever the event.
        let w = describe(
            &Event::Witnessed {
                peer: key,
                size: 12,
                root: [0x27; 32],
            },
            &Fixed,
        );
        assert!(!w.what.contains('['), "{}", w.what);
        assert_eq!(kind_words("no_such_kind"), "other");
        assert!(KINDS.iter().all(|(k, _)| kind_words(k) != "other"));
    }
}
