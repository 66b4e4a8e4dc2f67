//! A result's ministry basis, checked offline for `dxmesh audit recompute`
//! ([`Basis`]): a result that subtracts `other_province` names the
//! commitment to the candidates and the ministry's signed answers it came
//! from; the set must be exactly what those answers give, and every
//! receipt the registry served and every query the ministry answered
//! under the candidates' commitment must be answered by a named answer.
//! Also the bundle readers the recompute shares: a bundle's commitments,
//! answers, log events and files.

use dxmesh_protocol::audit::{Entry, Event};
use dxmesh_protocol::codec;
use dxmesh_protocol::commitment::{ResultCommitment, set_root};
use dxmesh_protocol::feed::MinistryAnswer;
use dxmesh_protocol::hash::Hash;
use dxmesh_protocol::roster::{Member, Role};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every commitment of the bundle signed by the comparator, by digest.
pub(super) fn bundle_commitments(
    bundle: &Path,
    comparator: &dxmesh_protocol::identity::PublicKey,
) -> BTreeMap<Hash, ResultCommitment> {
    sorted_files(&bundle.join("commitments"))
        .into_iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|b| codec::decode::<Signed<ResultCommitment>>(&b).ok())
        .filter_map(|s| s.verify_by(comparator).ok().map(|c| (s.digest(), c)))
        .collect()
}

/// What a commitment's ministry basis is checked against: the bundle's
/// commitments and ministry answers, and the answers the ministry logged
/// (in the bundles given as `--provider`) by the candidates' commitment
/// they were about.
pub(super) struct Basis {
    pub(super) commitments: BTreeMap<Hash, ResultCommitment>,
    pub(super) answers: BTreeMap<Hash, MinistryAnswer>,
    /// By the candidates' commitment: the receipts of the queries the
    /// ministry logged answering, and of the ID numbers a provider logged
    /// disclosing (each must be answered by an answer the basis names).
    pub(super) logged: BTreeMap<Hash, BTreeSet<Hash>>,
}

impl Basis {
    /// What is wrong with a commitment's `other_province` and its ministry
    /// basis: a non-empty set needs a basis; a basis names a commitment to
    /// candidates of the same epoch that the bundle holds, with no basis of
    /// its own and an empty `other_province`, at least as large as the
    /// result and the set; every answer it names is in the bundle, signed
    /// by the ministry, about those candidates; every answer the ministry
    /// logged about them is named; and the set is exactly the tokens those
    /// answers place in another province with one of the basis' insurance
    /// types.
    pub(super) fn problems(&self, c: &ResultCommitment) -> Vec<String> {
        let Some(basis) = &c.ministry else {
            return match c.other_province_count() {
                0 => Vec::new(),
                n => vec![format!(
                    "it subtracts {n} tokens as insured in another province but names no ministry answer they came from"
                )],
            };
        };
        let Some(cand) = self.commitments.get(&basis.candidates) else {
            return vec![format!(
                "the candidates commitment {} it names is not in the bundle",
                dxmesh_protocol::hex(&basis.candidates)
            )];
        };
        let mut out = Vec::new();
        if cand.epoch != c.epoch || cand.ministry.is_some() || cand.other_province_count() != 0 {
            out.push(format!(
                "the candidates commitment it names ({} of epoch {}) is not a commitment to candidates of this epoch",
                cand.result_kind, cand.epoch
            ));
        }
        if c.count > cand.count || c.other_province_count() > cand.count {
            out.push(format!(
                "it states {} results and {} insured in another province, but only {} candidates",
                c.count,
                c.other_province_count(),
                cand.count
            ));
        }
        let mut elsewhere = BTreeSet::new();
        for d in &basis.answers {
            let Some(a) = self.answers.get(d) else {
                out.push(format!(
                    "the ministry answer {} it names is not in the bundle (or not signed by the ministry)",
                    dxmesh_protocol::hex(d)
                ));
                continue;
            };
            if a.commitment != basis.candidates || a.epoch != c.epoch {
                out.push(format!(
                    "the ministry answer {} is about another commitment or epoch",
                    dxmesh_protocol::hex(d)
                ));
            }
            let col = |name: &str| a.fields.iter().position(|f| f == name);
            let (Some(p), Some(t)) = (col("province_code"), col("insurance_type")) else {
                out.push("a ministry answer lacks province_code or insurance_type".into());
                continue;
            };
            elsewhere.extend(a.found.iter().filter_map(|(token, values)| {
                let province = values.get(p)?;
                let kind = values.get(t)?;
                (province != &basis.home_province && basis.insurance_types.contains(kind))
                    .then_some(*token)
            }));
        }
        let answered: BTreeSet<Hash> = basis
            .answers
            .iter()
            .filter_map(|d| self.answers.get(d))
            .map(|a| a.receipt)
            .collect();
        for r in self.logged.get(&basis.candidates).into_iter().flatten() {
            if !answered.contains(r) {
                out.push(format!(
                    "the candidates' ID numbers of receipt {} were disclosed (or answered by the ministry), but the basis names no ministry answer for them: an answer the basis leaves out, or a ministry never asked",
                    dxmesh_protocol::hex(r)
                ));
            }
        }
        let derived: Vec<IdToken> = elsewhere.into_iter().collect();
        let committed = c.sets.iter().find(|s| s.name == "other_province");
        if committed.map(|s| (s.count, s.root)) != Some(set_root(&derived)) {
            out.push(format!(
                "its other_province set is not what the ministry's answers give ({} tokens insured in another province)",
                derived.len()
            ));
        }
        out
    }
}

/// Every ministry answer in the bundle (`answers/`) signed by a roster
/// member whose role is `ministry`, by digest.
pub(super) fn bundle_answers(
    bundle: &Path,
    members: &BTreeMap<dxmesh_protocol::identity::PublicKey, Member>,
) -> BTreeMap<Hash, MinistryAnswer> {
    sorted_files(&bundle.join("answers"))
        .into_iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|b| codec::decode::<Signed<MinistryAnswer>>(&b).ok())
        .filter(|s| {
            members
                .get(s.signer())
                .is_some_and(|m| m.role == Role::Ministry)
        })
        .filter_map(|s| s.verify().ok().map(|a| (s.digest(), a)))
        .collect()
}

/// The receipts, by the commitment they were made under, of every
/// disclosure of ID numbers a provider logged (`disclosure_served` with a
/// receipt) and every query the ministry logged answering
/// (`ministry_query`) in the given bundles: a repeated query has the same
/// receipt, whatever its answer's digest.
pub(super) fn ministry_answers_logged(
    bundles: &[PathBuf],
) -> Result<BTreeMap<Hash, BTreeSet<Hash>>, String> {
    let mut out: BTreeMap<Hash, BTreeSet<Hash>> = BTreeMap::new();
    for b in bundles {
        for event in events(b)? {
            match event {
                Event::MinistryQuery {
                    answered: true,
                    commitment,
                    receipt,
                    ..
                }
                | Event::DisclosureServed {
                    receipt: Some(receipt),
                    commitment,
                    ..
                } => {
                    out.entry(commitment).or_default().insert(receipt);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The events of a bundle's log.
pub(super) fn events(bundle: &Path) -> Result<Vec<Event>, String> {
    let path = bundle.join("entries.bin");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::audit::log::unframe_entries(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .into_iter()
        .map(|raw| {
            codec::decode::<Entry>(raw)
                .map(|e| e.event)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// The files of a folder, sorted; none if it cannot be read.
pub(super) fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
