//! Console accounts: who may log in to the operator console and with which
//! role. Roles are separate, as GB/T 39477 asks: an administrator manages
//! agreements (accept, suspend, resume) and may publish; an operator may
//! publish; an auditor reads every page and changes nothing. Accounts live
//! in `console/users.toml` in the node directory, each with an Argon2id
//! hash of its password (never the password), written atomically by
//! `dxmesh console user add|remove` and read again at every login, so a
//! change needs no restart.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A console role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleRole {
    /// Manages agreements and may publish.
    Administrator,
    /// May publish.
    Operator,
    /// Reads everything, changes nothing.
    Auditor,
}

impl ConsoleRole {
    /// The role's name as written in `users.toml` and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            ConsoleRole::Administrator => "administrator",
            ConsoleRole::Operator => "operator",
            ConsoleRole::Auditor => "auditor",
        }
    }

    /// Whether the role may carry out `action`.
    pub fn may(self, action: Action) -> bool {
        match action {
            Action::AgreementAccept | Action::AgreementSuspend | Action::AgreementResume => {
                self == ConsoleRole::Administrator
            }
            Action::Publish => {
                matches!(self, ConsoleRole::Administrator | ConsoleRole::Operator)
            }
        }
    }
}

/// What a console account can ask the node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Accept an agreement offered to this node.
    AgreementAccept,
    /// Suspend an active agreement.
    AgreementSuspend,
    /// Resume a suspended agreement.
    AgreementResume,
    /// Publish the current epoch's feeds.
    Publish,
}

impl Action {
    /// The action's name in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Action::AgreementAccept => "agreement_accept",
            Action::AgreementSuspend => "agreement_suspend",
            Action::AgreementResume => "agreement_resume",
            Action::Publish => "publish",
        }
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: ConsoleRole,
    /// Argon2id hash in PHC string form.
    pub hash: String,
}

/// `console/users.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// Every account.
    #[serde(default, rename = "user")]
    pub users: Vec<Account>,
}

/// Why the accounts file cannot be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// The file cannot be read or written.
    #[error("{path}: {message}", path = .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// An account name is empty, too long or not `[a-z0-9_.-]`.
    #[error("account name {0:?}: use 1-64 characters of a-z, 0-9, '_', '.', '-'")]
    BadName(String),
    /// A password shorter than [`MIN_PASSWORD`] characters.
    #[error("a password needs at least {MIN_PASSWORD} characters")]
    ShortPassword,
    /// The password could not be hashed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// No such account (when removing one).
    #[error("no account {0:?}")]
    NoSuchAccount(String),
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// The accounts file of the node directory `dir`.
pub fn accounts_path(dir: &Path) -> PathBuf {
    dir.join("console").join("users.toml")
}

impl Accounts {
    /// Reads the accounts of node directory `dir` (none if the file is absent).
    pub fn load(dir: &Path) -> Result<Accounts, AccountsError> {
        let path = accounts_path(dir);
        let err = |message: String| AccountsError::File {
            path: path.clone(),
            message,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Accounts::default()),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Writes the accounts (atomically, readable by the node's user only).
    pub fn save(&self, dir: &Path) -> Result<(), AccountsError> {
        let path = accounts_path(dir);
        let err = |message: String| AccountsError::File {
            path: path.clone(),
            message,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
        }
        let text = toml::to_string(self).map_err(|e| err(e.to_string()))?;
        crate::base::fsutil::write_atomic(&path, text.as_bytes(), 0o600)
            .map_err(|e| err(e.to_string()))
    }

    /// Adds or replaces account `name` with `role` and `password`.
    pub fn set(
        &mut self,
        name: &str,
        role: ConsoleRole,
        password: &str,
    ) -> Result<(), AccountsError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if !valid {
            return Err(AccountsError::BadName(name.to_string()));
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(AccountsError::ShortPassword);
        }
        let hash = hash_password(password)?;
        self.users.retain(|u| u.name != name);
        self.users.push(Account {
            name: name.to_string(),
            role,
            hash,
        });
        self.users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    /// The role of account `name`, if it exists.
    pub fn role_of(&self, name: &str) -> Option<ConsoleRole> {
        self.users.iter().find(|a| a.name == name).map(|a| a.role)
    }

    /// Removes the account `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), AccountsError> {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        if self.users.len() == before {
            return Err(AccountsError::NoSuchAccount(name.to_string()));
        }
        Ok(())
    }

    /// The role of `name` if `password` is its password, checked in
    /// `memory`. A name without an account costs a check all the same
    /// (against a hash of nothing), so that timing does not tell which
    /// names exist.
    pub fn check(
        &self,
        name: &str,
        password: &str,
        memory: &mut CheckMemory,
    ) -> Option<ConsoleRole> {
        match self.users.iter().find(|u| u.name == name) {
            Some(u) => verify_password(&u.hash, password, memory).then_some(u.role),
            None => {
                let _ = verify_password(unknown_name_hash(), password, memory);
                None
            }
        }
    }
}

/// Memory for one Argon2 check, reused from check to check.
#[derive(Default)]
pub struct CheckMemory(Vec<argon2::Block>);

impl std::fmt::Debug for CheckMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckMemory({} blocks)", self.0.len())
    }
}

/// The hash a name without an account is checked against (made once).
fn unknown_name_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("").unwrap_or_default())
}

/// An Argon2id hash (PHC string) of `password` with a fresh random salt.
fn hash_password(password: &str) -> Result<String, AccountsError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| AccountsError::Hash("no randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountsError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountsError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (Argon2, its
/// parameters from the string), computed in `memory`.
fn verify_password(hash: &str, password: &str, memory: &mut CheckMemory) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(h.algorithm),
        argon2::Params::try_from(&h),
    ) else {
        return false;
    };
    let version = h
        .version
        .and_then(|v| argon2::Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.0.len() < params.block_count() {
        memory
            .0
            .resize(params.block_count(), argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut memory.0[..],
    );
    // `Output` compares in constant time.
    computed.is_ok()
        && argon2::password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_round_trip_and_check_passwords_by_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::default();
        a.set("alice", ConsoleRole::Administrator, "correct horse battery")
            .unwrap();
        a.set("audit.1", ConsoleRole::Auditor, "another long secret")
            .unwrap();
        assert!(matches!(
            a.set("Bob", ConsoleRole::Operator, "long enough pass"),
            Err(AccountsError::BadName(_))
        ));
        assert!(matches!(
            a.set("bob", ConsoleRole::Operator, "short"),
            Err(AccountsError::ShortPassword)
        ));
        a.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(accounts_path(dir.path())).unwrap();
        assert!(!text.contains("correct horse"), "no password in the file");
        assert!(text.contains("$argon2id$"));
        let back = Accounts::load(dir.path()).unwrap();
        let mut memory = CheckMemory::default();
        assert_eq!(
            back.check("alice", "correct horse battery", &mut memory),
            Some(ConsoleRole::Administrator)
        );
        assert_eq!(back.check("alice", "wrong password!!", &mut memory), None);
        assert_eq!(
            back.check("nobody", "correct horse battery", &mut memory),
            None
        );
        // The memory is reused: one check's worth (19 MiB), not one per check.
        assert_eq!(memory.0.len(), argon2::Params::default().block_count());
        // A hash made by the crate's own verifier is accepted the same way.
        use argon2::password_hash::PasswordVerifier;
        let hash = hash_password("another password").unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"another password", &parsed)
                .is_ok()
        );
        assert!(verify_password(&hash, "another password", &mut memory));
        assert!(!verify_password(&hash, "another passwore", &mut memory));
        assert!(!verify_password("$argon2id$garbage", "x", &mut memory));
        let mut back = back;
        back.remove("alice").unwrap();
        assert!(matches!(
            back.remove("alice"),
            Err(AccountsError::NoSuchAccount(_))
        ));
    }

    #[test]
    fn roles_are_separate() {
        use Action::*;
        for action in [AgreementAccept, AgreementSuspend, AgreementResume, Publish] {
            assert!(ConsoleRole::Administrator.may(action));
            assert!(!ConsoleRole::Auditor.may(action));
        }
        assert!(ConsoleRole::Operator.may(Publish));
        assert!(!ConsoleRole::Operator.may(AgreementAccept));
        assert!(!ConsoleRole::Operator.may(AgreementSuspend));
    }
}
