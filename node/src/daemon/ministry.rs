//! The ministry's side of the ministry query: a comparator asks which of
//! its disclosed candidates are in the national participation index. The
//! request is checked against the agreement like a disclosure (quota
//! counted before the lookup) and against the registry provider's receipt
//! it carries (the IDs are exactly those the provider disclosed under the
//! candidates' commitment), answered from [`crate::ministry`] on a
//! blocking thread by token, signed and logged with the digests of the
//! commitment, the receipt and the answer. A query asked again unchanged
//! in the same epoch (the same commitment, receipt, fields and IDs: a
//! comparator that crashed before it kept the answer) is answered again
//! without being counted twice; it learns nothing it was not told.

use super::node::{Event, Node, counter_key, signed_answer};
use crate::base::clock::now;
use crate::ministry::{Query, answer_query};
use dxmesh_protocol::agreement::{AgreementId, DisclosureCheck, ReceiptCheck, Refusal};
use dxmesh_protocol::commitment::ResultCommitment;
use dxmesh_protocol::feed::DisclosureReceipt;
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::Response;
use libp2p::PeerId;

/// A ministry query as it arrived.
pub(super) struct Asked {
    /// The agreement with the ministry.
    pub(super) agreement: AgreementId,
    /// The epoch.
    pub(super) epoch: u64,
    /// The national index fields asked for.
    pub(super) fields: Vec<String>,
    /// The (token, ID number) pairs asked about.
    pub(super) ids: Vec<(IdToken, IdNumber)>,
    /// The commitment to the candidates.
    pub(super) commitment: Signed<ResultCommitment>,
    /// The registry provider's receipt for the IDs.
    pub(super) receipt: Signed<DisclosureReceipt>,
}

impl Node {
    /// The ministry's side: answer a ministry query under the agreement.
    pub(super) fn on_ministry_query(
        &mut self,
        peer: PeerId,
        asked: Asked,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) {
        let requester = match self.admit_ministry_query(peer, &asked) {
            Ok(r) => r,
            Err(refusal) => {
                let response =
                    self.refuse_request(peer, ("ministry query", asked.agreement), refusal);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .control
                    .send_response(channel, response);
                return;
            }
        };
        let Some(th) = self.agreements.by_agreement(&asked.agreement).cloned() else {
            return;
        };
        let terms = th.state.terms.clone();
        let data_dir = self.data_dir.clone();
        let seed = *self.identity.seed();
        let internal = self.internal_tx.clone();
        let label = self.label(&requester);
        tokio::task::spawn_blocking(move || {
            let (commitment, receipt) = (asked.commitment.digest(), asked.receipt.digest());
            let q = Query {
                epoch: asked.epoch,
                fields: &asked.fields,
                ids: &asked.ids,
                commitment,
                receipt,
            };
            let epoch = asked.epoch;
            let response = match answer_query(&data_dir, &terms, &q) {
                Ok(answer) => {
                    tracing::info!(consumer = %label, asked = asked.ids.len(), found = answer.found.len(), "ministry query answered");
                    let signed = signed_answer(&seed, &answer, epoch, |answer| {
                        Response::Ministry { answer }
                    });
                    if let Response::Ministry { answer: a } = &signed {
                        let _ = internal.send(Event::Audit(
                            dxmesh_protocol::audit::Event::MinistryQuery {
                                agreement: asked.agreement,
                                epoch,
                                peer: requester,
                                asked: asked.ids.len() as u64,
                                found: answer.found.len() as u64,
                                answered: true,
                                commitment,
                                receipt,
                                answer: a.digest(),
                            },
                        ));
                    }
                    signed
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
    fn admit_ministry_query(&mut self, peer: PeerId, asked: &Asked) -> Result<PublicKey, Refusal> {
        let (agreement, epoch) = (&asked.agreement, asked.epoch);
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
        let digest = query_digest(asked);
        let (seen_key, again) = self.counted_before("natq-asked", (agreement, epoch), &digest)?;
        let n = asked.ids.len() as u64;
        // Asked before: checked as it was then, before it was counted.
        let used = if again { used.saturating_sub(n) } else { used };
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.admission(&peer),
            epoch,
            result_kind: crate::ministry::MINISTRY_QUERY,
            fields: &asked.fields,
            records_requested: n,
            records_used: used,
        };
        th.state
            .check_ministry_query(now(), superseded, &check, &asked.commitment)?;
        let receipt = ReceiptCheck {
            receipt: &asked.receipt,
            ids: &asked.ids,
            commitment: &asked.commitment,
            roster: self.roster.as_ref().map(|(_, r)| r),
            now: now(),
        };
        th.state.check_ministry_receipt(&check, &receipt)?;
        if !again {
            // Counted first: a crash between the two counts the query and
            // refuses its retry, never the other way round.
            self.count_quota(&key, used + n, "ministry query", epoch)?;
            self.count_quota(&seen_key, 1, "ministry query", epoch)?;
        }
        Ok(requester)
    }
}

/// SHA-256 over a ministry query's commitment, receipt, fields and IDs.
fn query_digest(asked: &Asked) -> [u8; 32] {
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    for bytes in [
        dxmesh_protocol::codec::encode(&asked.commitment),
        dxmesh_protocol::codec::encode(&asked.receipt),
    ]
    .into_iter()
    .flatten()
    {
        sha.update(&bytes);
    }
    for f in &asked.fields {
        sha.update(&(f.len() as u64).to_be_bytes());
        sha.update(f.as_bytes());
    }
    sha.update(&(asked.ids.len() as u64).to_be_bytes());
    for (t, id) in &asked.ids {
        sha.update(&t.0);
        sha.update(id.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(sha.finish().as_ref());
    out
}
