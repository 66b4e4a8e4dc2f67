//! What every stage of the running node shares: its configuration and
//! identity, the state store, the libp2p swarm, the data directory, the
//! agreements it is party to, the audit log, the control requests it has
//! sent and awaits, the members connected, the metrics, and the bound on
//! checks run off the event loop; and the verbs every stage
//! uses on them: send a request, answer one, log an event. The stages' own
//! state lives beside it in [`super::node::Node`], each owned by its stage.

use super::net::Behaviour;
use super::pending::{Answer, Pending};
use crate::agreements::threads::Agreements;
use crate::base::clock::now;
use crate::base::config::Config;
use crate::base::store::{Store, StoreError};
use dxmesh_protocol::audit::Event as AuditEvent;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::request_response::OutboundRequestId;
use libp2p::{PeerId, Swarm};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// What every stage shares.
pub(super) struct Core {
    /// The node's configuration.
    pub(super) config: Config,
    /// The node's identity.
    pub(super) identity: Identity,
    /// The redb state store.
    pub(super) store: Store,
    /// The libp2p swarm.
    pub(super) swarm: Swarm<Behaviour>,
    /// Members connected now.
    pub(super) connected: HashSet<PeerId>,
    /// Control requests sent and not answered yet, with what each was for.
    pub(super) pending: HashMap<OutboundRequestId, Pending>,
    /// Sharing agreements this node is a party to.
    pub(super) agreements: Agreements,
    /// The node's data directory.
    pub(super) data_dir: PathBuf,
    /// Checks running off the event loop: one per core but one at a time.
    pub(super) checks: std::sync::Arc<tokio::sync::Semaphore>,
    /// The tamper-evident audit log.
    pub(super) audit: crate::audit::log::AuditLog,
    /// What `/metrics` shows.
    pub(super) metrics: std::sync::Arc<crate::console::metrics::Metrics>,
}

impl Core {
    /// Sends the answer to a control request (and gives back its hold on
    /// the connection's budget).
    pub(super) fn respond(&mut self, to: Answer, response: Response) {
        let Answer {
            peer,
            channel,
            held,
        } = to;
        if self
            .swarm
            .behaviour_mut()
            .control
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, "response not sent: the stream closed");
        }
        drop(held);
    }

    pub(super) fn send(&mut self, peer: PeerId, request: Request, kind: Pending) {
        let id = self
            .swarm
            .behaviour_mut()
            .control
            .send_request(&peer, request.into());
        self.pending.insert(id, kind);
    }

    /// Appends an event to the audit log (durably, with its checkpoint).
    pub(super) fn log(&mut self, event: AuditEvent) {
        let _ = self.log_durably(event);
    }

    /// Appends an event to the audit log and returns whether it is stored,
    /// for the steps that must not go on without their record (signing a
    /// commitment, serving a disclosure under one).
    pub(super) fn log_durably(&mut self, event: AuditEvent) -> Result<(), StoreError> {
        let kind = event.kind();
        self.metrics.observe(&event);
        let appended = self.audit.append(&self.store, now(), event);
        self.metrics.audit_size(self.audit.size());
        appended.map(|_| ()).inspect_err(
            |e| tracing::error!(error = %e, kind, "AUDIT: cannot append to the audit log"),
        )
    }
    /// Signs a checkpoint over what was appended since the last one.
    pub(super) fn seal_audit(&mut self) {
        if let Err(e) = self.audit.seal(&self.store, &self.identity) {
            tracing::error!(error = %e, "AUDIT: cannot store a checkpoint");
        }
    }
}
