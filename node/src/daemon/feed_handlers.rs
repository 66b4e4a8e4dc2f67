//! The daemon's feed traffic: publishing (by command and on schedule),
//! group keys from the custodian, pull authorisation and bulk streams at the
//! provider, pulls at the consumer, and disclosures on both sides. Every
//! pull and disclosure request is checked against the agreement by the
//! protocol's `check_pull` / `check_disclosure` before any data moves; each
//! refusal is answered with its typed reason and logged.

use super::{Node, Pending, now};
use crate::admin::{AdminRequest, AdminResponse, FeedInfo};
use crate::feeds::{self, PublishInput};
use crate::pulls::{self, PullSummary};
use dxmesh_protocol::agreement::{AgreementId, DisclosureCheck, PullCheck, Refusal, Step, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{ChunkRequest, Manifest};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{Admission, Role};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::{GroupMasterKey, IdToken};
use dxmesh_protocol::wire::{Request, Response};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Results of background work, delivered to the event loop.
pub(crate) enum Internal {
    /// Feeds were built.
    Published {
        results: Vec<(AgreementId, u64, Result<Signed<Manifest>, String>)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// A download ended.
    PullDone {
        agreement: AgreementId,
        epoch: u64,
        result: Result<PullSummary, String>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// A bulk stream asks to be served.
    StreamAuth {
        peer: PeerId,
        request: ChunkRequest,
        reply: oneshot::Sender<Result<PathBuf, Refusal>>,
    },
    /// An event for the audit log from a background task.
    Audit(dxmesh_protocol::audit::Event),
    /// A network step for the comparator task.
    Op {
        op: super::compare_task::Op,
        reply: super::compare_task::OpReply,
    },
    /// A disclosure was resolved (provider side).
    Disclosed {
        channel: libp2p::request_response::ResponseChannel<Response>,
        response: Response,
    },
}

/// A pull in flight at the consumer.
pub(crate) struct PullJob {
    agreement: AgreementId,
    epoch: u64,
    pull_id: [u8; 16],
    range: Option<(IdToken, IdToken)>,
    reply: Option<oneshot::Sender<AdminResponse>>,
}

/// A disclosure request as it arrived.
pub(crate) struct DiscloseAsk {
    pub(crate) agreement: AgreementId,
    pub(crate) epoch: u64,
    pub(crate) result_kind: String,
    pub(crate) fields: Vec<String>,
    pub(crate) tokens: Vec<IdToken>,
}

impl PullJob {
    pub(crate) fn key(&self) -> (AgreementId, u64) {
        (self.agreement, self.epoch)
    }

    pub(crate) fn fail(self, message: String) {
        if let Some(r) = self.reply {
            let _ = r.send(AdminResponse::Error { message });
        }
    }
}

/// A publish waiting for its group key.
pub(crate) struct WaitingPublish {
    group: String,
}

/// Accepts bulk feed streams and serves each in its own task.
pub(crate) async fn serve_streams(
    mut incoming: libp2p_stream::IncomingStreams,
    internal: mpsc::UnboundedSender<Internal>,
) {
    while let Some((peer, stream)) = incoming.next().await {
        let internal = internal.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_stream(peer, stream, internal).await {
                tracing::info!(%peer, error = %e, "feed stream ended early");
            }
        });
    }
}

async fn serve_stream(
    peer: PeerId,
    mut stream: libp2p::Stream,
    internal: mpsc::UnboundedSender<Internal>,
) -> std::io::Result<()> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes(header) as usize;
    if len > 4096 {
        return Err(invalid(format!("a chunk request of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    let request: ChunkRequest = codec::decode(&body).map_err(|e| invalid(e.to_string()))?;
    let (tx, rx) = oneshot::channel();
    let (from, to) = (request.from, request.to);
    if internal
        .send(Internal::StreamAuth {
            peer,
            request,
            reply: tx,
        })
        .is_err()
    {
        return Ok(());
    }
    let dir = match rx.await {
        Ok(Ok(dir)) => dir,
        Ok(Err(refusal)) => {
            stream.close().await?;
            return Err(invalid(format!("refused: {refusal}")));
        }
        Err(_) => return Ok(()),
    };
    // A blocking reader keeps the next chunks read ahead of the stream, each
    // read past the page cache into a page-aligned buffer that is then sent
    // from where it lies, and buffers come back to it for reuse: the stream
    // never waits on the disk, and nothing is allocated, zeroed or copied
    // per chunk before the transport takes it.
    type Read = std::io::Result<(Vec<u8>, std::ops::Range<usize>)>;
    let (full_tx, mut full_rx) = mpsc::channel::<Read>(2);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    tokio::task::spawn_blocking(move || {
        for index in from..to {
            let mut buf = empty_rx.try_recv().unwrap_or_default();
            let path = dir.join(format!("chunk-{index:05}.bin"));
            let read =
                crate::fsutil::read_direct_in_place(&path, &mut buf).map(|range| (buf, range));
            let failed = read.is_err();
            if full_tx.blocking_send(read).is_err() || failed {
                return;
            }
        }
    });
    let mut index = from;
    while let Some(read) = full_rx.recv().await {
        let (buf, range) = read?;
        let len = u32::try_from(range.len())
            .map_err(|_| invalid(format!("chunk {index}: {} bytes is too large", range.len())))?;
        // A frame: the chunk's length, 4 bytes big-endian, then its bytes.
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(&buf[range]).await?;
        if index == from
            && from == 0
            && to > 1
            && crate::failpoint::enabled_point("feed-served-first-chunk")
        {
            // Let the first chunk reach the consumer, then die before the second.
            stream.flush().await?;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            crate::failpoint::hit("feed-served-first-chunk");
        }
        let _ = empty_tx.send(buf);
        index += 1;
    }
    stream.close().await
}

fn counter_key(kind: &str, agreement: &AgreementId, epoch: u64) -> Vec<u8> {
    format!("{kind}/{}/{epoch}", dxmesh_protocol::hex(agreement)).into_bytes()
}

impl Node {
    fn admitted(&self, key: &PublicKey) -> Admission {
        self.admission(&key.peer_id())
    }

    /// The accepted agreement `agreement` where this node is the provider.
    fn provided(&self, agreement: &AgreementId) -> Option<(Terms, bool)> {
        let t = self.agreements.by_agreement(agreement)?;
        if t.state.terms.provider != self.identity.public() {
            return None;
        }
        Some((t.state.terms.clone(), self.agreements.superseded(t, now())))
    }

    fn refuse_request(&mut self, peer: PeerId, what: &str, refusal: Refusal) -> Response {
        self.note_refusal(
            Some(peer),
            None,
            format!("{what}: {refusal} [{}]", refusal.code()),
        );
        self.log(dxmesh_protocol::audit::Event::RequestRefused {
            kind: what.to_string(),
            requester: PublicKey::from_peer_id(&peer),
            agreement: None,
            refusal: refusal.clone(),
        });
        Response::Denied { refusal }
    }

    fn find_state(&self, agreement: &AgreementId) -> Option<&crate::agreements::Thread> {
        self.agreements.by_agreement(agreement)
    }

    pub(super) fn on_pull_open(
        &mut self,
        peer: PeerId,
        agreement: AgreementId,
        epoch: u64,
        fields: Vec<String>,
        pull_id: [u8; 16],
    ) -> Response {
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return self.refuse_request(peer, "pull", Refusal::NotConsumer);
        };
        let Some((terms, superseded)) = self.provided(&agreement) else {
            return self.refuse_request(peer, "pull", Refusal::UnknownAgreement);
        };
        let key = counter_key("pull", &agreement, epoch);
        let mut pulls: Vec<[u8; 16]> = match self.store.counter(&key) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read pull counters");
                return Response::Refused {
                    reason: dxmesh_protocol::wire::Refusal::Key(
                        "provider state unavailable".into(),
                    ),
                };
            }
        };
        let new_pull = !pulls.contains(&pull_id);
        let check = PullCheck {
            requester: &requester,
            admission: self.admitted(&requester),
            epoch,
            fields: &fields,
            new_pull,
            pulls_used: pulls.len() as u32,
        };
        let state = &self.find_state(&agreement).map(|t| t.state.clone());
        let Some(state) = state else {
            return self.refuse_request(peer, "pull", Refusal::UnknownAgreement);
        };
        if let Err(refusal) = state.check_pull(now(), superseded, &check) {
            return self.refuse_request(peer, "pull", refusal);
        }
        let manifest = match feeds::read_manifest(&self.data_dir, &agreement, epoch) {
            Ok(Some(m)) => m,
            Ok(None) => return self.refuse_request(peer, "pull", Refusal::NotPublished { epoch }),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a published manifest");
                return self.refuse_request(peer, "pull", Refusal::ProviderFailed { epoch });
            }
        };
        if new_pull {
            pulls.push(pull_id);
            if let Err(e) = self.store.set_counter(&key, &pulls) {
                tracing::error!(error = %e, "cannot record the pull; refusing it");
                return self.refuse_request(peer, "pull", Refusal::ProviderFailed { epoch });
            }
        }
        tracing::info!(
            peer = %self.label(&requester),
            agreement = %dxmesh_protocol::hex(&agreement),
            epoch,
            terms = %terms.dataset,
            pull = pulls.len(),
            resumed = !new_pull,
            "pull authorised"
        );
        self.log(dxmesh_protocol::audit::Event::PullServed {
            agreement,
            epoch,
            consumer: requester,
            pull_id,
            new_pull,
            manifest: manifest.digest(),
        });
        self.witness_peers();
        Response::PullGranted { manifest }
    }

    fn authorize_stream(&mut self, peer: PeerId, req: &ChunkRequest) -> Result<PathBuf, Refusal> {
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let (_, superseded) = self
            .provided(&req.agreement)
            .ok_or(Refusal::UnknownAgreement)?;
        let state = self
            .find_state(&req.agreement)
            .map(|t| t.state.clone())
            .ok_or(Refusal::UnknownAgreement)?;
        let pulls: Vec<[u8; 16]> = self
            .store
            .counter(&counter_key("pull", &req.agreement, req.epoch))
            .ok()
            .flatten()
            .unwrap_or_default();
        if !pulls.contains(&req.pull_id) {
            // A stream must belong to a pull opened (and counted) with PullOpen.
            return Err(Refusal::OverPullMaximum {
                max: state.terms.cycle.max_pulls,
            });
        }
        let check = PullCheck {
            requester: &requester,
            admission: self.admitted(&requester),
            epoch: req.epoch,
            fields: &[],
            new_pull: false,
            pulls_used: pulls.len() as u32,
        };
        state.check_pull(now(), superseded, &check)?;
        let manifest = feeds::read_manifest(&self.data_dir, &req.agreement, req.epoch)
            .ok()
            .flatten()
            .ok_or(Refusal::NotPublished { epoch: req.epoch })?;
        let chunks = manifest.verify().map(|m| m.chunks()).unwrap_or(0);
        if req.from > req.to || req.to > chunks {
            return Err(Refusal::NotPublished { epoch: req.epoch });
        }
        Ok(feeds::feed_dir(&self.data_dir, &req.agreement, req.epoch))
    }

    pub(super) fn on_disclose(
        &mut self,
        peer: PeerId,
        ask: DiscloseAsk,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) {
        if let Some((channel, response)) = self.check_and_start_disclosure(peer, ask, channel) {
            let _ = self
                .swarm
                .behaviour_mut()
                .control
                .send_response(channel, response);
        }
    }

    fn check_and_start_disclosure(
        &mut self,
        peer: PeerId,
        ask: DiscloseAsk,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) -> Option<(
        libp2p::request_response::ResponseChannel<Response>,
        Response,
    )> {
        let DiscloseAsk {
            agreement,
            epoch,
            result_kind,
            fields,
            tokens,
        } = ask;
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::NotConsumer),
            ));
        };
        let Some((terms, superseded)) = self.provided(&agreement) else {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::UnknownAgreement),
            ));
        };
        let key = counter_key("disc", &agreement, epoch);
        let used: u64 = self.store.counter(&key).ok().flatten().unwrap_or(0);
        let Some(state) = self.find_state(&agreement).map(|t| t.state.clone()) else {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::UnknownAgreement),
            ));
        };
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.admitted(&requester),
            epoch,
            result_kind: &result_kind,
            fields: &fields,
            records_requested: tokens.len() as u64,
            records_used: used,
        };
        if let Err(refusal) = state.check_disclosure(now(), superseded, &check) {
            return Some((channel, self.refuse_request(peer, "disclosure", refusal)));
        }
        if !feeds::feed_dir(&self.data_dir, &agreement, epoch)
            .join("index.bin")
            .exists()
        {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::NotPublished { epoch }),
            ));
        }
        // Count the quota before anything is disclosed.
        if let Err(e) = self.store.set_counter(&key, &(used + tokens.len() as u64)) {
            tracing::error!(error = %e, "cannot record disclosure use; refusing");
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::ProviderFailed { epoch }),
            ));
        }
        let data_dir = self.data_dir.clone();
        let internal = self.internal_tx.clone();
        let identity_seed = *self.identity.seed();
        let label = self.label(&requester);
        tokio::task::spawn_blocking(move || {
            let response = match feeds::disclose(
                &data_dir,
                &terms,
                epoch,
                &result_kind,
                &fields,
                &tokens,
                now(),
            ) {
                Ok(d) => {
                    let digest = dxmesh_protocol::feed::disclosure_digest(&d);
                    tracing::info!(
                        consumer = %label,
                        agreement = %dxmesh_protocol::hex(&agreement),
                        epoch,
                        result_kind = %result_kind,
                        requested = tokens.len(),
                        records = d.records.len(),
                        unknown = d.unknown.len(),
                        digest = %dxmesh_protocol::hex(&digest),
                        "disclosure served"
                    );
                    let _ = internal.send(Internal::Audit(
                        dxmesh_protocol::audit::Event::DisclosureServed {
                            agreement,
                            epoch,
                            consumer: requester,
                            result_kind: result_kind.clone(),
                            requested: tokens.len() as u64,
                            records: d.records.len() as u64,
                            digest,
                        },
                    ));
                    match dxmesh_protocol::identity::Identity::from_seed(identity_seed)
                        .ok()
                        .and_then(|id| Signed::sign(&id, &d).ok())
                    {
                        Some(disclosure) => Response::Disclosed { disclosure },
                        None => Response::Denied {
                            refusal: Refusal::ProviderFailed { epoch },
                        },
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "disclosure failed");
                    Response::Denied {
                        refusal: Refusal::ProviderFailed { epoch },
                    }
                }
            };
            let _ = internal.send(Internal::Disclosed { channel, response });
        });
        let _ = superseded;
        None
    }

    pub(super) fn on_group_key_request(
        &mut self,
        peer: PeerId,
        group: String,
        transcript: Vec<Signed<Step>>,
    ) -> Response {
        let refuse = |node: &mut Node, m: String| {
            node.record_refusal(Some(peer), None, format!("group key for {group:?}: {m}"));
            Response::Refused {
                reason: dxmesh_protocol::wire::Refusal::Key(m),
            }
        };
        if self.config.key_custodians.get(&group).map(String::as_str) != Some("self") {
            return refuse(self, "this node is not the custodian of that group".into());
        }
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return refuse(self, "unknown requester key".into());
        };
        let Some((_, roster)) = &self.roster else {
            return refuse(self, "no roster".into());
        };
        if let Err(e) =
            crate::keys::check_key_request(roster, &requester, &group, &transcript, now())
        {
            return refuse(self, e.to_string());
        }
        match self.keys.custodian_key(&group) {
            Ok(key) => {
                tracing::info!(%group, to = %self.label(&requester), "token group key handed to a provider");
                self.log(dxmesh_protocol::audit::Event::KeyDistributed {
                    group: group.clone(),
                    to: requester,
                });
                Response::GroupKey { group, key: key.0 }
            }
            Err(e) => refuse(self, format!("the custodian cannot read its key: {e}")),
        }
    }

    pub(super) fn on_group_key_answer(&mut self, peer: PeerId, group: String, answer: Response) {
        match answer {
            Response::GroupKey { group: g, key } if g == group => {
                if self.config.role != Role::Provider {
                    tracing::error!(%group, %peer, "refusing to store a token group key: this node's role is {}", self.config.role);
                    return;
                }
                match self.keys.put(&group, &GroupMasterKey(key)) {
                    Ok(()) => {
                        tracing::info!(%group, custodian = %peer, "received the token group key");
                        if let Some(from) = PublicKey::from_peer_id(&peer) {
                            self.log(dxmesh_protocol::audit::Event::KeyReceived {
                                group: group.clone(),
                                from,
                            });
                        }
                        self.waiting_for_key.retain(|w| w.group != group);
                        self.schedule_feeds();
                    }
                    Err(e) => {
                        tracing::error!(%group, error = %e, "cannot store the token group key")
                    }
                }
            }
            Response::Refused { reason } => {
                tracing::warn!(%group, %peer, ?reason, "the custodian refused our key request")
            }
            other => tracing::debug!(?other, "unexpected answer to a key request"),
        }
    }

    /// The group key for `terms`, or `None` after asking the custodian for it.
    fn group_key(&mut self, terms: &Terms) -> Result<Option<GroupMasterKey>, String> {
        let group = terms.token_group.clone();
        match self.config.key_custodians.get(&group).cloned() {
            Some(c) if c == "self" => self
                .keys
                .custodian_key(&group)
                .map(Some)
                .map_err(|e| e.to_string()),
            Some(custodian) => {
                if let Some(k) = self.keys.get(&group).map_err(|e| e.to_string())? {
                    return Ok(Some(k));
                }
                if self.waiting_for_key.iter().any(|w| w.group == group) {
                    return Ok(None);
                }
                let peer: PeerId = custodian
                    .parse()
                    .map_err(|e| format!("key_custodians.{group}: {e}"))?;
                if !self.connected.contains(&peer) {
                    return Err(format!(
                        "the custodian of group {group:?} ({peer}) is not connected"
                    ));
                }
                let transcript = self
                    .agreements
                    .threads()
                    .find(|t| {
                        t.state.terms.provider == self.identity.public()
                            && t.state.terms.token_group == group
                    })
                    .map(|t| t.steps.clone())
                    .unwrap_or_default();
                self.send(
                    peer,
                    Request::GroupKey {
                        group: group.clone(),
                        transcript,
                    },
                    Pending::GroupKey {
                        group: group.clone(),
                    },
                );
                self.waiting_for_key.push(WaitingPublish { group });
                Ok(None)
            }
            None => Err(format!(
                "no key custodian is configured for token group {group:?}: add `{group} = \"self\"` or the custodian's PeerId under [key_custodians] in config.toml"
            )),
        }
    }

    /// Starts building feeds for `targets` in the background.
    fn start_publish(
        &mut self,
        targets: Vec<(Terms, u64)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) {
        let mut jobs = Vec::new();
        let mut errors = Vec::new();
        for (terms, epoch) in targets {
            let agreement = terms.id();
            if self.busy.contains(&(agreement, epoch)) {
                errors.push((
                    agreement,
                    epoch,
                    "a build of this feed is already running".to_string(),
                ));
                continue;
            }
            let key_result = if terms.is_tokenised() {
                self.group_key(&terms)
            } else {
                Ok(Some(GroupMasterKey([0; 32])))
            };
            match key_result {
                Ok(Some(master)) => {
                    let key = terms.is_tokenised().then(|| master.epoch_key(&terms.token_group, epoch));
                    let previous = epoch
                        .checked_sub(1)
                        .and_then(|p| feeds::read_manifest(&self.data_dir, &agreement, p).ok().flatten())
                        .map(|m| m.digest());
                    self.busy.insert((agreement, epoch));
                    jobs.push((terms, epoch, key, previous));
                }
                Ok(None) => errors.push((
                    agreement,
                    epoch,
                    format!("waiting for the key of token group {:?} from its custodian; publishing continues when it arrives", terms.token_group),
                )),
                Err(e) => errors.push((agreement, epoch, e)),
            }
        }
        let data_dir = self.data_dir.clone();
        let seed = *self.identity.seed();
        let internal = self.internal_tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut results: Vec<(AgreementId, u64, Result<Signed<Manifest>, String>)> =
                errors.into_iter().map(|(a, e, m)| (a, e, Err(m))).collect();
            let identity = match dxmesh_protocol::identity::Identity::from_seed(seed) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(error = %e, "identity unavailable for publishing");
                    return;
                }
            };
            for (terms, epoch, key, previous) in jobs {
                let started = std::time::Instant::now();
                let r = feeds::publish(&PublishInput {
                    data_dir: &data_dir,
                    terms: &terms,
                    epoch,
                    key: key.as_ref(),
                    identity: &identity,
                    previous,
                    now: now(),
                })
                .map_err(|e| e.to_string());
                if let Ok(m) = &r
                    && let Ok(man) = codec::decode::<Manifest>(m.body())
                {
                    tracing::info!(
                        dataset = %terms.dataset,
                        epoch,
                        records = man.records,
                        chunks = man.chunks(),
                        root = %dxmesh_protocol::hex(&man.root),
                        manifest = %dxmesh_protocol::hex(&m.digest()),
                        seconds = started.elapsed().as_secs_f64(),
                        "feed published"
                    );
                }
                results.push((terms.id(), epoch, r));
            }
            let _ = internal.send(Internal::Published { results, reply });
        });
    }

    /// Erases pulled feeds whose agreement's retention has ended (on every
    /// tick): the audit entry first, then the files (see `retention`).
    pub(super) fn enforce_retention(&mut self) {
        if let Err(e) = crate::retention::finish_interrupted(&self.data_dir) {
            tracing::error!(error = %e, "cannot finish erasing an expired feed");
        }
        let me = self.identity.public();
        let busy = self.busy.clone();
        let consumed: Vec<Terms> = self
            .agreements
            .threads()
            .map(|th| &th.state.terms)
            .filter(|t| t.consumer == me)
            .cloned()
            .collect();
        let expired = crate::retention::expired(&self.data_dir, &consumed, now().date());
        // A pull still writing an epoch finishes first; the next tick erases it.
        for gone in expired
            .into_iter()
            .filter(|g| !busy.contains(&(g.agreement, g.epoch)))
        {
            if self.erasure_logged.insert((gone.agreement, gone.epoch)) {
                self.log(dxmesh_protocol::audit::Event::FeedErased {
                    agreement: gone.agreement,
                    epoch: gone.epoch,
                    kept_until: gone.kept_until,
                });
                self.seal_audit();
            }
            match crate::retention::erase(&gone.dir) {
                Ok(()) => tracing::info!(
                    agreement = %dxmesh_protocol::hex(&gone.agreement),
                    epoch = gone.epoch,
                    kept_until = %gone.kept_until,
                    "retention ended: pulled feed erased"
                ),
                Err(e) => tracing::error!(
                    agreement = %dxmesh_protocol::hex(&gone.agreement),
                    epoch = gone.epoch,
                    error = %e,
                    "retention ended but the pulled feed could not be erased"
                ),
            }
        }
    }

    /// Publishes due feeds and starts due pulls (on every tick).
    pub(super) fn schedule_feeds(&mut self) {
        let t = now();
        let me = self.identity.public();
        let mut to_publish = Vec::new();
        let mut to_pull = Vec::new();
        for th in self.agreements.threads() {
            if self.agreements.status(th, t) != dxmesh_protocol::agreement::Status::Active {
                continue;
            }
            let terms = &th.state.terms;
            let Some(epoch) = terms.cycle.epoch_at(t) else {
                continue;
            };
            let agreement = terms.id();
            if self.busy.contains(&(agreement, epoch)) {
                continue;
            }
            if terms.provider == me && self.config.schedule.auto_publish {
                let published = feeds::feed_dir(&self.data_dir, &agreement, epoch)
                    .join("manifest.bin")
                    .exists();
                let imported = crate::dataset::current_dir(&self.data_dir, &terms.dataset).is_ok();
                if !published
                    && imported
                    && !self
                        .waiting_for_key
                        .iter()
                        .any(|w| w.group == terms.token_group)
                {
                    to_publish.push((terms.clone(), epoch));
                }
            }
            if terms.consumer == me && self.config.schedule.auto_pull {
                let in_window = terms
                    .cycle
                    .window(epoch)
                    .is_some_and(|(s, e)| t >= s && t < e);
                let connected = self.connected.contains(&terms.provider.peer_id());
                if in_window && connected && !pulls::is_complete(&self.data_dir, &agreement, epoch)
                {
                    to_pull.push((agreement, epoch));
                }
            }
        }
        if !to_publish.is_empty() {
            self.start_publish(to_publish, None);
        }
        for (agreement, epoch) in to_pull {
            if let Err(e) = self.start_pull(agreement, epoch, None, None) {
                tracing::debug!(error = %e, "scheduled pull not started");
            }
        }
    }

    pub(super) fn start_pull_with(
        &mut self,
        agreement: AgreementId,
        epoch: u64,
        reply: oneshot::Sender<AdminResponse>,
    ) -> Result<(), String> {
        self.start_pull(agreement, epoch, None, Some(reply))
    }

    fn start_pull(
        &mut self,
        agreement: AgreementId,
        epoch: u64,
        range: Option<(IdToken, IdToken)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) -> Result<(), String> {
        let Some(th) = self.agreements.by_agreement(&agreement) else {
            return Err("no accepted agreement with that id".into());
        };
        let terms = th.state.terms.clone();
        if terms.consumer != self.identity.public() {
            return Err("this node is not the consumer of that agreement".into());
        }
        if let Some(until) = crate::retention::kept_until(&terms, epoch)
            && now().date() > until
        {
            return Err(format!(
                "epoch {epoch} may be kept only until {until} (retention_days = {}): it is not pulled again",
                terms.retention_days
            ));
        }
        let provider = terms.provider.peer_id();
        if !self.connected.contains(&provider) {
            return Err(format!(
                "the provider {} is not connected",
                self.label(&terms.provider)
            ));
        }
        if self.busy.contains(&(agreement, epoch)) {
            return Err("a pull of this feed is already running".into());
        }
        let pull_id =
            pulls::pull_id(&self.data_dir, &agreement, epoch).map_err(|e| e.to_string())?;
        let fields = terms.fields.iter().map(|f| f.name.clone()).collect();
        self.busy.insert((agreement, epoch));
        self.send(
            provider,
            Request::PullOpen {
                agreement,
                epoch,
                fields,
                pull_id,
            },
            Pending::PullOpen(PullJob {
                agreement,
                epoch,
                pull_id,
                range,
                reply,
            }),
        );
        Ok(())
    }

    pub(super) fn on_pull_answer(&mut self, peer: PeerId, job: PullJob, answer: Response) {
        let fail = |node: &mut Node, job: PullJob, message: String| {
            node.busy.remove(&(job.agreement, job.epoch));
            tracing::warn!(%peer, %message, "pull not done");
            if let Some(r) = job.reply {
                let _ = r.send(AdminResponse::Error { message });
            }
        };
        let terms = match self.agreements.by_agreement(&job.agreement) {
            Some(t) => t.state.terms.clone(),
            None => return fail(self, job, "the agreement is no longer known here".into()),
        };
        match answer {
            Response::PullGranted { manifest } => {
                let m = match pulls::verify_manifest(&manifest, &terms, job.epoch) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, "SECURITY: a provider sent a manifest that does not verify");
                        return fail(self, job, e.to_string());
                    }
                };
                if let Err(e) = pulls::store_manifest(&self.data_dir, &manifest, &m) {
                    return fail(self, job, e.to_string());
                }
                let range = job.range.map(|(a, b)| m.chunks_for_range(&a, &b));
                let control = self.stream_control.clone();
                let data_dir = self.data_dir.clone();
                let internal = self.internal_tx.clone();
                let (agreement, epoch, pull_id, reply) =
                    (job.agreement, job.epoch, job.pull_id, job.reply);
                tokio::spawn(async move {
                    let result = pulls::download(control, peer, &data_dir, &m, pull_id, range)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = internal.send(Internal::PullDone {
                        agreement,
                        epoch,
                        result,
                        reply,
                    });
                });
            }
            Response::Denied { refusal } => {
                let msg = format!("refused by the provider: {refusal} [{}]", refusal.code());
                fail(self, job, msg)
            }
            Response::Refused { reason } => {
                fail(self, job, format!("refused by the provider: {reason:?}"))
            }
            other => fail(self, job, format!("unexpected answer: {other:?}")),
        }
    }

    pub(super) fn on_disclose_answer(
        &mut self,
        peer: PeerId,
        reply: Option<oneshot::Sender<AdminResponse>>,
        out: Option<String>,
        answer: Response,
    ) {
        let response = match answer {
            Response::Disclosed { disclosure } => {
                let provider = PublicKey::from_peer_id(&peer);
                match provider.map(|p| disclosure.verify_by(&p)) {
                    Some(Ok(d)) => {
                        if let Some(p) = provider {
                            self.log(dxmesh_protocol::audit::Event::DisclosureReceived {
                                agreement: d.agreement,
                                epoch: d.epoch,
                                provider: p,
                                result_kind: d.result_kind.clone(),
                                records: d.records.len() as u64,
                                digest: dxmesh_protocol::feed::disclosure_digest(&d),
                            });
                        }
                        tracing::info!(
                            %peer,
                            agreement = %dxmesh_protocol::hex(&d.agreement),
                            result_kind = %d.result_kind,
                            records = d.records.len(),
                            digest = %dxmesh_protocol::hex(&dxmesh_protocol::feed::disclosure_digest(&d)),
                            "disclosure received"
                        );
                        match write_disclosure(out.as_deref(), &d) {
                            Ok(()) => AdminResponse::Disclosed {
                                records: d.records.len() as u64,
                                unknown: d.unknown.len() as u64,
                                out,
                            },
                            Err(e) => AdminResponse::Error { message: e },
                        }
                    }
                    _ => AdminResponse::Error {
                        message: "the disclosure is not signed by the provider".into(),
                    },
                }
            }
            Response::Denied { refusal } => AdminResponse::Error {
                message: format!("refused by the provider: {refusal} [{}]", refusal.code()),
            },
            other => AdminResponse::Error {
                message: format!("unexpected answer: {other:?}"),
            },
        };
        if let Some(r) = reply {
            let _ = r.send(response);
        }
    }

    pub(super) fn on_internal(&mut self, event: Internal) {
        match event {
            Internal::Published { results, reply } => {
                let mut feeds_out = Vec::new();
                let mut errors = Vec::new();
                for (agreement, epoch, r) in results {
                    self.busy.remove(&(agreement, epoch));
                    match r {
                        Ok(signed) => {
                            if let Ok(m) = codec::decode::<Manifest>(signed.body()) {
                                self.log(dxmesh_protocol::audit::Event::FeedPublished {
                                    agreement,
                                    epoch,
                                    manifest: signed.digest(),
                                    records: m.records,
                                });
                                feeds_out.push(FeedInfo {
                                    agreement: dxmesh_protocol::hex(&agreement),
                                    dataset: m.dataset.clone(),
                                    epoch,
                                    records: m.records,
                                    chunks: m.chunks(),
                                    root: dxmesh_protocol::hex(&m.root),
                                    manifest: dxmesh_protocol::hex(&signed.digest()),
                                });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(agreement = %dxmesh_protocol::hex(&agreement), epoch, error = %e, "feed not published");
                            errors.push(format!(
                                "agreement {} epoch {epoch}: {e}",
                                &dxmesh_protocol::hex(&agreement)[..16]
                            ));
                        }
                    }
                }
                if let Some(r) = reply {
                    let response = if errors.is_empty() {
                        AdminResponse::Published { feeds: feeds_out }
                    } else {
                        AdminResponse::Error {
                            message: errors.join("; "),
                        }
                    };
                    let _ = r.send(response);
                }
            }
            Internal::PullDone {
                agreement,
                epoch,
                result,
                reply,
            } => {
                self.busy.remove(&(agreement, epoch));
                if result.is_ok()
                    && let Some(th) = self.agreements.by_agreement(&agreement)
                {
                    let provider = th.state.terms.provider;
                    let manifest = pulls::stored_manifest(&self.data_dir, &agreement, epoch);
                    let pull_id =
                        pulls::pull_id(&self.data_dir, &agreement, epoch).unwrap_or_default();
                    if let Some(m) = manifest {
                        let chunks = codec::decode::<Manifest>(m.body())
                            .map(|x| x.chunks())
                            .unwrap_or(0);
                        self.log(dxmesh_protocol::audit::Event::PullCompleted {
                            agreement,
                            epoch,
                            provider,
                            pull_id,
                            manifest: m.digest(),
                            chunks,
                        });
                        self.witness_peers();
                    }
                }
                let response = match result {
                    Ok(summary) => {
                        tracing::info!(
                            agreement = %dxmesh_protocol::hex(&agreement),
                            epoch,
                            chunks = summary.chunks,
                            received = summary.received,
                            bytes = summary.bytes,
                            records = summary.records,
                            seconds = summary.seconds,
                            "pull completed"
                        );
                        AdminResponse::Pulled {
                            summary,
                            agreement: dxmesh_protocol::hex(&agreement),
                            epoch,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(agreement = %dxmesh_protocol::hex(&agreement), epoch, error = %e, "pull failed");
                        AdminResponse::Error { message: e }
                    }
                };
                if let Some(r) = reply {
                    let _ = r.send(response);
                }
            }
            Internal::StreamAuth {
                peer,
                request,
                reply,
            } => {
                let result = self.authorize_stream(peer, &request);
                match &result {
                    Ok(_) => {
                        tracing::info!(%peer, from = request.from, to = request.to, epoch = request.epoch, "serving feed chunks")
                    }
                    Err(refusal) => {
                        let _ = self.refuse_request(peer, "feed stream", refusal.clone());
                    }
                }
                let _ = reply.send(result);
            }
            Internal::Op { op, reply } => self.on_op(op, reply),
            Internal::Audit(event) => self.log(event),
            Internal::Disclosed { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .control
                    .send_response(channel, response);
            }
        }
    }

    pub(super) fn on_feed_admin(
        &mut self,
        request: AdminRequest,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let t = now();
        let me = self.identity.public();
        match request {
            AdminRequest::Publish { agreement, epoch } => {
                let threads: Vec<crate::agreements::Thread> = match &agreement {
                    Some(id) => match self.agreements.find(id) {
                        Ok(th) => vec![th.clone()],
                        Err(e) => {
                            let _ = reply.send(AdminResponse::Error {
                                message: e.to_string(),
                            });
                            return;
                        }
                    },
                    None => self
                        .agreements
                        .threads()
                        .filter(|th| {
                            th.state.terms.provider == me
                                && self.agreements.status(th, t)
                                    == dxmesh_protocol::agreement::Status::Active
                        })
                        .cloned()
                        .collect(),
                };
                let mut targets = Vec::new();
                for th in threads {
                    let status = self.agreements.status(&th, t);
                    if th.state.terms.provider != me {
                        let _ = reply.send(AdminResponse::Error {
                            message: "this node is not the provider of that agreement".into(),
                        });
                        return;
                    }
                    if status != dxmesh_protocol::agreement::Status::Active {
                        let _ = reply.send(AdminResponse::Error {
                            message: format!("the agreement is {status}, not active"),
                        });
                        return;
                    }
                    let e = match epoch.or_else(|| th.state.terms.cycle.epoch_at(t)) {
                        Some(e) => e,
                        None => {
                            let _ = reply.send(AdminResponse::Error {
                                message: "the agreement's cycle has not started".into(),
                            });
                            return;
                        }
                    };
                    targets.push((th.state.terms.clone(), e));
                }
                if targets.is_empty() {
                    let _ = reply.send(AdminResponse::Published { feeds: vec![] });
                    return;
                }
                self.start_publish(targets, Some(reply));
            }
            AdminRequest::Pull {
                agreement,
                epoch,
                range,
            } => {
                let th = match self.agreements.find(&agreement) {
                    Ok(th) => th.clone(),
                    Err(e) => {
                        let _ = reply.send(AdminResponse::Error {
                            message: e.to_string(),
                        });
                        return;
                    }
                };
                let Some(e) = epoch.or_else(|| th.state.terms.cycle.epoch_at(t)) else {
                    let _ = reply.send(AdminResponse::Error {
                        message: "the agreement's cycle has not started".into(),
                    });
                    return;
                };
                let range = match range
                    .map(|(a, b)| Ok::<_, String>((parse_token(&a)?, parse_token(&b)?)))
                    .transpose()
                {
                    Ok(r) => r,
                    Err(message) => {
                        let _ = reply.send(AdminResponse::Error { message });
                        return;
                    }
                };
                let id = th.state.terms.id();
                if range.is_none() && pulls::is_complete(&self.data_dir, &id, e) {
                    let records = pulls::stored_manifest(&self.data_dir, &id, e)
                        .and_then(|m| codec::decode::<Manifest>(m.body()).ok())
                        .map(|m| (m.records, m.chunks()))
                        .unwrap_or((0, 0));
                    let _ = reply.send(AdminResponse::Pulled {
                        summary: PullSummary {
                            chunks: records.1,
                            records: records.0,
                            ..Default::default()
                        },
                        agreement: dxmesh_protocol::hex(&id),
                        epoch: e,
                    });
                    return;
                }
                let (tx, rx) = oneshot::channel();
                match self.start_pull(id, e, range, Some(tx)) {
                    Ok(()) => {
                        tokio::spawn(async move {
                            let r = rx.await.unwrap_or(AdminResponse::Error {
                                message: "the node is shutting down".into(),
                            });
                            let _ = reply.send(r);
                        });
                    }
                    Err(message) => {
                        let _ = reply.send(AdminResponse::Error { message });
                    }
                }
            }
            AdminRequest::Disclose {
                agreement,
                epoch,
                result_kind,
                fields,
                tokens,
                first,
                out,
            } => {
                let th = match self.agreements.find(&agreement) {
                    Ok(th) => th.clone(),
                    Err(e) => {
                        let _ = reply.send(AdminResponse::Error {
                            message: e.to_string(),
                        });
                        return;
                    }
                };
                let terms = th.state.terms.clone();
                let Some(e) = epoch.or_else(|| terms.cycle.epoch_at(t)) else {
                    let _ = reply.send(AdminResponse::Error {
                        message: "the agreement's cycle has not started".into(),
                    });
                    return;
                };
                let mut list = Vec::new();
                for h in &tokens {
                    match parse_token(h) {
                        Ok(tk) => list.push(tk),
                        Err(message) => {
                            let _ = reply.send(AdminResponse::Error { message });
                            return;
                        }
                    }
                }
                if let Some(n) = first {
                    match first_tokens(&self.data_dir, &terms, e, n) {
                        Ok(mut v) => list.append(&mut v),
                        Err(message) => {
                            let _ = reply.send(AdminResponse::Error { message });
                            return;
                        }
                    }
                }
                let provider = terms.provider.peer_id();
                if !self.connected.contains(&provider) {
                    let _ = reply.send(AdminResponse::Error {
                        message: format!(
                            "the provider {} is not connected",
                            self.label(&terms.provider)
                        ),
                    });
                    return;
                }
                self.send(
                    provider,
                    Request::Disclose {
                        agreement: terms.id(),
                        epoch: e,
                        result_kind,
                        fields,
                        tokens: list,
                    },
                    Pending::Disclose {
                        reply: Some(reply),
                        out,
                    },
                );
            }
            _ => {
                let _ = reply.send(AdminResponse::Error {
                    message: "not a feed request".into(),
                });
            }
        }
    }
}

fn parse_token(h: &str) -> Result<IdToken, String> {
    let b = hex::decode(h.trim()).map_err(|e| format!("token {h:?}: {e}"))?;
    let a: [u8; 16] = b
        .try_into()
        .map_err(|_| format!("token {h:?}: must be 32 hex digits"))?;
    Ok(IdToken(a))
}

/// The first `n` distinct tokens of a pulled feed.
fn first_tokens(
    data_dir: &std::path::Path,
    terms: &Terms,
    epoch: u64,
    n: u64,
) -> Result<Vec<IdToken>, String> {
    let reader = pulls::FeedReader::open(data_dir, terms, epoch).map_err(|e| e.to_string())?;
    let mut out: Vec<IdToken> = Vec::new();
    for i in 0..reader.manifest().chunks() {
        let c = reader.chunk(i).map_err(|e| e.to_string())?;
        for r in 0..c.count as usize {
            let t = c.id(r);
            if out.last() != Some(&t) {
                out.push(t);
            }
            if out.len() as u64 >= n {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn write_disclosure(
    out: Option<&str>,
    d: &dxmesh_protocol::feed::Disclosure,
) -> Result<(), String> {
    let Some(path) = out else { return Ok(()) };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&d.fields).map_err(|e| e.to_string())?;
    for r in &d.records {
        w.write_record(&r.values).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    crate::fsutil::write_atomic(std::path::Path::new(path), &bytes, 0o600)
        .map_err(|e| format!("{path}: {e}"))
}
