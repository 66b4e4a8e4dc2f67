//! What every stage of the running node shares: its configuration and
//! identity, the state store, the libp2p swarm, the data directory, the
//! agreements it is party to, the audit log, the control requests it has
//! sent and awaits, the members connected, the metrics, and the bound on
//! checks run off the event loop; and the verbs every stage
//! uses on them: send a request, answer one, log an event, read a quota.
//! The stages' own state lives beside it in the desks of
//! [`super::node::Node`], each owned by its stage.

use super::net::Behaviour;
use super::pending::{Answer, Pending};
use crate::agreements::threads::{Agreements, Thread};
use crate::base::clock::now;
use crate::base::config::Config;
use crate::base::store::{Store, StoreError};
use dxmesh_protocol::agreement::{AgreementId, Refusal, Terms};
use dxmesh_protocol::audit::Event as AuditEvent;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::request_response::OutboundRequestId;
use libp2p::{PeerId, Swarm};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// What every stage shares.
pub(super) struct Core {
    /// The node's configuration.
    pub(super) config: Config,
    /// The node's identity.
    pub(super) identity: Identity,
    /// The redb state store.
    /// Shared with work off the event loop (the audit page's scan).
    pub(super) store: std::sync::Arc<Store>,
    /// The libp2p swarm.
    pub(super) swarm: Swarm<Behaviour>,
    /// Members connected now.
    pub(super) connected: HashSet<PeerId>,
    /// Control requests sent and not answered yet, with what each was for.
    pub(super) pending: HashMap<OutboundRequestId, Pending>,
    /// Sharing agreements this node is a party to.
    pub(super) agreements: Agreements,
    /// The node's data directory.
    pub(super) data_dir: PathBuf,
    /// Checks running off the event loop: one per core but one at a time.
    pub(super) checks: std::sync::Arc<tokio::sync::Semaphore>,
    /// The tamper-evident audit log.
    pub(super) audit: crate::audit::log::AuditLog,
    /// Where background work (feed builds, downloads, answers resolved off
    /// the loop) sends its results to the event loop.
    pub(super) events: tokio::sync::mpsc::UnboundedSender<super::pending::Event>,
    /// What `/metrics` shows.
    pub(super) metrics: std::sync::Arc<crate::console::metrics::Metrics>,
}

impl Core {
    /// Sends the answer to a control request (and gives back its hold on
    /// the connection's budget).
    pub(super) fn respond(&mut self, to: Answer, response: Response) {
        let Answer {
            peer,
            channel,
            held,
        } = to;
        if self
            .swarm
            .behaviour_mut()
            .control
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, "response not sent: the stream closed");
        }
        drop(held);
    }

    pub(super) fn send(&mut self, peer: PeerId, request: Request, kind: Pending) {
        let id = self
            .swarm
            .behaviour_mut()
            .control
            .send_request(&peer, request.into());
        self.pending.insert(id, kind);
    }

    /// Appends an event to the audit log (durably, with its checkpoint).
    pub(super) fn log(&mut self, event: AuditEvent) {
        let _ = self.log_durably(event);
    }

    /// Appends an event to the audit log and returns whether it is stored,
    /// for the steps that must not go on without their record (signing a
    /// commitment, serving a disclosure under one).
    pub(super) fn log_durably(&mut self, event: AuditEvent) -> Result<(), StoreError> {
        let kind = event.kind();
        self.metrics.observe(&event);
        let appended = self.audit.append(&self.store, now(), event);
        self.metrics.audit_size(self.audit.size());
        appended.map(|_| ()).inspect_err(
            |e| tracing::error!(error = %e, kind, "AUDIT: cannot append to the audit log"),
        )
    }
    /// Signs a checkpoint over what was appended since the last one.
    pub(super) fn seal_audit(&mut self) {
        if let Err(e) = self.audit.seal(&self.store, &self.identity) {
            tracing::error!(error = %e, "AUDIT: cannot store a checkpoint");
        }
    }

    /// The accepted agreement `agreement` where this node is the provider.
    pub(super) fn provided(&self, agreement: &AgreementId) -> Option<(Terms, bool)> {
        let t = self.agreements.by_agreement(agreement)?;
        if t.state.terms.provider != self.identity.public() {
            return None;
        }
        Some((t.state.terms.clone(), self.agreements.superseded(t, now())))
    }

    pub(super) fn find_state(&self, agreement: &AgreementId) -> Option<&Thread> {
        self.agreements.by_agreement(agreement)
    }

    /// The feeds of this node's active agreements as provider (or as
    /// consumer) with their current epoch; a national index is queried,
    /// never published or pulled as a feed, and is not among them.
    pub(super) fn current_feeds(&self, as_provider: bool) -> Vec<(&Terms, u64)> {
        let t = now();
        let me = self.identity.public();
        self.agreements
            .threads()
            .filter(|th| {
                self.agreements.status(th, t) == dxmesh_protocol::agreement::Status::Active
            })
            .map(|th| &th.state.terms)
            .filter(|terms| {
                (if as_provider {
                    terms.provider
                } else {
                    terms.consumer
                }) == me
                    && !crate::ministry::answers_ministry_queries(terms)
            })
            .filter_map(|terms| Some((terms, terms.cycle.epoch_at(t)?)))
            .collect()
    }

    /// The current epoch of `terms` and what is used of its quotas.
    pub(super) fn epoch_info(&self, terms: &Terms) -> Option<crate::admin::EpochInfo> {
        let epoch = terms.cycle.epoch_at(now())?;
        let id = terms.id();
        let used = |kind: &str| {
            self.store
                .counter::<u64>(&counter_key(kind, &id, epoch))
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        let (start, end) = terms.cycle.window(epoch)?;
        Some(crate::admin::EpochInfo {
            epoch,
            reference_date: terms
                .cycle
                .epoch_start(epoch)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            window_start: start.to_string(),
            window_end: end.to_string(),
            pulls: self.pulls_granted(&id, epoch).len() as u64,
            max_pulls: u64::from(terms.cycle.max_pulls),
            disclosed: used("disc") + used("natq"),
            max_records: terms.disclosure.max_records_per_epoch,
        })
    }

    /// The pulls of a feed granted in an epoch, by pull id (counted by the
    /// provider when it opens them, by the consumer when it is granted
    /// them); none if the store cannot say.
    pub(super) fn pulls_granted(&self, agreement: &AgreementId, epoch: u64) -> Vec<[u8; 16]> {
        self.store
            .counter(&counter_key("pull", agreement, epoch))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// The feeds of this node's agreements as provider (published, under
    /// `feeds/`) or as consumer (pulled, under `pulls/`) that must be gone
    /// on `day`.
    pub(super) fn expired_feeds(
        &self,
        as_provider: bool,
        day: dxmesh_protocol::date::Date,
    ) -> Vec<crate::pull::retention::Expired> {
        let me = self.identity.public();
        let terms: Vec<Terms> = self
            .agreements
            .threads()
            .map(|th| &th.state.terms)
            .filter(|t| (if as_provider { t.provider } else { t.consumer }) == me)
            .cloned()
            .collect();
        let root = if as_provider {
            crate::base::layout::FEEDS
        } else {
            crate::base::layout::PULLS
        };
        crate::pull::retention::expired(&self.data_dir, root, &terms, day)
    }

    /// Erases a feed past its retention (under `root`): the audit entry
    /// first (once per run: `logged`), then its manifest kept as evidence,
    /// then the files. Returns whether it is gone; if not, the next tick
    /// tries again.
    pub(super) fn erase_expired(
        &mut self,
        root: &str,
        gone: &crate::pull::retention::Expired,
        logged: &mut HashSet<(AgreementId, u64)>,
    ) -> bool {
        let (agreement, epoch) = (gone.agreement, gone.epoch);
        if logged.insert((agreement, epoch)) {
            self.log(dxmesh_protocol::audit::Event::FeedErased {
                agreement,
                epoch,
                kept_until: gone.kept_until,
            });
            self.seal_audit();
        }
        let label = dxmesh_protocol::hex(&agreement);
        if let Err(e) = crate::pull::retention::keep_evidence(
            &self.data_dir,
            root,
            &agreement,
            epoch,
            &gone.dir,
        ) {
            tracing::error!(agreement = %label, epoch, error = %e, "cannot keep the manifest of an expired feed as evidence; erasing it at the next tick");
            return false;
        }
        match crate::pull::retention::erase(&gone.dir) {
            Ok(()) => {
                tracing::info!(agreement = %label, epoch, kept_until = %gone.kept_until, root, "retention ended: feed erased");
                true
            }
            Err(e) => {
                tracing::error!(agreement = %label, epoch, error = %e, root, "retention ended but the feed could not be erased");
                false
            }
        }
    }

    /// How much of a per-epoch quota (`counter_key`) is used. Fails
    /// closed: a counter the store cannot read is never taken for zero;
    /// the error is logged and the request refused as a provider failure.
    pub(super) fn quota_used(&self, key: &[u8], what: &str, epoch: u64) -> Result<u64, Refusal> {
        self.store
            .counter::<u64>(key)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                tracing::error!(error = %e, what, "cannot read the quota used; refusing");
                Refusal::ProviderFailed { epoch }
            })
    }

    /// The store key that marks a request (by its digest) as counted under
    /// a per-epoch quota `kind`, and whether it is set. A request asked
    /// again unchanged (its requester crashed before it kept the answer)
    /// is served again without being counted twice: it learns nothing new.
    pub(super) fn counted_before(
        &self,
        kind: &str,
        (agreement, epoch): (&AgreementId, u64),
        digest: &[u8],
    ) -> Result<(Vec<u8>, bool), Refusal> {
        let mut key = counter_key(kind, agreement, epoch);
        key.push(b'/');
        key.extend_from_slice(hex::encode(digest).as_bytes());
        let seen = self.quota_used(&key, kind, epoch)? > 0;
        Ok((key, seen))
    }

    /// Records `used` records of a per-epoch quota, durably, before the
    /// request is served; refused as a provider failure if it cannot be.
    pub(super) fn count_quota(
        &self,
        key: &[u8],
        used: u64,
        what: &str,
        epoch: u64,
    ) -> Result<(), Refusal> {
        self.store.set_counter(key, &used).map_err(|e| {
            tracing::error!(error = %e, what, "cannot record the quota used; refusing");
            Refusal::ProviderFailed { epoch }
        })
    }
}

/// The store key of a per-epoch counter (`pull`, `disc`, `natq`) of an agreement.
pub(super) fn counter_key(kind: &str, agreement: &AgreementId, epoch: u64) -> Vec<u8> {
    format!("{kind}/{}/{epoch}", dxmesh_protocol::hex(agreement)).into_bytes()
}
