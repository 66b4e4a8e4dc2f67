//! Sharing agreements: the terms two parties sign, the negotiation state
//! machine that both sides replay from the same signed transcript, and the
//! checks a provider applies to every pull and disclosure request.
//!
//! * [`Terms`] are content-addressed: the agreement id is the SHA-256 of
//!   their canonical encoding.
//! * A negotiation is a chain of [`Step`]s, each signed by the party that
//!   took it and naming the digest of the step before. [`Negotiation::apply`]
//!   is the only place transitions are decided; any tampered, reordered or
//!   out-of-turn step is refused with the reason.
//! * Time-dependent status (active, expired) is derived from the accepted
//!   terms and a caller-supplied "now"; supersession from the caller's
//!   knowledge of other agreements.
//! * [`Negotiation::check_pull`] and [`Negotiation::check_disclosure`] return
//!   the typed [`Refusal`] the provider sends back and records.

use crate::codec;
use crate::cycle::Cycle;
use crate::identity::PublicKey;
use crate::merkle::Hash;
use crate::roster::Admission;
use crate::signed::{SignatureError, Signed, SignedKind};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An agreement id: SHA-256 of the canonical encoding of its [`Terms`].
pub type AgreementId = Hash;

/// How a field leaves the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// The keyed ID token only (the record key; exactly one field).
    Token,
    /// An attribute token, for "same person, different value" checks.
    AttrToken,
    /// Sent as it is (for example `region_code`).
    Clear,
}

/// A field of the feed and its treatment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldTerm {
    /// Canonical field name.
    pub name: String,
    /// Treatment.
    pub treatment: Treatment,
}

/// A row predicate the provider applies before publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowPredicate {
    /// `field` equals `value`.
    Equals {
        /// Field.
        field: String,
        /// Value.
        value: String,
    },
    /// `field` is one of `values`.
    In {
        /// Field.
        field: String,
        /// Allowed values.
        values: Vec<String>,
    },
    /// Age (from the ID number's birth date) at the epoch's reference date is at least `years`.
    AgeAtLeast {
        /// Years.
        years: u32,
    },
    /// Age at the epoch's reference date is at most `years`.
    AgeAtMost {
        /// Years.
        years: u32,
    },
    /// The date in `field` lies within the `days` days up to the reference date.
    WithinDays {
        /// A date field (`YYYY-MM-DD`).
        field: String,
        /// Days.
        days: u32,
    },
}

/// What the consumer may ask to have resolved back to records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureTerms {
    /// Fields the provider returns for disclosed records (e.g. `id_number`, `name`, `address`).
    pub fields: Vec<String>,
    /// Result kinds a disclosure may be asked for (e.g. `uninsured`).
    pub result_kinds: Vec<String>,
    /// Records per epoch, over all disclosure requests.
    pub max_records_per_epoch: u64,
}

/// The terms of a sharing agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Publishes the feed.
    pub provider: PublicKey,
    /// Pulls the feed (normally the comparator or the ministry).
    pub consumer: PublicKey,
    /// Dataset name at the provider.
    pub dataset: String,
    /// Fields of the feed; nothing else leaves.
    pub fields: Vec<FieldTerm>,
    /// Row scope (all must hold).
    pub rows: Vec<RowPredicate>,
    /// Purpose code, e.g. `registration/uninsured-outreach`.
    pub purpose_code: String,
    /// Purpose in a sentence.
    pub purpose: String,
    /// Token group whose key tokenises this feed.
    pub token_group: String,
    /// Exchange cycle.
    pub cycle: Cycle,
    /// Disclosure terms.
    pub disclosure: DisclosureTerms,
    /// Days the consumer may keep results and disclosed records.
    pub retention_days: u32,
    /// Valid from.
    pub not_before: Timestamp,
    /// Valid until (exclusive).
    pub not_after: Timestamp,
    /// Version of this agreement between the parties (1, 2, ...).
    pub version: u32,
    /// The agreement this one replaces.
    pub supersedes: Option<AgreementId>,
}

/// Why terms are not acceptable as written.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("invalid terms: {0}")]
pub struct TermsError(pub String);

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Terms {
    /// The agreement id.
    pub fn id(&self) -> AgreementId {
        let bytes = codec::encode(self).expect("terms always encode");
        let mut h = [0u8; 32];
        h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
        h
    }

    /// Checks the terms make sense on their own.
    pub fn validate(&self) -> Result<(), TermsError> {
        let bad = |m: String| Err(TermsError(m));
        if self.provider == self.consumer {
            return bad("provider and consumer are the same node".into());
        }
        if !is_name(&self.dataset) {
            return bad(format!(
                "dataset name {:?} must be lowercase letters, digits and _",
                self.dataset
            ));
        }
        if !is_name(&self.token_group) {
            return bad(format!(
                "token group {:?} must be lowercase letters, digits and _",
                self.token_group
            ));
        }
        let tokens = self
            .fields
            .iter()
            .filter(|f| f.treatment == Treatment::Token)
            .count();
        let attrs = self
            .fields
            .iter()
            .filter(|f| f.treatment == Treatment::AttrToken)
            .count();
        if tokens > 1 {
            return bad(format!(
                "at most one field may have treatment `token` (the ID), found {tokens}"
            ));
        }
        if tokens == 0 && attrs > 0 {
            return bad("a feed without a `token` field (IDs in clear, e.g. results uploaded to the ministry) carries no attribute tokens".into());
        }
        if tokens == 0 && !self.fields.iter().any(|f| f.treatment == Treatment::Clear) {
            return bad("a feed needs a `token` field or clear fields".into());
        }
        let mut names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("field {:?} listed twice", w[0]));
        }
        if let Some(f) = self
            .fields
            .iter()
            .find(|f| !is_name(&f.name) || f.name.contains(|c: char| c.is_ascii_digit()))
        {
            return bad(format!(
                "field name {:?} must be lowercase letters and _",
                f.name
            ));
        }
        if self.purpose_code.trim().is_empty() || self.purpose.trim().is_empty() {
            return bad("the purpose code and sentence must not be empty".into());
        }
        self.cycle
            .validate()
            .map_err(|e| TermsError(e.to_string()))?;
        if self.not_before >= self.not_after {
            return bad("not_before must be earlier than not_after".into());
        }
        if self.version == 0 {
            return bad("versions start at 1".into());
        }
        if self.version > 1 && self.supersedes.is_none() {
            return bad(format!(
                "version {} must name the agreement it supersedes",
                self.version
            ));
        }
        if self.disclosure.max_records_per_epoch > 0 && self.disclosure.result_kinds.is_empty() {
            return bad("a disclosure quota needs at least one result kind".into());
        }
        Ok(())
    }

    /// The treatment of `field`, if the field is in the feed.
    pub fn treatment(&self, field: &str) -> Option<Treatment> {
        self.fields
            .iter()
            .find(|f| f.name == field)
            .map(|f| f.treatment)
    }

    /// Whether the feed is keyed by a group token (false: IDs travel in clear).
    pub fn is_tokenised(&self) -> bool {
        self.fields.iter().any(|f| f.treatment == Treatment::Token)
    }

    /// Whether `other` may supersede these terms (same parties and dataset).
    pub fn may_be_superseded_by(&self, other: &Terms) -> bool {
        other.supersedes == Some(self.id())
            && other.provider == self.provider
            && other.consumer == self.consumer
            && other.dataset == self.dataset
    }
}

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
}

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
                expected_prev: crate::hex(&self.head),
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

    fn check_in_force(
        &self,
        who: &PublicKey,
        admission: Admission,
        now: Timestamp,
        superseded: bool,
    ) -> Result<(), Refusal> {
        if *who != self.terms.consumer {
            return Err(Refusal::NotConsumer);
        }
        if admission != Admission::Admitted {
            return Err(Refusal::NotAdmitted(admission));
        }
        match self.status(now, superseded) {
            Status::Active => Ok(()),
            Status::Proposed | Status::Countered => Err(Refusal::NotAccepted),
            Status::Accepted => Err(Refusal::NotYetActive {
                not_before: self.terms.not_before,
            }),
            Status::Suspended => Err(Refusal::Suspended),
            Status::Terminated => Err(Refusal::Terminated),
            Status::Expired => Err(Refusal::Expired {
                not_after: self.terms.not_after,
            }),
            Status::Superseded => Err(Refusal::Superseded),
        }
    }

    fn check_epoch(&self, epoch: u64, now: Timestamp) -> Result<(), Refusal> {
        let current = self.terms.cycle.epoch_at(now);
        if current != Some(epoch) {
            return Err(Refusal::EpochNotCurrent {
                requested: epoch,
                current,
            });
        }
        let (start, end) = self
            .terms
            .cycle
            .window(epoch)
            .ok_or(Refusal::EpochNotCurrent {
                requested: epoch,
                current,
            })?;
        if now < start || now >= end {
            return Err(Refusal::OutsideWindow { epoch, start, end });
        }
        Ok(())
    }

    /// Decides a pull request (at the provider, before any data moves).
    pub fn check_pull(
        &self,
        now: Timestamp,
        superseded: bool,
        req: &PullCheck<'_>,
    ) -> Result<(), Refusal> {
        self.check_in_force(req.requester, req.admission, now, superseded)?;
        self.check_epoch(req.epoch, now)?;
        if req.new_pull && req.pulls_used >= self.terms.cycle.max_pulls {
            return Err(Refusal::OverPullMaximum {
                max: self.terms.cycle.max_pulls,
            });
        }
        if let Some(f) = req
            .fields
            .iter()
            .find(|f| self.terms.treatment(f).is_none())
        {
            return Err(Refusal::FieldOutOfScope { field: f.clone() });
        }
        Ok(())
    }

    /// Decides a disclosure request.
    pub fn check_disclosure(
        &self,
        now: Timestamp,
        superseded: bool,
        req: &DisclosureCheck<'_>,
    ) -> Result<(), Refusal> {
        self.check_in_force(req.requester, req.admission, now, superseded)?;
        let current = self.terms.cycle.epoch_at(now);
        if current != Some(req.epoch) {
            return Err(Refusal::EpochNotCurrent {
                requested: req.epoch,
                current,
            });
        }
        let d = &self.terms.disclosure;
        if !d.result_kinds.iter().any(|k| k == req.result_kind) {
            return Err(Refusal::ResultKindNotAllowed {
                kind: req.result_kind.to_string(),
            });
        }
        if let Some(f) = req.fields.iter().find(|f| !d.fields.contains(f)) {
            return Err(Refusal::DisclosureFieldNotAllowed { field: f.clone() });
        }
        let remaining = d.max_records_per_epoch.saturating_sub(req.records_used);
        if req.records_requested > remaining {
            return Err(Refusal::DisclosureOverQuota {
                requested: req.records_requested,
                remaining,
            });
        }
        Ok(())
    }
}

/// The facts a provider checks a pull request against.
#[derive(Debug, Clone)]
pub struct PullCheck<'a> {
    /// Who asks.
    pub requester: &'a PublicKey,
    /// Their admission by the provider's roster now.
    pub admission: Admission,
    /// Epoch asked for.
    pub epoch: u64,
    /// Fields asked for.
    pub fields: &'a [String],
    /// Whether this opens a new pull (a resumed pull is not counted again).
    pub new_pull: bool,
    /// Pulls already opened in this epoch.
    pub pulls_used: u32,
}

/// The facts a provider checks a disclosure request against.
#[derive(Debug, Clone)]
pub struct DisclosureCheck<'a> {
    /// Who asks.
    pub requester: &'a PublicKey,
    /// Their admission by the provider's roster now.
    pub admission: Admission,
    /// Epoch.
    pub epoch: u64,
    /// Result kind.
    pub result_kind: &'a str,
    /// Fields asked for.
    pub fields: &'a [String],
    /// Records asked for.
    pub records_requested: u64,
    /// Records already disclosed this epoch.
    pub records_used: u64,
}

/// Why a provider refused a request: sent to the requester and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No agreement with that id at this provider.
    #[error("unknown agreement")]
    UnknownAgreement,
    /// The requester is not the agreement's consumer.
    #[error("the requester is not the agreement's consumer")]
    NotConsumer,
    /// The requester is not admitted by the provider's roster.
    #[error("the requester is not admitted by the roster: {0}")]
    NotAdmitted(Admission),
    /// Still being negotiated.
    #[error("the agreement has not been accepted")]
    NotAccepted,
    /// Accepted but `not_before` has not come.
    #[error("the agreement is not active before {not_before}")]
    NotYetActive {
        /// Start of validity.
        not_before: Timestamp,
    },
    /// Past `not_after`.
    #[error("the agreement expired at {not_after}")]
    Expired {
        /// End of validity.
        not_after: Timestamp,
    },
    /// Terminated.
    #[error("the agreement is terminated")]
    Terminated,
    /// Suspended.
    #[error("the agreement is suspended")]
    Suspended,
    /// Replaced by a newer agreement.
    #[error("the agreement is superseded")]
    Superseded,
    /// Not the current epoch.
    #[error("epoch {requested} is not the current epoch ({})", current.map(|c| c.to_string()).unwrap_or_else(|| "none yet".into()))]
    EpochNotCurrent {
        /// Asked for.
        requested: u64,
        /// Current, if the cycle has started.
        current: Option<u64>,
    },
    /// Outside the epoch's pull window.
    #[error("outside the pull window of epoch {epoch} ({start} to {end})")]
    OutsideWindow {
        /// Epoch.
        epoch: u64,
        /// Window start.
        start: Timestamp,
        /// Window end.
        end: Timestamp,
    },
    /// The epoch's pulls are used up.
    #[error("the maximum of {max} pulls for this epoch is reached")]
    OverPullMaximum {
        /// Maximum.
        max: u32,
    },
    /// A field not in the terms.
    #[error("field {field:?} is not in the agreement")]
    FieldOutOfScope {
        /// Field.
        field: String,
    },
    /// A disclosure over the epoch's quota.
    #[error("disclosure of {requested} records exceeds the {remaining} remaining this epoch")]
    DisclosureOverQuota {
        /// Asked for.
        requested: u64,
        /// Left.
        remaining: u64,
    },
    /// A disclosure field not allowed.
    #[error("field {field:?} may not be disclosed under this agreement")]
    DisclosureFieldNotAllowed {
        /// Field.
        field: String,
    },
    /// A result kind not allowed.
    #[error("result kind {kind:?} may not be disclosed under this agreement")]
    ResultKindNotAllowed {
        /// Kind.
        kind: String,
    },
    /// The feed for that epoch is not published (yet).
    #[error("no feed is published for epoch {epoch}")]
    NotPublished {
        /// Epoch.
        epoch: u64,
    },
    /// The request was allowed but the provider failed to serve it (a
    /// damaged or missing file, a dataset re-imported since the epoch was
    /// published); the details stay in the provider's log.
    #[error("the provider could not serve epoch {epoch}; its log says why")]
    ProviderFailed {
        /// Epoch.
        epoch: u64,
    },
}

impl Refusal {
    /// A short stable code for logs and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownAgreement => "unknown_agreement",
            Refusal::NotConsumer => "wrong_consumer",
            Refusal::NotAdmitted(_) => "not_admitted",
            Refusal::NotAccepted => "not_accepted",
            Refusal::NotYetActive { .. } => "not_yet_active",
            Refusal::Expired { .. } => "expired",
            Refusal::Terminated => "terminated",
            Refusal::Suspended => "suspended",
            Refusal::Superseded => "superseded",
            Refusal::EpochNotCurrent { .. } => "epoch_not_current",
            Refusal::OutsideWindow { .. } => "outside_window",
            Refusal::OverPullMaximum { .. } => "over_pull_maximum",
            Refusal::FieldOutOfScope { .. } => "field_out_of_scope",
            Refusal::DisclosureOverQuota { .. } => "disclosure_over_quota",
            Refusal::DisclosureFieldNotAllowed { .. } => "disclosure_field_not_allowed",
            Refusal::ResultKindNotAllowed { .. } => "result_kind_not_allowed",
            Refusal::NotPublished { .. } => "not_published",
            Refusal::ProviderFailed { .. } => "provider_failed",
        }
    }
}

/// Signs the next step of `n` (or the first, when `n` is `None`) with `identity`.
pub fn sign_step(
    identity: &crate::identity::Identity,
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
