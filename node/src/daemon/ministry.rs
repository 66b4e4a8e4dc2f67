//! The ministry's side of the ministry query: a comparator asks which of
//! its disclosed candidates are in the national participation index. The
//! request is checked against the agreement like a disclosure (quota
//! counted before the lookup), answered from [`crate::ministry`] on a
//! blocking thread, signed and logged. A query asked again unchanged in
//! the same epoch (the same commitment, fields and IDs: a comparator that
//! crashed before it kept the answer) is answered again without being
//! counted twice; it learns nothing it was not told.

use super::node::{Event, Node, counter_key, signed_answer};
use crate::base::clock::now;
use crate::ministry::answer_query;
use dxmesh_protocol::agreement::{AgreementId, DisclosureCheck, Refusal};
use dxmesh_protocol::commitment::ResultCommitment;
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::Response;
use libp2p::PeerId;

impl Node {
    /// The ministry's side: answer a ministry query under the agreement.
    pub(super) fn on_ministry_query(
        &mut self,
        peer: PeerId,
        (agreement, epoch): (AgreementId, u64),
        fields: Vec<String>,
        ids: Vec<IdNumber>,
        commitment: Signed<ResultCommitment>,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) {
        let asked = (agreement, epoch, &fields[..], &ids[..]);
        let requester = match self.admit_ministry_query(peer, asked, &commitment) {
            Ok(r) => r,
            Err(refusal) => {
                let response = self.refuse_request(peer, ("ministry query", agreement), refusal);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .control
                    .send_response(channel, response);
                return;
            }
        };
        let Some(th) = self.agreements.by_agreement(&agreement).cloned() else {
            return;
        };
        let terms = th.state.terms.clone();
        let data_dir = self.data_dir.clone();
        let seed = *self.identity.seed();
        let internal = self.internal_tx.clone();
        let label = self.label(&requester);
        tokio::task::spawn_blocking(move || {
            let response = match answer_query(&data_dir, &terms, epoch, &fields, &ids) {
                Ok(answer) => {
                    tracing::info!(consumer = %label, asked = ids.len(), found = answer.found.len(), "ministry query answered");
                    let _ =
                        internal.send(Event::Audit(dxmesh_protocol::audit::Event::MinistryQuery {
                            agreement,
                            epoch,
                            peer: requester,
                            asked: ids.len() as u64,
                            found: answer.found.len() as u64,
                            answered: true,
                        }));
                    signed_answer(&seed, &answer, epoch, |answer| Response::Ministry {
                        answer,
                    })
                }
                Err(e) => {
                    tracing::error!(error = %e, "ministry query failed");
                    Response::Denied {
                        refusal: Refusal::ProviderFailed { epoch },
                    }
                }
            };
            let _ = internal.send(Event::Disclosed { channel, response });
        });
    }

    /// Every check before a ministry query, in order; the quota is
    /// counted (durably) once they pass. Returns the requester.
    fn admit_ministry_query(
        &mut self,
        peer: PeerId,
        (agreement, epoch, fields, ids): (AgreementId, u64, &[String], &[IdNumber]),
        commitment: &Signed<ResultCommitment>,
    ) -> Result<PublicKey, Refusal> {
        let agreement = &agreement;
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let th = self
            .agreements
            .by_agreement(agreement)
            .cloned()
            .ok_or(Refusal::UnknownAgreement)?;
        if th.state.terms.provider != self.identity.public() {
            return Err(Refusal::UnknownAgreement);
        }
        let superseded = self.agreements.superseded(&th, now());
        let key = counter_key("natq", agreement, epoch);
        let used = self.quota_used(&key, "ministry query", epoch)?;
        let digest = query_digest(commitment, fields, ids);
        let (seen_key, again) = self.counted_before("natq-asked", (agreement, epoch), &digest)?;
        // Asked before: checked as it was then, before it was counted.
        let used = if again {
            used.saturating_sub(ids.len() as u64)
        } else {
            used
        };
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.admission(&peer),
            epoch,
            result_kind: crate::ministry::MINISTRY_QUERY,
            fields,
            records_requested: ids.len() as u64,
            records_used: used,
        };
        th.state
            .check_ministry_query(now(), superseded, &check, commitment)?;
        if !again {
            // Counted first: a crash between the two counts the query and
            // refuses its retry, never the other way round.
            self.count_quota(&key, used + ids.len() as u64, "ministry query", epoch)?;
            self.count_quota(&seen_key, 1, "ministry query", epoch)?;
        }
        Ok(requester)
    }
}

/// SHA-256 over a ministry query's commitment, fields and IDs.
fn query_digest(
    commitment: &Signed<ResultCommitment>,
    fields: &[String],
    ids: &[IdNumber],
) -> [u8; 32] {
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    if let Ok(bytes) = dxmesh_protocol::codec::encode(commitment) {
        sha.update(&bytes);
    }
    for f in fields {
        sha.update(&(f.len() as u64).to_be_bytes());
        sha.update(f.as_bytes());
    }
    sha.update(&(ids.len() as u64).to_be_bytes());
    for id in ids {
        sha.update(id.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(sha.finish().as_ref());
    out
}
