//! Per-peer request rate limits: a token bucket per admitted member, so a
//! misbehaving member cannot exhaust a node with control requests before
//! the trust anchor revokes it. Each request takes a token; a member holds
//! at most `request_burst` tokens and regains `requests_per_sec` a second.
//! A request without a token is refused (`RateLimited`, with the time
//! until the next token). So that a flood cannot grow the audit log
//! without bound, the first refusal of a member is logged at once and
//! later ones at most once a minute per member, each entry saying how
//! many were refused since the one before.

use libp2p::PeerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often, at most, one member's refusals are written to the audit log.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(60);

/// The limiter's settings (from `[network]`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Tokens regained per second.
    pub per_sec: u32,
    /// Tokens held at most (and at first).
    pub burst: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refusals not yet written to the audit log.
    unlogged: u64,
    /// When a refusal was last written to the audit log.
    logged: Option<Instant>,
}

impl Bucket {
    /// Whether an audit entry may be written now (none in the last minute).
    fn log_due(&self, now: Instant) -> bool {
        self.logged
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY)
    }

    /// The refusals to log now, if any are unlogged and an entry is due.
    fn take_due(&mut self, now: Instant) -> Option<u64> {
        if self.unlogged == 0 || !self.log_due(now) {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Serve it.
    Allow,
    /// Refuse it; log it to the audit log if `log` is `Some(n)`: this
    /// refusal and the `n - 1` before it that were not logged.
    Refuse {
        /// Milliseconds until the member has a token again.
        retry_after_ms: u64,
        /// Refusals to report in one audit entry, if one is due.
        log: Option<u64>,
    },
}

/// Token buckets by member.
#[derive(Debug)]
pub(super) struct RateLimiter {
    limits: Limits,
    buckets: HashMap<PeerId, Bucket>,
}

impl RateLimiter {
    pub(super) fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token of `peer` at `now`, or says why not.
    pub(super) fn check(&mut self, peer: PeerId, now: Instant) -> Decision {
        let Limits { per_sec, burst } = self.limits;
        let burst = f64::from(burst.max(1));
        let rate = f64::from(per_sec);
        let b = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            at: now,
            unlogged: 0,
            logged: None,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Decision::Allow;
        }
        let retry_after_ms = if rate > 0.0 {
            (((1.0 - b.tokens) / rate) * 1000.0).ceil() as u64
        } else {
            u64::MAX
        };
        b.unlogged += 1;
        Decision::Refuse {
            retry_after_ms,
            log: b.take_due(now),
        }
    }

    /// The refusals not yet logged whose member's last entry is a minute
    /// old or more (to be logged now, so that a flood that stopped is
    /// still reported in full); and forgets members whose bucket has been
    /// full long enough to hold nothing worth keeping.
    pub(super) fn sweep(&mut self, now: Instant) -> Vec<(PeerId, u64)> {
        let full_after =
            f64::from(self.limits.burst.max(1)) / f64::from(self.limits.per_sec.max(1));
        let due: Vec<(PeerId, u64)> = self
            .buckets
            .iter_mut()
            .filter_map(|(peer, b)| b.take_due(now).map(|n| (*peer, n)))
            .collect();
        self.buckets.retain(|_, b| {
            b.unlogged > 0
                || now.saturating_duration_since(b.at).as_secs_f64() < full_after
                || !b.log_due(now)
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_served_then_refused_until_tokens_come_back() {
        let mut l = RateLimiter::new(Limits {
            per_sec: 10,
            burst: 3,
        });
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Decision::Allow);
        }
        // The first refusal is logged at once, with its own count.
        assert_eq!(
            l.check(a, t0),
            Decision::Refuse {
                retry_after_ms: 100,
                log: Some(1)
            }
        );
        // Later ones within the minute are counted, not logged.
        for _ in 0..5 {
            assert!(matches!(l.check(a, t0), Decision::Refuse { log: None, .. }));
        }
        // Another member is not affected.
        assert_eq!(l.check(b, t0), Decision::Allow);
        // A token a tenth of a second later; then refused again.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.check(a, t1), Decision::Allow);
        assert!(matches!(l.check(a, t1), Decision::Refuse { log: None, .. }));
        // A minute on, the next refusal is logged with every one since.
        let t2 = t0 + LOG_EVERY;
        for _ in 0..3 {
            assert_eq!(l.check(a, t2), Decision::Allow);
        }
        assert_eq!(
            l.check(a, t2),
            Decision::Refuse {
                retry_after_ms: 100,
                log: Some(7)
            }
        );
    }

    #[test]
    fn buckets_hold_the_burst_at_most_and_a_stopped_flood_is_still_logged() {
        let mut l = RateLimiter::new(Limits {
            per_sec: 1,
            burst: 2,
        });
        let a = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(l.check(a, t0), Decision::Allow);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(l.check(a, later), Decision::Allow);
        assert_eq!(l.check(a, later), Decision::Allow);
        assert!(matches!(l.check(a, later), Decision::Refuse { .. }));
        // Logged at once: nothing is due; the bucket is kept while its
        // last entry is recent.
        assert!(l.sweep(later).is_empty());
        assert!(matches!(
            l.check(a, later),
            Decision::Refuse { log: None, .. }
        ));
        assert!(l.sweep(later + Duration::from_secs(1)).is_empty());
        assert_eq!(l.buckets.len(), 1);
        // A minute on, the refusal not logged yet is due, once.
        let minute = later + LOG_EVERY;
        assert_eq!(l.sweep(minute), [(a, 1)]);
        assert!(l.sweep(minute).is_empty());
        // A full, quiet bucket is forgotten.
        assert!(l.sweep(minute + LOG_EVERY).is_empty());
        assert!(l.buckets.is_empty());
    }
}
