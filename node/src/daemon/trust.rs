//! The daemon's trust handling: rosters offered by the operator or by
//! peers are accepted only if they extend the chain held (checked by
//! `protocol::roster`), persisted, then applied to the allow-list (which
//! disconnects anyone no longer admitted at once) and pushed to peers.
//! Peers are found by asking connected members which members they see and
//! where those listen. Also the node's status for `dxmesh status`.

use super::node::{Node, Pending};
use crate::admin::{PeerInfo, StatusInfo};
use crate::base::clock::now;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::{self, Admission, Roster, RosterError};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::{PeerAddresses, Request};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

impl Node {
    pub(super) fn maybe_dial(&mut self, p: PeerAddresses) {
        let peer = p.public_key.peer_id();
        if peer == self.core.identity.peer_id() || self.core.connected.contains(&peer) {
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
        if let Err(e) = self.core.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "dial not started");
        }
    }

    pub(super) fn dial_bootstrap(&mut self) {
        for addr in self.core.config.network.bootstrap.clone() {
            let Ok(ma) = addr.parse::<Multiaddr>() else {
                continue;
            };
            let Some(peer) = ma.iter().find_map(|p| match p {
                Protocol::P2p(peer) => Some(peer),
                _ => None,
            }) else {
                continue;
            };
            if peer == self.core.identity.peer_id() || self.core.connected.contains(&peer) {
                continue;
            }
            if self.admission(&peer) != Admission::Admitted {
                tracing::warn!(%peer, "bootstrap peer is not admitted by the roster held; not dialling it");
                continue;
            }
            if let Err(e) = self.core.swarm.dial(ma) {
                tracing::debug!(%peer, error = %e, "bootstrap dial not started");
            }
        }
    }

    /// Accepts a chain offered by `source` if it extends what we hold.
    pub(super) fn offer_roster(
        &mut self,
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
            self.refuse_roster(from, source, &e);
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
                self.refuse_roster(from, source, &e);
                return Err(e);
            }
        };
        let versions = roster::numbered(&newer);
        if let Err(e) = self.core.store.put_rosters(&versions) {
            tracing::error!(error = %e, "cannot persist the roster; not applying it");
            return Ok(None);
        }
        let newest = newer.last().expect("not empty").clone();
        tracing::info!(version = accepted.version, from = source, "accepted roster");
        self.core
            .log(dxmesh_protocol::audit::Event::RosterAccepted {
                version: accepted.version,
                digest: newest.digest(),
            });
        self.roster = Some((newest, accepted.clone()));
        self.apply_roster();
        self.push_roster();
        Ok(Some(accepted.version))
    }

    /// Makes the allow-list match the roster as of now; disconnects the rest.
    pub(super) fn apply_roster(&mut self) {
        let t = now();
        let admitted: HashSet<PeerId> = match &self.roster {
            Some((_, r)) => r
                .members
                .iter()
                .filter(|m| r.admission(&m.public_key, t) == Admission::Admitted)
                .map(|m| m.public_key.peer_id())
                .filter(|p| *p != self.core.identity.peer_id())
                .collect(),
            None => HashSet::new(),
        };
        let current: Vec<PeerId> = self
            .core
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
                self.core.swarm.behaviour_mut().allow.disallow_peer(p);
                let _ = self.core.swarm.disconnect_peer_id(p);
                self.core.connected.remove(&p);
                self.core.metrics.peers(self.core.connected.len());
            }
        }
        for p in admitted {
            self.core.swarm.behaviour_mut().allow.allow_peer(p);
        }
        if let Some((_, r)) = &self.roster {
            let me = r.admission(&self.core.identity.public(), t);
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

    pub(super) fn push_roster(&mut self) {
        let chain = match self.core.store.rosters_after(0) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the roster chain to push");
                return;
            }
        };
        let peers: Vec<PeerId> = self.core.connected.iter().copied().collect();
        for p in peers {
            self.core.send(
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
    fn refuse_roster(&mut self, from: Option<PeerId>, source: &str, e: &RosterError) {
        match from {
            Some(peer) => {
                // One class per kind of error: its details may vary.
                let class = ("roster", format!("{:?}", std::mem::discriminant(e)));
                self.refuse_throttled(peer, class, format!("from {source} refused: {e}"));
            }
            None => self.record_refusal(None, None, format!("roster from {source}: {e}")),
        }
    }

    pub(super) fn status(&self) -> StatusInfo {
        let me = self.core.identity.peer_id();
        let roster = self.roster.as_ref().map(|(_, r)| r);
        let mut connected: BTreeMap<String, PeerInfo> = BTreeMap::new();
        for p in &self.core.connected {
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
            public_key_pem: self.core.identity.public().to_pem(),
            department: self.core.config.department.clone(),
            role: self.core.config.role.to_string(),
            display_name: self.core.config.display_name.clone(),
            mesh: roster.map(|r| r.mesh.clone()),
            roster_version: self.roster_version(),
            self_admission: roster
                .map(|r| r.admission(&self.core.identity.public(), now()).to_string())
                .unwrap_or_else(|| "no roster installed".into()),
            listen_addresses: self
                .listen_addrs
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(me)).to_string())
                .collect(),
            connected: connected.into_values().collect(),
            uptime_secs: self.started.elapsed().as_secs(),
            refusals: self.guard.recent(),
            console_url: self.console_url.clone(),
            audit: self.audit_status(),
        }
    }

    fn audit_status(&self) -> crate::admin::AuditStatus {
        let me = self.core.identity.public();
        let witnesses = self
            .roster
            .as_ref()
            .map(|(_, r)| {
                r.members
                    .iter()
                    .filter(|m| m.public_key != me)
                    .map(|m| crate::admin::WitnessInfo {
                        peer_id: m.public_key.peer_id().to_string(),
                        department: m.department.clone(),
                        cosigned: crate::audit::log::cosigned_size(&self.core.store, &m.public_key),
                    })
                    .collect()
            })
            .unwrap_or_default();
        crate::admin::AuditStatus {
            entries: self.core.audit.size(),
            sealed: self.core.audit.sealed(),
            witnesses,
        }
    }
}
