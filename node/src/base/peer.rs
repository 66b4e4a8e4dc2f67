//! Why a request to a peer failed, on the peer's side: it is not
//! connected, it refused (with its typed reason), it did not answer, or
//! its answer does not verify. Shared by the daemon, which sends the
//! requests, and the comparator's cycle, which acts on the cause.

use dxmesh_protocol::agreement::Refusal;

/// The peer refused, is unreachable, or misbehaved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The peer the request must go to is not connected.
    #[error("the {role} {label} is not connected")]
    NotConnected {
        /// `provider`, `ministry`, `custodian`...
        role: &'static str,
        /// "department (PeerId)".
        label: String,
    },
    /// The peer refused the request, with its typed reason.
    #[error("refused by the {role}: {refusal} [{code}]", code = .refusal.code())]
    Refused {
        /// Who refused.
        role: &'static str,
        /// Why.
        refusal: Refusal,
    },
    /// The peer refused the request at the connection level (not a member,
    /// or a request it does not take from us).
    #[error("refused by the {role}: {reason}")]
    RefusedRequest {
        /// Who refused.
        role: &'static str,
        /// Why, as the peer said it.
        reason: String,
    },
    /// A feed waits for its token group's key from the custodian.
    #[error(
        "waiting for the key of token group {group:?} from its custodian; publishing continues when it arrives"
    )]
    WaitingForKey {
        /// The token group.
        group: String,
    },
    /// The peer's signed answer does not verify against its key.
    #[error("the {what} does not verify: {problem}")]
    Unverified {
        /// What was received.
        what: &'static str,
        /// Why it does not verify.
        problem: String,
    },
    /// The peer answered with something that does not fit the request.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The request never got an answer (connection closed, timeout).
    #[error("the request failed: {0}")]
    NoAnswer(String),
}
