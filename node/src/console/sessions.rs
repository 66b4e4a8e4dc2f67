//! Console login sessions, in the daemon's memory only (a restart logs
//! everyone out): a random 256-bit session token in an `HttpOnly`,
//! `Secure`, `SameSite=Strict` cookie, a fixed expiry from login, and a
//! second random token that every form carries, so that a page elsewhere
//! cannot make a logged-in browser act. [`Throttle`] locks an account
//! name, and a client address, out for a while after repeated failed
//! logins, counting each attempt before its password is checked; [`Checks`] bounds how many
//! password checks run and wait at once.

use super::accounts::ConsoleRole;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "dxmesh_session";

/// A logged-in account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Account name.
    pub user: String,
    /// Its role.
    pub role: ConsoleRole,
    /// The token every form of this session carries.
    pub csrf: String,
    expires: Instant,
}

/// Every live session.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).ok()?;
    Some(hex::encode(b))
}

impl Sessions {
    /// Sessions that last `ttl` from login.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session; returns its cookie token (None if the system has
    /// no randomness to give).
    pub fn start(&self, user: &str, role: ConsoleRole) -> Option<String> {
        let token = random_token()?;
        let session = Session {
            user: user.to_string(),
            role,
            csrf: random_token()?,
            expires: Instant::now() + self.ttl,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        live.insert(token.clone(), session);
        Some(token)
    }

    /// The live session of cookie token `token`.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get(token) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn end(&self, token: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }
}

/// Password checks (Argon2id: about 19 MiB and tens of milliseconds each)
/// running at once, at most one per core, and a bounded queue of logins
/// waiting for one: a burst of logins costs bounded memory, and those
/// beyond the queue are refused at once.
#[derive(Debug)]
pub struct Checks {
    running: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
    /// The Argon2 memory of the checks, kept for the next ones: as many
    /// as run at once, allocated once (a check's 19 MiB freed on one
    /// thread and allocated again on another would stay with the
    /// allocator's arena of each thread).
    memory: std::sync::Arc<Mutex<Vec<super::accounts::CheckMemory>>>,
}

/// The right to run one password check, with the memory to run it in;
/// both go back to the pool when it is dropped.
pub struct Permit {
    _running: tokio::sync::OwnedSemaphorePermit,
    memory: Option<super::accounts::CheckMemory>,
    pool: std::sync::Arc<Mutex<Vec<super::accounts::CheckMemory>>>,
}

impl Permit {
    /// The memory for the check.
    pub fn memory(&mut self) -> &mut super::accounts::CheckMemory {
        self.memory.get_or_insert_with(Default::default)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(m) = self.memory.take() {
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(m);
        }
    }
}

/// Counts one login waiting for a check while it lives (a login abandoned
/// while it waits still leaves the queue).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Logins that may wait for a password check.
pub const MAX_WAITING_CHECKS: usize = 16;

impl Checks {
    /// At most `running` checks at once and `max_waiting` waiting.
    pub fn new(running: usize, max_waiting: usize) -> Checks {
        Checks {
            running: std::sync::Arc::new(tokio::sync::Semaphore::new(running.max(1))),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting,
            memory: Default::default(),
        }
    }

    /// One check per core, [`MAX_WAITING_CHECKS`] waiting.
    pub fn per_core() -> Checks {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Checks::new(cores, MAX_WAITING_CHECKS)
    }

    /// A permit to run one password check (held by the check itself, so
    /// it is released when the check ends, not when its login is
    /// abandoned), or `None` if the queue is full.
    pub async fn enter(&self) -> Option<Permit> {
        use std::sync::atomic::Ordering;
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            return None;
        }
        let running = self.running.clone().acquire_owned().await.ok()?;
        drop(waiting);
        let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Some(Permit {
            _running: running,
            memory,
            pool: self.memory.clone(),
        })
    }
}

/// Failed logins of one account name that lock it out.
pub const MAX_FAILURES: usize = 5;

/// Failed logins from one client address (under any names) that lock the
/// address out: a guesser trying many names from one place.
pub const MAX_ADDRESS_FAILURES: usize = 20;

/// Failed logins older than this are forgotten, and a lock-out lasts as long.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Recent failed logins per key (an account name, or a client address):
/// after `max` ([`MAX_FAILURES`] by default) within [`FAILURE_WINDOW`],
/// the key cannot log in (even with the right password) until the oldest
/// of them is that old.
#[derive(Debug)]
pub struct Throttle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    max: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::with_max(MAX_FAILURES)
    }
}

impl Throttle {
    /// A throttle that locks a key out after `max` failures.
    pub fn with_max(max: usize) -> Throttle {
        Throttle {
            failures: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// Whether `user` is locked out now.
    pub fn locked(&self, user: &str) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match f.get_mut(user) {
            Some(times) => {
                times.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
                times.len() >= self.max
            }
            None => false,
        }
    }

    /// Counts a login attempt of `user` as failed before its password is
    /// checked (a success clears it): `false`, and nothing counted, if the
    /// name is locked out. Attempts sent in parallel are counted one by
    /// one, so at most [`MAX_FAILURES`] of them reach a password check.
    pub fn attempt(&self, user: &str) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if f.len() > 10_000 {
            // Names never seen again: forget the oldest state wholesale.
            f.retain(|_, t| t.iter().any(|t| now.duration_since(*t) < FAILURE_WINDOW));
        }
        let times = f.entry(user.to_string()).or_default();
        times.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        if times.len() >= self.max {
            return false;
        }
        times.push(now);
        true
    }

    /// A successful login takes back the attempt counted for `key` (its
    /// earlier failures stay counted).
    pub fn forgive_one(&self, key: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(times) = f.get_mut(key) {
            times.pop();
        }
    }

    /// Notes a failed login of `user`.
    pub fn failed(&self, user: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() > 10_000 {
            // Names never seen again: forget the oldest state wholesale.
            let now = Instant::now();
            f.retain(|_, t| t.iter().any(|t| now.duration_since(*t) < FAILURE_WINDOW));
        }
        f.entry(user.to_string()).or_default().push(Instant::now());
    }

    /// A successful login clears `user`'s failures.
    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::new(Duration::from_millis(50));
        let t = s.start("alice", ConsoleRole::Auditor).unwrap();
        let got = s.get(&t).unwrap();
        assert_eq!(
            (got.user.as_str(), got.role),
            ("alice", ConsoleRole::Auditor)
        );
        assert_eq!(got.csrf.len(), 64);
        assert!(s.get("forged").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.get(&t).is_none(), "expired");
        let t2 = s.start("bob", ConsoleRole::Operator).unwrap();
        s.end(&t2);
        assert!(s.get(&t2).is_none(), "logged out");
    }

    #[test]
    fn attempts_are_counted_before_the_check_so_a_parallel_burst_gets_five() {
        let t = Throttle::default();
        let admitted = (0..60).filter(|_| t.attempt("alice")).count();
        assert_eq!(admitted, MAX_FAILURES);
        assert!(t.locked("alice"));
        assert!(t.attempt("bob"), "other names are not touched");
        t.succeeded("bob");
        assert!(!t.locked("bob"));
    }

    #[tokio::test]
    async fn checks_bound_their_queue_and_abandoned_logins_leave_it() {
        use std::sync::Arc;
        let c = Arc::new(Checks::new(1, 2));
        let running = c.enter().await.unwrap();
        let wait = |c: &Arc<Checks>| {
            let c = c.clone();
            tokio::spawn(async move { c.enter().await.is_some() })
        };
        let (a, b) = (wait(&c), wait(&c));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(c.enter().await.is_none(), "the queue of two is full");
        a.abort();
        b.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let d = wait(&c);
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(running);
        assert!(d.await.unwrap(), "abandoned logins left the queue");
    }

    #[test]
    fn an_address_is_locked_out_after_its_own_maximum_and_a_success_is_not_counted() {
        let t = Throttle::with_max(3);
        assert!(t.attempt("10.0.0.1"));
        t.forgive_one("10.0.0.1");
        for _ in 0..3 {
            assert!(t.attempt("10.0.0.1"));
        }
        assert!(!t.attempt("10.0.0.1"));
        assert!(t.locked("10.0.0.1"));
        assert!(t.attempt("10.0.0.2"), "other addresses are not touched");
    }

    #[test]
    fn repeated_failures_lock_the_name_out() {
        let t = Throttle::default();
        for _ in 0..MAX_FAILURES - 1 {
            t.failed("alice");
        }
        assert!(!t.locked("alice"));
        t.failed("alice");
        assert!(t.locked("alice"));
        assert!(!t.locked("bob"), "other names are not touched");
        t.succeeded("alice");
        assert!(!t.locked("alice"));
    }
}
