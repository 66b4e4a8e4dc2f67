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

use super::core::counter_key;
use super::node::{Answer, Event, Node, signed_answer};
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
    /// The ministry's side: answer a ministry query under the agreement,
    /// checked in two passes (the receipt over every ID asked about off
    /// the event loop, the rest on it, the quota last).
    pub(super) fn on_ministry_query(&mut self, asked: Asked, to: Answer) {
        let peer = to.peer;
        let heavy = match self.ministry_precheck(peer, &asked) {
            Ok(heavy) => heavy,
            Err(refusal) => return self.refuse_ministry(to, asked.agreement, refusal),
        };
        self.off_loop(
            move || {
                let checked = heavy.check(&asked).map(|()| query_digest(&asked));
                (asked, checked)
            },
            move |node, (asked, checked)| match checked
                .and_then(|digest| node.admit_ministry_query(peer, &asked, &digest))
            {
                Ok(requester) => node.answer_ministry_query(requester, asked, to),
                Err(refusal) => node.refuse_ministry(to, asked.agreement, refusal),
            },
        );
    }

    fn refuse_ministry(&mut self, to: Answer, agreement: AgreementId, refusal: Refusal) {
        let response = self.trust.refuse_request(
            &mut self.core,
            to.peer,
            ("ministry query", agreement),
            refusal,
        );
        self.core.respond(to, response);
    }

    /// The first pass, on the event loop: the agreement, its job and
    /// fields, and the commitment (the quota waits for the second pass).
    fn ministry_precheck(&self, peer: PeerId, asked: &Asked) -> Result<ReceiptInputs, Refusal> {
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let th = self
            .core
            .agreements
            .by_agreement(&asked.agreement)
            .ok_or(Refusal::UnknownAgreement)?;
        if th.state.terms.provider != self.core.identity.public() {
            return Err(Refusal::UnknownAgreement);
        }
        let superseded = self.core.agreements.superseded(th, now());
        let inputs = ReceiptInputs {
            requester,
            admission: self.trust.admission(&peer),
            roster: self.trust.roster.as_ref().map(|(_, r)| r.clone()),
            now: now(),
            state: th.state.clone(),
        };
        inputs.state.check_ministry_query(
            now(),
            superseded,
            &inputs.query_check(asked, 0),
            &asked.commitment,
        )?;
        Ok(inputs)
    }

    /// Answers an admitted query on a blocking thread, signed and logged.
    fn answer_ministry_query(&mut self, requester: PublicKey, asked: Asked, to: Answer) {
        let Some(th) = self.core.agreements.by_agreement(&asked.agreement).cloned() else {
            return;
        };
        let terms = th.state.terms.clone();
        let data_dir = self.core.data_dir.clone();
        let national = self.national.clone();
        let seed = *self.core.identity.seed();
        let internal = self.core.events.clone();
        let label = self.trust.label(&requester);
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
            let response = match answer_query(&national, &data_dir, &terms, &q) {
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
            let _ = internal.send(Event::Answered { to, response });
        });
    }

    /// The second pass, on the event loop, once the receipt checked out:
    /// the checks of the first again (the agreement may have changed
    /// meanwhile) with the quota, which is then counted (durably).
    /// Returns the requester.
    fn admit_ministry_query(
        &mut self,
        peer: PeerId,
        asked: &Asked,
        digest: &[u8; 32],
    ) -> Result<PublicKey, Refusal> {
        let (agreement, epoch) = (&asked.agreement, asked.epoch);
        let mut inputs = self.ministry_precheck(peer, asked)?;
        let superseded = self.core.agreements.superseded(
            self.core
                .agreements
                .by_agreement(agreement)
                .ok_or(Refusal::UnknownAgreement)?,
            now(),
        );
        let key = counter_key("natq", agreement, epoch);
        let used = self.core.quota_used(&key, "ministry query", epoch)?;
        let (seen_key, again) =
            self.core
                .counted_before("natq-asked", (agreement, epoch), digest)?;
        let n = asked.ids.len() as u64;
        // Asked before: checked as it was then, before it was counted.
        let used = if again { used.saturating_sub(n) } else { used };
        inputs.now = now();
        inputs.state.check_ministry_query(
            inputs.now,
            superseded,
            &inputs.query_check(asked, used),
            &asked.commitment,
        )?;
        if !again {
            // Counted first: a crash between the two counts the query and
            // refuses its retry, never the other way round.
            self.core
                .count_quota(&key, used + n, "ministry query", epoch)?;
            self.core
                .count_quota(&seen_key, 1, "ministry query", epoch)?;
        }
        Ok(inputs.requester)
    }
}

/// What the receipt check of a ministry query needs, taken on the event
/// loop so that the check itself (the receipt's root over every ID asked
/// about) can run off it.
struct ReceiptInputs {
    requester: PublicKey,
    admission: dxmesh_protocol::roster::Admission,
    roster: Option<dxmesh_protocol::roster::Roster>,
    now: dxmesh_protocol::time::Timestamp,
    state: dxmesh_protocol::agreement::Negotiation,
}

impl ReceiptInputs {
    fn query_check<'a>(&'a self, asked: &'a Asked, used: u64) -> DisclosureCheck<'a> {
        DisclosureCheck {
            requester: &self.requester,
            admission: self.admission,
            epoch: asked.epoch,
            result_kind: crate::ministry::MINISTRY_QUERY,
            fields: &asked.fields,
            records_requested: asked.ids.len() as u64,
            records_used: used,
        }
    }

    /// The receipt: the IDs asked about are those the registry provider
    /// disclosed under the commitment.
    fn check(&self, asked: &Asked) -> Result<(), Refusal> {
        let receipt = ReceiptCheck {
            receipt: &asked.receipt,
            ids: &asked.ids,
            commitment: &asked.commitment,
            roster: self.roster.as_ref(),
            now: self.now,
        };
        self.state
            .check_ministry_receipt(&self.query_check(asked, 0), &receipt)
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
