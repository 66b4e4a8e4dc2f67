//! What the console's routes share ([`State`]): the node directory, the
//! channel to the daemon and the daemon's metrics and sessions; and the
//! calls every page makes through that channel.

use super::metrics::Metrics;
use super::sessions::Sessions;
use crate::admin::{AdminCall, AdminRequest, AdminResponse, ConsoleInfo, StatusInfo};
use dxmesh_protocol::audit::Event;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the console waits for the daemon's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the routes share.
pub(crate) struct State {
    /// The node directory (for the accounts file).
    pub(super) dir: PathBuf,
    /// The node's data directory (for feeds).
    pub(super) data_dir: PathBuf,
    pub(super) calls: mpsc::Sender<AdminCall>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) sessions: Sessions,
    pub(super) throttle: super::sessions::Throttle,
    /// Failed logins per client address.
    pub(super) addresses: super::sessions::Throttle,
    /// The password checks running and waiting.
    pub(super) checks: super::sessions::Checks,
}

/// The address a console request came from (its TCP peer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client(pub std::net::IpAddr);

impl State {
    /// Asks the daemon.
    pub(super) async fn call(&self, request: AdminRequest) -> Result<AdminResponse, String> {
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(AdminCall { request, reply })
            .await
            .map_err(|_| "the node is shutting down".to_string())?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err("the node is shutting down".into()),
            Err(_) => Err("the node did not answer in time".into()),
        }
    }

    /// Sets the cycle-stage gauges from the last comparison's summary.
    pub(super) fn refresh_cycle_metrics(&self) {
        let Some(out) = self.metrics.last_compare() else {
            return;
        };
        let Some(summary) = std::fs::read_to_string(out.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        else {
            return;
        };
        let stages: Vec<(String, f64)> = summary["timing_secs"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect();
        self.metrics.cycle_stages(&stages);
    }
}

impl State {
    /// The daemon's status.
    pub(super) async fn status(&self) -> Result<StatusInfo, String> {
        match self.call(AdminRequest::Status).await? {
            AdminResponse::Status(s) => Ok(*s),
            other => Err(unexpected(&other)),
        }
    }

    /// What the console shows beyond the status.
    pub(super) async fn info(&self) -> Result<ConsoleInfo, String> {
        match self.call(AdminRequest::Console).await? {
            AdminResponse::Console(i) => Ok(*i),
            other => Err(unexpected(&other)),
        }
    }

    /// Appends `event` to the audit log; an error if it is not stored.
    pub(super) async fn record(&self, event: Event) -> Result<(), String> {
        match self.call(AdminRequest::ConsoleAudit(event)).await? {
            AdminResponse::Logged => Ok(()),
            AdminResponse::Error { message } => {
                Err(format!("not recorded in the audit log: {message}"))
            }
            other => Err(unexpected(&other)),
        }
    }
}

/// Says that the daemon gave an answer of another kind.
pub(super) fn unexpected(r: &AdminResponse) -> String {
    format!("unexpected answer from the node: {r:?}")
}
