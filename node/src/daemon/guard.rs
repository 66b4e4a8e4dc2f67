//! The node's guard: what it refuses its peers and how the refusals are
//! kept. It owns the per-member rate limiter, the logs that write repeated
//! refusals to the audit log at most once a minute (requests under
//! agreements by kind, requester, agreement and code; other repeatable
//! refusals by peer, kind and class) and the recent refusals `status`
//! shows. It decides and counts; the audit entries it returns are written
//! by the node ([`super::node::Node::log`]), which owns the log.

use super::limits::{Decision, Limits, RateLimiter, RefusalLog};
use crate::admin::RefusalInfo;
use crate::base::clock::now;
use dxmesh_protocol::agreement::{AgreementId, Refusal};
use dxmesh_protocol::audit::Event as AuditEvent;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::wire::Response;
use libp2p::PeerId;
use std::collections::VecDeque;
use std::time::Instant;

/// How many recent refusals `status` shows.
pub(super) const REFUSALS_KEPT: usize = 50;

/// What makes two refusals of requests under agreements the same for the
/// audit log: the kind of request, the requester, the agreement and the
/// refusal's code.
type RequestKey = (String, PeerId, AgreementId, &'static str);

/// What makes two other repeatable refusals the same: the peer, the kind
/// of refusal and its class (refusals of one class differ only in details).
type RepeatKey = (PeerId, &'static str, String);

/// Refusals: decided, counted, kept for `status`.
#[derive(Debug)]
pub(super) struct Guard {
    recent: VecDeque<RefusalInfo>,
    limiter: RateLimiter,
    limits: Limits,
    requests: RefusalLog<RequestKey, (Option<PublicKey>, Refusal)>,
    repeated: RefusalLog<RepeatKey, String>,
}

impl Guard {
    /// A guard limiting each member to `limits`.
    pub(super) fn new(limits: Limits) -> Guard {
        Guard {
            recent: VecDeque::new(),
            limiter: RateLimiter::new(limits),
            limits,
            requests: RefusalLog::new(),
            repeated: RefusalLog::new(),
        }
    }

    /// The most recent refusals, oldest first.
    pub(super) fn recent(&self) -> Vec<RefusalInfo> {
        self.recent.iter().cloned().collect()
    }

    /// Notes a refusal for `status` (and the node's log).
    pub(super) fn note(&mut self, peer: Option<PeerId>, remote: Option<String>, reason: String) {
        tracing::warn!(
            peer = peer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into()),
            remote = remote.as_deref().unwrap_or("-"),
            %reason,
            "refused"
        );
        if self.recent.len() == REFUSALS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(RefusalInfo {
            at: now().to_string(),
            peer_id: peer.map(|p| p.to_string()),
            remote,
            reason,
        });
    }

    /// A refusal noted and logged at once: the audit entry to write.
    pub(super) fn refused(
        &mut self,
        peer: Option<PeerId>,
        remote: Option<String>,
        reason: String,
    ) -> AuditEvent {
        self.note(peer, remote, reason.clone());
        AuditEvent::PeerRefused {
            peer: peer.and_then(|p| PublicKey::from_peer_id(&p)),
            reason,
        }
    }

    /// Takes a request token of `peer`: `None` to serve its request, else
    /// the refusal to answer with, and the audit entry to write if one is
    /// due (the first at once, then at most once a minute per member).
    pub(super) fn rate(&mut self, peer: PeerId) -> Option<(Response, Option<AuditEvent>)> {
        match self.limiter.check(peer, Instant::now()) {
            Decision::Allow => None,
            Decision::Refuse {
                retry_after_ms,
                log,
            } => {
                let entry = log.map(|n| self.rate_limited(peer, n));
                if entry.is_none() {
                    tracing::debug!(%peer, "rate limited");
                }
                let response = Response::Refused {
                    reason: dxmesh_protocol::wire::Refusal::RateLimited { retry_after_ms },
                };
                Some((response, entry))
            }
        }
    }

    fn rate_limited(&mut self, peer: PeerId, n: u64) -> AuditEvent {
        let reason = format!(
            "control request: rate limited ({n} request(s) refused; the limit is {} a second, {} at once)",
            self.limits.per_sec, self.limits.burst
        );
        self.refused(Some(peer), None, reason)
    }

    /// A request of `peer` refused that it may repeat at will (`what`: a
    /// control frame over its kind's limit or the connection's budget, or
    /// not a message; a group key request; a roster): noted and logged the
    /// first time at once, then at most once a minute per peer, kind and
    /// `class`, with the count since the entry before. The audit entry to
    /// write, if one is due.
    pub(super) fn repeated(
        &mut self,
        peer: PeerId,
        (what, class): (&'static str, String),
        reason: String,
    ) -> Option<AuditEvent> {
        tracing::debug!(%peer, what, %reason, "refused");
        let n = self
            .repeated
            .refuse((peer, what, class), reason.clone(), Instant::now())?;
        self.note(Some(peer), None, format!("{what} {reason}"));
        Some(repeated_entry(peer, what, &reason, n))
    }

    /// A request under `agreement` refused (`what`: pull, disclosure,
    /// ministry query, feed stream): noted, and the `request_refused`
    /// audit entry to write if one is due (once a minute per kind,
    /// requester, agreement and code).
    pub(super) fn request(
        &mut self,
        peer: PeerId,
        (what, agreement): (&str, AgreementId),
        refusal: &Refusal,
    ) -> Option<AuditEvent> {
        self.note(
            Some(peer),
            None,
            format!("{what}: {refusal} [{}]", refusal.code()),
        );
        let requester = PublicKey::from_peer_id(&peer);
        // Agreement ids a peer makes up are one run, not one each.
        let run = match refusal {
            Refusal::UnknownAgreement => [0; 32],
            _ => agreement,
        };
        let key = (what.to_string(), peer, run, refusal.code());
        let count = self
            .requests
            .refuse(key, (requester, refusal.clone()), Instant::now())?;
        Some(AuditEvent::RequestRefused {
            kind: what.to_string(),
            requester,
            agreement: Some(agreement),
            refusal: refusal.clone(),
            count,
        })
    }

    /// The audit entries of refusals counted and not logged yet whose
    /// minute is up (a flood that stopped is still reported in full).
    pub(super) fn sweep(&mut self) -> Vec<AuditEvent> {
        let at = Instant::now();
        let mut out = Vec::new();
        for (peer, n) in self.limiter.sweep(at) {
            out.push(self.rate_limited(peer, n));
        }
        for ((peer, what, _), reason, n) in self.repeated.sweep(at) {
            out.push(repeated_entry(peer, what, &reason, n));
        }
        for ((kind, _, agreement, _), (requester, refusal), count) in self.requests.sweep(at) {
            out.push(AuditEvent::RequestRefused {
                kind,
                requester,
                agreement: Some(agreement),
                refusal,
                count,
            });
        }
        out
    }
}

fn repeated_entry(peer: PeerId, what: &str, reason: &str, n: u64) -> AuditEvent {
    AuditEvent::PeerRefused {
        peer: PublicKey::from_peer_id(&peer),
        reason: format!("{what} {reason} ({n} refused since the last entry)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(Limits {
            per_sec: 1,
            burst: 1,
        })
    }

    #[test]
    fn refusals_under_made_up_agreements_are_one_run_and_each_is_noted() {
        let mut g = guard();
        let peer = PeerId::random();
        let first = g.request(peer, ("pull", [1; 32]), &Refusal::UnknownAgreement);
        assert!(matches!(
            first,
            Some(AuditEvent::RequestRefused { count: 1, .. })
        ));
        // Another made-up agreement within the minute: counted, not logged.
        assert_eq!(
            g.request(peer, ("pull", [2; 32]), &Refusal::UnknownAgreement),
            None
        );
        // A refusal of another code is logged at once.
        assert!(
            g.request(peer, ("pull", [1; 32]), &Refusal::Suspended)
                .is_some()
        );
        assert_eq!(g.recent().len(), 3, "each is noted for status");
    }

    #[test]
    fn a_member_past_its_burst_is_refused_and_logged_once_with_its_limits() {
        let mut g = guard();
        let peer = PeerId::random();
        assert!(g.rate(peer).is_none(), "its burst of one is served");
        let Some((Response::Refused { .. }, Some(AuditEvent::PeerRefused { reason, .. }))) =
            g.rate(peer)
        else {
            panic!("the first refusal is logged");
        };
        assert!(reason.contains("1 a second, 1 at once"), "{reason}");
        assert!(
            matches!(g.rate(peer), Some((_, None))),
            "the next is counted"
        );
    }

    #[test]
    fn a_repeated_refusal_is_logged_once_a_minute_per_class() {
        let mut g = guard();
        let peer = PeerId::random();
        let frame = |n: u32| {
            (
                "control frame",
                String::new(),
                format!("refused: {n} bytes"),
            )
        };
        let (what, class, reason) = frame(1);
        assert!(g.repeated(peer, (what, class), reason).is_some());
        // The same class again (other details): counted, not logged.
        let (what, class, reason) = frame(2);
        assert!(g.repeated(peer, (what, class), reason).is_none());
        // Another class, or another peer: logged at once.
        assert!(
            g.repeated(peer, ("group key", "x".into()), "no".into())
                .is_some()
        );
        let (what, class, reason) = frame(3);
        assert!(
            g.repeated(PeerId::random(), (what, class), reason)
                .is_some()
        );
        assert_eq!(g.recent().len(), 3, "only what is logged is noted");
    }

    #[test]
    fn status_keeps_the_latest_refusals_only() {
        let mut g = guard();
        for i in 0..REFUSALS_KEPT + 5 {
            g.note(None, None, format!("refusal {i}"));
        }
        let recent = g.recent();
        assert_eq!(recent.len(), REFUSALS_KEPT);
        assert_eq!(recent[0].reason, "refusal 5");
    }
}
