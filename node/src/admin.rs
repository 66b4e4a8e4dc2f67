//! The local admin interface: a Unix socket `admin.sock` (mode 0600) in the
//! node directory, one JSON request and one JSON response per line. The
//! daemon serves it; `dxmesh status`, `dxmesh peers` and `dxmesh roster
//! install` are its clients. Only users who can open the node directory can
//! talk to it: file permissions are the access control.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// A request to the running daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Identity, roster, listen addresses, connected peers, uptime, recent refusals.
    Status,
    /// Install roster versions (hex of encoded `Signed<Roster>`, oldest first) and spread them.
    RosterInstall {
        /// The chain.
        chain_hex: Vec<String>,
    },
    /// Propose an agreement to peer `to`.
    AgreementPropose {
        /// The other party's PeerId.
        to: String,
        /// The terms as written.
        terms: crate::agreements::terms_file::TermsFile,
        /// Where they were read from (for error messages).
        terms_path: String,
    },
    /// Counter the last offer of agreement `id` with new terms.
    AgreementCounter {
        /// Thread or agreement id (hex prefix).
        id: String,
        /// The terms as written.
        terms: crate::agreements::terms_file::TermsFile,
        /// Where they were read from.
        terms_path: String,
    },
    /// Accept, suspend, resume or terminate agreement `id`.
    AgreementAct {
        /// Thread or agreement id (hex prefix).
        id: String,
        /// `accept`, `suspend`, `resume` or `terminate`.
        action: String,
        /// Why (suspend, terminate).
        reason: Option<String>,
    },
    /// Build (or return) the feed of an agreement for an epoch.
    Publish {
        /// Agreement or thread id (hex prefix); all active agreements if absent.
        agreement: Option<String>,
        /// Epoch; the current one if absent.
        epoch: Option<u64>,
        /// Build the epoch's feed again from the current import, the new
        /// manifest superseding the one published.
        #[serde(default)]
        republish: bool,
    },
    /// Pull (or resume pulling) a feed.
    Pull {
        /// Agreement or thread id (hex prefix).
        agreement: String,
        /// Epoch; the current one if absent.
        epoch: Option<u64>,
        /// Only the chunks covering this token range (hex tokens, inclusive).
        range: Option<(String, String)>,
    },
    /// Ask the provider to disclose records for tokens.
    Disclose(DiscloseCall),
    /// Run a comparison job file for an epoch.
    Compare {
        /// The parsed job file.
        jobs: crate::compare::jobs::JobFile,
        /// Where it was read from.
        jobs_path: String,
        /// Epoch; the current one if absent.
        epoch: Option<u64>,
        /// Output directory (absolute).
        out: String,
        /// A previous comparison's output directory (absolute), to list
        /// what changed since.
        #[serde(default)]
        previous: Option<String>,
    },
    /// Fork evidence this node holds as a witness.
    AuditAlerts,
    /// A page of the audit log in words, newest first, filtered.
    AuditPage(AuditQuery),
    /// Write an evidence bundle to `out` (absolute path).
    AuditExport {
        /// Output directory.
        out: String,
    },
    /// Every agreement thread.
    AgreementList,
    /// One agreement in full.
    AgreementShow {
        /// Thread or agreement id (hex prefix).
        id: String,
    },
    /// What the operator console shows beyond `Status` and the agreements:
    /// quotas used, the audit log's tail, checkpoint and cosignatures.
    Console,
    /// Record a console login or action in the audit log (durably, before
    /// the console answers or acts).
    ConsoleAudit(dxmesh_protocol::audit::Event),
}

/// `dxmesh disclose` as the operator names it: the agreement by a hex
/// prefix, tokens in hex or the first N of the pulled feed. The node
/// resolves it into the one disclosure request the provider checks
/// ([`dxmesh_protocol::wire::DisclosureRequest`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscloseCall {
    /// Agreement or thread id (hex prefix).
    pub agreement: String,
    /// Epoch; the current one if absent.
    pub epoch: Option<u64>,
    /// Result kind.
    pub result_kind: String,
    /// Fields wanted.
    pub fields: Vec<String>,
    /// Tokens (hex); or none with `first`.
    pub tokens: Vec<String>,
    /// Take the first N tokens of the pulled feed instead.
    pub first: Option<u64>,
    /// Write the disclosed records as CSV here.
    pub out: Option<String>,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AdminResponse {
    /// Answer to `Status`.
    Status(Box<StatusInfo>),
    /// A roster was installed (or the offered one was not newer).
    RosterInstalled {
        /// Version now held.
        version: u64,
    },
    /// The outcome of an agreement step.
    AgreementStep(Box<AgreementSummary>),
    /// The agreement list.
    Agreements {
        /// One row per thread.
        agreements: Vec<AgreementSummary>,
    },
    /// One agreement in full.
    Agreement(Box<AgreementDetail>),
    /// Feeds published.
    Published {
        /// One line per feed.
        feeds: Vec<FeedInfo>,
    },
    /// A pull finished.
    Pulled {
        /// What it moved.
        summary: crate::pull::pulls::PullSummary,
        /// Agreement id (hex).
        agreement: String,
        /// Epoch.
        epoch: u64,
    },
    /// A disclosure arrived.
    Disclosed {
        /// Records received.
        records: u64,
        /// Tokens the provider did not know.
        unknown: u64,
        /// Where they were written.
        out: Option<String>,
    },
    /// A comparison finished; `summary.json` as text.
    Compared {
        /// The summary.
        summary: String,
    },
    /// Security alerts (fork evidence, JSON each).
    AuditAlerts {
        /// Evidence records.
        alerts: Vec<String>,
        /// Pulled feeds with result commitments whose retention ends within
        /// a week: recompute before they are erased.
        #[serde(default)]
        retention: Vec<String>,
    },
    /// An evidence bundle was written.
    AuditExported {
        /// Entries in the log.
        entries: u64,
        /// Where.
        out: String,
    },
    /// Answer to `Console`.
    Console(Box<ConsoleInfo>),
    /// Answer to `AuditPage`.
    AuditPage(AuditPage),
    /// The event is in the audit log.
    Logged,
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// Which audit entries a page of the log shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only entries of this kind (`feed_published`, ...).
    #[serde(default)]
    pub kind: Option<String>,
    /// Only entries whose other party or sentence holds this text (a
    /// department, a name, a peer id's end), case-insensitive.
    #[serde(default)]
    pub party: Option<String>,
    /// Only entries on or after this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub from: Option<String>,
    /// Only entries on or before this day (`YYYY-MM-DD`).
    #[serde(default)]
    pub to: Option<String>,
    /// Only entries before this position (the next page of older ones).
    #[serde(default)]
    pub before: Option<u64>,
}

/// A party as agreement summaries write it (`department (PeerId)`), with
/// the peer id cut to its last eight characters: enough to tell two nodes
/// apart on a page that must fit a screen.
pub fn short_party(party: &str) -> String {
    match party.split_once(" (") {
        Some((name, id)) => {
            let id = id.trim_end_matches(')');
            let tail: String = id
                .chars()
                .skip(id.chars().count().saturating_sub(8))
                .collect();
            format!("{name} (…{tail})")
        }
        None => party.to_string(),
    }
}

/// A page of the audit log in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// The entries, newest first.
    pub lines: Vec<AuditLine>,
    /// Entries in the log.
    pub size: u64,
    /// Where the next page of older entries starts, if there are any.
    pub older: Option<u64>,
}

/// One audit entry in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// Position in the log.
    pub seq: u64,
    /// When.
    pub at: String,
    /// Its kind (`feed_published`).
    pub kind: String,
    /// The kind as a phrase (`feed published`).
    pub kind_words: String,
    /// The other node, named.
    pub party: Option<String>,
    /// What happened.
    pub what: String,
    /// The agreement it is about: the thread of its page (hex) and its
    /// name (with its short agreement id).
    pub agreement: Option<(String, String)>,
    /// The feed it is about, as the feeds page anchors it
    /// (`feed-<agreement>-<epoch>`).
    #[serde(default)]
    pub feed: Option<String>,
}

/// What the operator console shows beyond `Status` and the agreements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleInfo {
    /// Entries in the audit log.
    pub audit_size: u64,
    /// The latest signed checkpoint (a signed note).
    pub checkpoint: Option<String>,
    /// Peers' cosignature lines on that checkpoint.
    pub cosignatures: Vec<String>,
    /// Fork evidence held as a witness.
    pub alerts: u64,
    /// Pulled feeds whose retention ends within a week while commitments
    /// of their epoch are kept (recompute them first).
    #[serde(default)]
    pub retention: Vec<String>,
    /// Every member of the roster held.
    pub members: Vec<MemberInfo>,
}

/// A roster member as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// PeerId.
    pub peer_id: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Display name.
    pub display_name: String,
    /// Its admission now (`admitted`, `revoked`, ...).
    pub admission: String,
}

/// An agreement's current epoch: its calendar and what is used of its
/// quotas (the same counts on both sides: the provider's, and the
/// consumer's of what it was granted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochInfo {
    /// The epoch now.
    pub epoch: u64,
    /// Its reference date (what the feed describes).
    pub reference_date: String,
    /// When its pull window opens (UTC).
    pub window_start: String,
    /// When its pull window closes (UTC).
    pub window_end: String,
    /// Pulls opened in the epoch, of `max_pulls`.
    pub pulls: u64,
    /// `max_pulls` of the cycle.
    pub max_pulls: u64,
    /// Records disclosed (or IDs asked about, for the ministry) in the epoch.
    pub disclosed: u64,
    /// `max_records_per_epoch`.
    pub max_records: u64,
}

impl EpochInfo {
    /// One line: epoch, reference date, window and quotas used.
    pub fn line(&self) -> String {
        format!(
            "epoch {} (reference date {}), window {} to {}, pulls {}/{}, records {}/{}",
            self.epoch,
            self.reference_date,
            self.window_start,
            self.window_end,
            self.pulls,
            self.max_pulls,
            self.disclosed,
            self.max_records
        )
    }
}

/// An active agreement's current epoch, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementEpoch {
    /// Agreement id (hex).
    pub agreement: String,
    /// Dataset.
    pub dataset: String,
    /// `provider` or `consumer`: this node's side (`provider (ministry
    /// queries)` for the ministry's answering agreements).
    pub side: String,
    /// The epoch now.
    pub epoch: EpochInfo,
}

/// What `dxmesh status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// This node's PeerId.
    pub peer_id: String,
    /// This node's public key (PEM).
    pub public_key_pem: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Display name.
    pub display_name: String,
    /// Mesh name of the roster held.
    pub mesh: Option<String>,
    /// Roster version held (0: none).
    pub roster_version: u64,
    /// Whether this node itself is admitted by the roster it holds.
    pub self_admission: String,
    /// Listen addresses (with `/p2p/<PeerId>`).
    pub listen_addresses: Vec<String>,
    /// Connected members.
    pub connected: Vec<PeerInfo>,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Most recent refusals, newest last.
    pub refusals: Vec<RefusalInfo>,
    /// The operator console's URL, if it runs.
    #[serde(default)]
    pub console_url: Option<String>,
    /// The audit log: its size, its latest checkpoint and who witnessed it.
    #[serde(default)]
    pub audit: AuditStatus,
    /// Each active agreement's current epoch.
    #[serde(default)]
    pub epochs: Vec<AgreementEpoch>,
}

/// The audit log as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditStatus {
    /// Entries in the log.
    pub entries: u64,
    /// Entries covered by the latest signed checkpoint.
    pub sealed: u64,
    /// Each other roster member and the largest size of this node's log
    /// it has cosigned as a witness (0: none yet).
    pub witnesses: Vec<WitnessInfo>,
}

/// One witness of this node's audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WitnessInfo {
    /// Its PeerId.
    pub peer_id: String,
    /// Its department.
    pub department: String,
    /// The largest size of this node's log it cosigned.
    pub cosigned: u64,
}

/// A published feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedInfo {
    /// Agreement id (hex).
    pub agreement: String,
    /// Dataset.
    pub dataset: String,
    /// Epoch.
    pub epoch: u64,
    /// Records.
    pub records: u64,
    /// Chunks.
    pub chunks: u32,
    /// Merkle root (hex).
    pub root: String,
    /// Digest of the signed manifest (hex).
    pub manifest: String,
    /// What the operator should know of it: an import came after it was
    /// built (and how to republish), or the manifest it superseded.
    #[serde(default)]
    pub note: Option<String>,
}

/// One agreement thread, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementSummary {
    /// Thread id (hex).
    pub thread: String,
    /// Id of the current terms (hex): the agreement id once accepted.
    pub agreement: String,
    /// Status now.
    pub status: String,
    /// Dataset.
    pub dataset: String,
    /// Provider (department and PeerId).
    pub provider: String,
    /// Consumer (department and PeerId).
    pub consumer: String,
    /// Number of signed steps.
    pub steps: u32,
    /// Whether a step of ours awaits the provider.
    pub pending: bool,
    /// What happened (for step results).
    pub message: String,
    /// The current epoch, once the agreement's calendar has started.
    #[serde(default)]
    pub epoch: Option<EpochInfo>,
}

/// One agreement in full (for `show` and `export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementDetail {
    /// Summary.
    pub summary: AgreementSummary,
    /// The current terms as TOML.
    pub terms_toml: String,
    /// The transcript, one line per step.
    pub transcript: Vec<StepLine>,
    /// The signed transcript: hex of the encoded `Vec<Signed<Step>>`.
    pub transcript_hex: String,
}

/// One step of a transcript, for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLine {
    /// Position.
    pub seq: u32,
    /// When (RFC 3339).
    pub at: String,
    /// Signer (department and PeerId).
    pub signer: String,
    /// Action and its argument.
    pub action: String,
    /// Step digest (hex).
    pub digest: String,
    /// Signature (hex).
    pub signature: String,
}

/// A connected member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// PeerId.
    pub peer_id: String,
    /// Department from the roster.
    pub department: String,
    /// Role from the roster.
    pub role: String,
    /// Display name from the roster.
    pub display_name: String,
    /// Addresses it listens on (from identify).
    pub addresses: Vec<String>,
}

/// A refused connection or request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalInfo {
    /// When (RFC 3339).
    pub at: String,
    /// The peer, when known.
    pub peer_id: Option<String>,
    /// Remote address, when known.
    pub remote: Option<String>,
    /// Why.
    pub reason: String,
}

/// One request from a client, with the channel for the daemon's answer.
#[derive(Debug)]
pub struct AdminCall {
    /// The request.
    pub request: AdminRequest,
    /// Where to send the answer.
    pub reply: oneshot::Sender<AdminResponse>,
}

/// Why the admin socket could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No daemon listens on the socket.
    #[error("no running node at {dir} ({socket}: {source}); start it with `dxmesh run --dir {dir}`",
        dir = .dir.display(), socket = .socket.display())]
    NotRunning {
        /// Node directory.
        dir: PathBuf,
        /// Socket path.
        socket: PathBuf,
        /// Connect error.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("admin socket {socket}: {message}", socket = .socket.display())]
    Exchange {
        /// Socket path.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Binds the admin socket at `path` (replacing a stale one) with mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves clients until the daemon drops `calls`' receiver.
pub async fn serve(listener: UnixListener, calls: mpsc::Sender<AdminCall>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let calls = calls.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream, calls).await {
                tracing::debug!(error = %e, "admin client failed");
            }
        });
    }
}

async fn serve_one(stream: UnixStream, calls: mpsc::Sender<AdminCall>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(16 * 1024 * 1024)).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<AdminRequest>(&line) {
            Err(e) => AdminResponse::Error {
                message: format!("malformed admin request: {e}"),
            },
            Ok(request) => {
                let (reply, rx) = oneshot::channel();
                if calls.send(AdminCall { request, reply }).await.is_err() {
                    return Ok(());
                }
                rx.await.unwrap_or(AdminResponse::Error {
                    message: "the node is shutting down".into(),
                })
            }
        };
        let mut out = serde_json::to_vec(&response).expect("responses serialise");
        out.push(b'\n');
        write.write_all(&out).await?;
    }
    Ok(())
}

use tokio::io::AsyncReadExt as _;

/// Sends one request to the daemon running in `dir` and returns its answer.
pub async fn call(dir: &Path, request: &AdminRequest) -> Result<AdminResponse, AdminError> {
    let socket = dir.join(crate::base::config::ADMIN_SOCKET);
    let stream = UnixStream::connect(&socket)
        .await
        .map_err(|source| AdminError::NotRunning {
            dir: dir.to_path_buf(),
            socket: socket.clone(),
            source,
        })?;
    let exchange = |message: String| AdminError::Exchange {
        socket: socket.clone(),
        message,
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).expect("requests serialise");
    line.push(b'\n');
    write
        .write_all(&line)
        .await
        .map_err(|e| exchange(e.to_string()))?;
    let mut lines = BufReader::new(read).lines();
    let answer = lines
        .next_line()
        .await
        .map_err(|e| exchange(e.to_string()))?
        .ok_or_else(|| exchange("the node closed the connection".into()))?;
    serde_json::from_str(&answer).map_err(|e| exchange(format!("malformed answer: {e}")))
}
