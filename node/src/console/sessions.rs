//! Console login sessions, in the daemon's memory only (a restart logs
//! everyone out): a random 256-bit session token in an `HttpOnly`,
//! `Secure`, `SameSite=Strict` cookie, a fixed expiry from login, and a
//! second random token that every form carries, so that a page elsewhere
//! cannot make a logged-in browser act.

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
}
