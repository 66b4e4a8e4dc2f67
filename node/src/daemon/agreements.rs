//! The daemon's agreement traffic: operator actions from the admin socket,
//! steps and syncs from peers, and answers to ours. The decisions are in
//! [`crate::agreements::threads`] and the protocol's state machine; this file moves
//! messages and tells the operator what happened.

use super::error::RequestError;
use super::node::{Node, Pending, answer_error};
use crate::admin::{AdminRequest, AdminResponse, AgreementDetail, AgreementSummary, StepLine};
use crate::agreements::threads::{Acted, AgreementError, Thread};
use crate::base::clock::now;
use crate::trust::roster_file::key_of_peer_id;
use dxmesh_protocol::agreement::{Action, Step};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::Role;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use std::path::Path;
use tokio::sync::oneshot;

impl Node {
    pub(super) fn sync_agreements_with(&mut self, peer: PeerId) {
        let Some(provider) = PublicKey::from_peer_id(&peer) else {
            return;
        };
        let threads = self
            .core
            .agreements
            .heads_as_consumer(&self.core.identity.public(), &provider);
        self.core.send(
            peer,
            Request::AgreementSync { threads },
            Pending::AgreementSync,
        );
    }

    pub(super) fn on_agreement_step(&mut self, peer: PeerId, step: Signed<Step>) -> Response {
        let Some(from) = PublicKey::from_peer_id(&peer) else {
            return Response::StepRefused {
                reason: "unknown sender key".into(),
                transcript: vec![],
            };
        };
        let (response, behind) = self.core.agreements.on_step(
            &self.core.store,
            &self.core.identity.public(),
            &from,
            step,
        );
        match &response {
            Response::StepAccepted { len } => {
                tracing::info!(peer = %self.trust.label(&from), len, "agreement step recorded")
            }
            Response::StepRefused { reason, .. } => {
                tracing::warn!(peer = %self.trust.label(&from), %reason, "agreement step refused")
            }
            _ => {}
        }
        if behind {
            self.sync_agreements_with(peer);
        }
        response
    }

    pub(super) fn on_agreement_answer(
        &mut self,
        peer: PeerId,
        step: Signed<Step>,
        reply: Option<oneshot::Sender<AdminResponse>>,
        answer: Response,
    ) {
        let me = self.core.identity.public();
        let result = self
            .core
            .agreements
            .on_step_answer(&self.core.store, &me, &step, answer);
        let thread = crate::agreements::threads::thread_of(&step);
        let response = match result {
            Ok(()) => {
                tracing::info!(%peer, "the provider recorded our agreement step");
                match thread.and_then(|t| self.core.agreements.get(&t)) {
                    Some(t) => AdminResponse::AgreementStep(Box::new(
                        self.summary(t, "recorded by the provider"),
                    )),
                    None => AdminResponse::Error {
                        message: "the provider recorded the step, but the thread is unknown here"
                            .into(),
                    },
                }
            }
            Err(reason) => {
                tracing::warn!(%peer, %reason, "the provider refused our agreement step");
                AdminResponse::Error {
                    message: format!("the provider refused the step: {reason}"),
                }
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(response);
        }
    }

    pub(super) fn on_agreement_transcripts(
        &mut self,
        peer: PeerId,
        transcripts: Vec<Vec<Signed<Step>>>,
    ) {
        let Some(provider) = PublicKey::from_peer_id(&peer) else {
            return;
        };
        let me = self.core.identity.public();
        let n = transcripts.len();
        tracing::debug!(%peer, transcripts = n, outbox = self.core.agreements.outbox().len(), "agreement sync answered");
        let (resend, notes) =
            self.core
                .agreements
                .adopt(&self.core.store, &me, &provider, transcripts);
        if n > 0 {
            tracing::info!(peer = %self.trust.label(&provider), transcripts = n, "adopted the provider's agreement transcripts");
        }
        for note in notes {
            tracing::warn!(peer = %self.trust.label(&provider), "{note}");
        }
        for step in resend {
            self.core.send(
                peer,
                Request::AgreementStep { step: step.clone() },
                Pending::AgreementStep { step, reply: None },
            );
        }
    }

    pub(super) fn on_agreement_admin(
        &mut self,
        request: AdminRequest,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let action = match self.admin_action(request) {
            Ok(a) => a,
            Err(e) => return answer_error(reply, e),
        };
        let (thread, action) = action;
        match self
            .core
            .agreements
            .act(&self.core.store, &self.core.identity, thread, action, now())
        {
            Err(e) => {
                let _ = reply.send(AdminResponse::Error {
                    message: e.to_string(),
                });
            }
            Ok(Acted::Committed {
                thread,
                step,
                notify,
            }) => {
                let peer = notify.peer_id();
                let message = if self.core.connected.contains(&peer) {
                    self.core.send(
                        peer,
                        Request::AgreementStep { step },
                        Pending::AgreementNotify,
                    );
                    format!("recorded; {} notified", self.trust.label(&notify))
                } else {
                    format!(
                        "recorded; {} is not connected and will receive it when it connects",
                        self.trust.label(&notify)
                    )
                };
                tracing::info!(thread = %dxmesh_protocol::hex(&thread), %message, "agreement step");
                let response = match self.core.agreements.get(&thread) {
                    Some(t) => AdminResponse::AgreementStep(Box::new(self.summary(t, &message))),
                    None => AdminResponse::Error {
                        message: "internal: thread vanished".into(),
                    },
                };
                let _ = reply.send(response);
            }
            Ok(Acted::Pending { step, provider }) => {
                let peer = provider.peer_id();
                if self.core.connected.contains(&peer) {
                    self.core.send(
                        peer,
                        Request::AgreementStep { step: step.clone() },
                        Pending::AgreementStep {
                            step,
                            reply: Some(reply),
                        },
                    );
                } else {
                    let _ = reply.send(AdminResponse::Error {
                        message: format!(
                            "queued: {} (the provider, which records every step first) is not connected; the step is sent when it connects",
                            self.trust.label(&provider)
                        ),
                    });
                }
            }
        }
    }

    /// Turns an operator request into (thread, action).
    pub(super) fn admin_action(
        &self,
        request: AdminRequest,
    ) -> Result<(Option<dxmesh_protocol::merkle::Hash>, Action), RequestError> {
        let me = self.core.identity.public();
        match request {
            AdminRequest::AgreementPropose {
                to,
                terms,
                terms_path,
            } => {
                let other = key_of_peer_id(&to)?;
                if other == me {
                    return Err(RequestError::ProposeToSelf);
                }
                let admitted = self.trust.admission(&other.peer_id());
                if admitted != dxmesh_protocol::roster::Admission::Admitted {
                    return Err(RequestError::NotMember {
                        peer: to,
                        admission: admitted,
                    });
                }
                let (p, c) = if self.core.config.role == Role::Provider {
                    (me, other)
                } else {
                    (other, me)
                };
                let t = terms.to_terms(Path::new(&terms_path), Some(p), Some(c))?;
                if t.provider != other && t.consumer != other {
                    return Err(RequestError::NotAParty {
                        peer: to,
                        terms_path,
                    });
                }
                Ok((None, Action::Propose(t)))
            }
            AdminRequest::AgreementCounter {
                id,
                terms,
                terms_path,
            } => {
                let thread = self.core.agreements.find(&id)?;
                let t = terms.to_terms(
                    Path::new(&terms_path),
                    Some(thread.state.terms.provider),
                    Some(thread.state.terms.consumer),
                )?;
                Ok((Some(thread.state.thread), Action::Counter(t)))
            }
            AdminRequest::AgreementAct { id, action, reason } => {
                let thread = self.core.agreements.find(&id)?;
                let reason = reason.unwrap_or_default();
                let action = match action.as_str() {
                    "accept" => Action::Accept {
                        agreement: thread.state.terms.id(),
                    },
                    "suspend" => Action::Suspend { reason },
                    "resume" => Action::Resume,
                    "terminate" => Action::Terminate { reason },
                    other => return Err(RequestError::UnknownAction(other.to_string())),
                };
                Ok((Some(thread.state.thread), action))
            }
            _ => Err(RequestError::NotAnAgreementAction),
        }
    }

    pub(super) fn summary(&self, t: &Thread, message: &str) -> AgreementSummary {
        AgreementSummary {
            thread: dxmesh_protocol::hex(&t.state.thread),
            agreement: dxmesh_protocol::hex(&t.state.terms.id()),
            status: self.core.agreements.status(t, now()).to_string(),
            dataset: t.state.terms.dataset.clone(),
            provider: self.trust.label(&t.state.terms.provider),
            consumer: self.trust.label(&t.state.terms.consumer),
            steps: t.state.len,
            pending: self
                .core
                .agreements
                .outbox()
                .iter()
                .any(|s| crate::agreements::threads::thread_of(s) == Some(t.state.thread)),
            message: message.to_string(),
            epoch: self.core.epoch_info(&t.state.terms),
        }
    }

    pub(super) fn agreement_list(&self) -> Vec<AgreementSummary> {
        self.core
            .agreements
            .threads()
            .map(|t| self.summary(t, ""))
            .collect()
    }

    pub(super) fn agreement_detail(&self, id: &str) -> Result<AgreementDetail, AgreementError> {
        let t = self.core.agreements.find(id)?;
        let transcript = t
            .steps
            .iter()
            .filter_map(|s| {
                let step: Step = dxmesh_protocol::codec::decode(s.body()).ok()?;
                let action = match &step.action {
                    Action::Propose(terms) | Action::Counter(terms) => {
                        format!(
                            "{} terms {}",
                            step.action.name(),
                            dxmesh_protocol::hex(&terms.id())
                        )
                    }
                    Action::Accept { agreement } => {
                        format!("accept {}", dxmesh_protocol::hex(agreement))
                    }
                    Action::Suspend { reason } | Action::Terminate { reason } => {
                        format!("{} ({reason})", step.action.name())
                    }
                    Action::Resume => "resume".into(),
                };
                Some(StepLine {
                    seq: step.seq,
                    at: step.at.to_string(),
                    signer: self.trust.label(s.signer()),
                    action,
                    digest: dxmesh_protocol::hex(&s.digest()),
                    signature: dxmesh_protocol::hex(&s.signature().0),
                })
            })
            .collect();
        let transcript_hex = dxmesh_protocol::codec::encode(&t.steps)
            .map(hex::encode)
            .map_err(|e| AgreementError::Encode(e.to_string()))?;
        Ok(AgreementDetail {
            summary: self.summary(t, ""),
            terms_toml: crate::agreements::terms_file::TermsFile::from_terms(&t.state.terms)
                .to_toml(),
            transcript,
            transcript_hex,
        })
    }
}
