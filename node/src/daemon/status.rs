//! What `dxmesh status` shows: the node's identity and roster, its
//! admission, the members connected and where they listen, the recent
//! refusals and the state of its audit log and witnesses. Read from
//! every desk, changed in none.

use super::node::Node;
use crate::admin::{PeerInfo, StatusInfo};
use crate::base::clock::now;
use dxmesh_protocol::identity::PublicKey;
use libp2p::multiaddr::Protocol;
use std::collections::BTreeMap;

impl Node {
    pub(super) fn status(&self) -> StatusInfo {
        let me = self.core.identity.peer_id();
        let roster = self.trust.roster.as_ref().map(|(_, r)| r);
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
                        .trust
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
            roster_version: self.trust.roster_version(),
            self_admission: roster
                .map(|r| r.admission(&self.core.identity.public(), now()).to_string())
                .unwrap_or_else(|| "no roster installed".into()),
            listen_addresses: self
                .trust
                .listen_addrs
                .iter()
                .map(|a| a.clone().with(Protocol::P2p(me)).to_string())
                .collect(),
            connected: connected.into_values().collect(),
            uptime_secs: self.started.elapsed().as_secs(),
            refusals: self.trust.guard.recent(),
            console_url: self.console_url.clone(),
            audit: self.audit_status(),
            epochs: self.epochs(),
        }
    }

    /// Each active agreement's current epoch, as provider or consumer (of
    /// feeds, or of ministry queries).
    fn epochs(&self) -> Vec<crate::admin::AgreementEpoch> {
        let (t, me) = (now(), self.core.identity.public());
        let mut out = Vec::new();
        for th in self.core.agreements.threads() {
            if self.core.agreements.status(th, t) != dxmesh_protocol::agreement::Status::Active {
                continue;
            }
            let terms = &th.state.terms;
            let side = if terms.provider == me {
                "provider"
            } else if terms.consumer == me {
                "consumer"
            } else {
                continue;
            };
            let side = if crate::ministry::answers_ministry_queries(terms) {
                format!("{side} (ministry queries)")
            } else {
                side.to_string()
            };
            if let Some(epoch) = self.core.epoch_info(terms) {
                out.push(crate::admin::AgreementEpoch {
                    agreement: dxmesh_protocol::hex(&terms.id()),
                    dataset: terms.dataset.clone(),
                    side,
                    epoch,
                });
            }
        }
        out.sort_by(|a, b| (&a.side, &a.dataset).cmp(&(&b.side, &b.dataset)));
        out
    }

    fn audit_status(&self) -> crate::admin::AuditStatus {
        let me = self.core.identity.public();
        let witnesses = self
            .trust
            .members()
            .iter()
            .filter(|m| m.public_key != me)
            .map(|m| crate::admin::WitnessInfo {
                peer_id: m.public_key.peer_id().to_string(),
                department: m.department.clone(),
                cosigned: crate::audit::log::cosigned_size(&self.core.store, &m.public_key),
            })
            .collect();
        crate::admin::AuditStatus {
            entries: self.core.audit.size(),
            sealed: self.core.audit.sealed(),
            witnesses,
        }
    }
}
