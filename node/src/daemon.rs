//! The node daemon (`dxmesh run`): one tokio task owns the libp2p swarm and
//! the node state and reacts to swarm events, admin requests, a periodic
//! tick and the shutdown signal. Everything a peer asks is checked against
//! the roster before it is answered; every refusal is logged with the peer
//! and the reason.
//!
//! Roster handling: on every new connection each side asks the other for
//! newer roster versions; a node that accepts a newer roster persists it
//! first, then updates the allow-list (which disconnects anyone no longer
//! admitted at once) and pushes it to its peers. Peers are found by asking
//! connected members which members they see and where those listen.

use crate::admin::{
    self, AdminCall, AdminRequest, AdminResponse, PeerInfo, RefusalInfo, StatusInfo,
};
use crate::agreements::Agreements;
use crate::config::{self, Config, ConfigError};
use crate::keyfile::{self, KeyFileError};
use crate::net::{self, Behaviour, BehaviourEvent};
use crate::store::{Store, StoreError};
use dxmesh_protocol::agreement::Step;
use dxmesh_protocol::codec;
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::{self, Admission, Roster, RosterError};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::wire::{PeerAddresses, Refusal, Request, Response};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::{DialError, ListenError, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod agreement_handlers;
mod audit_handlers;
mod compare_task;
mod feed_handlers;

/// How many recent refusals `status` shows.
const REFUSALS_KEPT: usize = 50;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Identity file problem.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// State database problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Transport problem.
    #[error(transparent)]
    Build(#[from] net::BuildError),
    /// A listen address could not be used.
    #[error("{path}: setting `network.listen`: cannot listen on {addr}: {message}", path = .path.display())]
    Listen {
        /// Config file.
        path: PathBuf,
        /// The address.
        addr: String,
        /// Why (for example: address already in use).
        message: String,
    },
    /// The admin socket could not be created.
    #[error("{path}: cannot create the admin socket: {source}", path = .path.display())]
    AdminSocket {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The current time as a protocol timestamp.
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp(secs)
}

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
    PullOpen(feed_handlers::PullJob),
    /// We asked a provider to disclose records.
    Disclose {
        reply: Option<oneshot::Sender<AdminResponse>>,
        out: Option<String>,
    },
    /// We asked a custodian for a group key.
    GroupKey {
        group: String,
    },
    /// A disclosure for the comparator task.
    DiscloseOp {
        provider: PublicKey,
        reply: compare_task::OpReply,
    },
    /// A national query for the comparator task.
    NationalOp {
        provider: PublicKey,
        reply: compare_task::OpReply,
    },
    /// We asked a peer to witness our checkpoint `note` of `size` (the
    /// answer is checked against this note: the log may have grown since).
    Witness {
        size: u64,
        note: String,
    },
}

struct Node {
    config: Config,
    identity: Identity,
    anchor: PublicKey,
    store: Store,
    swarm: Swarm<Behaviour>,
    roster: Option<(Signed<Roster>, Roster)>,
    listen_addrs: Vec<Multiaddr>,
    /// Listen addresses peers announced through identify.
    peer_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    connected: HashSet<PeerId>,
    pending: HashMap<OutboundRequestId, Pending>,
    recent_dials: HashMap<PeerId, Instant>,
    refusals: VecDeque<RefusalInfo>,
    started: Instant,
    /// Our own admission last logged (logged again only when it changes).
    self_admission: Option<Admission>,
    /// Sharing agreements this node is a party to.
    pub(crate) agreements: Agreements,
    /// The node's data directory.
    data_dir: PathBuf,
    /// Token group keys (providers only).
    keys: crate::keys::KeyStore,
    /// Opens bulk streams.
    stream_control: libp2p_stream::Control,
    /// Results of background work (publishing, pulls, stream authorisation).
    internal_tx: mpsc::UnboundedSender<feed_handlers::Internal>,
    /// Feeds being built or pulled now, by (agreement, epoch).
    busy: HashSet<(dxmesh_protocol::agreement::AgreementId, u64)>,
    /// Expired pulled feeds whose erasure this run has logged (a failing
    /// erasure is retried every tick but logged once).
    erasure_logged: HashSet<(dxmesh_protocol::agreement::AgreementId, u64)>,
    /// Publishes waiting for a group key, by group.
    waiting_for_key: Vec<feed_handlers::WaitingPublish>,
    /// The tamper-evident audit log.
    audit: crate::audit::AuditLog,
    /// Agreement steps already logged, per thread.
    logged_steps: HashMap<dxmesh_protocol::merkle::Hash, u32>,
    /// Peers with a witness request in flight.
    witnessing: HashSet<PeerId>,
}

/// Runs the node in `dir` until `shutdown` resolves.
pub async fn run(dir: &Path, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let config = Config::load(dir)?;
    let identity = keyfile::read_identity(&dir.join(config::KEY_FILE))?;
    let anchor = config.anchor_key(dir)?;
    let store = Store::open(&config.data_dir(dir))?;
    let roster = match store.latest_roster()? {
        Some(s) => match s.verify_by(&anchor) {
            Ok(r) => Some((s, r)),
            Err(e) => {
                tracing::error!(error = %e, "stored roster does not verify against the configured anchor; ignoring it");
                None
            }
        },
        None => None,
    };
    let agreements = Agreements::load(&store)?;
    let audit = crate::audit::AuditLog::open(&store, &identity)?;
    let mut logged_steps: HashMap<dxmesh_protocol::merkle::Hash, u32> = HashMap::new();
    for bytes in store.audit_entries()? {
        if let Ok(dxmesh_protocol::audit::Entry {
            event: dxmesh_protocol::audit::Event::AgreementStep { thread, seq, .. },
            ..
        }) = codec::decode(&bytes)
        {
            let e = logged_steps.entry(thread).or_default();
            *e = (*e).max(seq + 1);
        }
    }
    let mut swarm = net::build_swarm(&identity)?;
    let config_path = dir.join(config::CONFIG_FILE);
    for addr in &config.network.listen {
        let ma: Multiaddr =
            addr.parse()
                .map_err(|e: libp2p::multiaddr::Error| DaemonError::Listen {
                    path: config_path.clone(),
                    addr: addr.clone(),
                    message: e.to_string(),
                })?;
        swarm.listen_on(ma).map_err(|e| DaemonError::Listen {
            path: config_path.clone(),
            addr: addr.clone(),
            message: transport_error_text(&e),
        })?;
    }
    let socket_path = dir.join(config::ADMIN_SOCKET);
    let listener = admin::bind(&socket_path).map_err(|source| DaemonError::AdminSocket {
        path: socket_path.clone(),
        source,
    })?;
    let (admin_tx, admin_rx) = mpsc::channel(64);
    let admin_task = tokio::spawn(admin::serve(listener, admin_tx));

    let data_dir = config.data_dir(dir);
    let keys = crate::keys::KeyStore::new(dir, config.role);
    let mut stream_control = swarm.behaviour().stream.new_control();
    let incoming = stream_control
        .accept(libp2p::StreamProtocol::new(
            dxmesh_protocol::feed::FEED_PROTOCOL,
        ))
        .map_err(|e| DaemonError::Build(net::BuildError::new(e.to_string())))?;
    let (internal_tx, mut internal_rx) = mpsc::unbounded_channel();
    let stream_task = tokio::spawn(feed_handlers::serve_streams(incoming, internal_tx.clone()));
    let mut node = Node {
        data_dir,
        keys,
        stream_control,
        internal_tx,
        busy: HashSet::new(),
        erasure_logged: HashSet::new(),
        waiting_for_key: Vec::new(),
        audit,
        logged_steps,
        witnessing: HashSet::new(),
        config,
        identity,
        anchor,
        store,
        swarm,
        roster,
        listen_addrs: Vec::new(),
        peer_addrs: HashMap::new(),
        connected: HashSet::new(),
        pending: HashMap::new(),
        recent_dials: HashMap::new(),
        refusals: VecDeque::new(),
        started: Instant::now(),
        self_admission: None,
        agreements,
    };
    tracing::info!(
        peer_id = %node.identity.peer_id(),
        department = %node.config.department,
        role = %node.config.role,
        roster_version = node.roster_version(),
        "node starting"
    );
    node.log(dxmesh_protocol::audit::Event::NodeStarted {
        version: env!("CARGO_PKG_VERSION").to_string(),
    });
    node.log_agreement_steps();
    node.log_imports();
    node.apply_roster();
    node.dial_bootstrap();
    let result = node.event_loop(admin_rx, &mut internal_rx, shutdown).await;
    admin_task.abort();
    stream_task.abort();
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("node stopped");
    result
}

fn transport_error_text(e: &libp2p::TransportError<std::io::Error>) -> String {
    match e {
        libp2p::TransportError::MultiaddrNotSupported(a) => {
            format!("address {a} is not supported (use /ip4/.../tcp/PORT)")
        }
        libp2p::TransportError::Other(io) => io.to_string(),
    }
}

impl Node {
    fn roster_version(&self) -> u64 {
        self.roster.as_ref().map(|(_, r)| r.version).unwrap_or(0)
    }

    fn admission(&self, peer: &PeerId) -> Admission {
        let Some((_, r)) = &self.roster else {
            return Admission::NotMember;
        };
        match PublicKey::from_peer_id(peer) {
            Some(pk) => r.admission(&pk, now()),
            None => Admission::NotMember,
        }
    }

    async fn event_loop(
        &mut self,
        mut admin_rx: mpsc::Receiver<AdminCall>,
        internal_rx: &mut mpsc::UnboundedReceiver<feed_handlers::Internal>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        tokio::pin!(shutdown);
        let mut tick =
            tokio::time::interval(Duration::from_secs(self.config.network.peer_exchange_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; closing connections");
                    self.seal_audit();
                    return Ok(());
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(call) = admin_rx.recv() => self.on_admin_call(call),
                Some(event) = internal_rx.recv() => self.on_internal(event),
                _ = tick.tick() => self.on_tick(),
            }
            // Every batch of audit appends gets its signed checkpoint.
            self.seal_audit();
        }
    }

    fn record_refusal(&mut self, peer: Option<PeerId>, remote: Option<String>, reason: String) {
        self.log(dxmesh_protocol::audit::Event::PeerRefused {
            peer: peer.and_then(|p| PublicKey::from_peer_id(&p)),
            reason: reason.clone(),
        });
        self.note_refusal(peer, remote, reason);
    }

    pub(crate) fn note_refusal(
        &mut self,
        peer: Option<PeerId>,
        remote: Option<String>,
        reason: String,
    ) {
        tracing::warn!(
            peer = peer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()),
            remote = remote.as_deref().unwrap_or("-"),
            %reason,
            "refused"
        );
        if self.refusals.len() == REFUSALS_KEPT {
            self.refusals.pop_front();
        }
        self.refusals.push_back(RefusalInfo {
            at: now().to_string(),
            peer_id: peer.map(|p| p.to_string()),
            remote,
            reason,
        });
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.clone().with(Protocol::P2p(self.identity.peer_id()));
                tracing::info!(address = %full, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                // The allow-list already admitted the peer; check again so
                // that a roster change racing the handshake cannot slip by.
                let admission = self.admission(&peer_id);
                if admission != Admission::Admitted {
                    self.record_refusal(
                        Some(peer_id),
                        Some(endpoint.get_remote_address().to_string()),
                        format!("connection: {admission}"),
                    );
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.connected.insert(peer_id);
                if num_established.get() == 1 {
                    tracing::info!(peer = %peer_id, remote = %endpoint.get_remote_address(), "connected");
                    let have = self.roster_version();
                    self.send(
                        peer_id,
                        Request::RosterSync { have_version: have },
                        Pending::RosterSync,
                    );
                    self.send(peer_id, Request::Peers, Pending::Peers);
                    self.sync_agreements_with(peer_id);
                    self.witness_peers();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                self.connected.remove(&peer_id);
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
                        Some(p) => format!("connection: {}", self.admission(&p)),
                        None => "connection: not admitted".into(),
                    };
                    self.record_refusal(peer_id, Some(send_back_addr.to_string()), reason);
                } else {
                    tracing::debug!(error = %error, remote = %send_back_addr, "incoming connection failed");
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => match &error {
                DialError::Denied { .. } => {
                    let reason = match peer_id {
                        Some(p) => format!("dial: {}", self.admission(&p)),
                        None => "dial: not admitted".into(),
                    };
                    self.record_refusal(peer_id, None, reason);
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
                self.peer_addrs.insert(peer_id, addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Control(event)) => self.on_control(event),
            _ => {}
        }
    }

    fn send(&mut self, peer: PeerId, request: Request, kind: Pending) {
        let id = self
            .swarm
            .behaviour_mut()
            .control
            .send_request(&peer, request);
        self.pending.insert(id, kind);
    }

    fn on_control(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // One gate for every control request: a peer the roster
                    // does not admit gets nothing but a logged refusal.
                    let admission = self.admission(&peer);
                    if admission != Admission::Admitted {
                        self.record_refusal(
                            Some(peer),
                            None,
                            format!("control request: {admission}"),
                        );
                        let _ = self.swarm.behaviour_mut().control.send_response(
                            channel,
                            Response::Refused {
                                reason: Refusal::NotAdmitted(admission),
                            },
                        );
                        return;
                    }
                    match request {
                        // Answered asynchronously, once the lookup is done.
                        Request::Disclose {
                            agreement,
                            epoch,
                            result_kind,
                            fields,
                            tokens,
                        } => self.on_disclose(
                            peer,
                            feed_handlers::DiscloseAsk {
                                agreement,
                                epoch,
                                result_kind,
                                fields,
                                tokens,
                            },
                            channel,
                        ),
                        Request::NationalQuery {
                            agreement,
                            epoch,
                            fields,
                            ids,
                        } => self.on_national_query(peer, agreement, epoch, fields, ids, channel),
                        request => {
                            let response = self.on_request(peer, request);
                            if self
                                .swarm
                                .behaviour_mut()
                                .control
                                .send_response(channel, response)
                                .is_err()
                            {
                                tracing::debug!(%peer, "response not sent: the stream closed");
                            }
                        }
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let kind = self.pending.remove(&request_id);
                    self.on_response(peer, kind, response);
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let failed = self.pending.remove(&request_id);
                if matches!(failed, Some(Pending::Witness { .. })) {
                    self.witnessing.remove(&peer);
                }
                if let Some(Pending::DiscloseOp { reply, .. } | Pending::NationalOp { reply, .. }) =
                    failed
                {
                    let _ = reply.send(Err(format!("the request failed: {error}")));
                } else if let Some(Pending::PullOpen(job)) = failed {
                    self.busy.remove(&job.key());
                    job.fail(format!("the provider did not answer: {error}"));
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

    /// Answers a control request from an admitted peer (`on_control` has
    /// already checked admission).
    fn on_request(&mut self, peer: PeerId, request: Request) -> Response {
        match request {
            Request::RosterSync { have_version } => {
                if have_version >= self.roster_version() {
                    return Response::Roster { chain: Vec::new() };
                }
                match self.store.rosters_after(have_version) {
                    Ok(chain) => Response::Roster { chain },
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the roster chain");
                        Response::Roster { chain: Vec::new() }
                    }
                }
            }
            Request::RosterPush { chain } => match self.offer_roster(chain, &peer.to_string()) {
                Ok(_) => Response::Ack,
                Err(e) => Response::Refused {
                    reason: Refusal::BadRoster(e.to_string()),
                },
            },
            Request::AgreementStep { step } => {
                let r = self.on_agreement_step(peer, step);
                self.log_agreement_steps();
                r
            }
            Request::Witness { note, proof } => self.on_witness_request(peer, note, proof),
            Request::PullOpen {
                agreement,
                epoch,
                fields,
                pull_id,
            } => self.on_pull_open(peer, agreement, epoch, fields, pull_id),
            Request::Disclose { .. } | Request::NationalQuery { .. } => Response::Refused {
                reason: Refusal::Key("internal: disclosures are answered asynchronously".into()),
            },
            Request::GroupKey { group, transcript } => {
                self.on_group_key_request(peer, group, transcript)
            }
            Request::AgreementSync { threads } => {
                let Some(from) = PublicKey::from_peer_id(&peer) else {
                    return Response::Transcripts {
                        transcripts: vec![],
                    };
                };
                let transcripts =
                    self.agreements
                        .missing_for(&self.identity.public(), &from, &threads);
                tracing::debug!(%peer, held = threads.len(), sending = transcripts.len(), "agreement sync requested");
                Response::Transcripts { transcripts }
            }
            Request::Peers => {
                let peers = self
                    .connected
                    .iter()
                    .filter(|p| **p != peer)
                    .filter_map(|p| {
                        let pk = PublicKey::from_peer_id(p)?;
                        let addresses = self
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

    fn on_response(&mut self, peer: PeerId, kind: Option<Pending>, response: Response) {
        match (kind, response) {
            (Some(Pending::RosterSync), Response::Roster { chain }) => {
                if !chain.is_empty() {
                    let _ = self.offer_roster(chain, &peer.to_string());
                }
            }
            (Some(Pending::Peers), Response::Peers { peers }) => {
                for p in peers {
                    self.maybe_dial(p);
                }
            }
            (Some(Pending::RosterPush), Response::Ack) => {}
            (Some(Pending::AgreementStep { step, reply }), answer) => {
                self.on_agreement_answer(peer, step, reply, answer)
            }
            (Some(Pending::AgreementSync), Response::Transcripts { transcripts }) => {
                self.on_agreement_transcripts(peer, transcripts)
            }
            (Some(Pending::PullOpen(job)), answer) => self.on_pull_answer(peer, job, answer),
            (Some(Pending::Witness { size, note }), answer) => {
                self.on_witness_answer(peer, size, &note, answer)
            }
            (Some(Pending::DiscloseOp { provider, reply }), answer) => {
                self.on_disclose_op_answer(provider, reply, answer)
            }
            (Some(Pending::NationalOp { provider, reply }), answer) => {
                self.on_national_op_answer(provider, reply, answer)
            }
            (Some(Pending::Disclose { reply, out }), answer) => {
                self.on_disclose_answer(peer, reply, out, answer)
            }
            (Some(Pending::GroupKey { group }), answer) => {
                self.on_group_key_answer(peer, group, answer)
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

    fn maybe_dial(&mut self, p: PeerAddresses) {
        let peer = p.public_key.peer_id();
        if peer == self.identity.peer_id() || self.connected.contains(&peer) {
            return;
        }
        if self.admission(&peer) != Admission::Admitted {
            return;
        }
        if let Some(t) = self.recent_dials.get(&peer)
            && t.elapsed() < Duration::from_secs(10)
        {
            return;
        }
        let addrs: Vec<Multiaddr> = p.addresses.iter().filter_map(|a| a.parse().ok()).collect();
        if addrs.is_empty() {
            return;
        }
        self.recent_dials.insert(peer, Instant::now());
        let opts = DialOpts::peer_id(peer).addresses(addrs).build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "dial not started");
        }
    }

    fn dial_bootstrap(&mut self) {
        for addr in self.config.network.bootstrap.clone() {
            let Ok(ma) = addr.parse::<Multiaddr>() else {
                continue;
            };
            let Some(peer) = ma.iter().find_map(|p| match p {
                Protocol::P2p(peer) => Some(peer),
                _ => None,
            }) else {
                continue;
            };
            if peer == self.identity.peer_id() || self.connected.contains(&peer) {
                continue;
            }
            if self.admission(&peer) != Admission::Admitted {
                tracing::warn!(%peer, "bootstrap peer is not admitted by the roster held; not dialling it");
                continue;
            }
            if let Err(e) = self.swarm.dial(ma) {
                tracing::debug!(%peer, error = %e, "bootstrap dial not started");
            }
        }
    }

    fn on_tick(&mut self) {
        // Memberships expire with time: re-apply the roster as of now.
        self.apply_roster();
        self.schedule_feeds();
        self.log_imports();
        self.log_agreement_steps();
        self.enforce_retention();
        self.witness_peers();
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        for p in peers {
            self.send(p, Request::Peers, Pending::Peers);
        }
        self.dial_bootstrap();
    }

    /// Accepts a chain offered by `source` if it extends what we hold.
    fn offer_roster(
        &mut self,
        chain: Vec<Signed<Roster>>,
        source: &str,
    ) -> Result<Option<u64>, RosterError> {
        let held = self.roster_version();
        // Skip versions we already hold (a push carries the whole chain).
        let newer: Vec<Signed<Roster>> = chain
            .into_iter()
            .filter(|s| {
                codec::decode::<Roster>(s.body())
                    .map(|r| r.version > held)
                    .unwrap_or(true)
            })
            .collect();
        if newer.is_empty() {
            return Ok(None);
        }
        let held_signed = self.roster.as_ref().map(|(s, _)| s);
        let accepted = match roster::accept_chain(held_signed, &newer, &self.anchor) {
            Ok(r) => r,
            Err(e) => {
                self.record_refusal(None, None, format!("roster from {source}: {e}"));
                return Err(e);
            }
        };
        let versions: Vec<(u64, &Signed<Roster>)> = newer
            .iter()
            .map(|s| {
                let v = codec::decode::<Roster>(s.body())
                    .map(|r| r.version)
                    .unwrap_or(0);
                (v, s)
            })
            .collect();
        if let Err(e) = self.store.put_rosters(&versions) {
            tracing::error!(error = %e, "cannot persist the roster; not applying it");
            return Ok(None);
        }
        let newest = newer.last().expect("not empty").clone();
        tracing::info!(version = accepted.version, from = source, "accepted roster");
        self.log(dxmesh_protocol::audit::Event::RosterAccepted {
            version: accepted.version,
            digest: newest.digest(),
        });
        self.roster = Some((newest, accepted.clone()));
        self.apply_roster();
        self.push_roster();
        Ok(Some(accepted.version))
    }

    /// Makes the allow-list match the roster as of now; disconnects the rest.
    fn apply_roster(&mut self) {
        let t = now();
        let admitted: HashSet<PeerId> = match &self.roster {
            Some((_, r)) => r
                .members
                .iter()
                .filter(|m| r.admission(&m.public_key, t) == Admission::Admitted)
                .map(|m| m.public_key.peer_id())
                .filter(|p| *p != self.identity.peer_id())
                .collect(),
            None => HashSet::new(),
        };
        let current: Vec<PeerId> = self
            .swarm
            .behaviour()
            .allow
            .allowed_peers()
            .iter()
            .copied()
            .collect();
        for p in current {
            if !admitted.contains(&p) {
                let reason = self.admission(&p);
                tracing::warn!(peer = %p, %reason, "peer no longer admitted; disconnecting");
                self.swarm.behaviour_mut().allow.disallow_peer(p);
                let _ = self.swarm.disconnect_peer_id(p);
                self.connected.remove(&p);
            }
        }
        for p in admitted {
            self.swarm.behaviour_mut().allow.allow_peer(p);
        }
        if let Some((_, r)) = &self.roster {
            let me = r.admission(&self.identity.public(), t);
            if self.self_admission != Some(me) {
                if me == Admission::Admitted {
                    tracing::info!(
                        version = r.version,
                        "this node is admitted by the roster it holds"
                    );
                } else {
                    tracing::error!(reason = %me, version = r.version, "this node is not admitted by the roster it holds");
                }
                self.self_admission = Some(me);
            }
        }
    }

    fn push_roster(&mut self) {
        let chain = match self.store.rosters_after(0) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the roster chain to push");
                return;
            }
        };
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        for p in peers {
            self.send(
                p,
                Request::RosterPush {
                    chain: chain.clone(),
                },
                Pending::RosterPush,
            );
        }
    }

    fn on_admin_call(&mut self, call: AdminCall) {
        match call.request {
            AdminRequest::AgreementPropose { .. }
            | AdminRequest::AgreementCounter { .. }
            | AdminRequest::AgreementAct { .. } => {
                self.on_agreement_admin(call.request, call.reply)
            }
            AdminRequest::Publish { .. }
            | AdminRequest::Pull { .. }
            | AdminRequest::Disclose { .. } => self.on_feed_admin(call.request, call.reply),
            AdminRequest::Compare { .. } => self.on_compare_admin(call.request, call.reply),
            request => {
                let response = self.on_admin(request);
                let _ = call.reply.send(response);
            }
        }
    }

    fn on_admin(&mut self, request: AdminRequest) -> AdminResponse {
        match request {
            AdminRequest::AuditAlerts => self.audit_alerts(),
            AdminRequest::AuditExport { out } => {
                let dir = self.data_dir.clone();
                self.audit_export(&out, &dir)
            }
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
            | AdminRequest::Disclose { .. }
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
                match self.offer_roster(chain, "the operator") {
                    Ok(_) => AdminResponse::RosterInstalled {
                        version: self.roster_version(),
                    },
                    Err(e) => AdminResponse::Error {
                        message: e.to_string(),
                    },
                }
            }
        }
    }

    fn status(&self) -> StatusInfo {
        let me = self.identity.peer_id();
        let roster = self.roster.as_ref().map(|(_, r)| r);
        let mut connected: BTreeMap<String, PeerInfo> = BTreeMap::new();
        for p in &self.connected {
            let member =
                roster.and_then(|r| PublicKey::from_peer_id(p).and_then(|pk| r.member(&pk)));
            connected.insert(
                p.to_string(),
                PeerInfo {
                    peer_id: p.to_string(),
                    department: member.map(|m| m.department.clone()).unwrap_or_default(),
                    role: member.map(|m| m.role.to_string()).unwrap_or_default(),
                    display_name: member.map(|m| m.display_name.clone()).unwrap_or_default(),
                    addresses: self
                        .peer_addrs
                        .get(p)
                        .map(|a| a.iter().map(|a| a.to_string()).collect())
                        .unwrap_or_default(),
                },
            );
        }
        StatusInfo {
            peer_id: me.to_string(),
            public_key_pem: self.identity.public().to_pem(),
            department: self.config.department.clone(),
            role: self.config.role.to_string(),
            display_name: self.config.display_name.clone(),
            mesh: roster.map(|r| r.mesh.clone()),
            roster_version: self.roster_version(),
            self_admission: roster
                .map(|r| r.admission(&self.identity.public(), now()).to_string())
                .unwrap_or_else(|| "no roster installed".into()),
            listen_addresses: self
                .listen_addrs
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(me)).to_string())
                .collect(),
            connected: connected.into_values().collect(),
            uptime_secs: self.started.elapsed().as_secs(),
            refusals: self.refusals.iter().cloned().collect(),
        }
    }
}

/// Installs roster files into a node that is not running (the daemon holds
/// the state lock while it runs; then use the admin socket instead).
pub fn install_offline(dir: &Path, chain: Vec<Signed<Roster>>) -> Result<u64, InstallError> {
    let config = Config::load(dir)?;
    let anchor = config.anchor_key(dir)?;
    let store = Store::open(&config.data_dir(dir))?;
    let held = store.latest_roster()?;
    let held_version = held
        .as_ref()
        .and_then(|s| codec::decode::<Roster>(s.body()).ok())
        .map(|r| r.version)
        .unwrap_or(0);
    let newer: Vec<Signed<Roster>> = chain
        .into_iter()
        .filter(|s| {
            codec::decode::<Roster>(s.body())
                .map(|r| r.version > held_version)
                .unwrap_or(true)
        })
        .collect();
    if newer.is_empty() {
        return Ok(held_version);
    }
    let accepted = roster::accept_chain(held.as_ref(), &newer, &anchor)?;
    let versions: Vec<(u64, &Signed<Roster>)> = newer
        .iter()
        .map(|s| {
            (
                codec::decode::<Roster>(s.body())
                    .map(|r| r.version)
                    .unwrap_or(0),
                s,
            )
        })
        .collect();
    store.put_rosters(&versions)?;
    Ok(accepted.version)
}

/// Why an offline roster install failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// State problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The roster was refused.
    #[error("roster refused: {0}")]
    Roster(#[from] RosterError),
}
