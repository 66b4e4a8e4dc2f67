//! The operator console: HTTPS (rustls with the ring provider) on its own
//! address, off the mesh port, served by the daemon (`dxmesh run`) when
//! the node's config has a `[console]` section.
//!
//! - `tls`: the certificate (the operator's, or the self-signed one
//!   `dxmesh init` makes) and the rustls server configuration;
//! - `accounts`: accounts, roles and their Argon2id password hashes in
//!   `console/users.toml`;
//! - `sessions`: login sessions with expiry and per-session form tokens;
//! - `metrics`: the Prometheus metrics the daemon counts;
//! - `routes` and `views`: the pages, the actions and `/metrics`,
//!   `/healthz`, `/readyz`; `cycles`: the comparator's results, a page
//!   per cycle; `pages`: their HTML; `respond`: sessions of
//!   requests and error pages; `state`: what they share and the calls to
//!   the daemon.
//!
//! The console holds no state of the node's own: it asks the daemon over
//! the same channel as the admin socket ([`AdminCall`]), and records every
//! login and action in the node's audit log through it.

pub mod accounts;
mod cycles;
pub mod metrics;
mod pages;
mod respond;
mod routes;
pub mod sessions;
mod state;
pub mod tls;
mod views;

use crate::admin::AdminCall;
use crate::base::config::ConsoleConfig;
use metrics::Metrics;
use sessions::Sessions;
use state::State;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The address cannot be listened on.
    #[error("the console cannot listen on {addr}: {message}")]
    Listen {
        /// The configured address.
        addr: String,
        /// Why.
        message: String,
    },
}

/// Which node a console belongs to, as its login page says it: its
/// name, department, role and mesh.
pub fn node_label(config: &crate::base::config::Config, mesh: Option<&str>) -> String {
    let name = if config.display_name.is_empty() {
        config.department.as_str()
    } else {
        config.display_name.as_str()
    };
    format!(
        "{name}: department {}, role {}, mesh {}",
        config.department,
        config.role,
        mesh.unwrap_or("(no roster yet)")
    )
}

/// A running console.
#[derive(Debug)]
pub struct Console {
    /// `https://host:port/`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the console of node directory `dir` as `config` says, answering
/// from the daemon through `calls`.
pub async fn start(
    dir: &Path,
    data_dir: &Path,
    config: &ConsoleConfig,
    calls: mpsc::Sender<AdminCall>,
    metrics: Arc<Metrics>,
) -> Result<Console, ConsoleError> {
    // The process-wide provider is ring, as for everything else.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = tls::server_config(&dir.join(&config.cert), &dir.join(&config.key))?;
    let listen_err = |e: std::io::Error| ConsoleError::Listen {
        addr: config.listen.clone(),
        message: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    let url = format!("https://{addr}/");
    let state = Arc::new(State {
        dir: dir.to_path_buf(),
        data_dir: data_dir.to_path_buf(),
        calls,
        metrics,
        sessions: Sessions::new(Duration::from_secs(config.session_minutes.max(1) * 60)),
        throttle: Default::default(),
        addresses: sessions::Throttle::with_max(sessions::MAX_ADDRESS_FAILURES),
        checks: sessions::Checks::per_core(),
    });
    let app = routes::router(state);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone().layer(axum::Extension(state::Client(peer.ip())));
            tokio::spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await
                else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    tracing::info!(%url, "operator console listening");
    Ok(Console { url, task })
}
