//! The daemon's side of the operator console (`crate::console`): what its
//! pages show beyond the status and the agreements (which carry their
//! epochs and quotas used): roster members, the audit log's tail,
//! checkpoint and cosignatures; and the durable record of every console
//! login and action.

use super::node::Node;
use crate::admin::{AdminResponse, AuditLine, AuditPage, AuditQuery, ConsoleInfo, MemberInfo};
use crate::audit::log;
use crate::audit::words;
use crate::base::store::Store;
use dxmesh_protocol::audit::{Entry, Event};
use dxmesh_protocol::codec;

/// Entries a page of the audit log shows.
const PAGE: usize = 50;
/// Entries a page looks through at most for those its filters keep (the
/// next page goes on from there).
const SCAN: usize = 20_000;

impl Node {
    /// What the console shows beyond `Status` and the agreement list.
    pub(super) fn console_info(&self) -> ConsoleInfo {
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
            alerts: log::evidence(&self.core.store).map_or(0, |e| e.len() as u64),
            retention: self.retention_warnings(),
            members,
        }
    }

    /// A page of the audit log in words, answered on `reply` once a
    /// blocking thread has looked through the log (the event loop goes on
    /// meanwhile): the names as they are now, the store shared.
    pub(super) fn audit_page(
        &self,
        q: AuditQuery,
        reply: tokio::sync::oneshot::Sender<AdminResponse>,
    ) {
        let book = self.name_book();
        let store = self.core.store.clone();
        let size = self.core.audit.size();
        tokio::task::spawn_blocking(move || {
            let _ = reply.send(audit_page(&store, &q, &book, size));
        });
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

/// How the audit page names nodes and agreements: the roster's members
/// and the agreements held, as they were when the page was asked for.
struct NameBook {
    members: Vec<dxmesh_protocol::roster::Member>,
    /// Each accepted agreement's thread and name, by agreement id.
    agreements: std::collections::HashMap<
        dxmesh_protocol::hash::Hash,
        (dxmesh_protocol::hash::Hash, String),
    >,
}

impl NameBook {
    /// The thread whose page shows agreement `id` (the id itself if none).
    fn thread_of(&self, id: &dxmesh_protocol::hash::Hash) -> dxmesh_protocol::hash::Hash {
        self.agreements.get(id).map_or(*id, |(t, _)| *t)
    }

    fn department(&self, key: &dxmesh_protocol::identity::PublicKey) -> String {
        self.members
            .iter()
            .find(|m| m.public_key == *key)
            .map_or_else(|| "unknown".to_string(), |m| m.department.clone())
    }
}

impl Node {
    /// The names the audit page uses, now.
    fn name_book(&self) -> NameBook {
        let members = self.trust.members().to_vec();
        let mut book = NameBook {
            members,
            agreements: Default::default(),
        };
        let named: Vec<_> = self
            .core
            .agreements
            .threads()
            .filter(|t| t.state.agreement_id().is_some())
            .map(|t| {
                let terms = &t.state.terms;
                let name = format!(
                    "{}, {} → {} ({})",
                    terms.dataset,
                    book.department(&terms.provider),
                    book.department(&terms.consumer),
                    words::short(&terms.id())
                );
                (terms.id(), (t.state.thread, name))
            })
            .collect();
        book.agreements.extend(named);
        book
    }
}

impl words::Names for NameBook {
    fn peer(&self, key: &dxmesh_protocol::identity::PublicKey) -> String {
        let id = key.peer_id().to_string();
        let tail = &id[id.len().saturating_sub(8)..];
        match self.members.iter().find(|m| m.public_key == *key) {
            Some(m) if !m.display_name.is_empty() && m.display_name != m.department => {
                format!("{} ({}, …{tail})", m.department, m.display_name)
            }
            Some(m) => format!("{} (…{tail})", m.department),
            None => format!("unknown node (…{tail})"),
        }
    }

    fn agreement(&self, id: &dxmesh_protocol::hash::Hash) -> String {
        match self.agreements.get(id) {
            Some((_, name)) => name.clone(),
            None => format!("agreement {}", words::short(id)),
        }
    }
}

/// A page of the audit log in words: up to [`PAGE`] entries the query
/// keeps, newest first, from its `before` on (a log of `size` entries).
fn audit_page(store: &Store, q: &AuditQuery, book: &NameBook, size: u64) -> AdminResponse {
    let party = q
        .party
        .as_deref()
        .map(str::to_lowercase)
        .filter(|p| !p.is_empty());
    let day = |d: &Option<String>| d.as_deref().filter(|d| !d.is_empty()).map(str::to_string);
    let (from, to) = (day(&q.from), day(&q.to));
    for (name, d) in [("from", &from), ("to", &to)] {
        if let Some(d) = d
            && dxmesh_protocol::date::Date::parse(d).is_err()
        {
            return AdminResponse::Error {
                message: format!("{name} {d:?}: not a day (YYYY-MM-DD)"),
            };
        }
    }
    let kind = q.kind.as_deref().filter(|k| !k.is_empty());
    let mut lines = Vec::new();
    let mut before = q.before;
    let mut scanned = 0;
    let older = loop {
        let batch = match store.audit_before(before, 1_000) {
            Ok(b) => b,
            Err(e) => {
                return AdminResponse::Error {
                    message: e.to_string(),
                };
            }
        };
        let Some(&(last, _)) = batch.last() else {
            break None;
        };
        for (seq, bytes) in batch {
            scanned += 1;
            before = Some(seq);
            let Ok(e) = codec::decode::<Entry>(&bytes) else {
                continue;
            };
            let at = e.at.to_string();
            let date = at.get(..10).unwrap_or("");
            if kind.is_some_and(|k| k != e.event.kind())
                || from.as_deref().is_some_and(|f| date < f)
                || to.as_deref().is_some_and(|t| date > t)
            {
                continue;
            }
            let w = words::describe(&e.event, book);
            if let Some(p) = &party {
                let said = format!("{} {}", w.party.as_deref().unwrap_or(""), w.what);
                if !said.to_lowercase().contains(p) {
                    continue;
                }
            }
            let feed = words::feed_of(&e.event)
                .map(|(a, epoch)| format!("feed-{}-{epoch}", dxmesh_protocol::hex(&a)));
            lines.push(AuditLine {
                feed,
                seq,
                at,
                kind: e.event.kind().to_string(),
                kind_words: w.kind.to_string(),
                party: w.party,
                what: w.what,
                agreement: w.agreement.map(|id| {
                    (
                        dxmesh_protocol::hex(&book.thread_of(&id)),
                        words::Names::agreement(book, &id),
                    )
                }),
            });
            if lines.len() == PAGE {
                break;
            }
        }
        if lines.len() == PAGE || scanned >= SCAN || last == 0 {
            break before.filter(|&b| b > 0);
        }
    };
    AdminResponse::AuditPage(AuditPage { lines, size, older })
}
