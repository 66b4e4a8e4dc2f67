//! The node daemon (`dxmesh run`): one tokio task owns the libp2p swarm and
//! the node state and reacts to swarm events, admin requests, a periodic
//! tick and the shutdown signal. Everything a peer asks is checked against
//! the roster before it is answered; every refusal is logged with the peer
//! and the reason.
//!
//! Roster handling: on every new connection each side asks the other for
//! newer roster versions; a node that accepts a newer roster persists it
//! first, then updates the allow-list (which disconnects anyone no longer
//! admitted at once) and pushes it to its peers. Peers are found by asking
//! connected members which members they see and where those listen.

use crate::admin::{self};
use crate::agreements::threads::Agreements;
use crate::base::config::{self, Config, ConfigError};
use crate::base::keyfile::{self, KeyFileError};
use crate::base::store::{Store, StoreError};
use libp2p::Multiaddr;
use node::Node;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::mpsc;

mod agreements;
mod audit;
mod compare;
mod console;
mod core;
mod disclose;
pub mod error;
mod events;
mod guard;
mod limits;
mod ministry;
pub mod net;
mod node;
mod pending;
mod publish;
mod pull;
mod serve;
mod status;
mod trust;
mod witness;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operator console cannot start.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// Identity file problem.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// State database problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Transport problem.
    #[error(transparent)]
    Build(#[from] net::BuildError),
    /// A listen address could not be used.
    #[error("{path}: setting `network.listen`: cannot listen on {addr}: {message}", path = .path.display())]
    Listen {
        /// Config file.
        path: PathBuf,
        /// The address.
        addr: String,
        /// Why (for example: address already in use).
        message: String,
    },
    /// The admin socket could not be created.
    #[error("{path}: cannot create the admin socket: {source}", path = .path.display())]
    AdminSocket {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Runs the node in `dir` until `shutdown` resolves.
pub async fn run(dir: &Path, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let config = Config::load(dir)?;
    let identity = keyfile::read_identity(&dir.join(config::KEY_FILE))?;
    let anchor = config.anchor_key(dir)?;
    let store = Store::open(&config.data_dir(dir))?;
    let roster = match store.latest_roster()? {
        Some(s) => match s.verify_by(&anchor) {
            Ok(r) => Some((s, r)),
            Err(e) => {
                tracing::error!(error = %e, "stored roster does not verify against the configured anchor; ignoring it");
                None
            }
        },
        None => None,
    };
    let agreements = Agreements::load(&store)?;
    let audit = crate::audit::log::AuditLog::open(&store, &identity)?;
    let auditing = witness::Auditing::load(&store)?;
    let mut swarm = net::build_swarm(&identity)?;
    let config_path = dir.join(config::CONFIG_FILE);
    for addr in &config.network.listen {
        let ma: Multiaddr =
            addr.parse()
                .map_err(|e: libp2p::multiaddr::Error| DaemonError::Listen {
                    path: config_path.clone(),
                    addr: addr.clone(),
                    message: e.to_string(),
                })?;
        swarm.listen_on(ma).map_err(|e| DaemonError::Listen {
            path: config_path.clone(),
            addr: addr.clone(),
            message: transport_error_text(&e),
        })?;
    }
    let socket_path = dir.join(config::ADMIN_SOCKET);
    let listener = admin::bind(&socket_path).map_err(|source| DaemonError::AdminSocket {
        path: socket_path.clone(),
        source,
    })?;
    let (admin_tx, admin_rx) = mpsc::channel(64);
    let data_dir = config.data_dir(dir);
    remove_leftovers(&data_dir);
    let metrics = std::sync::Arc::new(crate::console::metrics::Metrics::new());
    metrics.set_node(crate::console::node_label(&config, None));
    let console = match &config.console {
        Some(c) => {
            Some(crate::console::start(dir, &data_dir, c, admin_tx.clone(), metrics.clone()).await?)
        }
        None => None,
    };
    let admin_task = tokio::spawn(admin::serve(listener, admin_tx));

    let keys = crate::publish::keys::KeyStore::new(dir, config.role);
    let mut stream_control = swarm.behaviour().stream.new_control();
    let incoming = stream_control
        .accept(libp2p::StreamProtocol::new(
            dxmesh_protocol::feed::FEED_PROTOCOL,
        ))
        .map_err(|e| DaemonError::Build(net::BuildError::new(e.to_string())))?;
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let (resume_tx, resume_rx) = mpsc::unbounded_channel();
    let (cycle, cycle_rx) = crate::compare::ops::Handle::new();
    let retry_secs = config.network.peer_exchange_secs.max(1);
    let guard = guard::Guard::new(limits::Limits {
        per_sec: config.network.requests_per_sec,
        burst: config.network.request_burst,
    });
    let stream_task = tokio::spawn(serve::serve_streams(incoming, internal_tx.clone()));
    let node_sort_bytes = config.limits.sort_bytes();
    let core = core::Core {
        config,
        identity,
        store: std::sync::Arc::new(store),
        swarm,
        connected: HashSet::new(),
        pending: HashMap::new(),
        agreements,
        data_dir,
        // One core is left to the event loop and the operator's commands.
        checks: std::sync::Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
        )),
        audit,
        events: internal_tx,
        metrics,
    };
    let mut node = Node {
        core,
        trust: trust::Trust::new(anchor, roster, guard),
        publish: publish::Publishing::new(keys),
        pulls: pull::Pulling::new(stream_control, std::time::Duration::from_secs(retry_secs)),
        auditing,
        national: crate::ministry::index::Indexes::new(node_sort_bytes),
        cycle,
        resume: resume_tx,
        started: Instant::now(),
        console_url: console.as_ref().map(|c| c.url.clone()),
    };
    tracing::info!(
        peer_id = %node.core.identity.peer_id(),
        department = %node.core.config.department,
        role = %node.core.config.role,
        roster_version = node.trust.roster_version(),
        "node starting"
    );
    node.core.log(dxmesh_protocol::audit::Event::NodeStarted {
        version: env!("CARGO_PKG_VERSION").to_string(),
    });
    node.auditing.log_agreement_steps(&mut node.core);
    node.log_imports();
    node.trust.apply_roster(&mut node.core);
    node.trust.dial_bootstrap(&mut node.core);
    let mut inbox = events::Inbox {
        admin: admin_rx,
        events: internal_rx,
        resumed: resume_rx,
        cycle: cycle_rx,
    };
    node.event_loop(&mut inbox, shutdown).await;
    admin_task.abort();
    stream_task.abort();
    drop(console);
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("node stopped");
    Ok(())
}

fn transport_error_text(e: &libp2p::TransportError<std::io::Error>) -> String {
    match e {
        libp2p::TransportError::MultiaddrNotSupported(a) => {
            format!("address {a} is not supported (use /ip4/.../tcp/PORT)")
        }
        libp2p::TransportError::Other(io) => io.to_string(),
    }
}

impl Node {}

/// Removes the temporary files and directories that writes of this daemon
/// leave when it is killed (feed builds, atomic writes of pulls and
/// commitments, national index runs): none of them is in progress before
/// it starts. An import's own leftovers are the import's (see
/// [`crate::dataset`]), since an import may run beside the daemon.
fn remove_leftovers(data_dir: &Path) {
    use crate::base::fsutil::{ATOMIC_TMP_PREFIX, remove_leftovers};
    let removed = [
        // `feeds/<agreement>/.tmp-*` (and `.superseded-*`, a republished
        // epoch's old feed) and `feeds|pulls/<agreement>/<epoch>/`.
        remove_leftovers(
            &data_dir.join(crate::base::layout::FEEDS),
            &[
                ".tmp-",
                ATOMIC_TMP_PREFIX,
                crate::publish::build::SUPERSEDED_PREFIX,
            ],
            2,
        ),
        remove_leftovers(
            &data_dir.join(crate::base::layout::PULLS),
            &[ATOMIC_TMP_PREFIX],
            2,
        ),
        // `commitments/<epoch>/` and below.
        remove_leftovers(
            &data_dir.join(crate::base::layout::COMMITMENTS),
            &[ATOMIC_TMP_PREFIX],
            3,
        ),
        remove_leftovers(
            &data_dir.join(crate::dataset::DATASETS_DIR),
            &[".national-"],
            2,
        ),
    ]
    .concat();
    for path in &removed {
        tracing::info!(path = %path.display(), "removed a temporary file a stopped write left");
    }
}
