//! The negotiation state machine: the signed [`Step`]s of a transcript,
//! each naming the digest of the step before, and the [`Negotiation`] both
//! parties rebuild by replaying it. [`Negotiation::apply`] is the only place
//! transitions are decided; a tampered, reordered or out-of-turn step is
//! refused with the reason. Also here: the time-dependent [`Status`],
//! signing the next step, and reconciling a local transcript with the
//! authoritative one.

use crate::agreement::terms::{AgreementId, Terms, TermsError};
use crate::codec;
use crate::display::hex;
use crate::hash::Hash;
use crate::identity::{Identity, PublicKey};
use crate::signed::{SignatureError, Signed, SignedKind};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Opens a negotiation with terms.
    Propose(Terms),
    /// Replaces the last offer with changed terms.
    Counter(Terms),
    /// Accepts the last offer, naming its id.
    Accept {
        /// The id of the terms accepted.
        agreement: AgreementId,
    },
    /// Stops pulls and disclosures until resumed.
    Suspend {
        /// Why.
        reason: String,
    },
    /// Lifts a suspension (only by the party that suspended).
    Resume,
    /// Ends the negotiation or agreement for good.
    Terminate {
        /// Why.
        reason: String,
    },
}

impl Action {
    /// Short name (`propose`, `counter`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Propose(_) => "propose",
            Action::Counter(_) => "counter",
            Action::Accept { .. } => "accept",
            Action::Suspend { .. } => "suspend",
            Action::Resume => "resume",
            Action::Terminate { .. } => "terminate",
        }
    }
}

/// One signed step of a negotiation transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The thread (digest of the first signed step); `None` in the first step.
    pub thread: Option<Hash>,
    /// Digest of the previous signed step; `None` in the first step.
    pub prev: Option<Hash>,
    /// Position in the transcript, from 0.
    pub seq: u32,
    /// When the signer took the step.
    pub at: Timestamp,
    /// What it does.
    pub action: Action,
}

impl SignedKind for Step {
    const TAG: &'static str = "dxmesh/agreement-step/v1";
}

/// Negotiation phase, as recorded by the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Opened with an offer.
    Proposed,
    /// The last offer is a counter-offer.
    Countered,
    /// Both parties signed the same terms.
    Accepted,
    /// Accepted, then suspended.
    Suspended,
    /// Ended.
    Terminated,
}

/// Status at a point in time: the phase, refined by validity and supersession.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// An offer awaits an answer.
    Proposed,
    /// A counter-offer awaits an answer.
    Countered,
    /// Accepted; `not_before` has not come.
    Accepted,
    /// Accepted and in force.
    Active,
    /// Suspended.
    Suspended,
    /// Terminated.
    Terminated,
    /// `not_after` has passed.
    Expired,
    /// A newer accepted agreement replaced it.
    Superseded,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Proposed => "proposed",
            Status::Countered => "countered",
            Status::Accepted => "accepted",
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Terminated => "terminated",
            Status::Expired => "expired",
            Status::Superseded => "superseded",
        })
    }
}

/// Why a step was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum StepError {
    /// Bad signature or body.
    #[error("step {seq}: {source}")]
    Signature {
        /// Position.
        seq: u32,
        /// Cause.
        source: SignatureError,
    },
    /// Signed by someone who is neither party.
    #[error("step {seq}: signed by {signer}, who is not a party to the agreement")]
    NotAParty {
        /// Position.
        seq: u32,
        /// Signer.
        signer: PublicKey,
    },
    /// Wrong position, predecessor or thread.
    #[error(
        "step {seq}: does not follow the transcript (expected position {expected_seq}, predecessor {expected_prev})"
    )]
    OutOfOrder {
        /// Position claimed.
        seq: u32,
        /// Position expected.
        expected_seq: u32,
        /// Expected predecessor digest (hex).
        expected_prev: String,
    },
    /// A transition the state machine does not allow.
    #[error("step {seq}: cannot {action} when the agreement is {phase:?}{detail}")]
    Transition {
        /// Position.
        seq: u32,
        /// The action.
        action: &'static str,
        /// Phase it was in.
        phase: Phase,
        /// More detail.
        detail: String,
    },
    /// The terms are invalid.
    #[error("step {seq}: {source}")]
    Terms {
        /// Position.
        seq: u32,
        /// Cause.
        source: TermsError,
    },
    /// An empty transcript.
    #[error("empty transcript")]
    Empty,
    /// More steps than an agreement may have: refused before any is
    /// checked, so a peer cannot make a node verify an endless transcript.
    #[error(
        "the transcript holds {steps} steps, more than the {MAX_TRANSCRIPT_STEPS} an agreement may have"
    )]
    TooLong {
        /// Steps sent.
        steps: usize,
    },
}

/// The most steps one agreement's transcript may hold (a proposal, a few
/// counter-offers, the acceptance, then a suspension and a resumption a
/// month for decades); a longer one is refused unread.
pub const MAX_TRANSCRIPT_STEPS: usize = 1000;

/// The state of one negotiation thread, rebuilt by replaying its transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    /// Digest of the first step.
    pub thread: Hash,
    /// Phase.
    pub phase: Phase,
    /// The last offered terms (the accepted ones once accepted).
    pub terms: Terms,
    /// Who made the last offer.
    pub last_offer_by: PublicKey,
    /// Who suspended it, while suspended.
    pub suspended_by: Option<PublicKey>,
    /// Digest of the last step.
    pub head: Hash,
    /// Number of steps.
    pub len: u32,
    /// The digests of every step, in order.
    pub step_digests: Vec<Hash>,
}

impl Negotiation {
    /// Starts from the first (propose) step.
    pub fn start(first: &Signed<Step>) -> Result<Negotiation, StepError> {
        let step = first
            .verify()
            .map_err(|source| StepError::Signature { seq: 0, source })?;
        if step.seq != 0 || step.prev.is_some() || step.thread.is_some() {
            return Err(StepError::OutOfOrder {
                seq: step.seq,
                expected_seq: 0,
                expected_prev: "none".into(),
            });
        }
        let Action::Propose(terms) = step.action else {
            return Err(StepError::Transition {
                seq: 0,
                action: step.action.name(),
                phase: Phase::Proposed,
                detail: ": a transcript must start with a proposal".into(),
            });
        };
        terms
            .validate()
            .map_err(|source| StepError::Terms { seq: 0, source })?;
        let signer = *first.signer();
        if signer != terms.provider && signer != terms.consumer {
            return Err(StepError::NotAParty { seq: 0, signer });
        }
        let digest = first.digest();
        Ok(Negotiation {
            thread: digest,
            phase: Phase::Proposed,
            terms,
            last_offer_by: signer,
            suspended_by: None,
            head: digest,
            len: 1,
            step_digests: vec![digest],
        })
    }

    /// Replays a whole transcript.
    pub fn replay(steps: &[Signed<Step>]) -> Result<Negotiation, StepError> {
        if steps.len() > MAX_TRANSCRIPT_STEPS {
            return Err(StepError::TooLong { steps: steps.len() });
        }
        let (first, rest) = steps.split_first().ok_or(StepError::Empty)?;
        let mut n = Negotiation::start(first)?;
        for s in rest {
            n.apply(s)?;
        }
        Ok(n)
    }

    /// The other party than `key`.
    pub fn other_party(&self, key: &PublicKey) -> PublicKey {
        if *key == self.terms.provider {
            self.terms.consumer
        } else {
            self.terms.provider
        }
    }

    /// Checks `signed` as the next step without changing anything; returns the decoded step.
    pub fn check(&self, signed: &Signed<Step>) -> Result<Step, StepError> {
        let seq = self.len;
        let step = signed
            .verify()
            .map_err(|source| StepError::Signature { seq, source })?;
        let signer = *signed.signer();
        if signer != self.terms.provider && signer != self.terms.consumer {
            return Err(StepError::NotAParty { seq, signer });
        }
        if step.seq != seq || step.prev != Some(self.head) || step.thread != Some(self.thread) {
            return Err(StepError::OutOfOrder {
                seq: step.seq,
                expected_seq: seq,
                expected_prev: hex(&self.head),
            });
        }
        let refuse = |detail: &str| StepError::Transition {
            seq,
            action: step.action.name(),
            phase: self.phase,
            detail: detail.to_string(),
        };
        match (&step.action, self.phase) {
            (Action::Propose(_), _) => return Err(refuse(": a proposal opens a new negotiation")),
            (Action::Counter(t), Phase::Proposed | Phase::Countered) => {
                if signer == self.last_offer_by {
                    return Err(refuse(": a party cannot counter its own offer"));
                }
                t.validate()
                    .map_err(|source| StepError::Terms { seq, source })?;
                if t.provider != self.terms.provider || t.consumer != self.terms.consumer {
                    return Err(refuse(": a counter-offer cannot change the parties"));
                }
            }
            (Action::Accept { agreement }, Phase::Proposed | Phase::Countered) => {
                if signer == self.last_offer_by {
                    return Err(refuse(": a party cannot accept its own offer"));
                }
                if *agreement != self.terms.id() {
                    return Err(refuse(": it names terms other than the last offer"));
                }
                if step.at >= self.terms.not_after {
                    return Err(refuse(": the offer's validity has already ended"));
                }
            }
            (Action::Suspend { .. }, Phase::Accepted) => {}
            (Action::Resume, Phase::Suspended) => {
                if Some(signer) != self.suspended_by {
                    return Err(refuse(": only the party that suspended may resume"));
                }
            }
            (Action::Terminate { .. }, p) if p != Phase::Terminated => {}
            _ => return Err(refuse("")),
        }
        Ok(step)
    }

    /// Applies the next step.
    pub fn apply(&mut self, signed: &Signed<Step>) -> Result<(), StepError> {
        let step = self.check(signed)?;
        let signer = *signed.signer();
        match step.action {
            Action::Counter(t) => {
                self.terms = t;
                self.last_offer_by = signer;
                self.phase = Phase::Countered;
            }
            Action::Accept { .. } => self.phase = Phase::Accepted,
            Action::Suspend { .. } => {
                self.phase = Phase::Suspended;
                self.suspended_by = Some(signer);
            }
            Action::Resume => {
                self.phase = Phase::Accepted;
                self.suspended_by = None;
            }
            Action::Terminate { .. } => self.phase = Phase::Terminated,
            Action::Propose(_) => unreachable!("refused by check"),
        }
        let digest = signed.digest();
        self.head = digest;
        self.len += 1;
        self.step_digests.push(digest);
        Ok(())
    }

    /// The agreement id once accepted.
    pub fn agreement_id(&self) -> Option<AgreementId> {
        matches!(self.phase, Phase::Accepted | Phase::Suspended)
            .then(|| self.terms.id())
            .or_else(|| (self.phase == Phase::Terminated).then(|| self.terms.id()))
    }

    /// Status at `now`; `superseded` says whether a newer agreement replacing it is in force.
    pub fn status(&self, now: Timestamp, superseded: bool) -> Status {
        match self.phase {
            Phase::Proposed => Status::Proposed,
            Phase::Countered => Status::Countered,
            Phase::Terminated => Status::Terminated,
            Phase::Suspended | Phase::Accepted => {
                if now >= self.terms.not_after {
                    Status::Expired
                } else if superseded {
                    Status::Superseded
                } else if self.phase == Phase::Suspended {
                    Status::Suspended
                } else if now < self.terms.not_before {
                    Status::Accepted
                } else {
                    Status::Active
                }
            }
        }
    }
}

/// Signs the next step of `n` (or the first, when `n` is `None`) with `identity`.
pub fn sign_step(
    identity: &Identity,
    n: Option<&Negotiation>,
    at: Timestamp,
    action: Action,
) -> Result<Signed<Step>, codec::CodecError> {
    let step = match n {
        None => Step {
            thread: None,
            prev: None,
            seq: 0,
            at,
            action,
        },
        Some(n) => Step {
            thread: Some(n.thread),
            prev: Some(n.head),
            seq: n.len,
            at,
            action,
        },
    };
    Signed::sign(identity, &step)
}

/// Why two transcripts of the same thread cannot be reconciled.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum SyncError {
    /// The authoritative transcript does not replay.
    #[error(transparent)]
    Invalid(#[from] StepError),
    /// The local transcript is not a prefix of the authoritative one: the
    /// sequencing party showed two different histories (evidence of a fork).
    #[error("transcripts fork at step {at}")]
    Fork {
        /// First position where they differ.
        at: usize,
    },
}

/// Reconciles a local transcript with the authoritative one (the provider
/// sequences every thread). The local one must be a prefix of it: dxmesh
/// never has two writers for one transcript, so honest nodes never fork.
/// Returns the state after the authoritative transcript.
pub fn reconcile(
    local: &[Signed<Step>],
    authoritative: &[Signed<Step>],
) -> Result<Negotiation, SyncError> {
    if let Some(at) = local
        .iter()
        .zip(authoritative)
        .position(|(a, b)| a != b)
        .or_else(|| (local.len() > authoritative.len()).then_some(authoritative.len()))
    {
        return Err(SyncError::Fork { at });
    }
    Ok(Negotiation::replay(authoritative)?)
}
