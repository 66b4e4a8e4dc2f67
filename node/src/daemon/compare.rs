//! The daemon's side of the comparator's cycle: `dxmesh compare` binds the
//! job's inputs to this node's active agreements and starts the cycle
//! ([`crate::compare::cycle::run_compare`]) as a task; the network steps the
//! cycle asks for (pulls, disclosures, ministry queries, audit entries) are
//! taken here and answered through its handle.

use super::error::{LocalError, NodeError, PeerError, RequestError};
use super::node::{DisclosureReply, Node, Pending};
use super::pending::PullReply;
use crate::admin::{AdminRequest, AdminResponse};
use crate::base::clock::now;
use crate::compare::cycle::{Binding, Destination, run_compare};
use crate::compare::error::StepError;
use crate::compare::ops::{MinistryAnswered, Op, Reply};
use dxmesh_protocol::agreement::{AgreementId, Terms};
use dxmesh_protocol::commitment::ResultCommitment;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::Response;
use libp2p::PeerId;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

impl Node {
    /// The active agreement (this node consumer) for `dataset` from a provider of `department`.
    pub(super) fn consumer_agreement(
        &self,
        dataset: &str,
        department: Option<&str>,
    ) -> Result<Terms, RequestError> {
        let me = self.core.identity.public();
        let t = now();
        let roster = self.trust.roster.as_ref().map(|(_, r)| r);
        let found: Vec<Terms> = self
            .core
            .agreements
            .threads()
            .filter(|th| th.state.terms.consumer == me && th.state.terms.dataset == dataset)
            .filter(|th| {
                self.core.agreements.status(th, t) == dxmesh_protocol::agreement::Status::Active
            })
            .filter(|th| {
                department.is_none_or(|d| {
                    roster
                        .and_then(|r| r.member(&th.state.terms.provider))
                        .is_some_and(|m| m.department == d)
                })
            })
            .map(|th| th.state.terms.clone())
            .collect();
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(RequestError::NoAgreementFor {
                dataset: dataset.to_string(),
                department: department.map(str::to_string),
            }),
            _ => Err(RequestError::SeveralAgreementsFor {
                dataset: dataset.to_string(),
            }),
        }
    }

    pub(super) fn on_compare_admin(
        &mut self,
        request: AdminRequest,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let AdminRequest::Compare {
            jobs,
            jobs_path,
            epoch,
            out,
            previous,
        } = request
        else {
            let _ = reply.send(AdminResponse::Error {
                message: "not a compare request".into(),
            });
            return;
        };
        let fail = |reply: oneshot::Sender<AdminResponse>, message: String| {
            let _ = reply.send(AdminResponse::Error { message });
        };
        let compiled = match jobs.compile(Path::new(&jobs_path)) {
            Ok(c) => c,
            Err(e) => return fail(reply, e.to_string()),
        };
        let mut bindings = Vec::new();
        for (name, spec) in &compiled.inputs {
            match self.consumer_agreement(&spec.dataset, Some(&spec.provider)) {
                Ok(terms) => bindings.push(Binding {
                    name: name.clone(),
                    terms,
                }),
                Err(e) => return fail(reply, format!("input {name}: {e}")),
            }
        }
        let ministry = match &compiled.ministry {
            None => None,
            Some(m) => match self.consumer_agreement(&m.dataset, None) {
                Ok(t) => Some(t),
                Err(e) => return fail(reply, format!("ministry: {e}")),
            },
        };
        let epoch =
            match epoch.or_else(|| bindings.first().and_then(|b| b.terms.cycle.epoch_at(now()))) {
                Some(e) => e,
                None => return fail(reply, "the cycle has not started".into()),
            };
        let handle = self.cycle.clone();
        let data_dir = self.core.data_dir.clone();
        let memory = self.core.config.limits.sort_bytes();
        self.core.metrics.compare_started(PathBuf::from(&out));
        let record = crate::compare::history::Comparison {
            number: 0,
            epoch,
            out: PathBuf::from(&out),
            started: now().to_string(),
        };
        tokio::spawn(async move {
            let history_dir = data_dir.clone();
            let response = match run_compare(
                handle,
                data_dir,
                compiled,
                bindings,
                ministry,
                epoch,
                Destination {
                    out: PathBuf::from(out),
                    previous: previous.map(PathBuf::from),
                    memory,
                },
            )
            .await
            {
                Ok(summary) => {
                    // Listed on the console's results pages once it is whole.
                    if let Err(e) = crate::compare::history::record(&history_dir, record) {
                        tracing::warn!(error = %e, "cannot list the comparison for the console");
                    }
                    AdminResponse::Compared { summary }
                }
                Err(e) => AdminResponse::Error {
                    message: e.to_string(),
                },
            };
            let _ = reply.send(response);
        });
    }

    /// The provider of `agreement` and its peer id, if it is connected now;
    /// `role` names it in the error ("provider", "ministry").
    pub(super) fn connected_provider(
        &self,
        agreement: &AgreementId,
        role: &'static str,
    ) -> Result<(PublicKey, PeerId), NodeError> {
        let provider = self
            .core
            .agreements
            .by_agreement(agreement)
            .map(|t| t.state.terms.provider)
            .ok_or(RequestError::UnknownAgreement)?;
        let peer = provider.peer_id();
        if !self.core.connected.contains(&peer) {
            return Err(PeerError::NotConnected {
                role,
                label: self.trust.label(&provider),
            }
            .into());
        }
        Ok((provider, peer))
    }

    /// Signs a result commitment and logs it (durably, with a checkpoint)
    /// before anyone sees it.
    fn sign_commitment(
        &mut self,
        statement: &ResultCommitment,
    ) -> Result<Signed<ResultCommitment>, StepError> {
        let signed = Signed::sign(&self.core.identity, statement)
            .map_err(|e| StepError::Node(Box::new(e)))?;
        // The commitment is usable only once its record is durable.
        self.core
            .log_durably(dxmesh_protocol::audit::Event::ResultCommitted {
                epoch: statement.epoch,
                result_kind: statement.result_kind.clone(),
                count: statement.count,
                root: statement.root,
                commitment: signed.digest(),
            })
            .map_err(|e| StepError::Node(Box::new(LocalError::Store(e))))?;
        self.core.seal_audit();
        Ok(signed)
    }

    /// A network step of the comparator's cycle.
    pub(super) fn on_op(&mut self, op: Op) {
        match op {
            Op::Log { event, reply } => {
                self.core.log(*event);
                self.core.seal_audit();
                let _ = reply.send(Ok(()));
            }
            Op::Commit { statement, reply } => {
                let _ = reply.send(self.sign_commitment(&statement));
            }
            Op::Pull {
                agreement,
                epoch,
                reply,
            } => {
                self.pulls.start_pull(
                    &mut self.core,
                    &self.trust,
                    (agreement, epoch),
                    None,
                    Some(PullReply::Cycle(reply)),
                );
            }
            Op::Disclose { request, reply } => {
                self.request_disclosure(*request, DisclosureReply::Cycle(reply))
            }
            Op::Ministry { query, reply } => {
                let (provider, peer) = match self.connected_provider(&query.agreement, "ministry") {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        return;
                    }
                };
                self.core.send(
                    peer,
                    query.into_request(),
                    Pending::MinistryOp { provider, reply },
                );
            }
        }
    }

    pub(super) fn on_ministry_answer(
        &mut self,
        provider: PublicKey,
        reply: Reply<Box<MinistryAnswered>>,
        answer: Response,
    ) {
        let r = match answer {
            Response::Ministry { answer } => answer
                .verify_by(&provider)
                .map(|a| Box::new((answer, a)))
                .map_err(|e| PeerError::Unverified {
                    what: "ministry's answer",
                    problem: e.to_string(),
                }),
            Response::Denied { refusal } => Err(PeerError::Refused {
                role: "ministry",
                refusal,
            }),
            other => Err(PeerError::Unexpected(format!("{other:?}"))),
        }
        .map_err(|e| NodeError::from(e).into());
        if let Ok(signed_and_answer) = &r {
            let (signed, a) = &**signed_and_answer;
            self.core.log(dxmesh_protocol::audit::Event::MinistryQuery {
                agreement: a.agreement,
                epoch: a.epoch,
                peer: provider,
                asked: a.asked,
                found: a.found.len() as u64,
                answered: false,
                commitment: a.commitment,
                receipt: a.receipt,
                answer: signed.digest(),
            });
        }
        let _ = reply.send(r);
    }
}
