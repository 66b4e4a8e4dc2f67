//! The network half of disclosure ([`crate::disclose`] is the rest), both
//! sides, over one request type ([`DisclosureRequest`]). At the provider:
//! a request is checked against the agreement on the event loop, its
//! commitment off it ([`crate::disclose::answer::HeavyCheck`]), its records
//! counted against the quota before anything is disclosed (a quota that
//! cannot be read refuses the request: fail closed), then resolved on a
//! blocking thread ([`crate::disclose::records`]) and answered signed. At
//! the consumer: `dxmesh disclose` and the comparator's cycle send the same
//! request ([`Node::request_disclosure`]) and every answer goes through one
//! handler ([`Node::on_disclosure_answer`]), which verifies it, checks it
//! answers what was asked, and logs it before handing it to whoever asked.

use super::core::counter_key;
use super::error::{LocalError, NodeError, PeerError, RequestError};
use super::node::{
    Answer, DisclosureReply, Event, Node, Pending, answer_error, parse_token, signed_answer,
};
use crate::admin::{AdminResponse, DiscloseCall};
use crate::base::clock::now;
use crate::compare::commit::Committed;
use crate::compare::ops::Disclosed;
use crate::disclose::answer::{Awaited, HeavyCheck, check_receipt, sign_receipt};
use crate::publish::store::{feed_dir, read_manifest};
use dxmesh_protocol::agreement::{AgreementId, DisclosureCheck, Refusal};
use dxmesh_protocol::commitment::{ResultCommitment, RowScope};
use dxmesh_protocol::feed::Disclosure;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::wire::{DisclosureRequest, Request, Response};
use libp2p::PeerId;
use tokio::sync::oneshot;

impl Node {
    /// `dxmesh disclose`: resolve the operator's call (agreement prefix,
    /// epoch, hex tokens or the first N of the pulled feed) into a
    /// disclosure request and send it.
    pub(super) fn admin_disclose(
        &mut self,
        call: DiscloseCall,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let request = match self.resolve_disclose_call(&call) {
            Ok(r) => r,
            Err(e) => return answer_error(reply, e),
        };
        self.request_disclosure(
            request,
            DisclosureReply::Admin {
                reply,
                out: call.out,
            },
        );
    }

    fn resolve_disclose_call(&self, call: &DiscloseCall) -> Result<DisclosureRequest, NodeError> {
        let terms = self
            .core
            .agreements
            .find(&call.agreement)?
            .state
            .terms
            .clone();
        let epoch = call
            .epoch
            .or_else(|| terms.cycle.epoch_at(now()))
            .ok_or(RequestError::CycleNotStarted)?;
        let committed = Committed::load(&self.core.data_dir, epoch, &call.result_kind)
            .map_err(RequestError::Commit)?
            .ok_or_else(|| RequestError::NotCommitted {
                kind: call.result_kind.clone(),
                epoch,
            })?;
        let mut tokens = call
            .tokens
            .iter()
            .map(|h| parse_token(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(NodeError::from)?;
        if let Some(n) = call.first {
            let n = (n as usize).min(committed.tokens.len());
            tokens.extend_from_slice(&committed.tokens[..n]);
        }
        tokens.sort();
        tokens.dedup();
        Ok(committed
            .request(terms.id(), &call.fields, &tokens)
            .map_err(RequestError::Commit)?)
    }

    /// Sends a disclosure request to the agreement's provider; the answer
    /// reaches [`Node::on_disclosure_answer`] and then `reply`.
    pub(super) fn request_disclosure(
        &mut self,
        request: DisclosureRequest,
        reply: DisclosureReply,
    ) {
        match self.connected_provider(&request.agreement, "provider") {
            Ok((provider, peer)) => {
                let asked = Box::new(Awaited::of(&request));
                self.core.send(
                    peer,
                    Request::Disclose(request),
                    Pending::Disclose {
                        provider,
                        asked,
                        reply,
                    },
                )
            }
            Err(e) => reply.fail(e),
        }
    }

    /// The provider's side: check a disclosure request in two passes (the
    /// cheap checks on the event loop, the commitment and its proof off
    /// it), count it against the quota, then resolve it on a blocking
    /// thread; the signed answer (or the refusal) goes back to `to`.
    pub(super) fn on_disclose(&mut self, request: DisclosureRequest, to: Answer) {
        let peer = to.peer;
        let heavy = match self.disclosure_precheck(peer, &request) {
            Ok(heavy) => heavy,
            Err(refusal) => return self.refuse_disclosure(to, request.agreement, refusal),
        };
        self.off_loop(
            move || {
                let checked = heavy.check(&request);
                let digest = dxmesh_protocol::codec::encode(&request)
                    .map(|b| ring::digest::digest(&ring::digest::SHA256, &b))
                    .map_err(|_| Refusal::ProviderFailed {
                        epoch: request.epoch,
                    });
                (request, heavy.own_manifest, checked.and(digest))
            },
            move |node, (request, own_manifest, checked)| {
                let admitted = checked.and_then(|digest| {
                    node.admit_disclosure(peer, &request, digest.as_ref(), own_manifest)
                });
                match admitted {
                    Ok((requester, scope)) => node.serve_disclosure(requester, scope, request, to),
                    Err(refusal) => node.refuse_disclosure(to, request.agreement, refusal),
                }
            },
        );
    }

    fn refuse_disclosure(&mut self, to: Answer, agreement: AgreementId, refusal: Refusal) {
        let response =
            self.trust
                .refuse_request(&mut self.core, to.peer, ("disclosure", agreement), refusal);
        self.core.respond(to, response);
    }

    /// The first pass, on the event loop: who asks, under which agreement,
    /// for which job, fields and epoch, of a published feed (the quota is
    /// checked in the second pass). Returns what the commitment check
    /// needs.
    fn disclosure_precheck(
        &self,
        peer: PeerId,
        request: &DisclosureRequest,
    ) -> Result<HeavyCheck, Refusal> {
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let (_, superseded) = self
            .core
            .provided(&request.agreement)
            .ok_or(Refusal::UnknownAgreement)?;
        let state = self
            .core
            .find_state(&request.agreement)
            .map(|t| t.state.clone())
            .ok_or(Refusal::UnknownAgreement)?;
        let heavy = HeavyCheck {
            requester,
            admission: self.trust.admitted(&requester),
            own_manifest: self.own_manifest(&request.agreement, request.epoch)?,
            department: self.core.config.department.clone(),
            roster: self.trust.roster.as_ref().map(|(_, r)| r.clone()),
            now: now(),
            state,
        };
        heavy
            .state
            .check_disclosure_request(now(), superseded, &heavy.request_check(request))?;
        Ok(heavy)
    }

    /// The digest of this provider's signed manifest of `epoch`, once the
    /// epoch's feed is published.
    fn own_manifest(&self, agreement: &AgreementId, epoch: u64) -> Result<[u8; 32], Refusal> {
        let published = feed_dir(&self.core.data_dir, agreement, epoch)
            .join(crate::publish::build::INDEX_FILE)
            .exists();
        match read_manifest(&self.core.data_dir, agreement, epoch) {
            Ok(Some(m)) if published => Ok(m.digest()),
            Ok(_) => Err(Refusal::NotPublished { epoch }),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a published manifest; refusing");
                Err(Refusal::ProviderFailed { epoch })
            }
        }
    }

    /// The second pass, on the event loop, once the commitment checked
    /// out: every check of the first again (the agreement may have changed
    /// meanwhile) with the quota, then the quota is counted (durably).
    /// Returns the requester and the rows of the feed the commitment's
    /// inputs read (what may be disclosed).
    fn admit_disclosure(
        &mut self,
        peer: PeerId,
        request: &DisclosureRequest,
        digest: &[u8],
        checked_manifest: [u8; 32],
    ) -> Result<(PublicKey, RowScope), Refusal> {
        let DisclosureRequest {
            agreement,
            epoch,
            result_kind,
            fields,
            tokens,
            commitment,
            ..
        } = request;
        let requester = PublicKey::from_peer_id(&peer).ok_or(Refusal::NotConsumer)?;
        let (_, superseded) = self
            .core
            .provided(agreement)
            .ok_or(Refusal::UnknownAgreement)?;
        let state = self
            .core
            .find_state(agreement)
            .map(|t| t.state.clone())
            .ok_or(Refusal::UnknownAgreement)?;
        let key = counter_key("disc", agreement, *epoch);
        let used = self.core.quota_used(&key, "disclosure", *epoch)?;
        let (seen_key, again) =
            self.core
                .counted_before("disc-asked", (agreement, *epoch), digest)?;
        // Asked before: checked as it was then, before it was counted.
        let used = if again {
            used.saturating_sub(tokens.len() as u64)
        } else {
            used
        };
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.trust.admitted(&requester),
            epoch: *epoch,
            result_kind,
            fields,
            records_requested: tokens.len() as u64,
            records_used: used,
        };
        state.check_disclosure_request(now(), superseded, &check)?;
        if self.own_manifest(agreement, *epoch)? != checked_manifest {
            return Err(Refusal::CommitmentInvalid {
                reason: "the provider's feed of the epoch changed while the request was checked; ask again".into(),
            });
        }
        if !again {
            // Counted first: a crash between the two counts the request and
            // refuses its retry, never the other way round.
            self.core
                .count_quota(&key, used + tokens.len() as u64, "disclosure", *epoch)?;
            self.core.count_quota(&seen_key, 1, "disclosure", *epoch)?;
        }
        // Nothing is disclosed under a commitment whose check is not on record.
        let c = dxmesh_protocol::codec::decode::<ResultCommitment>(commitment.body())
            .map_err(|_| Refusal::ProviderFailed { epoch: *epoch })?;
        self.core
            .log_durably(dxmesh_protocol::audit::Event::CommitmentChecked {
                agreement: *agreement,
                consumer: requester,
                epoch: *epoch,
                result_kind: result_kind.clone(),
                count: c.count,
                root: c.root,
                commitment: commitment.digest(),
                requested: tokens.len() as u64,
            })
            .map_err(|_| Refusal::ProviderFailed { epoch: *epoch })?;
        Ok((
            requester,
            c.row_scope(&state.terms.dataset, &self.core.config.department),
        ))
    }

    /// Resolves an admitted request on a blocking thread and answers it
    /// signed; the served disclosure goes to the audit log.
    fn serve_disclosure(
        &mut self,
        requester: PublicKey,
        scope: RowScope,
        request: DisclosureRequest,
        to: Answer,
    ) {
        let Some((terms, _)) = self.core.provided(&request.agreement) else {
            return;
        };
        let data_dir = self.core.data_dir.clone();
        let internal = self.core.events.clone();
        let seed = *self.core.identity.seed();
        let label = self.trust.label(&requester);
        tokio::task::spawn_blocking(move || {
            let commitment = request.commitment.digest();
            let DisclosureRequest {
                agreement,
                epoch,
                result_kind,
                fields,
                tokens,
                ..
            } = request;
            let asked = crate::disclose::records::Asked {
                result_kind: &result_kind,
                fields: &fields,
                tokens: &tokens,
                scope: &scope,
            };
            let response =
                match crate::disclose::records::disclose(&data_dir, &terms, epoch, &asked, now()) {
                    Ok(d) => {
                        let digest = dxmesh_protocol::feed::disclosure_digest(&d);
                        let receipt = sign_receipt(&seed, &d, requester, commitment);
                        tracing::info!(
                            consumer = %label,
                            agreement = %dxmesh_protocol::hex(&agreement),
                            epoch,
                            result_kind = %result_kind,
                            requested = tokens.len(),
                            records = d.records.len(),
                            unknown = d.unknown.len(),
                            digest = %dxmesh_protocol::hex(&digest),
                            "disclosure served"
                        );
                        let _ = internal.send(Event::Audit(
                            dxmesh_protocol::audit::Event::DisclosureServed {
                                agreement,
                                epoch,
                                consumer: requester,
                                result_kind,
                                requested: tokens.len() as u64,
                                records: d.records.len() as u64,
                                digest,
                                receipt: receipt.as_ref().map(|r| r.digest()),
                                commitment,
                            },
                        ));
                        signed_answer(&seed, &d, epoch, |disclosure| Response::Disclosed {
                            disclosure,
                            receipt: receipt.map(Box::new),
                        })
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "disclosure failed");
                        Response::Denied {
                            refusal: Refusal::ProviderFailed { epoch },
                        }
                    }
                };
            let _ = internal.send(Event::Answered { to, response });
        });
    }

    /// The consumer's side: the provider's answer to a disclosure request,
    /// whoever asked. A signed disclosure is verified against the
    /// provider's key and logged (`disclosure_received`) before it is
    /// handed over; anything else is an error for the asker.
    pub(super) fn on_disclosure_answer(
        &mut self,
        provider: PublicKey,
        asked: &Awaited,
        reply: DisclosureReply,
        answer: Response,
    ) {
        let disclosure = match answer {
            Response::Disclosed {
                disclosure,
                receipt,
            } => disclosure
                .verify_by(&provider)
                .map_err(|e| PeerError::Unverified {
                    what: "disclosure",
                    problem: e.to_string(),
                })
                .and_then(|d| {
                    asked.answered_by(&d)?;
                    let receipt = receipt.map(|r| *r);
                    check_receipt(&provider, &d, receipt.as_ref())?;
                    Ok((d, receipt))
                })
                .inspect_err(|e| {
                    // A provider answering with what it was not asked, or
                    // unsigned: on record for the security officer.
                    let class = ("disclosure", String::new());
                    let why = format!("from {} refused: {e}", self.trust.label(&provider));
                    self.trust
                        .refuse_throttled(&mut self.core, provider.peer_id(), class, why);
                }),
            Response::Denied { refusal } => Err(PeerError::Refused {
                role: "provider",
                refusal,
            }),
            other => Err(PeerError::Unexpected(format!("{other:?}"))),
        };
        let ((d, receipt), reply) = match (disclosure, reply) {
            (Ok(d), reply) => (d, reply),
            // The cycle goes on without a refused result (typed, so it can
            // say which rule refused it).
            (Err(PeerError::Refused { refusal, .. }), DisclosureReply::Cycle(reply)) => {
                let _ = reply.send(Ok(Disclosed::Refused(refusal)));
                return;
            }
            (Err(e), reply) => return reply.fail(e),
        };
        let digest = dxmesh_protocol::feed::disclosure_digest(&d);
        self.core
            .log(dxmesh_protocol::audit::Event::DisclosureReceived {
                agreement: d.agreement,
                epoch: d.epoch,
                provider,
                result_kind: d.result_kind.clone(),
                records: d.records.len() as u64,
                digest,
            });
        tracing::info!(
            provider = %self.trust.label(&provider),
            agreement = %dxmesh_protocol::hex(&d.agreement),
            result_kind = %d.result_kind,
            records = d.records.len(),
            digest = %dxmesh_protocol::hex(&digest),
            "disclosure received"
        );
        match reply {
            DisclosureReply::Cycle(reply) => {
                let _ = reply.send(Ok(Disclosed::Records(Box::new((d, receipt)))));
            }
            DisclosureReply::Admin { reply, out } => {
                let response = match write_disclosure(out.as_deref(), &d) {
                    Ok(()) => AdminResponse::Disclosed {
                        records: d.records.len() as u64,
                        unknown: d.unknown.len() as u64,
                        out,
                    },
                    Err(e) => AdminResponse::Error {
                        message: e.to_string(),
                    },
                };
                let _ = reply.send(response);
            }
        }
    }
}

/// Writes a disclosure's records as CSV to `out`, if given (atomically).
fn write_disclosure(out: Option<&str>, d: &Disclosure) -> Result<(), LocalError> {
    let Some(path) = out else { return Ok(()) };
    let failed = |problem: String| LocalError::File {
        path: path.into(),
        problem,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&d.fields)
        .map_err(|e| failed(e.to_string()))?;
    for r in &d.records {
        w.write_record(&r.values)
            .map_err(|e| failed(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| failed(e.to_string()))?;
    crate::base::fsutil::write_atomic(std::path::Path::new(path), &bytes, 0o600)
        .map_err(|e| failed(e.to_string()))
}
