//! The daemon's event loop and dispatcher: one task polls the swarm, the
//! admin socket, background work, the comparator's cycle, a periodic tick
//! and the shutdown signal, and hands each event to the stage that owns it.
//! Every control request passes one admission gate first: a peer the roster
//! does not admit gets nothing but a logged refusal.

use super::error::PeerError;
use super::net::Inbound;
use super::node::{Answer, Event, Node, Pending};
use crate::admin::{AdminCall, AdminRequest, AdminResponse};
use crate::compare::ops::Op;
use crate::daemon::net::BehaviourEvent;
use dxmesh_protocol::codec;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{Admission, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::{PeerAddresses, Refusal, Request, Response};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// The receiving ends the event loop polls besides the swarm.
pub(super) struct Inbox {
    /// Operator requests from the admin socket.
    pub(super) admin: mpsc::Receiver<AdminCall>,
    /// Results of background work.
    pub(super) events: mpsc::UnboundedReceiver<Event>,
    /// Checks done off the loop, to be continued on it.
    pub(super) resumed: mpsc::UnboundedReceiver<super::node::Resume>,
    /// Steps the comparator's cycle asks for.
    pub(super) cycle: mpsc::UnboundedReceiver<Op>,
}

impl Node {
    /// Runs until `shutdown` resolves; the audit log is sealed after every
    /// event.
    pub(super) async fn event_loop(
        &mut self,
        inbox: &mut Inbox,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_secs(
            self.core.config.network.peer_exchange_secs,
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; closing connections");
                    self.core.seal_audit();
                    return;
                }
                event = self.core.swarm.select_next_some() => self.on_swarm_event(event),
                Some(call) = inbox.admin.recv() => self.on_admin_call(call),
                Some(event) = inbox.events.recv() => self.on_event(event),
                Some(then) = inbox.resumed.recv() => then(self),
                Some(op) = inbox.cycle.recv() => self.on_op(op),
                _ = tick.tick() => self.on_tick(),
            }
            // Every batch of audit appends gets its signed checkpoint.
            self.core.seal_audit();
        }
    }

    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .clone()
                    .with(Protocol::P2p(self.core.identity.peer_id()));
                tracing::info!(address = %full, "listening");
                self.trust.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.trust.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                // The allow-list already admitted the peer; check again so
                // that a roster change racing the handshake cannot slip by.
                let admission = self.trust.admission(&peer_id);
                if admission != Admission::Admitted {
                    self.trust.record_refusal(
                        &mut self.core,
                        Some(peer_id),
                        Some(endpoint.get_remote_address().to_string()),
                        format!("connection: {admission}"),
                    );
                    let _ = self.core.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.core.connected.insert(peer_id);
                self.core.metrics.peers(self.core.connected.len());
                if num_established.get() == 1 {
                    tracing::info!(peer = %peer_id, remote = %endpoint.get_remote_address(), "connected");
                    let have = self.trust.roster_version();
                    self.core.send(
                        peer_id,
                        Request::RosterSync { have_version: have },
                        Pending::RosterSync,
                    );
                    self.core.send(peer_id, Request::Peers, Pending::Peers);
                    self.sync_agreements_with(peer_id);
                    self.auditing.witnessing.ask_peers(&mut self.core);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                self.core.connected.remove(&peer_id);
                self.core.metrics.peers(self.core.connected.len());
                tracing::info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "disconnected");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => {
                if let ListenError::Denied { .. } = &error {
                    let reason = match peer_id {
                        Some(p) => format!("connection: {}", self.trust.admission(&p)),
                        None => "connection: not admitted".into(),
                    };
                    self.trust.record_refusal(
                        &mut self.core,
                        peer_id,
                        Some(send_back_addr.to_string()),
                        reason,
                    );
                } else {
                    tracing::debug!(error = %error, remote = %send_back_addr, "incoming connection failed");
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => match &error {
                DialError::Denied { .. } => {
                    let reason = match peer_id {
                        Some(p) => format!("dial: {}", self.trust.admission(&p)),
                        None => "dial: not admitted".into(),
                    };
                    self.trust
                        .record_refusal(&mut self.core, peer_id, None, reason);
                }
                _ => tracing::debug!(peer = ?peer_id, error = %error, "dial failed"),
            },
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let addrs: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .filter(|a| {
                        !a.iter()
                            .any(|p| matches!(p, Protocol::Ip4(ip) if ip.is_unspecified()))
                    })
                    .collect();
                self.trust.peer_addrs.insert(peer_id, addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Control(event)) => self.on_control(event),
            _ => {}
        }
    }

    pub(super) fn on_control(&mut self, event: request_response::Event<Inbound, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request: Inbound::Refused(why),
                    channel,
                    ..
                } => {
                    // One class: a flood's frames differ only in their sizes.
                    let class = ("control frame", String::new());
                    self.trust.refuse_throttled(
                        &mut self.core,
                        peer,
                        class,
                        format!("refused: {why}"),
                    );
                    let _ = self.core.swarm.behaviour_mut().control.send_response(
                        channel,
                        Response::Refused {
                            reason: Refusal::Frame(why),
                        },
                    );
                }
                request_response::Message::Request {
                    request: Inbound::Request(request, held),
                    channel,
                    ..
                } => self.on_inbound(
                    *request,
                    Answer {
                        peer,
                        channel,
                        held,
                    },
                ),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let kind = self.core.pending.remove(&request_id);
                    self.on_response(peer, kind, response);
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let failed = self.core.pending.remove(&request_id);
                if matches!(failed, Some(Pending::Witness { .. })) {
                    self.auditing.witnessing.failed(&peer);
                }
                if let Some(Pending::Disclose { reply, .. }) = failed {
                    reply.fail(PeerError::NoAnswer(error.to_string()));
                } else if let Some(Pending::MinistryOp { reply, .. }) = failed {
                    let _ = reply.send(Err(PeerError::NoAnswer(error.to_string()).into()));
                } else if let Some(Pending::PullOpen(job)) = failed {
                    self.pulls.failed(&job);
                    job.fail(PeerError::NoAnswer(error.to_string()));
                } else if let Some(Pending::AgreementStep {
                    reply: Some(reply), ..
                }) = failed
                {
                    let _ = reply.send(AdminResponse::Error {
                        message: format!(
                            "the provider did not answer ({error}); the step stays queued and is sent again when the provider reconnects"
                        ),
                    });
                }
                tracing::debug!(%peer, %error, "control request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound control request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// A control request: the one gate every request passes (admission,
    /// then the member's rate), then its handler.
    fn on_inbound(&mut self, request: Request, to: Answer) {
        let peer = to.peer;
        // A peer the roster does not admit gets nothing but a logged refusal.
        let admission = self.trust.admission(&peer);
        if admission != Admission::Admitted {
            self.trust.record_refusal(
                &mut self.core,
                Some(peer),
                None,
                format!("control request: {admission}"),
            );
            let refused = Response::Refused {
                reason: Refusal::NotAdmitted(admission),
            };
            return self.core.respond(to, refused);
        }
        if let Some(refused) = self.trust.rate_limit(&mut self.core, peer) {
            return self.core.respond(to, refused);
        }
        match request {
            // Answered once checked off the event loop.
            Request::Disclose(request) => self.on_disclose(request, to),
            Request::MinistryQuery {
                agreement,
                epoch,
                fields,
                ids,
                commitment,
                receipt,
            } => self.on_ministry_query(
                super::ministry::Asked {
                    agreement,
                    epoch,
                    fields,
                    ids,
                    commitment,
                    receipt: *receipt,
                },
                to,
            ),
            Request::GroupKey { group, transcript } => {
                self.on_group_key_request(group, transcript, to)
            }
            request => {
                let response = self.on_request(peer, request);
                self.core.respond(to, response);
            }
        }
    }

    /// Answers a control request from an admitted peer (`on_control` has
    /// already checked admission).
    pub(super) fn on_request(&mut self, peer: PeerId, request: Request) -> Response {
        match request {
            Request::RosterSync { have_version } => {
                if have_version >= self.trust.roster_version() {
                    return Response::Roster { chain: Vec::new() };
                }
                match self.core.store.rosters_after(have_version) {
                    Ok(chain) => Response::Roster { chain },
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the roster chain");
                        Response::Roster { chain: Vec::new() }
                    }
                }
            }
            Request::RosterPush { chain } => {
                match self.trust.offer_roster(&mut self.core, chain, Some(peer)) {
                    Ok(_) => Response::Ack,
                    Err(e) => Response::Refused {
                        reason: Refusal::BadRoster(e.to_string()),
                    },
                }
            }
            Request::AgreementStep { step } => {
                let r = self.on_agreement_step(peer, step);
                self.auditing.log_agreement_steps(&mut self.core);
                r
            }
            Request::Witness { note, proof } => self.on_witness_request(peer, note, proof),
            Request::PullOpen {
                agreement,
                epoch,
                fields,
                pull_id,
            } => self.on_pull_open(peer, agreement, epoch, fields, pull_id),
            Request::Disclose(_) | Request::MinistryQuery { .. } | Request::GroupKey { .. } => {
                Response::Refused {
                    reason: Refusal::Key("internal: answered off the event loop".into()),
                }
            }
            Request::AgreementSync { threads } => {
                let Some(from) = PublicKey::from_peer_id(&peer) else {
                    return Response::Transcripts {
                        transcripts: vec![],
                    };
                };
                let transcripts =
                    self.core
                        .agreements
                        .missing_for(&self.core.identity.public(), &from, &threads);
                tracing::debug!(%peer, held = threads.len(), sending = transcripts.len(), "agreement sync requested");
                Response::Transcripts { transcripts }
            }
            Request::Peers => {
                let peers = self
                    .core
                    .connected
                    .iter()
                    .filter(|p| **p != peer)
                    .filter_map(|p| {
                        let pk = PublicKey::from_peer_id(p)?;
                        let addresses = self
                            .trust
                            .peer_addrs
                            .get(p)?
                            .iter()
                            .map(|a| a.to_string())
                            .collect();
                        Some(PeerAddresses {
                            public_key: pk,
                            addresses,
                        })
                    })
                    .collect();
                Response::Peers { peers }
            }
        }
    }

    pub(super) fn on_response(&mut self, peer: PeerId, kind: Option<Pending>, response: Response) {
        match (kind, response) {
            (Some(Pending::RosterSync), Response::Roster { chain }) => {
                if !chain.is_empty() {
                    let _ = self.trust.offer_roster(&mut self.core, chain, Some(peer));
                }
            }
            (Some(Pending::Peers), Response::Peers { peers }) => {
                for p in peers {
                    self.trust.maybe_dial(&mut self.core, p);
                }
            }
            (Some(Pending::RosterPush), Response::Ack) => {}
            (Some(Pending::AgreementStep { step, reply }), answer) => {
                self.on_agreement_answer(peer, step, reply, answer)
            }
            (Some(Pending::AgreementSync), Response::Transcripts { transcripts }) => {
                self.on_agreement_transcripts(peer, transcripts)
            }
            (Some(Pending::PullOpen(job)), answer) => {
                self.pulls
                    .on_pull_answer(&mut self.core, &self.trust, peer, job, answer)
            }
            (Some(Pending::Witness { size, note }), answer) => {
                self.auditing
                    .witnessing
                    .answered(&mut self.core, peer, size, &note, answer)
            }
            (
                Some(Pending::Disclose {
                    provider,
                    asked,
                    reply,
                }),
                answer,
            ) => self.on_disclosure_answer(provider, &asked, reply, answer),
            (Some(Pending::MinistryOp { provider, reply }), answer) => {
                self.on_ministry_answer(provider, reply, answer)
            }
            (Some(Pending::GroupKey { group }), answer) => {
                if self
                    .publish
                    .on_group_key_answer(&mut self.core, peer, group, answer)
                {
                    self.schedule_feeds();
                }
            }
            (Some(Pending::AgreementNotify), Response::StepAccepted { .. }) => {}
            (Some(Pending::AgreementNotify), Response::StepRefused { reason, .. }) => {
                tracing::info!(%peer, %reason, "consumer did not take our notification; it will sync");
            }
            (_, Response::Refused { reason }) => {
                tracing::warn!(%peer, ?reason, "peer refused our request");
            }
            (_, other) => tracing::debug!(%peer, ?other, "unexpected control response"),
        }
    }

    /// Publishes the feeds due and starts the pulls due (on every tick,
    /// and when a group key arrives).
    pub(super) fn schedule_feeds(&mut self) {
        let to_publish = self.publish.due(&self.core);
        if !to_publish.is_empty() {
            self.publish
                .start_publish(&mut self.core, to_publish, None, false);
        }
        for due in self.pulls.due(&self.core) {
            self.pulls
                .start_pull(&mut self.core, &self.trust, due, None, None);
        }
    }

    pub(super) fn on_tick(&mut self) {
        // Memberships expire with time: re-apply the roster as of now.
        self.trust.apply_roster(&mut self.core);
        let mesh = self.trust.roster.as_ref().map(|(_, r)| r.mesh.as_str());
        self.core
            .metrics
            .set_node(crate::console::node_label(&self.core.config, mesh));
        self.schedule_feeds();
        self.log_imports();
        self.prepare_national_indexes();
        self.auditing.log_agreement_steps(&mut self.core);
        self.pulls.enforce_retention(&mut self.core);
        self.publish.enforce_retention(&mut self.core);
        self.auditing.witnessing.ask_peers(&mut self.core);
        self.trust.log_rate_limits(&mut self.core);
        let peers: Vec<PeerId> = self.core.connected.iter().copied().collect();
        for p in peers {
            self.core.send(p, Request::Peers, Pending::Peers);
        }
        self.trust.dial_bootstrap(&mut self.core);
    }

    pub(super) fn on_admin_call(&mut self, call: AdminCall) {
        match call.request {
            AdminRequest::AgreementPropose { .. }
            | AdminRequest::AgreementCounter { .. }
            | AdminRequest::AgreementAct { .. } => {
                self.on_agreement_admin(call.request, call.reply)
            }
            AdminRequest::Publish {
                agreement,
                epoch,
                republish,
            } => self.publish.admin_publish(
                &mut self.core,
                (agreement, epoch, republish),
                call.reply,
            ),
            AdminRequest::Pull {
                agreement,
                epoch,
                range,
            } => self.pulls.admin_pull(
                &mut self.core,
                &self.trust,
                agreement,
                epoch,
                range,
                call.reply,
            ),
            AdminRequest::Disclose(disclose) => self.admin_disclose(disclose, call.reply),
            AdminRequest::Compare { .. } => self.on_compare_admin(call.request, call.reply),
            AdminRequest::AuditPage(q) => self.audit_page(q, call.reply),
            request => {
                let response = self.on_admin(request);
                let _ = call.reply.send(response);
            }
        }
    }

    pub(super) fn on_admin(&mut self, request: AdminRequest) -> AdminResponse {
        match request {
            AdminRequest::AuditAlerts => self.audit_alerts(),
            AdminRequest::AuditExport { out } => {
                let dir = self.core.data_dir.clone();
                self.audit_export(&out, &dir)
            }
            AdminRequest::Console => AdminResponse::Console(Box::new(self.console_info())),
            AdminRequest::ConsoleAudit(event) => self.console_audit(event),
            AdminRequest::AgreementList => AdminResponse::Agreements {
                agreements: self.agreement_list(),
            },
            AdminRequest::AgreementShow { id } => match self.agreement_detail(&id) {
                Ok(d) => AdminResponse::Agreement(Box::new(d)),
                Err(e) => AdminResponse::Error {
                    message: e.to_string(),
                },
            },
            AdminRequest::AgreementPropose { .. }
            | AdminRequest::AgreementCounter { .. }
            | AdminRequest::AgreementAct { .. }
            | AdminRequest::Publish { .. }
            | AdminRequest::Pull { .. }
            | AdminRequest::Disclose(_)
            | AdminRequest::AuditPage(_)
            | AdminRequest::Compare { .. } => AdminResponse::Error {
                message: "internal: this request is handled asynchronously".into(),
            },
            AdminRequest::Status => AdminResponse::Status(Box::new(self.status())),
            AdminRequest::RosterInstall { chain_hex } => {
                let mut chain = Vec::new();
                for (i, h) in chain_hex.iter().enumerate() {
                    let decoded = hex::decode(h).map_err(|e| e.to_string()).and_then(|b| {
                        codec::decode::<Signed<Roster>>(&b).map_err(|e| e.to_string())
                    });
                    match decoded {
                        Ok(s) => chain.push(s),
                        Err(e) => {
                            return AdminResponse::Error {
                                message: format!("roster file {}: {e}", i + 1),
                            };
                        }
                    }
                }
                match self.trust.offer_roster(&mut self.core, chain, None) {
                    Ok(_) => AdminResponse::RosterInstalled {
                        version: self.trust.roster_version(),
                    },
                    Err(e) => AdminResponse::Error {
                        message: e.to_string(),
                    },
                }
            }
        }
    }

    /// Results of background work.
    pub(super) fn on_event(&mut self, event: Event) {
        match event {
            Event::Published { results, reply } => {
                self.publish.on_published(&mut self.core, results, reply)
            }
            Event::PullDone {
                agreement,
                epoch,
                result,
                reply,
            } => {
                if self
                    .pulls
                    .on_pull_done(&mut self.core, agreement, epoch, result, reply)
                {
                    self.auditing.witnessing.ask_peers(&mut self.core);
                }
            }
            Event::StreamAuth {
                peer,
                request,
                reply,
            } => self.on_stream_auth(peer, request, reply),
            Event::Audit(event) => self.core.log(event),
            Event::Answered { to, response } => self.core.respond(to, response),
        }
    }
}
