//! The daemon's state and the events it reacts to. [`Node`] is owned by
//! the one task that runs the event loop (`events`): the [`Core`] every
//! stage shares (`core`), and beside it each stage's own state (the guard's
//! refusals, the trust state, group keys, pulls in flight, witnessing);
//! every stage's handler file (`trust`, `agreements`, `publish`, `pull`,
//! `disclose`, `compare`, `ministry`, `audit`) adds methods to it.
//! [`Event`] carries the results of background work back to the loop
//! (the requests in flight are in `pending`). The small helpers every
//! stage uses (admission, refusals, labels, quotas, work off the loop)
//! live here too.
//!
//! [`Core`]: super::core::Core

use super::error::{NodeError, RequestError};
use crate::admin::AdminResponse;
use crate::agreements::threads::Thread;
use crate::base::clock::now;
use crate::pull::pulls::{PullError, PullSummary};
use dxmesh_protocol::agreement::{AgreementId, Refusal, Terms};
use dxmesh_protocol::audit::Event as AuditEvent;
use dxmesh_protocol::feed::{ChunkRequest, Manifest};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::{Admission, Roster};
use dxmesh_protocol::signed::{Signed, SignedKind};
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::Response;
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;
use tokio::sync::oneshot;

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

/// A publish waiting for its group key.
pub(crate) struct WaitingPublish {
    pub(super) group: String,
    /// The custodian refused: the schedule does not ask again, an
    /// operator's `dxmesh publish` does.
    pub(super) refused: bool,
}

pub(super) use super::pending::{Answer, DisclosureReply, Pending, PullJob, answer_error};

pub(super) struct Node {
    /// What every stage shares.
    pub(super) core: super::core::Core,
    /// Results of background work (publishing, pulls, stream authorisation).
    pub(super) internal_tx: tokio::sync::mpsc::UnboundedSender<Event>,
    pub(super) anchor: PublicKey,
    pub(super) roster: Option<(Signed<Roster>, Roster)>,
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// Listen addresses peers announced through identify.
    pub(super) peer_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    pub(super) recent_dials: HashMap<PeerId, Instant>,
    /// What the node refuses its peers, and how the refusals are kept.
    pub(super) guard: super::guard::Guard,
    /// Automatic pulls tried, by agreement and epoch (each retry later).
    pub(super) auto_pulls: super::limits::Backoff<(AgreementId, u64)>,
    pub(super) started: Instant,
    /// Our own admission last logged (logged again only when it changes).
    pub(super) self_admission: Option<Admission>,
    /// Token group keys (providers only).
    pub(super) keys: crate::publish::keys::KeyStore,
    /// Opens bulk streams.
    pub(super) stream_control: libp2p_stream::Control,
    /// The national indexes open and being built (a ministry node's).
    pub(super) national: crate::ministry::index::Indexes,
    /// Feeds being built or pulled now, by (agreement, epoch).
    pub(super) busy: HashSet<(dxmesh_protocol::agreement::AgreementId, u64)>,
    /// Expired pulled feeds whose erasure this run has logged (a failing
    /// erasure is retried every tick but logged once).
    pub(super) erasure_logged: HashSet<(dxmesh_protocol::agreement::AgreementId, u64)>,
    /// Publishes waiting for a group key, by group.
    pub(super) waiting_for_key: Vec<WaitingPublish>,
    /// Handed to each comparator cycle for its network steps.
    pub(super) cycle: crate::compare::ops::Handle,
    /// Agreement steps already logged, per thread.
    pub(super) logged_steps: HashMap<dxmesh_protocol::merkle::Hash, u32>,
    /// Peers with a witness request in flight.
    pub(super) witnessing: super::witness::Witnessing,
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
        self.core.log(entry);
    }

    /// Takes a request token of `peer`; `None` to serve its request, else
    /// the refusal to answer with (logged as the guard says).
    pub(super) fn rate_limit(&mut self, peer: PeerId) -> Option<Response> {
        let (response, entry) = self.guard.rate(peer)?;
        if let Some(entry) = entry {
            self.core.log(entry);
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
            self.core.log(entry);
        }
    }

    /// Logs the refusals counted and not logged yet whose minute is up.
    pub(super) fn log_rate_limits(&mut self) {
        for entry in self.guard.sweep() {
            self.core.log(entry);
        }
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
        let (internal, checks) = (self.internal_tx.clone(), self.core.checks.clone());
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

    pub(super) fn admitted(&self, key: &PublicKey) -> Admission {
        self.admission(&key.peer_id())
    }

    /// The accepted agreement `agreement` where this node is the provider.
    pub(super) fn provided(&self, agreement: &AgreementId) -> Option<(Terms, bool)> {
        let t = self.core.agreements.by_agreement(agreement)?;
        if t.state.terms.provider != self.core.identity.public() {
            return None;
        }
        Some((
            t.state.terms.clone(),
            self.core.agreements.superseded(t, now()),
        ))
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
            self.core.log(entry);
        }
        Response::Denied { refusal }
    }

    pub(super) fn find_state(&self, agreement: &AgreementId) -> Option<&Thread> {
        self.core.agreements.by_agreement(agreement)
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
        self.core
            .store
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
        self.core.store.set_counter(key, &used).map_err(|e| {
            tracing::error!(error = %e, what, "cannot record the quota used; refusing");
            Refusal::ProviderFailed { epoch }
        })
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
