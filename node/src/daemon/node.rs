//! The daemon's state and the events it reacts to. [`Node`] is owned by
//! the one task that runs the event loop (`events`); every stage's handler
//! file (`trust`, `agreements`, `publish`, `pull`, `disclose`, `compare`,
//! `ministry`, `audit`) adds methods to it. [`Pending`] says what an
//! outstanding control request was for; [`Event`] carries the results of
//! background work back to the loop. The small helpers every stage uses
//! (admission, refusals, sending, labels, the audit append) live here too.

use super::error::{NodeError, RequestError};
use crate::admin::AdminResponse;
use crate::agreements::threads::{Agreements, Thread};
use crate::base::clock::now;
use crate::base::config::Config;
use crate::base::store::{Store, StoreError};
use crate::compare::cycle::OpReply;
use crate::daemon::net::Behaviour;
use crate::pull::pulls::{PullError, PullSummary};
use dxmesh_protocol::agreement::{AgreementId, Refusal, Step, Terms};
use dxmesh_protocol::audit::Event as AuditEvent;
use dxmesh_protocol::feed::{ChunkRequest, Manifest};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::{Admission, Roster};
use dxmesh_protocol::signed::{Signed, SignedKind};
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::request_response::OutboundRequestId;
use libp2p::{Multiaddr, PeerId, Swarm};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What an outstanding control request was for.
pub(crate) enum Pending {
    RosterSync,
    RosterPush,
    Peers,
    /// Our (consumer's) step sent to the provider; the operator may be waiting.
    AgreementStep {
        step: Signed<Step>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// Our (provider's) step sent to the consumer as a notification.
    AgreementNotify,
    /// We asked the provider for missing transcripts.
    AgreementSync,
    /// We asked a provider to open a pull.
    PullOpen(PullJob),
    /// We asked a provider to disclose records.
    Disclose {
        provider: PublicKey,
        asked: Box<Asked>,
        reply: DisclosureReply,
    },
    /// We asked a custodian for a group key.
    GroupKey {
        group: String,
    },
    /// A ministry query for the comparator task.
    MinistryOp {
        provider: PublicKey,
        reply: OpReply,
    },
    /// We asked a peer to witness our checkpoint `note` of `size` (the
    /// answer is checked against this note: the log may have grown since).
    Witness {
        size: u64,
        note: String,
    },
}

/// Results of background work, delivered to the event loop.
pub(crate) enum Event {
    /// Feeds were built.
    Published {
        results: Vec<(AgreementId, u64, Result<Signed<Manifest>, NodeError>)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// A download ended.
    PullDone {
        agreement: AgreementId,
        epoch: u64,
        result: Result<PullSummary, PullError>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// A bulk stream asks to be served.
    StreamAuth {
        peer: PeerId,
        request: ChunkRequest,
        reply: oneshot::Sender<Result<PathBuf, Refusal>>,
    },
    /// An event for the audit log from a background task.
    Audit(AuditEvent),
    /// A request answered off the event loop (a disclosure or a ministry
    /// query resolved): the answer to send.
    Answered { to: Answer, response: Response },
    /// Work done off the event loop (a check too heavy for it), to be
    /// continued on it.
    Resume(Box<dyn FnOnce(&mut Node) + Send>),
}

/// A control request being answered: who asked, where the answer goes,
/// and the request's hold on its connection's inbound budget, given back
/// once it is answered.
pub(crate) struct Answer {
    pub(super) peer: PeerId,
    pub(super) channel: libp2p::request_response::ResponseChannel<Response>,
    pub(super) held: super::net::Held,
}

/// A pull in flight at the consumer.
pub(crate) struct PullJob {
    pub(super) agreement: AgreementId,
    pub(super) epoch: u64,
    pub(super) pull_id: [u8; 16],
    pub(super) range: Option<(IdToken, IdToken)>,
    pub(super) reply: Option<oneshot::Sender<AdminResponse>>,
}

/// What a disclosure request asked for, kept until its answer: the
/// answer must be about exactly this.
pub(crate) struct Asked {
    agreement: dxmesh_protocol::agreement::AgreementId,
    epoch: u64,
    result_kind: String,
    fields: Vec<String>,
    /// In increasing order (as the request has them).
    tokens: Vec<dxmesh_protocol::token::IdToken>,
}

impl Asked {
    pub(super) fn of(request: &dxmesh_protocol::wire::DisclosureRequest) -> Asked {
        Asked {
            agreement: request.agreement,
            epoch: request.epoch,
            result_kind: request.result_kind.clone(),
            fields: request.fields.clone(),
            tokens: request.tokens.clone(),
        }
    }

    /// Whether `d` answers this request: its agreement, epoch, result kind
    /// and fields, and records and unknown tokens only of the tokens asked
    /// for (a provider disclosing anyone else is refused, not stored).
    pub(super) fn answered_by(
        &self,
        d: &dxmesh_protocol::feed::Disclosure,
    ) -> Result<(), super::error::PeerError> {
        let other = |what: String| super::error::PeerError::Unverified {
            what: "disclosure",
            problem: format!("it answers another request: {what}"),
        };
        if (d.agreement, d.epoch) != (self.agreement, self.epoch) {
            return Err(other(format!(
                "agreement {} epoch {}",
                dxmesh_protocol::hex(&d.agreement),
                d.epoch
            )));
        }
        if d.result_kind != self.result_kind || d.fields != self.fields {
            return Err(other(format!(
                "result kind {:?} with fields {:?}",
                d.result_kind, d.fields
            )));
        }
        let asked = |t: &dxmesh_protocol::token::IdToken| self.tokens.binary_search(t).is_ok();
        if let Some(r) = d.records.iter().find(|r| !asked(&r.token)) {
            return Err(other(format!(
                "a record of token {} not asked for",
                dxmesh_protocol::hex(&r.token.0)
            )));
        }
        if let Some(t) = d.unknown.iter().find(|t| !asked(t)) {
            return Err(other(format!(
                "token {} not asked for",
                dxmesh_protocol::hex(&t.0)
            )));
        }
        Ok(())
    }
}

/// Who waits for a disclosure: the comparator's cycle, or an operator's
/// `dxmesh disclose` (which may want the records written to a file).
pub(crate) enum DisclosureReply {
    Cycle(OpReply),
    Admin {
        reply: oneshot::Sender<AdminResponse>,
        out: Option<String>,
    },
}

impl DisclosureReply {
    /// Tells whoever asked that the disclosure failed.
    pub(crate) fn fail(self, error: impl Into<NodeError>) {
        let message = error.into().to_string();
        match self {
            DisclosureReply::Cycle(reply) => {
                let _ = reply.send(Err(message));
            }
            DisclosureReply::Admin { reply, .. } => answer_error(reply, message),
        }
    }
}

impl PullJob {
    pub(crate) fn key(&self) -> (AgreementId, u64) {
        (self.agreement, self.epoch)
    }

    pub(crate) fn fail(self, error: impl Into<NodeError>) {
        if let Some(r) = self.reply {
            answer_error(r, error.into());
        }
    }
}

/// A publish waiting for its group key.
pub(crate) struct WaitingPublish {
    pub(super) group: String,
    /// The custodian refused: the schedule does not ask again, an
    /// operator's `dxmesh publish` does.
    pub(super) refused: bool,
}

pub(super) struct Node {
    pub(super) config: Config,
    pub(super) identity: Identity,
    pub(super) anchor: PublicKey,
    pub(super) store: Store,
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) roster: Option<(Signed<Roster>, Roster)>,
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// Listen addresses peers announced through identify.
    pub(super) peer_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    pub(super) connected: HashSet<PeerId>,
    pub(super) pending: HashMap<OutboundRequestId, Pending>,
    pub(super) recent_dials: HashMap<PeerId, Instant>,
    /// What the node refuses its peers, and how the refusals are kept.
    pub(super) guard: super::guard::Guard,
    /// Automatic pulls tried, by agreement and epoch (each retry later).
    pub(super) auto_pulls: super::limits::Backoff<(AgreementId, u64)>,
    pub(super) started: Instant,
    /// Our own admission last logged (logged again only when it changes).
    pub(super) self_admission: Option<Admission>,
    /// Sharing agreements this node is a party to.
    pub(super) agreements: Agreements,
    /// The node's data directory.
    pub(super) data_dir: PathBuf,
    /// Token group keys (providers only).
    pub(super) keys: crate::publish::keys::KeyStore,
    /// Opens bulk streams.
    pub(super) stream_control: libp2p_stream::Control,
    /// Results of background work (publishing, pulls, stream authorisation).
    pub(super) internal_tx: mpsc::UnboundedSender<Event>,
    /// The national indexes open and being built (a ministry node's).
    pub(super) national: crate::ministry::index::Indexes,
    /// Checks running off the event loop: one per core but one at a time.
    pub(super) checks: std::sync::Arc<tokio::sync::Semaphore>,
    /// Feeds being built or pulled now, by (agreement, epoch).
    pub(super) busy: HashSet<(dxmesh_protocol::agreement::AgreementId, u64)>,
    /// Expired pulled feeds whose erasure this run has logged (a failing
    /// erasure is retried every tick but logged once).
    pub(super) erasure_logged: HashSet<(dxmesh_protocol::agreement::AgreementId, u64)>,
    /// Publishes waiting for a group key, by group.
    pub(super) waiting_for_key: Vec<WaitingPublish>,
    /// Handed to each comparator cycle for its network steps.
    pub(super) cycle: crate::compare::cycle::Handle,
    /// The tamper-evident audit log.
    pub(super) audit: crate::audit::log::AuditLog,
    /// Agreement steps already logged, per thread.
    pub(super) logged_steps: HashMap<dxmesh_protocol::merkle::Hash, u32>,
    /// Peers with a witness request in flight.
    pub(super) witnessing: HashSet<PeerId>,
    /// What `/metrics` shows.
    pub(super) metrics: std::sync::Arc<crate::console::metrics::Metrics>,
    /// The operator console's URL, if it runs.
    pub(super) console_url: Option<String>,
}

impl Node {
    pub(super) fn roster_version(&self) -> u64 {
        self.roster.as_ref().map(|(_, r)| r.version).unwrap_or(0)
    }

    pub(super) fn admission(&self, peer: &PeerId) -> Admission {
        let Some((_, r)) = &self.roster else {
            return Admission::NotMember;
        };
        match PublicKey::from_peer_id(peer) {
            Some(pk) => r.admission(&pk, now()),
            None => Admission::NotMember,
        }
    }

    /// A refusal noted for `status` and logged at once.
    pub(super) fn record_refusal(
        &mut self,
        peer: Option<PeerId>,
        remote: Option<String>,
        reason: String,
    ) {
        let entry = self.guard.refused(peer, remote, reason);
        self.log(entry);
    }

    /// Takes a request token of `peer`; `None` to serve its request, else
    /// the refusal to answer with (logged as the guard says).
    pub(super) fn rate_limit(&mut self, peer: PeerId) -> Option<Response> {
        let (response, entry) = self.guard.rate(peer)?;
        if let Some(entry) = entry {
            self.log(entry);
        }
        Some(response)
    }

    /// A request of `peer` refused that it may repeat at will (see
    /// [`super::guard::Guard::repeated`]).
    pub(super) fn refuse_throttled(
        &mut self,
        peer: PeerId,
        class: (&'static str, String),
        reason: String,
    ) {
        if let Some(entry) = self.guard.repeated(peer, class, reason) {
            self.log(entry);
        }
    }

    /// Logs the refusals counted and not logged yet whose minute is up.
    pub(super) fn log_rate_limits(&mut self) {
        for entry in self.guard.sweep() {
            self.log(entry);
        }
    }

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

    /// Runs `work` on a blocking thread (as many at a time as there are
    /// cores but one, at least one),
    /// then `then` with its result on the event loop: how checks too heavy
    /// for the loop (long transcripts, proofs over many tokens) run while
    /// `status` and other peers are still served.
    pub(super) fn off_loop<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        then: impl FnOnce(&mut Node, T) + Send + 'static,
    ) {
        let (internal, checks) = (self.internal_tx.clone(), self.checks.clone());
        tokio::spawn(async move {
            let Ok(_permit) = checks.acquire_owned().await else {
                return;
            };
            let Ok(out) = tokio::task::spawn_blocking(work).await else {
                tracing::error!("a check off the event loop failed");
                return;
            };
            let _ = internal.send(Event::Resume(Box::new(move |node| then(node, out))));
        });
    }

    pub(super) fn send(&mut self, peer: PeerId, request: Request, kind: Pending) {
        let id = self
            .swarm
            .behaviour_mut()
            .control
            .send_request(&peer, request.into());
        self.pending.insert(id, kind);
    }

    pub(super) fn admitted(&self, key: &PublicKey) -> Admission {
        self.admission(&key.peer_id())
    }

    /// The accepted agreement `agreement` where this node is the provider.
    pub(super) fn provided(&self, agreement: &AgreementId) -> Option<(Terms, bool)> {
        let t = self.agreements.by_agreement(agreement)?;
        if t.state.terms.provider != self.identity.public() {
            return None;
        }
        Some((t.state.terms.clone(), self.agreements.superseded(t, now())))
    }

    /// Refuses a request under `agreement` (`what`: pull, disclosure,
    /// ministry query, feed stream): noted for `status`, logged as
    /// `request_refused` with the agreement (once a minute for repeats),
    /// answered `Denied`.
    pub(super) fn refuse_request(
        &mut self,
        peer: PeerId,
        what: (&str, AgreementId),
        refusal: Refusal,
    ) -> Response {
        if let Some(entry) = self.guard.request(peer, what, &refusal) {
            self.log(entry);
        }
        Response::Denied { refusal }
    }

    pub(super) fn find_state(&self, agreement: &AgreementId) -> Option<&Thread> {
        self.agreements.by_agreement(agreement)
    }

    /// "department (PeerId)" for a key, from the roster.
    pub(super) fn label(&self, key: &PublicKey) -> String {
        let dept = self
            .roster
            .as_ref()
            .and_then(|(_, r)| r.member(key))
            .map(|m| m.department.clone())
            .unwrap_or_else(|| "unknown".into());
        format!("{dept} ({})", key.peer_id())
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
}

/// Signs `value` with the node's key (made from its seed, so that a
/// blocking thread can sign) and wraps it in a response; if it cannot be
/// signed, the provider failed to serve `epoch`.
pub(super) fn signed_answer<T: SignedKind>(
    seed: &[u8; 32],
    value: &T,
    epoch: u64,
    wrap: impl FnOnce(Signed<T>) -> Response,
) -> Response {
    match Identity::from_seed(*seed)
        .ok()
        .and_then(|id| Signed::sign(&id, value).ok())
    {
        Some(signed) => wrap(signed),
        None => Response::Denied {
            refusal: Refusal::ProviderFailed { epoch },
        },
    }
}

/// The store key of a per-epoch counter (`pull`, `disc`, `natq`) of an agreement.
pub(super) fn counter_key(kind: &str, agreement: &AgreementId, epoch: u64) -> Vec<u8> {
    format!("{kind}/{}/{epoch}", dxmesh_protocol::hex(agreement)).into_bytes()
}

/// A token given in hex by an operator.
pub(super) fn parse_token(h: &str) -> Result<IdToken, RequestError> {
    let bad = |problem: String| RequestError::BadToken {
        token: h.to_string(),
        problem,
    };
    let b = hex::decode(h.trim()).map_err(|e| bad(e.to_string()))?;
    let a: [u8; 16] = b
        .try_into()
        .map_err(|_| bad("must be 32 hex digits".into()))?;
    Ok(IdToken(a))
}

/// Answers an operator's request with an error.
pub(super) fn answer_error(reply: oneshot::Sender<AdminResponse>, error: impl std::fmt::Display) {
    let _ = reply.send(AdminResponse::Error {
        message: error.to_string(),
    });
}
