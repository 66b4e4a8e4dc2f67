//! The daemon's side of the operator console (`crate::console`): what its
//! pages show beyond the status and the agreements (which carry their
//! epochs and quotas used): roster members, the audit log's tail,
//! checkpoint and cosignatures; and the durable record of every console
//! login and action.

use super::node::Node;
use crate::admin::{AdminResponse, ConsoleInfo, MemberInfo};
use crate::audit::log;
use dxmesh_protocol::audit::{Entry, Event};
use dxmesh_protocol::codec;

/// Entries the audit page shows.
const TAIL: usize = 50;

impl Node {
    /// What the console shows beyond `Status` and the agreement list.
    pub(super) fn console_info(&self) -> ConsoleInfo {
        let audit_tail = self
            .core
            .store
            .audit_tail(TAIL)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(seq, bytes)| {
                let e: Entry = codec::decode(&bytes).ok()?;
                Some((
                    seq,
                    e.at.to_string(),
                    e.event.kind().to_string(),
                    serde_json::to_string(&e.event).unwrap_or_default(),
                ))
            })
            .collect();
        let members = self
            .trust
            .members()
            .iter()
            .map(|m| MemberInfo {
                peer_id: m.public_key.peer_id().to_string(),
                department: m.department.clone(),
                role: m.role.to_string(),
                display_name: m.display_name.clone(),
                admission: self.trust.admitted(&m.public_key).to_string(),
            })
            .collect();
        ConsoleInfo {
            audit_size: self.core.audit.size(),
            checkpoint: self.core.audit.latest().map(str::to_string),
            cosignatures: log::cosignatures(&self.core.store, self.core.audit.sealed())
                .unwrap_or_default(),
            audit_tail,
            alerts: log::evidence(&self.core.store).map_or(0, |e| e.len() as u64),
            retention: self.retention_warnings(),
            members,
        }
    }

    /// Records a console login or action; only those two kinds of event
    /// are taken. Answered once the entry is stored.
    pub(super) fn console_audit(&mut self, event: Event) -> AdminResponse {
        if !matches!(
            event,
            Event::ConsoleLogin { .. } | Event::ConsoleAction { .. }
        ) {
            return AdminResponse::Error {
                message: format!(
                    "the console records logins and actions, not {}",
                    event.kind()
                ),
            };
        }
        match self.core.log_durably(event) {
            Ok(()) => {
                self.core.seal_audit();
                AdminResponse::Logged
            }
            Err(e) => AdminResponse::Error {
                message: e.to_string(),
            },
        }
    }
}
