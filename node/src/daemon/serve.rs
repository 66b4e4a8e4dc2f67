//! The daemon's serving of pulls, at the provider: a pull is opened (and
//! counted) with `PullOpen` after the protocol's `check_pull`, then served
//! as one bulk stream per pull whose every request is authorised again.
//! Also a custodian's answer to a provider asking for its group's key
//! (checked here, handed out by the publish desk).

use super::core::counter_key;
use super::node::{Answer, Event, Node};
use super::publish::refuse_key;
use crate::base::clock::now;
use crate::publish::store::{feed_dir, read_manifest};
use dxmesh_protocol::agreement::{AgreementId, PullCheck, Refusal, Step, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::ChunkRequest;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::Response;
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
    pub(super) fn on_pull_open(
        &mut self,
        peer: PeerId,
        agreement: AgreementId,
        epoch: u64,
        fields: Vec<String>,
        pull_id: [u8; 16],
    ) -> Response {
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return self.trust.refuse_request(
                &mut self.core,
                peer,
                ("pull", agreement),
                Refusal::NotConsumer,
            );
        };
        let Some((terms, superseded)) = self.core.provided(&agreement) else {
            return self.trust.refuse_request(
                &mut self.core,
                peer,
                ("pull", agreement),
                Refusal::UnknownAgreement,
            );
        };
        let key = counter_key("pull", &agreement, epoch);
        let mut pulls: Vec<[u8; 16]> = match self.core.store.counter(&key) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pulls used; refusing");
                return self.trust.refuse_request(
                    &mut self.core,
                    peer,
                    ("pull", agreement),
                    Refusal::ProviderFailed { epoch },
                );
            }
        };
        let new_pull = !pulls.contains(&pull_id);
        let check = PullCheck {
            requester: &requester,
            admission: self.trust.admitted(&requester),
            epoch,
            fields: &fields,
            new_pull,
            pulls_used: pulls.len() as u32,
        };
        let state = &self.core.find_state(&agreement).map(|t| t.state.clone());
        let Some(state) = state else {
            return self.trust.refuse_request(
                &mut self.core,
                peer,
                ("pull", agreement),
                Refusal::UnknownAgreement,
            );
        };
        if let Err(refusal) = state.check_pull(now(), superseded, &check) {
            return self
                .trust
                .refuse_request(&mut self.core, peer, ("pull", agreement), refusal);
        }
        let manifest = match read_manifest(&self.core.data_dir, &agreement, epoch) {
            Ok(Some(m)) => m,
            Ok(None) => {
                return self.trust.refuse_request(
                    &mut self.core,
                    peer,
                    ("pull", agreement),
                    Refusal::NotPublished { epoch },
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read a published manifest");
                return self.trust.refuse_request(
                    &mut self.core,
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
                return self.trust.refuse_request(
                    &mut self.core,
                    peer,
                    ("pull", agreement),
                    Refusal::ProviderFailed { epoch },
                );
            }
        }
        tracing::info!(
            peer = %self.trust.label(&requester),
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
        self.auditing.witnessing.ask_peers(&mut self.core);
        Response::PullGranted { manifest }
    }

    pub(super) fn authorize_stream(
        &mut self,
        peer: PeerId,
        req: &ChunkRequest,
    ) -> Result<PathBuf, Refusal> {
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let (_, superseded) = self
            .core
            .provided(&req.agreement)
            .ok_or(Refusal::UnknownAgreement)?;
        let state = self
            .core
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
            admission: self.trust.admitted(&requester),
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
                let _ = self.trust.refuse_request(
                    &mut self.core,
                    peer,
                    ("feed stream", request.agreement),
                    refusal.clone(),
                );
            }
        }
        let _ = reply.send(result);
    }
}

impl Node {
    pub(super) fn on_group_key_request(
        &mut self,
        group: String,
        transcript: Vec<Signed<Step>>,
        to: Answer,
    ) {
        let peer = to.peer;
        if self
            .core
            .config
            .key_custodians
            .get(&group)
            .map(String::as_str)
            != Some("self")
        {
            let why = "this node is not the custodian of that group".to_string();
            return refuse_key(&mut self.core, &mut self.trust, to, &group, why);
        }
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return refuse_key(
                &mut self.core,
                &mut self.trust,
                to,
                &group,
                "unknown requester key".into(),
            );
        };
        // The group's purpose: this custodian's own accepted or active
        // agreements in the group, as provider.
        let t = now();
        let me = self.core.identity.public();
        let own: Vec<Terms> = self
            .core
            .agreements
            .threads()
            .filter(|th| {
                th.state.terms.provider == me
                    && th.state.terms.token_group == group
                    && matches!(
                        self.core.agreements.status(th, t),
                        dxmesh_protocol::agreement::Status::Active
                            | dxmesh_protocol::agreement::Status::Accepted
                    )
            })
            .map(|th| th.state.terms.clone())
            .collect();
        let Some((_, roster)) = self.trust.roster.clone() else {
            return refuse_key(
                &mut self.core,
                &mut self.trust,
                to,
                &group,
                "no roster".into(),
            );
        };
        // Replaying the transcript (up to 1,000 signed steps) is the heavy
        // part: it runs off the event loop.
        self.off_loop(
            move || {
                let checked = crate::publish::keys::check_key_request(
                    &roster,
                    &requester,
                    &group,
                    &transcript,
                    &own,
                    t,
                )
                .map_err(|e| e.to_string());
                (group, checked)
            },
            move |node, (group, checked)| {
                let (core, trust) = (&mut node.core, &mut node.trust);
                node.publish
                    .hand_key(core, trust, to, requester, group, checked)
            },
        );
    }
}
