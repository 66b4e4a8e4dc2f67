//! The comparator cycle's way to the node: each network step ([`Op`]) goes
//! to the node's event loop with a channel typed for its own answer, and
//! [`Handle`] has one method per step, so the cycle gets what that step
//! returns and nothing it must sort out. The cycle knows nothing else of
//! the daemon.

use crate::compare::error::StepError;
use dxmesh_protocol::agreement::{AgreementId, Refusal};
use dxmesh_protocol::audit::Event;
use dxmesh_protocol::commitment::ResultCommitment;
use dxmesh_protocol::feed::{Disclosure, DisclosureReceipt, MinistryAnswer};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{DisclosureRequest, Request};
use tokio::sync::{mpsc, oneshot};

/// Where the event loop sends a step's answer, or why it failed.
pub type Reply<T> = oneshot::Sender<Result<T, StepError>>;

/// What a provider answered a disclosure request.
pub enum Disclosed {
    /// Its signed disclosure (verified, and about exactly what was asked),
    /// with its receipt for the ID numbers disclosed, if `id_number` was
    /// asked for.
    Records(Box<(Disclosure, Option<Signed<DisclosureReceipt>>)>),
    /// It refused, for this reason.
    Refused(Refusal),
}

/// The ministry's signed answer and its body (verified).
pub type MinistryAnswered = (Signed<MinistryAnswer>, MinistryAnswer);

/// A ministry query the cycle asks the node to send.
pub struct MinistryAsk {
    /// The agreement with the ministry.
    pub agreement: AgreementId,
    /// The epoch of the comparator's cycle.
    pub epoch: u64,
    /// The fields of the national index asked for.
    pub fields: Vec<String>,
    /// The candidates' ID numbers, each with its token (sorted).
    pub ids: Vec<(IdToken, IdNumber)>,
    /// The commitment to the candidates.
    pub commitment: Signed<ResultCommitment>,
    /// The registry provider's receipt for exactly these IDs.
    pub receipt: Signed<DisclosureReceipt>,
}

impl MinistryAsk {
    /// The control request that carries it.
    pub fn into_request(self) -> Request {
        Request::MinistryQuery {
            agreement: self.agreement,
            epoch: self.epoch,
            fields: self.fields,
            ids: self.ids,
            commitment: self.commitment,
            receipt: Box::new(self.receipt),
        }
    }
}

/// A network step the comparator task asks the event loop to take, with
/// where its answer goes.
pub enum Op {
    /// Pull the feed of an agreement for an epoch (answered once it is held).
    Pull {
        /// The agreement the feed is published under.
        agreement: AgreementId,
        /// The epoch (cycle number) of the feed.
        epoch: u64,
        /// Answered once the feed is pulled and verified.
        reply: Reply<()>,
    },
    /// Ask a provider to disclose the fields of some result persons.
    Disclose {
        /// The request.
        request: Box<DisclosureRequest>,
        /// The provider's answer.
        reply: Reply<Disclosed>,
    },
    /// Ask the ministry which of these ID numbers are insured elsewhere.
    Ministry {
        /// The query.
        query: Box<MinistryAsk>,
        /// The ministry's answer.
        reply: Reply<Box<MinistryAnswered>>,
    },
    /// Append an event to the node's audit log (answered once it is durable).
    Log {
        /// The event.
        event: Box<Event>,
        /// Answered once the event is durable.
        reply: Reply<()>,
    },
    /// Sign a result commitment and log it (answered once it is durable).
    Commit {
        /// What to sign.
        statement: Box<ResultCommitment>,
        /// The commitment, signed and logged.
        reply: Reply<Signed<ResultCommitment>>,
    },
}

/// The cycle's way to the node's event loop.
#[derive(Clone)]
pub struct Handle(mpsc::UnboundedSender<Op>);

impl Handle {
    /// A handle and the receiving end the event loop polls.
    pub fn new() -> (Handle, mpsc::UnboundedReceiver<Op>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Handle(tx), rx)
    }

    /// Has the node take the step `op` makes and waits for its answer.
    async fn ask<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, StepError> {
        let (tx, rx) = oneshot::channel();
        self.0.send(op(tx)).map_err(|_| StepError::ShuttingDown)?;
        rx.await.map_err(|_| StepError::ShuttingDown)?
    }

    /// Has the feed of `agreement` for `epoch` pulled (or finds it held).
    pub async fn pull(&self, agreement: AgreementId, epoch: u64) -> Result<(), StepError> {
        self.ask(|reply| Op::Pull {
            agreement,
            epoch,
            reply,
        })
        .await
    }

    /// Asks the agreement's provider to disclose.
    pub async fn disclose(&self, request: DisclosureRequest) -> Result<Disclosed, StepError> {
        self.ask(|reply| Op::Disclose {
            request: Box::new(request),
            reply,
        })
        .await
    }

    /// Asks the ministry.
    pub async fn ministry(&self, query: MinistryAsk) -> Result<Box<MinistryAnswered>, StepError> {
        self.ask(|reply| Op::Ministry {
            query: Box::new(query),
            reply,
        })
        .await
    }

    /// Appends `event` to the node's audit log, durably.
    pub async fn log(&self, event: Event) -> Result<(), StepError> {
        self.ask(|reply| Op::Log {
            event: Box::new(event),
            reply,
        })
        .await
    }

    /// Has the node sign `statement` and log it, durably.
    pub async fn commit(
        &self,
        statement: ResultCommitment,
    ) -> Result<Signed<ResultCommitment>, StepError> {
        self.ask(|reply| Op::Commit {
            statement: Box::new(statement),
            reply,
        })
        .await
    }
}
