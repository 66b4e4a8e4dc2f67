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
//!
//! Files (none of them imports this one; they import each other directly,
//! `enforcement` -> `negotiation` -> `terms`):
//! * `terms`: [`Terms`] and their parts, validation, the agreement id.
//! * `negotiation`: [`Step`], [`Negotiation`] and its transitions,
//!   [`Status`], [`sign_step`], [`reconcile`].
//! * `enforcement`: [`PullCheck`], [`DisclosureCheck`], [`Refusal`] and the
//!   provider's checks on [`Negotiation`].

pub(crate) mod enforcement;
pub(crate) mod negotiation;
pub(crate) mod terms;

pub use enforcement::{CommitmentCheck, DisclosureCheck, PullCheck, ReceiptCheck, Refusal};
pub use negotiation::{
    Action, MAX_TRANSCRIPT_STEPS, Negotiation, Phase, Status, Step, StepError, SyncError,
    reconcile, sign_step,
};
pub use terms::{
    AgreedInput, AgreedJob, AgreementId, DisclosureTerms, FieldTerm, RowPredicate, Terms,
    TermsError, Treatment,
};
