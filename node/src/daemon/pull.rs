//! The daemon's pulls, both sides. At the provider: a pull is opened (and
//! counted) with `PullOpen` after the protocol's `check_pull`, then served
//! as one bulk stream per pull whose every request is authorised again. At
//! the consumer: pulls by command, by the comparator's cycle and on
//! schedule inside the cycle window, verified chunk by chunk
//! ([`crate::pull::download`]); and retention, which erases pulled
//! feeds once their agreement's retention ends.

use super::error::{NodeError, PeerError, RequestError};
use super::node::{Event, Node, Pending, PullJob, answer_error, counter_key, parse_token};
use crate::admin::AdminResponse;
use crate::base::clock::now;
use crate::publish::store::{feed_dir, read_manifest};
use crate::pull::pulls::{self, PullError, PullSummary};
use dxmesh_protocol::agreement::{AgreementId, PullCheck, Refusal, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{ChunkRequest, Manifest};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::PeerId;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Accepts bulk feed streams and serves each in its own task.
pub(crate) async fn serve_streams(
    mut incoming: libp2p_stream::IncomingStreams,
    internal: mpsc::UnboundedSender<Event>,
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
    internal: mpsc::UnboundedSender<Event>,
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
        .send(Event::StreamAuth {
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
            let read = crate::base::fsutil::read_direct_in_place(&path, &mut buf)
                .map(|range| (buf, range));
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
            && crate::base::failpoint::enabled_point("feed-served-first-chunk")
        {
            // Let the first chunk reach the consumer, then die before the second.
            stream.flush().await?;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            crate::base::failpoint::hit("feed-served-first-chunk");
        }
        let _ = empty_tx.send(buf);
        index += 1;
    }
    stream.close().await
}

impl Node {
    /// `dxmesh pull`: pull (or resume) a feed, or report it complete.
    pub(super) fn admin_pull(
        &mut self,
        agreement: String,
        epoch: Option<u64>,
        range: Option<(String, String)>,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let t = now();
        let th = match self.core.agreements.find(&agreement) {
            Ok(th) => th.clone(),
            Err(e) => return answer_error(reply, e),
        };
        let Some(e) = epoch.or_else(|| th.state.terms.cycle.epoch_at(t)) else {
            return answer_error(reply, RequestError::CycleNotStarted);
        };
        let range = match range
            .map(|(a, b)| Ok::<_, RequestError>((parse_token(&a)?, parse_token(&b)?)))
            .transpose()
        {
            Ok(r) => r,
            Err(e) => return answer_error(reply, e),
        };
        let id = th.state.terms.id();
        if range.is_none() && pulls::is_complete(&self.core.data_dir, &id, e) {
            let records = pulls::stored_manifest(&self.core.data_dir, &id, e)
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
            Err(e) => answer_error(reply, e),
        }
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
            return self.refuse_request(peer, ("pull", agreement), Refusal::NotConsumer);
        };
        let Some((terms, superseded)) = self.provided(&agreement) else {
            return self.refuse_request(peer, ("pull", agreement), Refusal::UnknownAgreement);
        };
        let key = counter_key("pull", &agreement, epoch);
        let mut pulls: Vec<[u8; 16]> = match self.core.store.counter(&key) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pulls used; refusing");
                return self.refuse_request(
                    peer,
                    ("pull", agreement),
                    Refusal::ProviderFailed { epoch },
                );
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
            return self.refuse_request(peer, ("pull", agreement), Refusal::UnknownAgreement);
        };
        if let Err(refusal) = state.check_pull(now(), superseded, &check) {
            return self.refuse_request(peer, ("pull", agreement), refusal);
        }
        let manifest = match read_manifest(&self.core.data_dir, &agreement, epoch) {
            Ok(Some(m)) => m,
            Ok(None) => {
                return self.refuse_request(
                    peer,
                    ("pull", agreement),
                    Refusal::NotPublished { epoch },
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read a published manifest");
                return self.refuse_request(
                    peer,
                    ("pull", agreement),
                    Refusal::ProviderFailed { epoch },
                );
            }
        };
        if new_pull {
            pulls.push(pull_id);
            if let Err(e) = self.core.store.set_counter(&key, &pulls) {
                tracing::error!(error = %e, "cannot record the pull; refusing it");
                return self.refuse_request(
                    peer,
                    ("pull", agreement),
                    Refusal::ProviderFailed { epoch },
                );
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
        self.core.log(dxmesh_protocol::audit::Event::PullServed {
            agreement,
            epoch,
            consumer: requester,
            pull_id,
            new_pull,
            manifest: manifest.digest(),
        });
        self.witnessing.ask_peers(&mut self.core);
        Response::PullGranted { manifest }
    }

    pub(super) fn authorize_stream(
        &mut self,
        peer: PeerId,
        req: &ChunkRequest,
    ) -> Result<PathBuf, Refusal> {
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let (_, superseded) = self
            .provided(&req.agreement)
            .ok_or(Refusal::UnknownAgreement)?;
        let state = self
            .find_state(&req.agreement)
            .map(|t| t.state.clone())
            .ok_or(Refusal::UnknownAgreement)?;
        let pulls: Vec<[u8; 16]> = self
            .core
            .store
            .counter(&counter_key("pull", &req.agreement, req.epoch))
            .ok()
            .flatten()
            .unwrap_or_default();
        let check = PullCheck {
            requester: &requester,
            admission: self.admitted(&requester),
            epoch: req.epoch,
            fields: &[],
            new_pull: false,
            pulls_used: pulls.len() as u32,
        };
        state.check_pull(now(), superseded, &check)?;
        if !pulls.contains(&req.pull_id) {
            // A stream must belong to a pull opened (and counted) with PullOpen.
            return Err(Refusal::PullNotOpened { epoch: req.epoch });
        }
        let manifest = read_manifest(&self.core.data_dir, &req.agreement, req.epoch)
            .ok()
            .flatten()
            .ok_or(Refusal::NotPublished { epoch: req.epoch })?;
        let chunks = manifest.verify().map(|m| m.chunks()).unwrap_or(0);
        if req.from > req.to || req.to > chunks {
            return Err(Refusal::NotPublished { epoch: req.epoch });
        }
        Ok(feed_dir(&self.core.data_dir, &req.agreement, req.epoch))
    }

    /// The pulled feeds of this node's agreements as consumer that must be
    /// gone on `day` (see [`crate::pull::retention::expired`]).
    pub(super) fn expired_pulls(
        &self,
        day: dxmesh_protocol::date::Date,
    ) -> Vec<crate::pull::retention::Expired> {
        let me = self.core.identity.public();
        let consumed: Vec<Terms> = self
            .core
            .agreements
            .threads()
            .map(|th| &th.state.terms)
            .filter(|t| t.consumer == me)
            .cloned()
            .collect();
        crate::pull::retention::expired(&self.core.data_dir, &consumed, day)
    }

    /// Erases pulled feeds whose agreement's retention has ended (on every
    /// tick): the audit entry first, then the files (see `retention`).
    pub(super) fn enforce_retention(&mut self) {
        if let Err(e) = crate::pull::retention::finish_interrupted(&self.core.data_dir) {
            tracing::error!(error = %e, "cannot finish erasing an expired feed");
        }
        let busy = self.busy.clone();
        let expired = self.expired_pulls(now().date());
        // A pull still writing an epoch finishes first; the next tick erases it.
        for gone in expired
            .into_iter()
            .filter(|g| !busy.contains(&(g.agreement, g.epoch)))
        {
            if self.erasure_logged.insert((gone.agreement, gone.epoch)) {
                self.core.log(dxmesh_protocol::audit::Event::FeedErased {
                    agreement: gone.agreement,
                    epoch: gone.epoch,
                    kept_until: gone.kept_until,
                });
                self.core.seal_audit();
            }
            if let Err(e) = crate::pull::retention::keep_evidence(
                &self.core.data_dir,
                &gone.agreement,
                gone.epoch,
                &gone.dir,
            ) {
                // The feed is erased at the next tick, once its manifest is kept.
                tracing::error!(
                    agreement = %dxmesh_protocol::hex(&gone.agreement),
                    epoch = gone.epoch,
                    error = %e,
                    "cannot keep the manifest of an expired feed as evidence; erasing it at the next tick"
                );
                continue;
            }
            match crate::pull::retention::erase(&gone.dir) {
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

    pub(super) fn start_pull_with(
        &mut self,
        agreement: AgreementId,
        epoch: u64,
        reply: oneshot::Sender<AdminResponse>,
    ) -> Result<(), NodeError> {
        self.start_pull(agreement, epoch, None, Some(reply))
    }

    pub(super) fn start_pull(
        &mut self,
        agreement: AgreementId,
        epoch: u64,
        range: Option<(IdToken, IdToken)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) -> Result<(), NodeError> {
        let Some(th) = self.core.agreements.by_agreement(&agreement) else {
            return Err(RequestError::NotAccepted.into());
        };
        let terms = th.state.terms.clone();
        if terms.consumer != self.core.identity.public() {
            return Err(RequestError::NotConsumer.into());
        }
        if let Some(until) = crate::pull::retention::kept_until(&terms, epoch)
            && now().date() > until
        {
            return Err(RequestError::PastRetention {
                epoch,
                until: until.to_string(),
                retention_days: terms.retention_days,
            }
            .into());
        }
        let provider = terms.provider.peer_id();
        if !self.core.connected.contains(&provider) {
            return Err(PeerError::NotConnected {
                role: "provider",
                label: self.label(&terms.provider),
            }
            .into());
        }
        if self.busy.contains(&(agreement, epoch)) {
            return Err(RequestError::Busy { what: "pull" }.into());
        }
        let pull_id = pulls::pull_id(&self.core.data_dir, &agreement, epoch)?;
        let fields = terms.fields.iter().map(|f| f.name.clone()).collect();
        self.busy.insert((agreement, epoch));
        self.core.send(
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
        let fail = |node: &mut Node, job: PullJob, error: NodeError| {
            node.busy.remove(&(job.agreement, job.epoch));
            tracing::warn!(%peer, %error, "pull not done");
            job.fail(error);
        };
        let terms = match self.core.agreements.by_agreement(&job.agreement) {
            Some(t) => t.state.terms.clone(),
            None => return fail(self, job, RequestError::UnknownAgreement.into()),
        };
        match answer {
            Response::PullGranted { manifest } => {
                let m = match pulls::verify_manifest(&manifest, &terms, job.epoch) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, "SECURITY: a provider sent a manifest that does not verify");
                        return fail(self, job, e.into());
                    }
                };
                if let Err(e) = pulls::store_manifest(&self.core.data_dir, &manifest, &m) {
                    return fail(self, job, e.into());
                }
                let range = job.range.map(|(a, b)| m.chunks_for_range(&a, &b));
                let control = self.stream_control.clone();
                let data_dir = self.core.data_dir.clone();
                let internal = self.internal_tx.clone();
                let (agreement, epoch, pull_id, reply) =
                    (job.agreement, job.epoch, job.pull_id, job.reply);
                tokio::spawn(async move {
                    let result = crate::pull::download::download(
                        control, peer, &data_dir, &m, pull_id, range,
                    )
                    .await;
                    let _ = internal.send(Event::PullDone {
                        agreement,
                        epoch,
                        result,
                        reply,
                    });
                });
            }
            Response::Denied { refusal } => {
                let refused = PeerError::Refused {
                    role: "provider",
                    refusal,
                };
                fail(self, job, refused.into())
            }
            Response::Refused { reason } => {
                let refused = PeerError::RefusedRequest {
                    role: "provider",
                    reason: format!("{reason:?}"),
                };
                fail(self, job, refused.into())
            }
            other => fail(
                self,
                job,
                PeerError::Unexpected(format!("{other:?}")).into(),
            ),
        }
    }

    /// A download ended: log the completed pull, answer whoever waits.
    pub(super) fn on_pull_done(
        &mut self,
        agreement: AgreementId,
        epoch: u64,
        result: Result<PullSummary, PullError>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) {
        self.busy.remove(&(agreement, epoch));
        if let Ok(summary) = &result {
            self.core.metrics.pulled(summary.bytes, summary.received);
        }
        if result.is_ok()
            && let Some(th) = self.core.agreements.by_agreement(&agreement)
        {
            let provider = th.state.terms.provider;
            let manifest = pulls::stored_manifest(&self.core.data_dir, &agreement, epoch);
            let pull_id =
                pulls::pull_id(&self.core.data_dir, &agreement, epoch).unwrap_or_default();
            if let Some(m) = manifest {
                let chunks = codec::decode::<Manifest>(m.body())
                    .map(|x| x.chunks())
                    .unwrap_or(0);
                self.core.log(dxmesh_protocol::audit::Event::PullCompleted {
                    agreement,
                    epoch,
                    provider,
                    pull_id,
                    manifest: m.digest(),
                    chunks,
                });
                self.witnessing.ask_peers(&mut self.core);
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
                AdminResponse::Error {
                    message: e.to_string(),
                }
            }
        };
        if let Some(r) = reply {
            let _ = r.send(response);
        }
    }

    /// A bulk stream asks to be served: authorise it against the agreement.
    pub(super) fn on_stream_auth(
        &mut self,
        peer: PeerId,
        request: ChunkRequest,
        reply: oneshot::Sender<Result<PathBuf, Refusal>>,
    ) {
        let result = self.authorize_stream(peer, &request);
        match &result {
            Ok(_) => {
                tracing::info!(%peer, from = request.from, to = request.to, epoch = request.epoch, "serving feed chunks")
            }
            Err(refusal) => {
                let _ =
                    self.refuse_request(peer, ("feed stream", request.agreement), refusal.clone());
            }
        }
        let _ = reply.send(result);
    }
}
