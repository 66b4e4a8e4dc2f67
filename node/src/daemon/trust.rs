//! The daemon's trust handling: rosters offered by the operator or by
//! peers are accepted only if they extend the chain held (checked by
//! `protocol::roster`), persisted, then applied to the allow-list (which
//! disconnects anyone no longer admitted at once) and pushed to peers.
//! Peers are found by asking connected members which members they see and
//! where those listen. Also the node's status for `dxmesh status`.

use super::core::Core;
use super::guard::Guard;
use super::pending::Pending;
use crate::base::clock::now;
use dxmesh_protocol::agreement::{AgreementId, Refusal};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{self, Admission, Roster, RosterError};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::Response;
use dxmesh_protocol::wire::{PeerAddresses, Request};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The trust desk: the roster chain held and the anchor it starts from,
/// the addresses this node and its peers listen on, the dials tried, this
/// node's own admission, and the guard over what peers are refused.
pub(super) struct Trust {
    /// The mesh's trust anchor (signs the first roster).
    pub(super) anchor: PublicKey,
    /// The newest roster held: as signed, and as read.
    pub(super) roster: Option<(Signed<Roster>, Roster)>,
    /// Where this node listens.
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// Listen addresses peers announced through identify.
    pub(super) peer_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    /// When each peer was last dialled (not again within ten seconds).
    recent_dials: HashMap<PeerId, Instant>,
    /// Our own admission last logged (logged again only when it changes).
    self_admission: Option<Admission>,
    /// What the node refuses its peers, and how the refusals are kept.
    pub(super) guard: Guard,
}

impl Trust {
    /// The desk for a node holding `roster` under `anchor`.
    pub(super) fn new(
        anchor: PublicKey,
        roster: Option<(Signed<Roster>, Roster)>,
        guard: Guard,
    ) -> Trust {
        Trust {
            anchor,
            roster,
            listen_addrs: Vec::new(),
            peer_addrs: HashMap::new(),
            recent_dials: HashMap::new(),
            self_admission: None,
            guard,
        }
    }

    /// The members of the roster held (none without one).
    pub(super) fn members(&self) -> &[dxmesh_protocol::roster::Member] {
        self.roster.as_ref().map_or(&[], |(_, r)| &r.members)
    }

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
        core: &mut Core,
        peer: Option<PeerId>,
        remote: Option<String>,
        reason: String,
    ) {
        let entry = self.guard.refused(peer, remote, reason);
        core.log(entry);
    }

    /// Takes a request token of `peer`; `None` to serve its request, else
    /// the refusal to answer with (logged as the guard says).
    pub(super) fn rate_limit(&mut self, core: &mut Core, peer: PeerId) -> Option<Response> {
        let (response, entry) = self.guard.rate(peer)?;
        if let Some(entry) = entry {
            core.log(entry);
        }
        Some(response)
    }

    /// A request of `peer` refused that it may repeat at will (see
    /// [`super::guard::Guard::repeated`]).
    pub(super) fn refuse_throttled(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        class: (&'static str, String),
        reason: String,
    ) {
        if let Some(entry) = self.guard.repeated(peer, class, reason) {
            core.log(entry);
        }
    }

    /// Logs the refusals counted and not logged yet whose minute is up.
    pub(super) fn log_rate_limits(&mut self, core: &mut Core) {
        for entry in self.guard.sweep() {
            core.log(entry);
        }
    }

    pub(super) fn admitted(&self, key: &PublicKey) -> Admission {
        self.admission(&key.peer_id())
    }

    /// Refuses a request under `agreement` (`what`: pull, disclosure,
    /// ministry query, feed stream): noted for `status`, logged as
    /// `request_refused` with the agreement (once a minute for repeats),
    /// answered `Denied`.
    pub(super) fn refuse_request(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        what: (&str, AgreementId),
        refusal: Refusal,
    ) -> Response {
        if let Some(entry) = self.guard.request(peer, what, &refusal) {
            core.log(entry);
        }
        Response::Denied { refusal }
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

    pub(super) fn maybe_dial(&mut self, core: &mut Core, p: PeerAddresses) {
        let peer = p.public_key.peer_id();
        if peer == core.identity.peer_id() || core.connected.contains(&peer) {
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
        if let Err(e) = core.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "dial not started");
        }
    }

    pub(super) fn dial_bootstrap(&mut self, core: &mut Core) {
        for addr in core.config.network.bootstrap.clone() {
            let Ok(ma) = addr.parse::<Multiaddr>() else {
                continue;
            };
            let Some(peer) = ma.iter().find_map(|p| match p {
                Protocol::P2p(peer) => Some(peer),
                _ => None,
            }) else {
                continue;
            };
            if peer == core.identity.peer_id() || core.connected.contains(&peer) {
                continue;
            }
            if self.admission(&peer) != Admission::Admitted {
                tracing::warn!(%peer, "bootstrap peer is not admitted by the roster held; not dialling it");
                continue;
            }
            if let Err(e) = core.swarm.dial(ma) {
                tracing::debug!(%peer, error = %e, "bootstrap dial not started");
            }
        }
    }

    /// Accepts a chain offered by `source` if it extends what we hold.
    pub(super) fn offer_roster(
        &mut self,
        core: &mut Core,
        chain: Vec<Signed<Roster>>,
        from: Option<PeerId>,
    ) -> Result<Option<u64>, RosterError> {
        let source = from.map_or_else(|| "the operator".to_string(), |p| p.to_string());
        let source = source.as_str();
        if chain.len() > roster::MAX_CHAIN_VERSIONS {
            // Refused before a single version is decoded.
            let e = RosterError::TooLong {
                versions: chain.len(),
            };
            self.refuse_roster(core, from, source, &e);
            return Err(e);
        }
        let held = self.roster_version();
        // Skip versions we already hold (a push carries the whole chain).
        let newer = roster::newer_versions(chain, held);
        if newer.is_empty() {
            return Ok(None);
        }
        let held_signed = self.roster.as_ref().map(|(s, _)| s);
        let accepted = match roster::accept_chain(held_signed, &newer, &self.anchor) {
            Ok(r) => r,
            Err(e) => {
                self.refuse_roster(core, from, source, &e);
                return Err(e);
            }
        };
        let versions = roster::numbered(&newer);
        if let Err(e) = core.store.put_rosters(&versions) {
            tracing::error!(error = %e, "cannot persist the roster; not applying it");
            return Ok(None);
        }
        let newest = newer.last().expect("not empty").clone();
        tracing::info!(version = accepted.version, from = source, "accepted roster");
        core.log(dxmesh_protocol::audit::Event::RosterAccepted {
            version: accepted.version,
            digest: newest.digest(),
        });
        self.roster = Some((newest, accepted.clone()));
        self.apply_roster(core);
        self.push_roster(core);
        Ok(Some(accepted.version))
    }

    /// Makes the allow-list match the roster as of now; disconnects the rest.
    pub(super) fn apply_roster(&mut self, core: &mut Core) {
        let t = now();
        let admitted: HashSet<PeerId> = match &self.roster {
            Some((_, r)) => r
                .members
                .iter()
                .filter(|m| r.admission(&m.public_key, t) == Admission::Admitted)
                .map(|m| m.public_key.peer_id())
                .filter(|p| *p != core.identity.peer_id())
                .collect(),
            None => HashSet::new(),
        };
        let current: Vec<PeerId> = core
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
                core.swarm.behaviour_mut().allow.disallow_peer(p);
                let _ = core.swarm.disconnect_peer_id(p);
                core.connected.remove(&p);
                core.metrics.peers(core.connected.len());
            }
        }
        for p in admitted {
            core.swarm.behaviour_mut().allow.allow_peer(p);
        }
        if let Some((_, r)) = &self.roster {
            let me = r.admission(&core.identity.public(), t);
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

    pub(super) fn push_roster(&mut self, core: &mut Core) {
        let chain = match core.store.rosters_after(0) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the roster chain to push");
                return;
            }
        };
        let peers: Vec<PeerId> = core.connected.iter().copied().collect();
        for p in peers {
            core.send(
                p,
                Request::RosterPush {
                    chain: chain.clone(),
                },
                Pending::RosterPush,
            );
        }
    }

    /// Logs a refused roster: the operator's at once; a peer's the same
    /// way as its other repeatable refusals (once a minute per kind of
    /// refusal, with a count), so that pushing bad rosters in a loop does
    /// not grow the audit log.
    fn refuse_roster(
        &mut self,
        core: &mut Core,
        from: Option<PeerId>,
        source: &str,
        e: &RosterError,
    ) {
        match from {
            Some(peer) => {
                // One class per kind of error: its details may vary.
                let class = ("roster", format!("{:?}", std::mem::discriminant(e)));
                self.refuse_throttled(core, peer, class, format!("from {source} refused: {e}"));
            }
            None => self.record_refusal(core, None, None, format!("roster from {source}: {e}")),
        }
    }
}
