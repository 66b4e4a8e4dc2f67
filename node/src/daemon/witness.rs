//! The node's audit log, witnessed: it asks each connected peer to cosign
//! its newest checkpoint, with a consistency proof from the size that peer
//! last cosigned, keeps the cosignatures it gets, and answers a peer that
//! needs a proof from elsewhere. [`Witnessing`] owns the requests in
//! flight (one per peer at a time). The other side, witnessing a peer's
//! log, is `audit.rs`'s.

use super::core::Core;
use super::pending::Pending;
use crate::audit::log;
use crate::base::store::{Store, StoreError};
use dxmesh_protocol::audit::Event;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use std::collections::{HashMap, HashSet};

/// Witness requests in flight, by peer.
#[derive(Debug, Default)]
pub(super) struct Witnessing {
    asked: HashSet<PeerId>,
}

impl Witnessing {
    /// Asks every connected peer to witness our newest checkpoint, with a
    /// consistency proof from the size it last cosigned.
    pub(super) fn ask_peers(&mut self, core: &mut Core) {
        core.seal_audit();
        let Some(note) = core.audit.latest().map(str::to_string) else {
            return;
        };
        let size = core.audit.size();
        let peers: Vec<PeerId> = core.connected.iter().copied().collect();
        for p in peers {
            let Some(key) = PublicKey::from_peer_id(&p) else {
                continue;
            };
            let seen = log::cosigned_size(&core.store, &key);
            // Equal: nothing new. Smaller or larger: ask (a log that shrank
            // is exactly what a witness must see).
            if seen == size || self.asked.contains(&p) {
                continue;
            }
            self.asked.insert(p);
            let proof = if seen < size {
                core.audit.proof_from(seen)
            } else {
                None
            };
            core.send(
                p,
                Request::Witness {
                    note: note.clone(),
                    proof,
                },
                Pending::Witness {
                    size,
                    note: note.clone(),
                },
            );
        }
    }

    /// The peer answered our witness request for checkpoint `note` of `size`.
    pub(super) fn answered(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        size: u64,
        note: &str,
        answer: Response,
    ) {
        self.asked.remove(&peer);
        let Some(key) = PublicKey::from_peer_id(&peer) else {
            return;
        };
        match answer {
            Response::Cosigned { size: s, line } if s == size => {
                // The checkpoint we sent, not the newest: the log may have
                // been sealed again while the peer was answering.
                let body = note
                    .split_once("\n\n")
                    .map(|(b, _)| format!("{b}\n"))
                    .unwrap_or_default();
                match dxmesh_protocol::audit::verify_cosignature(
                    &line,
                    &peer.to_string(),
                    &key,
                    &body,
                ) {
                    Ok(_) => {
                        if let Err(e) = log::store_cosignature(&core.store, &key, size, &line) {
                            tracing::error!(error = %e, "cannot store a cosignature");
                        }
                    }
                    Err(e) => tracing::warn!(%peer, error = %e, "a cosignature does not verify"),
                }
            }
            Response::NeedProof { from } => {
                // Answer with the checkpoint asked about and a proof from
                // the peer's size to it.
                let proof = core.audit.proof_to(from, size);
                self.asked.insert(peer);
                core.send(
                    peer,
                    Request::Witness {
                        note: note.to_string(),
                        proof,
                    },
                    Pending::Witness {
                        size,
                        note: note.to_string(),
                    },
                );
            }
            Response::Refused { reason } => {
                tracing::error!(%peer, ?reason, "a peer refused to witness our audit log");
            }
            _ => {}
        }
    }

    /// A witness request to `peer` failed (no answer): it may be asked again.
    pub(super) fn failed(&mut self, peer: &PeerId) {
        self.asked.remove(peer);
    }
}

/// The audit desk: the agreement steps already logged (per thread) and
/// the witness requests in flight.
pub(super) struct Auditing {
    logged_steps: HashMap<dxmesh_protocol::merkle::Hash, u32>,
    /// Peers with a witness request in flight.
    pub(super) witnessing: Witnessing,
}

impl Auditing {
    /// The desk for the audit log in `store`: the steps it holds are
    /// logged already.
    pub(super) fn load(store: &Store) -> Result<Auditing, StoreError> {
        let mut logged_steps: HashMap<dxmesh_protocol::merkle::Hash, u32> = HashMap::new();
        for bytes in store.audit_entries()? {
            if let Ok(dxmesh_protocol::audit::Entry {
                event: Event::AgreementStep { thread, seq, .. },
                ..
            }) = dxmesh_protocol::codec::decode(&bytes)
            {
                let e = logged_steps.entry(thread).or_default();
                *e = (*e).max(seq + 1);
            }
        }
        Ok(Auditing {
            logged_steps,
            witnessing: Witnessing::default(),
        })
    }

    /// Logs agreement steps not logged yet (after any agreement activity).
    pub(super) fn log_agreement_steps(&mut self, core: &mut Core) {
        let mut new = Vec::new();
        for th in core.agreements.threads() {
            let logged = self
                .logged_steps
                .get(&th.state.thread)
                .copied()
                .unwrap_or(0);
            for (seq, s) in th.steps.iter().enumerate().skip(logged as usize) {
                let action =
                    dxmesh_protocol::codec::decode::<dxmesh_protocol::agreement::Step>(s.body())
                        .map(|st| st.action.name().to_string())
                        .unwrap_or_default();
                new.push((
                    th.state.thread,
                    Event::AgreementStep {
                        thread: th.state.thread,
                        seq: seq as u32,
                        action,
                        signer: *s.signer(),
                        digest: s.digest(),
                        agreement: th.state.terms.id(),
                    },
                ));
            }
        }
        for (thread, ev) in new {
            *self.logged_steps.entry(thread).or_default() += 1;
            core.log(ev);
        }
        if !core.connected.is_empty() {
            self.witnessing.ask_peers(core);
        }
    }
}
