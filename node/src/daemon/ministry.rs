//! The ministry's side of the ministry query: a comparator asks which of
//! its disclosed candidates are in the national participation index. The
//! request is checked against the agreement like a disclosure (quota
//! counted before the lookup), answered from [`crate::ministry`] on a
//! blocking thread, signed and logged.

use super::node::{Event, Node};
use crate::base::clock::now;
use crate::ministry::national_lookup;
use dxmesh_protocol::agreement::{AgreementId, DisclosureCheck, Refusal};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::Response;
use libp2p::PeerId;

impl Node {
    /// The ministry's side: answer a national query under the agreement.
    pub(super) fn on_national_query(
        &mut self,
        peer: PeerId,
        agreement: AgreementId,
        epoch: u64,
        fields: Vec<String>,
        ids: Vec<IdNumber>,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) {
        let deny = |node: &mut Node, refusal: Refusal, channel| {
            node.record_refusal(
                Some(peer),
                None,
                format!("national query: {refusal} [{}]", refusal.code()),
            );
            let _ = node
                .swarm
                .behaviour_mut()
                .control
                .send_response(channel, Response::Denied { refusal });
        };
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return deny(self, Refusal::NotConsumer, channel);
        };
        let Some(th) = self.agreements.by_agreement(&agreement).cloned() else {
            return deny(self, Refusal::UnknownAgreement, channel);
        };
        if th.state.terms.provider != self.identity.public() {
            return deny(self, Refusal::UnknownAgreement, channel);
        }
        let superseded = self.agreements.superseded(&th, now());
        let key = format!("natq/{}/{epoch}", dxmesh_protocol::hex(&agreement)).into_bytes();
        let used: u64 = self.store.counter(&key).ok().flatten().unwrap_or(0);
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.admission(&peer),
            epoch,
            result_kind: "cross_province",
            fields: &fields,
            records_requested: ids.len() as u64,
            records_used: used,
        };
        if let Err(refusal) = th.state.check_disclosure(now(), superseded, &check) {
            return deny(self, refusal, channel);
        }
        if self
            .store
            .set_counter(&key, &(used + ids.len() as u64))
            .is_err()
        {
            return deny(self, Refusal::ProviderFailed { epoch }, channel);
        }
        let terms = th.state.terms.clone();
        let data_dir = self.data_dir.clone();
        let seed = *self.identity.seed();
        let internal = self.internal_tx.clone();
        let label = self.label(&requester);
        tokio::task::spawn_blocking(move || {
            let response = match national_lookup(&data_dir, &terms, epoch, &fields, &ids) {
                Ok(answer) => {
                    tracing::info!(consumer = %label, asked = ids.len(), found = answer.found.len(), "national query answered");
                    let _ =
                        internal.send(Event::Audit(dxmesh_protocol::audit::Event::NationalQuery {
                            agreement,
                            epoch,
                            peer: requester,
                            asked: ids.len() as u64,
                            found: answer.found.len() as u64,
                            answered: true,
                        }));
                    match dxmesh_protocol::identity::Identity::from_seed(seed)
                        .ok()
                        .and_then(|id| Signed::sign(&id, &answer).ok())
                    {
                        Some(answer) => Response::National { answer },
                        None => Response::Denied {
                            refusal: Refusal::ProviderFailed { epoch },
                        },
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "national query failed");
                    Response::Denied {
                        refusal: Refusal::ProviderFailed { epoch },
                    }
                }
            };
            let _ = internal.send(Event::Disclosed { channel, response });
        });
    }
}
