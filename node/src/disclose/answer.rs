//! What both sides check of a disclosure beyond the agreement: at the
//! provider, the commitment a request is bound to (its signature, the
//! proof over every token asked for, its input manifests), checked off the
//! event loop ([`HeavyCheck`]), and the receipt it signs for the ID numbers
//! it discloses ([`sign_receipt`]); at the consumer, that an answer is
//! about exactly what was asked ([`Awaited`]) and its receipt is for exactly
//! its ID numbers ([`check_receipt`]). Refusals of the first are the
//! agreement's [`Refusal`]s; of the second, [`Unverified`].

use dxmesh_protocol::agreement::{
    AgreementId, CommitmentCheck, DisclosureCheck, Negotiation, Refusal,
};
use dxmesh_protocol::feed::{Disclosure, DisclosureReceipt, disclosed_id_pairs, id_pairs_root};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::wire::DisclosureRequest;

/// A provider's answer the consumer does not take: what it was and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} does not verify: {problem}")]
pub struct Unverified {
    /// What was received.
    pub what: &'static str,
    /// Why it is not taken.
    pub problem: String,
}

/// What a disclosure request asked for, kept until its answer: the
/// answer must be about exactly this.
pub struct Awaited {
    agreement: AgreementId,
    epoch: u64,
    result_kind: String,
    fields: Vec<String>,
    /// In increasing order (as the request has them).
    tokens: Vec<dxmesh_protocol::token::IdToken>,
}

impl Awaited {
    /// What `request` asks for.
    pub fn of(request: &DisclosureRequest) -> Awaited {
        Awaited {
            agreement: request.agreement,
            epoch: request.epoch,
            result_kind: request.result_kind.clone(),
            fields: request.fields.clone(),
            tokens: request.tokens.clone(),
        }
    }

    /// Whether `d` answers this request: its agreement, epoch, result kind
    /// and fields, records of one value per field, and records and unknown
    /// tokens only of the tokens asked for (a provider disclosing anyone
    /// else is refused, not stored).
    pub fn answered_by(&self, d: &Disclosure) -> Result<(), Unverified> {
        let other = |what: String| Unverified {
            what: "disclosure",
            problem: format!("it answers another request: {what}"),
        };
        if (d.agreement, d.epoch) != (self.agreement, self.epoch) {
            return Err(other(format!(
                "agreement {} epoch {}",
                dxmesh_protocol::hex(&d.agreement),
                d.epoch
            )));
        }
        if d.result_kind != self.result_kind || d.fields != self.fields {
            return Err(other(format!(
                "result kind {:?} with fields {:?}",
                d.result_kind, d.fields
            )));
        }
        if let Some(r) = d.records.iter().find(|r| r.values.len() != d.fields.len()) {
            return Err(other(format!(
                "a record of token {} holds {} values for {} fields",
                dxmesh_protocol::hex(&r.token.0),
                r.values.len(),
                d.fields.len()
            )));
        }
        let asked = |t: &dxmesh_protocol::token::IdToken| self.tokens.binary_search(t).is_ok();
        if let Some(r) = d.records.iter().find(|r| !asked(&r.token)) {
            return Err(other(format!(
                "a record of token {} not asked for",
                dxmesh_protocol::hex(&r.token.0)
            )));
        }
        if let Some(t) = d.unknown.iter().find(|t| !asked(t)) {
            return Err(other(format!(
                "token {} not asked for",
                dxmesh_protocol::hex(&t.0)
            )));
        }
        Ok(())
    }
}

/// A disclosure of `id_number` comes with the provider's receipt for
/// exactly its ID numbers (what the ministry will check); one without
/// `id_number` comes with none.
pub fn check_receipt(
    provider: &PublicKey,
    d: &Disclosure,
    receipt: Option<&Signed<DisclosureReceipt>>,
) -> Result<(), Unverified> {
    let bad = |problem: String| Unverified {
        what: "disclosure receipt",
        problem,
    };
    let wanted = d.fields.iter().any(|f| f == "id_number");
    match receipt {
        None if !wanted => Ok(()),
        None => Err(bad(
            "a disclosure of ID numbers came without a receipt".into()
        )),
        Some(_) if !wanted => Err(bad(
            "a receipt came for a disclosure without ID numbers".into()
        )),
        Some(r) => {
            let r = r.verify_by(provider).map_err(|e| bad(e.to_string()))?;
            if (r.count, r.root) != id_pairs_root(&disclosed_id_pairs(d))
                || (r.agreement, r.epoch) != (d.agreement, d.epoch)
            {
                return Err(bad(
                    "it is not a receipt for this disclosure's ID numbers".into()
                ));
            }
            Ok(())
        }
    }
}

/// The provider's signed receipt for the ID numbers of disclosure `d`
/// (made to `consumer` under the commitment with digest `commitment`), if
/// its fields include `id_number`: what a ministry checks a query's IDs
/// against.
pub fn sign_receipt(
    seed: &[u8; 32],
    d: &Disclosure,
    consumer: PublicKey,
    commitment: dxmesh_protocol::hash::Hash,
) -> Option<Signed<DisclosureReceipt>> {
    if !d.fields.iter().any(|f| f == "id_number") {
        return None;
    }
    let (count, root) = id_pairs_root(&disclosed_id_pairs(d));
    let receipt = DisclosureReceipt {
        agreement: d.agreement,
        epoch: d.epoch,
        consumer,
        result_kind: d.result_kind.clone(),
        commitment,
        count,
        root,
    };
    let id = dxmesh_protocol::identity::Identity::from_seed(*seed).ok()?;
    Signed::sign(&id, &receipt).ok()
}

/// What the commitment check of a disclosure request needs, taken on the
/// event loop so that the check itself (signatures, the proof over every
/// token asked for) can run off it.
pub struct HeavyCheck {
    /// Who asks.
    pub requester: PublicKey,
    /// Their admission by the provider's roster.
    pub admission: dxmesh_protocol::roster::Admission,
    /// Digest of the provider's signed manifest of the epoch.
    pub own_manifest: [u8; 32],
    /// The provider's department.
    pub department: String,
    /// The provider's roster (who signs each department's feeds).
    pub roster: Option<dxmesh_protocol::roster::Roster>,
    /// Now.
    pub now: dxmesh_protocol::time::Timestamp,
    /// The agreement's state.
    pub state: Negotiation,
}

impl HeavyCheck {
    /// The request as the agreement sees it (the quota aside: the
    /// first pass does not know yet whether the request was counted before).
    pub fn request_check<'a>(&'a self, request: &'a DisclosureRequest) -> DisclosureCheck<'a> {
        DisclosureCheck {
            requester: &self.requester,
            admission: self.admission,
            epoch: request.epoch,
            result_kind: &request.result_kind,
            fields: &request.fields,
            records_requested: request.tokens.len() as u64,
            records_used: 0,
        }
    }

    /// The request's commitment, its proof and its input manifests.
    pub fn check(&self, request: &DisclosureRequest) -> Result<(), Refusal> {
        let bound = CommitmentCheck {
            commitment: &request.commitment,
            own_manifest: self.own_manifest,
            own_department: &self.department,
            tokens: &request.tokens,
            indices: &request.indices,
            proof: &request.proof,
            manifests: &request.manifests,
            roster: self.roster.as_ref(),
            now: self.now,
            candidates: request.candidates.as_deref(),
        };
        self.state
            .check_disclosure_commitment(&self.request_check(request), &bound)
    }
}

impl From<Unverified> for crate::base::peer::PeerError {
    fn from(e: Unverified) -> crate::base::peer::PeerError {
        crate::base::peer::PeerError::Unverified {
            what: e.what,
            problem: e.problem,
        }
    }
}
