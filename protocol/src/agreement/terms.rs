//! Sharing-agreement terms: what leaves the provider (fields and their
//! treatment, row scope), for what purpose, under which cycle, disclosure
//! quota, retention and validity; [`Terms::validate`] decides whether terms
//! make sense on their own. Terms are content-addressed: the agreement id is
//! the SHA-256 of their canonical encoding.

use crate::codec;
use crate::cycle::Cycle;
use crate::hash::{Hash, sha256};
use crate::identity::PublicKey;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

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

/// A named input of an agreed job: the feed of the consumer's agreement for
/// `dataset` with a provider of `provider` (a department of the roster),
/// optionally kept to the records whose clear field has one of the values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgreedInput {
    /// The input's name in the expressions.
    pub name: String,
    /// Dataset name.
    pub dataset: String,
    /// The provider's department.
    pub provider: String,
    /// Clear field -> values kept, sorted by field (empty: every record).
    pub filter: Vec<(String, Vec<String>)>,
}

/// A job whose results may be disclosed: the result kind and its exact
/// expression over named inputs (earlier results written out, fully
/// parenthesised; `other_province` for the tokens the ministry reports
/// insured in another province).
///
/// The ministry check is two agreed jobs: the **candidates** (committed
/// before the ministry is asked, with `other_province` empty; usually
/// limited to `fields = ["id_number"]`, what the ministry is asked about)
/// and the **final** result, whose `candidates` names them: its commitment
/// must name the candidates' commitment and the ministry's signed answers
/// it subtracted ([`crate::commitment::MinistryBasis`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreedJob {
    /// Result kind (e.g. `uninsured`).
    pub kind: String,
    /// The expression, in the canonical form the consumer commits to.
    pub expr: String,
    /// Names of the inputs the expression reads, sorted.
    pub inputs: Vec<String>,
    /// The fields a disclosure of this job's results may return (each one
    /// of the disclosure fields); empty: any disclosure field.
    pub fields: Vec<String>,
    /// The agreed job whose result the ministry was asked about: this
    /// job's `other_province` is the ministry's answer about them, and its
    /// commitments name that one's. None: `other_province` is empty.
    pub candidates: Option<String>,
}

impl AgreedJob {
    /// Whether `field` may be disclosed for this job's results, given the
    /// agreement's disclosure fields.
    pub fn allows_field(&self, field: &str, disclosure_fields: &[String]) -> bool {
        disclosure_fields.iter().any(|f| f == field)
            && (self.fields.is_empty() || self.fields.iter().any(|f| f == field))
    }
}

/// What the consumer may ask to have resolved back to records, and for
/// which results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureTerms {
    /// Fields the provider returns for disclosed records (e.g. `id_number`, `name`, `address`).
    pub fields: Vec<String>,
    /// The inputs the jobs read, sorted by name.
    pub inputs: Vec<AgreedInput>,
    /// The jobs whose results may be disclosed.
    pub jobs: Vec<AgreedJob>,
    /// Records per epoch, over all disclosure requests.
    pub max_records_per_epoch: u64,
}

impl DisclosureTerms {
    /// The agreed job of result kind `kind`.
    pub fn job(&self, kind: &str) -> Option<&AgreedJob> {
        self.jobs.iter().find(|j| j.kind == kind)
    }

    /// The agreed input named `name`.
    pub fn input(&self, name: &str) -> Option<&AgreedInput> {
        self.inputs.iter().find(|i| i.name == name)
    }
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
        sha256(&codec::encode(self).expect("terms always encode"))
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
        self.validate_disclosure()
    }

    /// The disclosure terms: a quota needs a job; jobs have distinct kinds
    /// and read only agreed inputs; inputs have distinct names.
    fn validate_disclosure(&self) -> Result<(), TermsError> {
        let bad = |m: String| Err(TermsError(m));
        let d = &self.disclosure;
        if d.max_records_per_epoch > 0 && d.jobs.is_empty() {
            return bad("a disclosure quota needs at least one agreed job".into());
        }
        if let Some(w) = d.inputs.windows(2).find(|w| w[0].name >= w[1].name) {
            return bad(format!(
                "disclosure inputs must be sorted by name, each once ({:?})",
                w[1].name
            ));
        }
        for (i, job) in d.jobs.iter().enumerate() {
            if !is_name(&job.kind) {
                return bad(format!(
                    "result kind {:?} must be lowercase letters, digits and _",
                    job.kind
                ));
            }
            if d.jobs[..i].iter().any(|j| j.kind == job.kind) {
                return bad(format!("result kind {:?} is agreed twice", job.kind));
            }
            if job.expr.trim().is_empty() {
                return bad(format!("result kind {:?} has no expression", job.kind));
            }
            if let Some(n) = job.inputs.iter().find(|n| d.input(n).is_none()) {
                return bad(format!(
                    "result kind {:?} reads input {n:?}, which the disclosure terms do not define",
                    job.kind
                ));
            }
            if let Some(f) = job.fields.iter().find(|f| !d.fields.contains(f)) {
                return bad(format!(
                    "result kind {:?} discloses field {f:?}, which is not a disclosure field",
                    job.kind
                ));
            }
            if let Some(c) = &job.candidates {
                match d.job(c) {
                    Some(cand) if cand.kind != job.kind && cand.candidates.is_none() => {}
                    _ => {
                        return bad(format!(
                            "result kind {:?} names candidates {c:?}, which must be another agreed job with no candidates of its own",
                            job.kind
                        ));
                    }
                }
            }
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
