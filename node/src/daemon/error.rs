//! Why a piece of work the running node was asked to do failed: a request
//! from its operator (the admin socket), its schedule, or the comparator's
//! cycle. Errors are sorted by cause, as rustls's `error.rs` does: the
//! request itself was wrong ([`RequestError`]), the peer refused or
//! misbehaved ([`PeerError`]), or something failed on this node
//! ([`LocalError`]). They become text only where they leave the daemon (an
//! admin answer, a log line, the comparator's step result).

use crate::agreements::terms_file::TermsFileError;
use crate::agreements::threads::AgreementError;
use crate::base::store::StoreError;
use crate::publish::keys::KeyError;
use crate::publish::store::FeedStoreError;
use crate::pull::pulls::PullError;
use crate::trust::roster_file::PeerIdError;
use dxmesh_protocol::roster::Admission;
use std::path::PathBuf;

/// Why the node could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The request names something this node does not have, or is malformed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The peer refused, did not answer, or answered with something that
    /// does not verify.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// Something failed on this node.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// The request itself is wrong; asking again unchanged fails again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No agreement with that id is known.
    #[error("unknown agreement")]
    UnknownAgreement,
    /// No accepted agreement with that id is known.
    #[error("no accepted agreement with that id")]
    NotAccepted,
    /// This node is not the consumer of the agreement.
    #[error("this node is not the consumer of that agreement")]
    NotConsumer,
    /// The agreement's cycle has no current epoch yet.
    #[error("the agreement's cycle has not started")]
    CycleNotStarted,
    /// The epoch is past the agreement's retention.
    #[error(
        "epoch {epoch} may be kept only until {until} (retention_days = {retention_days}): it is not pulled again"
    )]
    PastRetention {
        /// The epoch asked for.
        epoch: u64,
        /// The last day it may be kept.
        until: String,
        /// The agreement's retention.
        retention_days: u32,
    },
    /// A token given in hex is not one.
    #[error("token {token:?}: {problem}")]
    BadToken {
        /// The text given.
        token: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The same feed is already being built or pulled.
    #[error("a {what} of this feed is already running")]
    Busy {
        /// `build` or `pull`.
        what: &'static str,
    },
    /// No active agreement this node consumes matches a job's input.
    #[error(
        "no active agreement for dataset {dataset:?}{from} where this node is the consumer",
        from = .department.as_ref().map(|d| format!(" from {d}")).unwrap_or_default()
    )]
    NoAgreementFor {
        /// The dataset the input names.
        dataset: String,
        /// The provider's department, if the input names one.
        department: Option<String>,
    },
    /// Several active agreements match a job's input.
    #[error("several active agreements for dataset {dataset:?}; name the provider")]
    SeveralAgreementsFor {
        /// The dataset the input names.
        dataset: String,
    },
    /// No result of that kind and epoch is committed at this node.
    #[error(
        "no result {kind:?} of epoch {epoch} is committed here; `dxmesh compare` commits to each result before it discloses"
    )]
    NotCommitted {
        /// The result kind.
        kind: String,
        /// The epoch.
        epoch: u64,
    },
    /// A commitment kept here could not be read, or does not hold a token
    /// asked for.
    #[error(transparent)]
    Commit(#[from] crate::compare::commit::CommitError),
    /// A PeerId that names no member key.
    #[error(transparent)]
    PeerId(#[from] PeerIdError),
    /// A terms file that does not make valid terms.
    #[error(transparent)]
    Terms(#[from] TermsFileError),
    /// An agreement proposed to this node itself.
    #[error("cannot propose an agreement to this node itself")]
    ProposeToSelf,
    /// An agreement proposed to a node the roster does not admit.
    #[error("{peer} is not a current roster member ({admission})")]
    NotMember {
        /// The PeerId given.
        peer: String,
        /// Its admission now.
        admission: Admission,
    },
    /// Terms that name neither side as the peer proposed to.
    #[error("{peer} is neither the provider nor the consumer named in {terms_path}")]
    NotAParty {
        /// The PeerId given.
        peer: String,
        /// The terms file.
        terms_path: String,
    },
    /// An agreement action this node does not know.
    #[error("unknown agreement action {0:?}")]
    UnknownAction(String),
    /// An admin request that is not an agreement action.
    #[error("not an agreement action")]
    NotAnAgreementAction,
    /// The agreement request is refused by the agreement rules.
    #[error(transparent)]
    Agreement(#[from] AgreementError),
}

pub use crate::base::peer::PeerError;

/// The comparator's cycle gets the causes it acts on typed (what the peer
/// did, a failed download) and the rest as the node's own error.
impl From<NodeError> for crate::compare::error::StepError {
    fn from(e: NodeError) -> Self {
        use crate::compare::error::StepError;
        match e {
            NodeError::Peer(e) => StepError::Peer(e),
            NodeError::Local(LocalError::Feed(e)) => StepError::Pull(e),
            other => StepError::Node(Box::new(other)),
        }
    }
}

/// Something failed on this node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A file could not be read or written.
    #[error("{path}: {problem}", path = .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        problem: String,
    },
    /// The node's configuration does not allow it.
    #[error("{0}")]
    Config(String),
    /// A pulled feed could not be read or stored.
    #[error(transparent)]
    Feed(#[from] PullError),
    /// A published feed could not be built or read.
    #[error(transparent)]
    Publish(#[from] FeedStoreError),
    /// The group key store failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The node's state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PullError> for NodeError {
    fn from(e: PullError) -> Self {
        NodeError::Local(e.into())
    }
}

impl From<FeedStoreError> for NodeError {
    fn from(e: FeedStoreError) -> Self {
        NodeError::Local(e.into())
    }
}

impl From<KeyError> for NodeError {
    fn from(e: KeyError) -> Self {
        NodeError::Local(e.into())
    }
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Local(e.into())
    }
}

impl From<AgreementError> for NodeError {
    fn from(e: AgreementError) -> Self {
        NodeError::Request(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::error::StepError;
    use dxmesh_protocol::agreement::Refusal;

    #[test]
    fn the_cycle_gets_what_the_peer_did_typed_and_the_rest_as_the_nodes_error() {
        let refused = NodeError::from(PeerError::Refused {
            role: "provider",
            refusal: Refusal::Suspended,
        });
        let text = refused.to_string();
        let step = StepError::from(refused);
        assert!(
            matches!(
                step,
                StepError::Peer(PeerError::Refused {
                    refusal: Refusal::Suspended,
                    ..
                })
            ),
            "{step:?}"
        );
        assert_eq!(step.to_string(), text, "the message is the node's");
        let busy = StepError::from(NodeError::from(RequestError::Busy { what: "pull" }));
        let StepError::Node(inner) = &busy else {
            panic!("{busy:?}");
        };
        assert!(inner.downcast_ref::<NodeError>().is_some());
        assert_eq!(busy.to_string(), "a pull of this feed is already running");
    }

    #[test]
    fn messages_say_the_cause_and_keep_the_refusal_code() {
        let e = NodeError::from(PeerError::Refused {
            role: "provider",
            refusal: Refusal::UnknownAgreement,
        });
        let text = e.to_string();
        assert!(text.starts_with("refused by the provider: "), "{text}");
        assert!(
            text.ends_with(&format!("[{}]", Refusal::UnknownAgreement.code())),
            "{text}"
        );
        let e = NodeError::from(PeerError::NotConnected {
            role: "ministry",
            label: "ministry (12D3)".into(),
        });
        assert_eq!(
            e.to_string(),
            "the ministry ministry (12D3) is not connected"
        );
        assert_eq!(
            NodeError::from(RequestError::Busy { what: "pull" }).to_string(),
            "a pull of this feed is already running"
        );
    }
}
