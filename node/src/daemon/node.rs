//! The running node, owned by the one task that runs the event loop
//! (`events`): the [`Core`] every stage shares and one desk per stage
//! beside it, each the only owner of its state: `trust::Trust` (roster,
//! addresses, admission, the guard over refusals), `publish::Publishing`
//! (group keys, publishes waiting for one, builds), `pull::Pulling` (pulls
//! in flight, retries, erasures), `witness::Auditing` (steps logged,
//! witness requests), the ministry's national indexes and the comparator's
//! cycle handle. A desk's handlers take `(&mut self, core, ...)`; what
//! needs several desks (serving a peer's pull, disclosure, ministry query
//! or key request; the comparator's steps; `status`) is `Node`'s, which
//! lends each desk to the other. Checks too heavy for the loop run off it
//! ([`Node::off_loop`]) and come back as a [`Resume`].
//!
//! [`Core`]: super::core::Core

use dxmesh_protocol::agreement::Refusal;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::signed::{Signed, SignedKind};
use dxmesh_protocol::wire::Response;
use std::time::Instant;

/// Work done off the event loop (a check too heavy for it), to be
/// continued on it with the whole node.
pub(super) type Resume = Box<dyn FnOnce(&mut Node) + Send>;

pub(super) use super::pending::{
    Answer, DisclosureReply, Event, Pending, answer_error, parse_token,
};

/// The running node: the router that hands each event to the desk that
/// owns it. Each desk's state is its own; the handlers that need more
/// than one desk (serving a pull, a disclosure or a ministry query, the
/// comparator's steps) are `Node`'s and pass each desk what it needs.
pub(super) struct Node {
    /// What every stage shares.
    pub(super) core: super::core::Core,
    /// The trust desk: roster, addresses, admission and refusals.
    pub(super) trust: super::trust::Trust,
    /// The publish desk: group keys, publishes waiting for one, feeds
    /// being built.
    pub(super) publish: super::publish::Publishing,
    /// The pull desk: pulls in flight, automatic retries, erasures logged.
    pub(super) pulls: super::pull::Pulling,
    /// The audit desk: agreement steps logged, witness requests in flight.
    pub(super) auditing: super::witness::Auditing,
    /// The national indexes open and being built (a ministry node's).
    pub(super) national: crate::ministry::index::Indexes,
    /// Handed to each comparator cycle for its network steps.
    pub(super) cycle: crate::compare::ops::Handle,
    /// Continues checks run off the event loop ([`Node::off_loop`]).
    pub(super) resume: tokio::sync::mpsc::UnboundedSender<Resume>,
    /// When the node started (for `status`).
    pub(super) started: Instant,
    /// The operator console's URL, if it runs.
    pub(super) console_url: Option<String>,
}

impl Node {
    /// Runs `work` on a blocking thread (as many at a time as there are
    /// cores but one, at least one),
    /// then `then` with its result on the event loop: how checks too heavy
    /// for the loop (long transcripts, proofs over many tokens) run while
    /// `status` and other peers are still served.
    pub(super) fn off_loop<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        then: impl FnOnce(&mut Node, T) + Send + 'static,
    ) {
        let (resume, checks) = (self.resume.clone(), self.core.checks.clone());
        tokio::spawn(async move {
            let Ok(_permit) = checks.acquire_owned().await else {
                return;
            };
            let Ok(out) = tokio::task::spawn_blocking(work).await else {
                tracing::error!("a check off the event loop failed");
                return;
            };
            let _ = resume.send(Box::new(move |node: &mut Node| then(node, out)));
        });
    }
}

/// Signs `value` with the node's key (made from its seed, so that a
/// blocking thread can sign) and wraps it in a response; if it cannot be
/// signed, the provider failed to serve `epoch`.
pub(super) fn signed_answer<T: SignedKind>(
    seed: &[u8; 32],
    value: &T,
    epoch: u64,
    wrap: impl FnOnce(Signed<T>) -> Response,
) -> Response {
    match Identity::from_seed(*seed)
        .ok()
        .and_then(|id| Signed::sign(&id, value).ok())
    {
        Some(signed) => wrap(signed),
        None => Response::Denied {
            refusal: Refusal::ProviderFailed { epoch },
        },
    }
}
