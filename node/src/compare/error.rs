//! Why a comparison cycle fails: [`StepError`] for a network step the
//! cycle asked of the node (a pull, a disclosure, a ministry query, an
//! audit entry) and [`CycleError`] for the cycle as a whole, by cause. The
//! rendered messages are the ones `dxmesh compare` prints. A leaf module:
//! the cycle and its stages use it, it uses none of them.

use crate::base::peer::PeerError;
use crate::compare::pass::CompareError;
use crate::pull::pulls::PullError;
use std::path::PathBuf;

/// Why a network step the cycle asked of the node did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The node's event loop is gone: the node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The peer did not do it: not connected, refused (the message ends
    /// with the refusal's code in brackets), no answer, or an answer that
    /// does not verify.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A download ended without the whole feed, verified.
    #[error(transparent)]
    Pull(#[from] PullError),
    /// Anything else the node could not do (a request it cannot make, a
    /// failure of its own store or files), as its own typed error.
    #[error(transparent)]
    Node(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a comparison cycle failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CycleError {
    /// A disclosure, a ministry query or the audit entry failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// An input's feed could not be pulled.
    #[error("pulling input {name}: {source}")]
    Pull {
        /// The input's name in the job file.
        name: String,
        /// Why the pull failed.
        #[source]
        source: StepError,
    },
    /// An input's pulled feed could not be opened.
    #[error("input {name}: {source}")]
    Input {
        /// The input's name in the job file.
        name: String,
        /// Why the feed did not open.
        #[source]
        source: PullError,
    },
    /// A pulled feed could not be read again for the summary.
    #[error(transparent)]
    Feed(PullError),
    /// The comparison pass refused a feed.
    #[error(transparent)]
    Pass(#[from] CompareError),
    /// The thread running the comparison pass ended without an answer.
    #[error("the comparison pass failed: {0}")]
    PassThread(#[source] tokio::task::JoinError),
    /// A part of the job (`ministry.id_source`, `disclose.input`) names no
    /// input the cycle was started with.
    #[error("{0} is not an input")]
    NotAnInput(&'static str),
    /// A result commitment could not be made or kept.
    #[error(transparent)]
    Commit(#[from] crate::compare::commit::CommitError),
    /// The provider refused to disclose the ministry candidates, without
    /// whom there is no ministry check.
    #[error("the provider refused to disclose the ministry candidates: {refusal} [{code}]")]
    CandidatesRefused {
        /// The refusal's code.
        code: &'static str,
        /// Why.
        refusal: dxmesh_protocol::agreement::Refusal,
    },
    /// The ministry's answer is not about the query the cycle sent.
    #[error("the ministry's answer is not taken: {0}")]
    OtherAnswer(String),
    /// A result file or `summary.json` could not be written.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A result file's rows could not be encoded as CSV.
    #[error("{path}: {source}", path = .path.display())]
    Csv {
        /// The result file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: csv::Error,
    },
    /// `summary.json` could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A provider's disclosure does not hold what was asked (a record with
    /// another number of values than the fields asked).
    #[error("the provider's disclosure is not taken: {0}")]
    Disclosure(String),
    /// A result file's rows could not be sorted on disk (no room for the
    /// sort's runs, or they could not be written or read).
    #[error("sorting a result file's rows: {0}")]
    Sort(#[from] crate::dataset::sorted::SortedError),
}
