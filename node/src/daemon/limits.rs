//! Per-peer request rate limits: a token bucket per admitted member, so a
//! misbehaving member cannot exhaust a node with control requests before
//! the trust anchor revokes it. Each request takes a token; a member holds
//! at most `request_burst` tokens and regains `requests_per_sec` a second.
//! A request without a token is refused (`RateLimited`, with the time
//! until the next token). So that a flood cannot grow the audit log
//! without bound, the first refusal of a member is logged at once and
//! later ones at most once a minute per member, each entry saying how
//! many were refused since the one before ([`Throttled`]); refusals of
//! requests under agreements are counted the same way per kind,
//! requester, agreement and code ([`RefusalLog`]).

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

/// Repeated refusals of one kind, written to the audit log at most once a
/// minute: the first at once, later ones counted into the next entry.
#[derive(Debug, Default)]
pub(super) struct Throttled {
    /// Refusals not yet written to the audit log.
    unlogged: u64,
    /// When a refusal was last written to the audit log.
    logged: Option<Instant>,
}

impl Throttled {
    /// Whether an audit entry may be written now (none in the last minute).
    pub(super) fn log_due(&self, now: Instant) -> bool {
        self.logged
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY)
    }

    /// Counts one refusal; the refusals to log now (this one and those not
    /// logged before it), if an entry is due.
    pub(super) fn refuse(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        self.take_due(now)
    }

    /// The refusals to log now, if any are unlogged and an entry is due.
    pub(super) fn take_due(&mut self, now: Instant) -> Option<u64> {
        if self.unlogged == 0 || !self.log_due(now) {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }

    /// Whether refusals wait to be logged.
    pub(super) fn pending(&self) -> bool {
        self.unlogged > 0
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// The member's refusals and their audit entries.
    log: Throttled,
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
            log: Throttled::default(),
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
        Decision::Refuse {
            retry_after_ms,
            log: b.log.refuse(now),
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
            .filter_map(|(peer, b)| b.log.take_due(now).map(|n| (*peer, n)))
            .collect();
        self.buckets.retain(|_, b| {
            b.log.pending()
                || now.saturating_duration_since(b.at).as_secs_f64() < full_after
                || !b.log.log_due(now)
        });
        due
    }
}

/// Retries of automatic work (a scheduled pull) by key: the first try at
/// once, each later one after twice the delay of the one before, from
/// `first` up to `max`. A key whose work completed is simply not asked
/// about again; keys are forgotten with [`Backoff::forget_before`].
#[derive(Debug)]
pub(super) struct Backoff<K: std::hash::Hash + Eq> {
    first: Duration,
    max: Duration,
    tries: HashMap<K, (Instant, u32)>,
}

impl<K: std::hash::Hash + Eq> Backoff<K> {
    /// Delays from `first`, doubling, at most `max`.
    pub(super) fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            tries: HashMap::new(),
        }
    }

    /// Whether `key` may be tried at `now`; if so, the try is counted.
    pub(super) fn due(&mut self, key: &K, now: Instant) -> bool
    where
        K: Clone,
    {
        match self.tries.get_mut(key) {
            None => {
                self.tries.insert(key.clone(), (now, 1));
                true
            }
            Some((last, n)) => {
                let delay = self
                    .first
                    .saturating_mul(1u32 << (*n - 1).min(20))
                    .min(self.max);
                if now.saturating_duration_since(*last) < delay {
                    return false;
                }
                *last = now;
                *n = n.saturating_add(1);
                true
            }
        }
    }

    /// Forgets keys last tried before `cutoff`.
    pub(super) fn forget_before(&mut self, cutoff: Instant) {
        self.tries.retain(|_, (last, _)| *last >= cutoff);
    }
}

/// Refusals of requests under agreements, by what makes them the same
/// (kind, requester, agreement and refusal code): each written to the audit
/// log at most once a minute, so that a peer asking again and again (an
/// automatic pull of a feed it may not have) does not flood the log. The
/// latest refusal of each is kept for its next entry.
#[derive(Debug)]
pub(super) struct RefusalLog<K: std::hash::Hash + Eq + Clone, R> {
    seen: HashMap<K, (Throttled, R)>,
}

impl<K: std::hash::Hash + Eq + Clone, R: Clone> RefusalLog<K, R> {
    /// No refusal seen yet.
    pub(super) fn new() -> Self {
        RefusalLog {
            seen: HashMap::new(),
        }
    }

    /// Counts a refusal; `Some(n)` if an entry is due now (for this one and
    /// the `n - 1` before it that were not logged).
    pub(super) fn refuse(&mut self, key: K, refusal: R, now: Instant) -> Option<u64> {
        let (t, last) = self
            .seen
            .entry(key)
            .or_insert_with(|| (Throttled::default(), refusal.clone()));
        *last = refusal;
        t.refuse(now)
    }

    /// The refusals not logged whose last entry is a minute old or more
    /// (a run of refusals that stopped is still reported in full), and
    /// forgets those with nothing left to report.
    pub(super) fn sweep(&mut self, now: Instant) -> Vec<(K, R, u64)> {
        let due = self
            .seen
            .iter_mut()
            .filter_map(|(k, (t, r))| t.take_due(now).map(|n| (k.clone(), r.clone(), n)))
            .collect();
        self.seen.retain(|_, (t, _)| t.pending() || !t.log_due(now));
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

#[cfg(test)]
mod refusal_log_tests {
    use super::*;

    #[test]
    fn the_same_refusal_is_logged_once_a_minute_with_its_count_and_others_apart() {
        let mut log: RefusalLog<(&str, u8), &str> = RefusalLog::new();
        let t0 = Instant::now();
        assert_eq!(log.refuse(("pull", 1), "no key", t0), Some(1));
        for s in 1..30 {
            let at = t0 + Duration::from_secs(s);
            assert_eq!(log.refuse(("pull", 1), "no key", at), None);
        }
        // Another requester or kind is its own run.
        assert_eq!(log.refuse(("pull", 2), "no key", t0), Some(1));
        assert_eq!(log.refuse(("disclosure", 1), "over quota", t0), Some(1));
        // Nothing is due within the minute; after it, the 29 since, once.
        assert!(log.sweep(t0 + Duration::from_secs(59)).is_empty());
        let due = log.sweep(t0 + LOG_EVERY);
        assert_eq!(due, vec![(("pull", 1), "no key", 29)]);
        assert!(log.sweep(t0 + LOG_EVERY + LOG_EVERY).is_empty());
        // A minute after the last entry the next refusal is logged at once.
        let t1 = t0 + LOG_EVERY * 2;
        assert_eq!(log.refuse(("pull", 1), "no key", t1), Some(1));
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn tries_come_ever_later_up_to_the_maximum() {
        let mut b: Backoff<u8> = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(b.due(&1, at(0)));
        assert!(!b.due(&1, at(0)));
        assert!(b.due(&1, at(1))); // after 1 s
        assert!(!b.due(&1, at(2)));
        assert!(b.due(&1, at(3))); // after 2 s
        assert!(!b.due(&1, at(6)));
        assert!(b.due(&1, at(7))); // after 4 s
        assert!(b.due(&1, at(15))); // after 8 s
        assert!(!b.due(&1, at(22)));
        assert!(b.due(&1, at(23))); // at most 8 s
        assert!(b.due(&2, at(23)), "another key is its own");
        b.forget_before(at(24));
        assert!(b.due(&1, at(24)), "forgotten keys start again");
        assert!(!b.due(&1, at(24)));
    }
}
