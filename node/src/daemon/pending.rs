//! The control requests in flight, both ways: [`Pending`] says what a
//! request this node sent was for (and who waits for its answer), and
//! [`Answer`] is a request a peer sent that this node is answering (with
//! its hold on the connection's inbound budget). Also what the waiters are
//! told when a request fails, and the results of background work
//! ([`Event`]) sent back to the event loop.

use super::error::{NodeError, RequestError};
use crate::admin::AdminResponse;
use crate::compare::ops::{Disclosed, MinistryAnswered, Reply};
use crate::pull::pulls::{PullError, PullSummary};
use dxmesh_protocol::agreement::{AgreementId, Refusal, Step};
use dxmesh_protocol::audit::Event as AuditEvent;
use dxmesh_protocol::feed::ChunkRequest;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::Response;
use libp2p::PeerId;
use std::path::PathBuf;
use tokio::sync::oneshot;

/// What an outstanding control request was for.
pub(crate) enum Pending {
    RosterSync,
    RosterPush,
    Peers,
    /// Our (consumer's) step sent to the provider; the operator may be waiting.
    AgreementStep {
        step: Signed<Step>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// Our (provider's) step sent to the consumer as a notification.
    AgreementNotify,
    /// We asked the provider for missing transcripts.
    AgreementSync,
    /// We asked a provider to open a pull.
    PullOpen(PullJob),
    /// We asked a provider to disclose records.
    Disclose {
        provider: PublicKey,
        asked: Box<crate::disclose::answer::Awaited>,
        reply: DisclosureReply,
    },
    /// We asked a custodian for a group key.
    GroupKey {
        group: String,
    },
    /// A ministry query for the comparator task.
    MinistryOp {
        provider: PublicKey,
        reply: Reply<Box<MinistryAnswered>>,
    },
    /// We asked a peer to witness our checkpoint `note` of `size` (the
    /// answer is checked against this note: the log may have grown since).
    Witness {
        size: u64,
        note: String,
    },
}

/// A control request being answered: who asked, where the answer goes,
/// and the request's hold on its connection's inbound budget, given back
/// once it is answered.
pub(crate) struct Answer {
    pub(super) peer: PeerId,
    pub(super) channel: libp2p::request_response::ResponseChannel<Response>,
    pub(super) held: super::net::Held,
}

/// A pull in flight at the consumer.
pub(crate) struct PullJob {
    pub(super) agreement: AgreementId,
    pub(super) epoch: u64,
    pub(super) pull_id: [u8; 16],
    pub(super) range: Option<(IdToken, IdToken)>,
    pub(super) reply: Option<PullReply>,
    /// The complete feed held, if this pull only checks that the provider
    /// has not republished the epoch since.
    pub(super) held: Option<Held>,
}

/// A complete pulled feed: its manifest's digest and size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub(super) manifest: dxmesh_protocol::merkle::Hash,
    pub(super) records: u64,
    pub(super) chunks: u32,
}

/// Who waits for a pull: the comparator's cycle, or an operator's
/// `dxmesh pull`.
pub(crate) enum PullReply {
    Cycle(Reply<()>),
    Admin(oneshot::Sender<AdminResponse>),
}

/// Who waits for a disclosure: the comparator's cycle, or an operator's
/// `dxmesh disclose` (which may want the records written to a file).
pub(crate) enum DisclosureReply {
    Cycle(Reply<Disclosed>),
    Admin {
        reply: oneshot::Sender<AdminResponse>,
        out: Option<String>,
    },
}

impl DisclosureReply {
    /// Tells whoever asked that the disclosure failed.
    pub(crate) fn fail(self, error: impl Into<NodeError>) {
        let error = error.into();
        match self {
            DisclosureReply::Cycle(reply) => {
                let _ = reply.send(Err(error.into()));
            }
            DisclosureReply::Admin { reply, .. } => answer_error(reply, error),
        }
    }
}

impl PullJob {
    pub(crate) fn key(&self) -> (AgreementId, u64) {
        (self.agreement, self.epoch)
    }

    /// Tells whoever waits that the pull failed; a check of a feed held
    /// that could not be made answers with the feed held.
    pub(crate) fn fail(self, error: impl Into<NodeError>) {
        match (self.reply, self.held) {
            (Some(reply), Some(held)) => {
                tracing::info!(
                    agreement = %dxmesh_protocol::hex(&self.agreement),
                    epoch = self.epoch,
                    error = %error.into(),
                    "using the feed held: the provider could not say whether it republished the epoch"
                );
                reply.held(self.agreement, self.epoch, &held)
            }
            (Some(reply), None) => reply.fail(error),
            (None, _) => {}
        }
    }
}

impl PullReply {
    /// Answers with the complete feed held.
    pub(crate) fn held(self, agreement: AgreementId, epoch: u64, held: &Held) {
        match self {
            PullReply::Cycle(reply) => {
                let _ = reply.send(Ok(()));
            }
            PullReply::Admin(reply) => {
                let _ = reply.send(AdminResponse::Pulled {
                    summary: PullSummary {
                        chunks: held.chunks,
                        records: held.records,
                        ..Default::default()
                    },
                    agreement: dxmesh_protocol::hex(&agreement),
                    epoch,
                });
            }
        }
    }

    /// Tells whoever asked that the pull failed.
    pub(crate) fn fail(self, error: impl Into<NodeError>) {
        match self {
            PullReply::Cycle(reply) => {
                let _ = reply.send(Err(error.into().into()));
            }
            PullReply::Admin(reply) => answer_error(reply, error.into()),
        }
    }
}

/// Answers an operator's request with an error.
pub(super) fn answer_error(reply: oneshot::Sender<AdminResponse>, error: impl std::fmt::Display) {
    let _ = reply.send(AdminResponse::Error {
        message: error.to_string(),
    });
}

/// A token given in hex by an operator.
pub(super) fn parse_token(h: &str) -> Result<IdToken, RequestError> {
    let bad = |problem: String| RequestError::BadToken {
        token: h.to_string(),
        problem,
    };
    let b = hex::decode(h.trim()).map_err(|e| bad(e.to_string()))?;
    let a: [u8; 16] = b
        .try_into()
        .map_err(|_| bad("must be 32 hex digits".into()))?;
    Ok(IdToken(a))
}

/// Results of background work, delivered to the event loop.
pub(crate) enum Event {
    /// Feeds were built.
    Published {
        results: Vec<(
            AgreementId,
            u64,
            Result<crate::publish::build::Published, NodeError>,
        )>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    },
    /// A download ended.
    PullDone {
        agreement: AgreementId,
        epoch: u64,
        result: Result<PullSummary, PullError>,
        reply: Option<PullReply>,
    },
    /// A bulk stream asks to be served.
    StreamAuth {
        peer: PeerId,
        request: ChunkRequest,
        reply: oneshot::Sender<Result<PathBuf, Refusal>>,
    },
    /// An event for the audit log from a background task.
    Audit(AuditEvent),
    /// A request answered off the event loop (a disclosure or a ministry
    /// query resolved): the answer to send.
    Answered { to: Answer, response: Response },
}
