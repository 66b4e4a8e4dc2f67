//! Enforcement: the checks a provider applies to every pull and disclosure
//! request under an agreement ([`Negotiation::check_pull`],
//! [`Negotiation::check_disclosure`]), the facts they are checked against,
//! and the typed [`Refusal`] sent back to the requester and recorded.

use crate::agreement::negotiation::{Negotiation, Status};
use crate::commitment::{CommittedInput, MultiProof, ResultCommitment, token_leaves};
use crate::feed::{DisclosureReceipt, Manifest};
use crate::hash::Hash;
use crate::id::IdNumber;
use crate::identity::PublicKey;
use crate::roster::{Admission, Role, Roster};
use crate::signed::Signed;
use crate::time::Timestamp;
use crate::token::IdToken;
use serde::{Deserialize, Serialize};

impl Negotiation {
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

    /// Decides a disclosure request: the request itself ([`DisclosureCheck`])
    /// and what it is bound to ([`CommitmentCheck`]): the agreement names
    /// the job the commitment states, the commitment is the requester's,
    /// reads this provider's own feed of the epoch, stays within the quota,
    /// and holds every token asked for.
    pub fn check_disclosure(
        &self,
        now: Timestamp,
        superseded: bool,
        req: &DisclosureCheck<'_>,
        bound: &CommitmentCheck<'_>,
    ) -> Result<(), Refusal> {
        self.check_disclosure_request(now, superseded, req)?;
        self.check_disclosure_commitment(req, bound)
    }

    /// The first half of [`Self::check_disclosure`]: the request against
    /// the agreement (in force, epoch, job, fields, quota), before the
    /// provider reads anything of its own.
    pub fn check_disclosure_request(
        &self,
        now: Timestamp,
        superseded: bool,
        req: &DisclosureCheck<'_>,
    ) -> Result<(), Refusal> {
        self.check_request(now, superseded, req)
    }

    /// The second half of [`Self::check_disclosure`]: the commitment the
    /// request is bound to.
    pub fn check_disclosure_commitment(
        &self,
        req: &DisclosureCheck<'_>,
        bound: &CommitmentCheck<'_>,
    ) -> Result<(), Refusal> {
        self.check_commitment(req, bound)
    }

    /// Decides a ministry query: a request under the agreement's job of
    /// that kind, bound to the requester's commitment to the candidates
    /// (signed by it, for the epoch, stating the agreed expression and
    /// inputs, within the quota), asking in the epoch about no more IDs
    /// than the candidates it committed to. The ministry cannot tell which
    /// IDs the committed tokens stand for (it holds no group key); the
    /// count bounds what a province can ask, and an auditor recomputes the
    /// committed candidates offline.
    pub fn check_ministry_query(
        &self,
        now: Timestamp,
        superseded: bool,
        req: &DisclosureCheck<'_>,
        commitment: &Signed<ResultCommitment>,
    ) -> Result<(), Refusal> {
        self.check_request(now, superseded, req)?;
        let c = self.check_committed_job(req, commitment, false)?;
        let asked = req.records_used.saturating_add(req.records_requested);
        if asked > c.count {
            return Err(Refusal::NotInCommitment {
                reason: format!(
                    "{asked} IDs asked about in the epoch, more than the {} candidates committed",
                    c.count
                ),
            });
        }
        Ok(())
    }

    /// Decides a ministry query's receipt (after
    /// [`Self::check_ministry_query`]): the IDs asked about are exactly
    /// those a provider of one of the commitment's inputs (an admitted
    /// roster member of its department, role `provider`) disclosed to the
    /// requester in the epoch under that very commitment, by its signed
    /// receipt. A comparator cannot ask about anyone else, however large
    /// the count it commits to.
    pub fn check_ministry_receipt(
        &self,
        req: &DisclosureCheck<'_>,
        rc: &ReceiptCheck<'_>,
    ) -> Result<(), Refusal> {
        let invalid = |reason: String| Refusal::CommitmentInvalid { reason };
        let c = crate::codec::decode::<ResultCommitment>(rc.commitment.body())
            .map_err(|e| invalid(format!("the commitment does not decode: {e}")))?;
        let signer = rc.receipt.signer();
        let member = rc
            .roster
            .filter(|r| r.admission(signer, rc.now) == Admission::Admitted)
            .and_then(|r| r.member(signer));
        let provides = member.is_some_and(|m| {
            m.role == Role::Provider && c.inputs.iter().any(|i| i.input.provider == m.department)
        });
        if !provides {
            return Err(invalid(format!(
                "the receipt is signed by {}, not by an admitted provider of the commitment's inputs",
                signer.peer_id()
            )));
        }
        let r = rc
            .receipt
            .verify_by(signer)
            .map_err(|e| invalid(format!("the receipt does not verify: {e}")))?;
        if r.commitment != rc.commitment.digest()
            || r.epoch != req.epoch
            || r.consumer != *req.requester
            || r.result_kind != c.result_kind
        {
            return Err(invalid(
                "the receipt is for another commitment, epoch or consumer".into(),
            ));
        }
        if !rc.ids.windows(2).all(|w| w[0] < w[1]) {
            return Err(Refusal::NotInCommitment {
                reason: "the IDs asked about are not sorted and distinct".into(),
            });
        }
        if crate::feed::id_pairs_root(rc.ids) != (r.count, r.root) {
            return Err(Refusal::NotInCommitment {
                reason: format!(
                    "the {} IDs asked about are not the {} the provider's receipt vouches for",
                    rc.ids.len(),
                    r.count
                ),
            });
        }
        Ok(())
    }

    /// The checks every disclosure and ministry query passes: agreement in
    /// force, current epoch, an agreed job of that kind, allowed fields,
    /// quota.
    fn check_request(
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
        if d.job(req.result_kind).is_none() {
            return Err(Refusal::JobNotAgreed {
                kind: req.result_kind.to_string(),
                why: "the agreement names no job of that result kind".into(),
            });
        }
        let job = d.job(req.result_kind);
        if let Some(f) = req
            .fields
            .iter()
            .find(|f| !job.is_some_and(|j| j.allows_field(f, &d.fields)))
        {
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

    /// What every commitment is checked for, for a disclosure or a
    /// ministry query: signed by the requester, about the epoch (and the
    /// result kind, if `same_kind`), stating the agreed job's expression
    /// over the inputs as the agreement defines them, and committing to no
    /// more results than the epoch's quota. Returns the commitment.
    fn check_committed_job(
        &self,
        req: &DisclosureCheck<'_>,
        commitment: &Signed<ResultCommitment>,
        same_kind: bool,
    ) -> Result<ResultCommitment, Refusal> {
        let invalid = |reason: String| Refusal::CommitmentInvalid { reason };
        let c = commitment
            .verify_by(req.requester)
            .map_err(|e| invalid(format!("not signed by the requester: {e}")))?;
        if c.epoch != req.epoch || (same_kind && c.result_kind != req.result_kind) {
            return Err(invalid(format!(
                "it is about {:?} of epoch {}, not {:?} of epoch {}",
                c.result_kind, c.epoch, req.result_kind, req.epoch
            )));
        }
        let d = &self.terms.disclosure;
        let not_agreed = |why: String| Refusal::JobNotAgreed {
            kind: req.result_kind.to_string(),
            why,
        };
        let job = d
            .job(req.result_kind)
            .ok_or_else(|| not_agreed("the agreement names no job of that result kind".into()))?;
        if c.expr != job.expr {
            return Err(not_agreed(format!(
                "the committed expression {:?} is not the agreed {:?}",
                c.expr, job.expr
            )));
        }
        let names: Vec<&str> = c.inputs.iter().map(|i| i.input.name.as_str()).collect();
        if names != job.inputs.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(not_agreed(format!(
                "the committed inputs {names:?} are not the agreed {:?}",
                job.inputs
            )));
        }
        if let Some(i) = c
            .inputs
            .iter()
            .find(|i| d.input(&i.input.name) != Some(&i.input))
        {
            return Err(not_agreed(format!(
                "input {:?} is not defined as the agreement defines it",
                i.input.name
            )));
        }
        if c.count > d.max_records_per_epoch {
            return Err(invalid(format!(
                "it commits to {} results, over the quota of {} records per epoch",
                c.count, d.max_records_per_epoch
            )));
        }
        match (&job.candidates, &c.ministry) {
            (None, None) if c.other_province_count() == 0 => {}
            (None, _) => {
                return Err(invalid(format!(
                    "the agreed job {:?} subtracts no ministry answer, but the commitment states one (a ministry basis or a non-empty other_province)",
                    job.kind
                )));
            }
            (Some(k), None) => {
                return Err(invalid(format!(
                    "the agreed job {:?} subtracts the ministry's answer about its candidates {k:?}, but the commitment names no candidates commitment",
                    job.kind
                )));
            }
            (Some(_), Some(_)) => {}
        }
        Ok(c)
    }

    /// For a job whose agreement names its candidates: the candidates'
    /// commitment the request carries is the one `c` names, a valid
    /// commitment of the agreed candidates job for the epoch (the
    /// requester's, agreed expression and inputs, no ministry answer of its
    /// own), read from the same feeds, and at least as large as the result
    /// and the `other_province` set taken from it.
    fn check_candidates(
        &self,
        req: &DisclosureCheck<'_>,
        c: &ResultCommitment,
        candidates: Option<&Signed<ResultCommitment>>,
    ) -> Result<(), Refusal> {
        let invalid = |reason: String| Refusal::CommitmentInvalid { reason };
        let Some(kind) = self
            .terms
            .disclosure
            .job(req.result_kind)
            .and_then(|j| j.candidates.as_deref())
        else {
            return Ok(());
        };
        let Some(basis) = &c.ministry else {
            return Err(invalid(
                "the commitment names no candidates commitment".into(),
            ));
        };
        let signed = candidates.ok_or_else(|| {
            invalid(format!(
                "the request carries no commitment to the candidates {kind:?}"
            ))
        })?;
        if signed.digest() != basis.candidates {
            return Err(invalid(
                "the candidates commitment carried is not the one the commitment names".into(),
            ));
        }
        let as_candidates = DisclosureCheck {
            result_kind: kind,
            ..req.clone()
        };
        let cand = self.check_committed_job(&as_candidates, signed, true)?;
        if let Some(i) = c.inputs.iter().find(|i| {
            cand.inputs
                .iter()
                .any(|j| j.input.name == i.input.name && j.manifest != i.manifest)
        }) {
            return Err(invalid(format!(
                "input {:?} was read from another feed than for the candidates",
                i.input.name
            )));
        }
        if c.count > cand.count || c.other_province_count() > cand.count {
            return Err(invalid(format!(
                "it commits to {} results and {} insured in another province, but to only {} candidates",
                c.count,
                c.other_province_count(),
                cand.count
            )));
        }
        Ok(())
    }

    /// The commitment a disclosure is bound to (see [`Self::check_disclosure`]).
    fn check_commitment(
        &self,
        req: &DisclosureCheck<'_>,
        bound: &CommitmentCheck<'_>,
    ) -> Result<(), Refusal> {
        let invalid = |reason: String| Refusal::CommitmentInvalid { reason };
        let c = self.check_committed_job(req, bound.commitment, true)?;
        // This provider's feed is read as every input defined as its feed,
        // and as no other.
        let mine = |i: &&CommittedInput| {
            i.input.dataset == self.terms.dataset && i.input.provider == bound.own_department
        };
        if !c.inputs.iter().any(|i| i.manifest == bound.own_manifest) {
            return Err(invalid(format!(
                "it does not read this provider's feed of epoch {}",
                req.epoch
            )));
        }
        if let Some(i) = c
            .inputs
            .iter()
            .find(|i| i.manifest == bound.own_manifest && !mine(i))
        {
            return Err(invalid(format!(
                "it reads this provider's feed as input {:?}, which the agreement defines as another feed",
                i.input.name
            )));
        }
        if let Some(i) = c
            .inputs
            .iter()
            .find(|i| mine(i) && i.manifest != bound.own_manifest)
        {
            return Err(invalid(format!(
                "input {:?} is this provider's feed but names another manifest",
                i.input.name
            )));
        }
        check_input_manifests(&c, req.requester, bound)?;
        self.check_candidates(req, &c, bound.candidates)?;
        if bound.tokens.len() != bound.indices.len() {
            return Err(Refusal::NotInCommitment {
                reason: "one leaf index per token is needed".into(),
            });
        }
        let items: Vec<(u64, crate::hash::Hash)> = bound
            .indices
            .iter()
            .zip(token_leaves(bound.tokens))
            .map(|(i, l)| (*i, l))
            .collect();
        bound
            .proof
            .verify(c.count, &items, &c.root)
            .map_err(|e| Refusal::NotInCommitment {
                reason: e.to_string(),
            })
    }
}

/// Every input of a commitment names a feed that its provider published
/// for this consumer: the request carries each input's signed manifest (by
/// the digest the commitment states), signed by an admitted roster member
/// of the input's department with role `provider`, of the input's dataset,
/// for the commitment's epoch, naming the requester as the consumer.
fn check_input_manifests(
    c: &ResultCommitment,
    requester: &PublicKey,
    bound: &CommitmentCheck<'_>,
) -> Result<(), Refusal> {
    let invalid = |reason: String| Refusal::CommitmentInvalid { reason };
    for i in &c.inputs {
        let name = &i.input.name;
        let signed = bound
            .manifests
            .iter()
            .find(|m| m.digest() == i.manifest)
            .ok_or_else(|| {
                invalid(format!(
                    "the request carries no signed manifest {} for input {name:?}",
                    crate::display::hex(&i.manifest)
                ))
            })?;
        let signer = signed.signer();
        let member = bound.roster.and_then(|r| r.member(signer));
        let admitted = bound
            .roster
            .is_some_and(|r| r.admission(signer, bound.now) == Admission::Admitted);
        match member {
            Some(m) if admitted && m.role == Role::Provider && m.department == i.input.provider => {
            }
            Some(m) => {
                return Err(invalid(format!(
                    "input {name:?} is defined as a feed of {:?}, but its manifest is signed by {} ({}, {}){}",
                    i.input.provider,
                    m.department,
                    m.role.as_str(),
                    signer.peer_id(),
                    if admitted { "" } else { ", not admitted" }
                )));
            }
            None => {
                return Err(invalid(format!(
                    "input {name:?} is defined as a feed of {:?}, but its manifest is signed by {}, which is not a roster member",
                    i.input.provider,
                    signer.peer_id()
                )));
            }
        }
        let m = signed.verify_by(signer).map_err(|e| {
            invalid(format!(
                "the manifest of input {name:?} does not verify: {e}"
            ))
        })?;
        if m.provider != *signer
            || m.dataset != i.input.dataset
            || m.epoch != c.epoch
            || m.consumer != *requester
        {
            return Err(invalid(format!(
                "the manifest of input {name:?} is of dataset {:?} for epoch {} to {}, not of {:?} for epoch {} to the requester",
                m.dataset,
                m.epoch,
                m.consumer.peer_id(),
                i.input.dataset,
                c.epoch
            )));
        }
    }
    Ok(())
}

/// What a ministry query's IDs are checked against: the registry
/// provider's signed receipt, the commitment the query carries and the
/// ministry's roster.
#[derive(Debug, Clone)]
pub struct ReceiptCheck<'a> {
    /// The receipt the query carries.
    pub receipt: &'a Signed<DisclosureReceipt>,
    /// The (token, ID number) pairs asked about.
    pub ids: &'a [(IdToken, IdNumber)],
    /// The commitment the query carries.
    pub commitment: &'a Signed<ResultCommitment>,
    /// The ministry's roster, if it has one.
    pub roster: Option<&'a Roster>,
    /// Now (for the signer's admission).
    pub now: Timestamp,
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

/// What a disclosure request is bound to: the requester's signed result
/// commitment, the digest of the provider's own signed manifest of the
/// epoch, the tokens asked for with their leaf indices in the committed
/// result and the proof that they are there, and the signed manifests of
/// the commitment's inputs with the roster that says who signs them.
#[derive(Debug, Clone)]
pub struct CommitmentCheck<'a> {
    /// The commitment, as the requester signed it.
    pub commitment: &'a Signed<ResultCommitment>,
    /// Digest of the provider's signed manifest of the requested epoch.
    pub own_manifest: Hash,
    /// The provider's department in the roster (what an input's
    /// `provider` names).
    pub own_department: &'a str,
    /// The tokens asked for.
    pub tokens: &'a [IdToken],
    /// Each token's leaf index in the committed result.
    pub indices: &'a [u64],
    /// The proof that the tokens are those leaves.
    pub proof: &'a MultiProof,
    /// The signed manifests of the commitment's inputs, as the request
    /// carries them.
    pub manifests: &'a [Signed<Manifest>],
    /// The provider's roster (who signs each department's feeds), if it
    /// has one.
    pub roster: Option<&'a Roster>,
    /// Now (for the signers' admission).
    pub now: Timestamp,
    /// The requester's commitment to the candidates, for a job whose
    /// agreement names them (see [`crate::commitment::MinistryBasis`]).
    pub candidates: Option<&'a Signed<ResultCommitment>>,
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
    /// The agreement names no such job, or another expression or inputs
    /// for it.
    #[error("result kind {kind:?} is not an agreed job: {why}")]
    JobNotAgreed {
        /// Kind.
        kind: String,
        /// What differs.
        why: String,
    },
    /// The commitment is not the requester's, is about another result or
    /// epoch, does not read this provider's feed, or is over the quota.
    #[error("the result commitment is not valid: {reason}")]
    CommitmentInvalid {
        /// Why.
        reason: String,
    },
    /// A token asked for is not in the committed result.
    #[error("a token asked for is not in the committed result: {reason}")]
    NotInCommitment {
        /// Why the proof fails.
        reason: String,
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
    /// A feed stream names a pull that was never opened (and counted) with
    /// `PullOpen` for that agreement and epoch.
    #[error("no pull with that id was opened for epoch {epoch}")]
    PullNotOpened {
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
            Refusal::JobNotAgreed { .. } => "job_not_agreed",
            Refusal::CommitmentInvalid { .. } => "commitment_invalid",
            Refusal::NotInCommitment { .. } => "not_in_commitment",
            Refusal::NotPublished { .. } => "not_published",
            Refusal::ProviderFailed { .. } => "provider_failed",
            Refusal::PullNotOpened { .. } => "pull_not_opened",
        }
    }
}
