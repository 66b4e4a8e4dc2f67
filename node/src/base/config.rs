//! The node directory and its `config.toml`: what `dxmesh init` writes and
//! `dxmesh run` reads. Parse errors name the file, line and setting.
//!
//! Layout of a node directory:
//! - `node.key`: the identity seed (PKCS#8 PEM, 0600);
//! - `config.toml`: this configuration;
//! - `anchor.pub.pem`: the provincial trust anchor's public key;
//! - `data/state.redb`: node state (roster chain, later agreements, feeds, audit log);
//! - `admin.sock`: the running daemon's admin socket (0600).

use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::Role;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File names inside a node directory.
pub const KEY_FILE: &str = "node.key";
/// Configuration file name.
pub const CONFIG_FILE: &str = "config.toml";
/// Anchor public key file name (default).
pub const ANCHOR_FILE: &str = "anchor.pub.pem";
/// Admin socket file name.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or a setting is wrong.
    #[error("{path}: {message}", path = .path.display())]
    Parse {
        /// File.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A setting has a value that cannot be used.
    #[error("{path}: setting `{setting}`: {problem}", path = .path.display())]
    Setting {
        /// File.
        path: PathBuf,
        /// Setting name, dotted.
        setting: String,
        /// What is wrong.
        problem: String,
    },
}

/// The node configuration (`config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Department name (`public_security`, `civil_affairs`, `health`,
    /// `disabled_federation`, `hr`, `comparator`, `ministry`, ...).
    pub department: String,
    /// Role in the mesh.
    pub role: Role,
    /// Name shown to people.
    #[serde(default)]
    pub display_name: String,
    /// Data directory (relative paths are inside the node directory).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Networking.
    pub network: NetworkConfig,
    /// Trust.
    pub trust: TrustConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Token group -> PeerId of its key custodian (`"self"` on the custodian).
    #[serde(default)]
    pub key_custodians: std::collections::BTreeMap<String, String>,
    /// What the daemon does by itself.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// The HTTPS operator console; none without this section.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
    /// What the node's large jobs may use.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `[limits]`: the memory the node's large jobs (import, publish, the
/// national index build, the comparator's steps) keep to, spilling sorted
/// runs to disk beyond it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// MiB of memory; the default suits a node with 8 GiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
}

/// `[limits] memory_mib` when the config does not set it.
pub const DEFAULT_MEMORY_MIB: u64 = 4096;

/// MiB of a budget kept for a job's buffers in flight (blocks read ahead,
/// chunks and index entries on their way to the disk) and the daemon.
pub const JOB_BUFFERS_MIB: usize = 128;

/// The least `[limits] memory_mib` a node runs with (its jobs' buffers,
/// [`JOB_BUFFERS_MIB`], and sorts of at least 96 MiB).
pub const MIN_MEMORY_MIB: u64 = 256;

fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_MIB
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            memory_mib: DEFAULT_MEMORY_MIB,
        }
    }
}

impl LimitsConfig {
    /// The budget in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// The memory a job's sort is given: three quarters of what the
    /// budget leaves past [`JOB_BUFFERS_MIB`] (the rest is the job's
    /// buffers in flight, the sort's merge and the daemon's own state).
    pub fn sort_bytes(&self) -> usize {
        self.memory_bytes().saturating_sub(JOB_BUFFERS_MIB << 20) / 4 * 3
    }
}

/// `[console]`: the HTTPS operator console, `/metrics`, `/healthz` and
/// `/readyz` (see `crate::console`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `host:port` to listen on (port 0: any free port); off the mesh port.
    pub listen: String,
    /// PEM certificate chain (relative to the node directory).
    #[serde(default = "default_console_cert")]
    pub cert: PathBuf,
    /// PEM private key (relative to the node directory).
    #[serde(default = "default_console_key")]
    pub key: PathBuf,
    /// Minutes a login lasts.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
}

fn default_console_cert() -> PathBuf {
    PathBuf::from("console/cert.pem")
}

fn default_console_key() -> PathBuf {
    PathBuf::from("console/key.pem")
}

fn default_session_minutes() -> u64 {
    30
}

impl ConsoleConfig {
    /// A console on `listen` with the certificate `dxmesh init` makes.
    pub fn on(listen: &str) -> ConsoleConfig {
        ConsoleConfig {
            listen: listen.to_string(),
            cert: default_console_cert(),
            key: default_console_key(),
            session_minutes: default_session_minutes(),
        }
    }
}

/// `[schedule]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Publish each active agreement's feed when its epoch starts (providers).
    #[serde(default = "yes")]
    pub auto_publish: bool,
    /// Pull each active agreement's feed inside its window (consumers).
    #[serde(default = "yes")]
    pub auto_pull: bool,
}

fn yes() -> bool {
    true
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            auto_publish: true,
            auto_pull: true,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/7400`.
    pub listen: Vec<String>,
    /// Multiaddrs (with `/p2p/<PeerId>`) of members to dial at start.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Seconds between asking connected members for their peers.
    #[serde(default = "default_exchange")]
    pub peer_exchange_secs: u64,
    /// Control requests a member may send per second, sustained; more are
    /// refused (`RateLimited`) until it slows down.
    #[serde(default = "default_requests_per_sec")]
    pub requests_per_sec: u32,
    /// Control requests a member may send at once, above the sustained rate.
    #[serde(default = "default_request_burst")]
    pub request_burst: u32,
}

fn default_exchange() -> u64 {
    5
}

fn default_requests_per_sec() -> u32 {
    50
}

fn default_request_burst() -> u32 {
    200
}

/// `[trust]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// PEM file with the trust anchor's public key (relative to the node directory).
    pub anchor_public_key: PathBuf,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    #[serde(default)]
    pub format: LogFormatSetting,
}

/// Log format as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatSetting {
    /// Human-readable.
    #[default]
    Human,
    /// JSON lines.
    Json,
}

impl Config {
    /// Reads and checks `DIR/config.toml`.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let setting = |setting: &str, problem: String| ConfigError::Setting {
            path: path.clone(),
            setting: setting.to_string(),
            problem,
        };
        for (i, a) in config.network.listen.iter().enumerate() {
            a.parse::<libp2p::Multiaddr>()
                .map_err(|e| setting(&format!("network.listen[{i}]"), format!("{a:?}: {e}")))?;
        }
        for (i, a) in config.network.bootstrap.iter().enumerate() {
            let ma: libp2p::Multiaddr = a
                .parse()
                .map_err(|e| setting(&format!("network.bootstrap[{i}]"), format!("{a:?}: {e}")))?;
            if !ma
                .iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
            {
                return Err(setting(
                    &format!("network.bootstrap[{i}]"),
                    format!("{a:?} must end with /p2p/<PeerId> so the peer is authenticated"),
                ));
            }
        }
        if config.limits.memory_mib < MIN_MEMORY_MIB {
            return Err(setting(
                "limits.memory_mib",
                format!(
                    "{} MiB is less than the {MIN_MEMORY_MIB} MiB a node needs",
                    config.limits.memory_mib
                ),
            ));
        }
        if config.network.peer_exchange_secs == 0 {
            return Err(setting(
                "network.peer_exchange_secs",
                "must be at least 1".into(),
            ));
        }
        for (group, who) in &config.key_custodians {
            if who != "self" && who.parse::<libp2p::PeerId>().is_err() {
                return Err(setting(
                    &format!("key_custodians.{group}"),
                    format!("{who:?} must be \"self\" or the custodian's PeerId"),
                ));
            }
        }
        if config.department.trim().is_empty() {
            return Err(setting("department", "must not be empty".into()));
        }
        Ok(config)
    }

    /// Writes this configuration as `DIR/config.toml` (new file only).
    pub fn write_new(&self, dir: &Path) -> Result<(), crate::base::keyfile::KeyFileError> {
        let mut text = String::from("# dxmesh node configuration. See docs/operator-guide.md.\n");
        text.push_str(&toml::to_string_pretty(self).expect("config always serialises"));
        crate::base::keyfile::write_new_file(&dir.join(CONFIG_FILE), text.as_bytes(), 0o644)
    }

    /// The data directory, resolved against the node directory.
    pub fn data_dir(&self, dir: &Path) -> PathBuf {
        dir.join(&self.data_dir)
    }

    /// Reads the anchor public key named by `trust.anchor_public_key`.
    pub fn anchor_key(&self, dir: &Path) -> Result<PublicKey, ConfigError> {
        let path = dir.join(&self.trust.anchor_public_key);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        PublicKey::from_pem(&text).map_err(|e| ConfigError::Setting {
            path: dir.join(CONFIG_FILE),
            setting: "trust.anchor_public_key".into(),
            problem: format!("{}: {e}", path.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            department: "health".into(),
            role: Role::Provider,
            display_name: "Health Commission".into(),
            data_dir: "data".into(),
            network: NetworkConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                bootstrap: vec![],
                peer_exchange_secs: 5,
                requests_per_sec: 50,
                request_burst: 200,
            },
            trust: TrustConfig {
                anchor_public_key: ANCHOR_FILE.into(),
            },
            log: LogConfig::default(),
            key_custodians: Default::default(),
            schedule: Default::default(),
            console: None,
            limits: Default::default(),
        }
    }

    #[test]
    fn round_trip_and_errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        sample().write_new(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), sample());

        let path = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("role = \"provider\"", "role = \"boss\""),
        )
        .unwrap();
        let e = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("config.toml") && e.contains("line") && e.contains("role"),
            "{e}"
        );

        std::fs::write(&path, text.replace("/ip4/127.0.0.1/tcp/0", "not-an-addr")).unwrap();
        let e = Config::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("network.listen[0]"), "{e}");

        let with_boot = text.replace("bootstrap = []", "bootstrap = [\"/ip4/127.0.0.1/tcp/1\"]");
        std::fs::write(&path, with_boot).unwrap();
        let e = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("network.bootstrap[0]") && e.contains("/p2p/"),
            "{e}"
        );

        // A memory budget too small to run with is refused by name; one
        // left out is the default.
        assert!(text.contains("[limits]\nmemory_mib = 4096"), "{text}");
        std::fs::write(&path, text.replace("memory_mib = 4096", "memory_mib = 16")).unwrap();
        let e = Config::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("limits.memory_mib") && e.contains("16 MiB"),
            "{e}"
        );
        std::fs::write(&path, text.replace("memory_mib = 4096", "")).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap().limits.memory_mib, 4096);

        std::fs::write(&path, format!("{text}\nsurprise = 1\n")).unwrap();
        let e = Config::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("surprise"), "{e}");
    }
}
