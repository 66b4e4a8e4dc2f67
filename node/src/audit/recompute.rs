//! Offline recompute (`dxmesh audit recompute`): for a security officer who
//! holds the comparator's evidence bundle and its pulled feeds (tokens
//! only: no key, nothing that re-identifies anyone). Every result
//! commitment in the bundle is checked: signed by the comparator, its
//! inputs are feeds whose provider-signed manifests the bundle holds, under
//! agreements whose transcripts it holds; the committed expression is run
//! again over those feeds (and the committed `other_province` set, kept by
//! the comparator beside its commitments) and the recomputed count and
//! Merkle root must be the committed ones. A comparator that committed to
//! a wrong result is named, with the committed tokens that are not in the
//! recomputed result when the comparator's token lists are at hand.
//!
//! A commitment whose feed the comparator erased under retention (its log
//! says so, and the feed is gone) is reported `ERASED`: not recomputed,
//! and not wrong; `dxmesh audit recompute` exits 3 when nothing is wrong
//! but something was erased.
//!
//! A result that subtracts `other_province` must name its ministry basis:
//! the commitment to the candidates (which the bundle must hold, and which
//! recomputes like any other) that the set and the result are drawn from.
//!
//! The provider checked every disclosed token against the committed root
//! (`commitment_checked` in its log), so a commitment that recomputes
//! proves every token disclosed under it was a result of the agreed job.

use crate::audit::basis::{
    Basis, bundle_answers, bundle_commitments, events, ministry_answers_logged, sorted_files,
};
use crate::audit::verify::{index_problems, roster_chain};
use crate::compare::commit::{Committed, load_set};
use crate::compare::jobs::{InputSpec, JobFile, ResultSpec};
use crate::compare::pass::{Input, run_pass};
use crate::pull::pulls::{FeedReader, stored_manifest};
use dxmesh_protocol::agreement::{Negotiation, Step, Terms};
use dxmesh_protocol::audit::{Entry, Event};
use dxmesh_protocol::codec;
use dxmesh_protocol::commitment::{ResultCommitment, set_root};
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::hash::Hash;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::Member;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest expression recomputed (the parser recurses per bracket).
const MAX_EXPR: usize = 4096;

/// The verdict on one commitment.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The result kind and epoch, and the start of the commitment's digest.
    pub commitment: String,
    /// Committed result tokens.
    pub committed: u64,
    /// Recomputed result tokens (none if it could not be recomputed).
    pub recomputed: Option<u64>,
    /// Empty if the commitment holds; else what is wrong.
    pub problems: Vec<String>,
    /// Set when it cannot be recomputed because a feed it read was erased
    /// under retention (when, by the comparator's `feed_erased` entry):
    /// not wrong, and not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased: Option<String>,
}

/// The recompute of every commitment of a bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recompute {
    /// What is wrong with the bundles themselves: a file that does not
    /// match the signed index, a roster chain that does not start at the
    /// security officer's anchor.
    pub bundle: Vec<String>,
    /// One verdict per commitment, in bundle order.
    pub commitments: Vec<Checked>,
    /// Commitments logged as signed or checked that the bundle lacks.
    pub missing: Vec<String>,
}

impl Recompute {
    /// Whether the bundles are intact and anchored, no commitment is
    /// wrong (each recomputed to its committed root and count, or its
    /// feeds were erased under retention), and the bundle holds every
    /// commitment logged.
    pub fn ok(&self) -> bool {
        self.bundle.is_empty()
            && self.missing.is_empty()
            && self.commitments.iter().all(|c| c.problems.is_empty())
    }

    /// How many commitments could not be recomputed because their feeds
    /// were erased under retention.
    pub fn erased(&self) -> usize {
        self.commitments
            .iter()
            .filter(|c| c.erased.is_some())
            .count()
    }

    /// A readable report.
    pub fn render(&self) -> String {
        let mut out = String::from("dxmesh audit recompute\n\n");
        for b in &self.bundle {
            out.push_str(&format!("  BUNDLE: {b}\n"));
        }
        for c in &self.commitments {
            let got = c
                .recomputed
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into());
            let verdict = match (&c.erased, c.problems.is_empty()) {
                (_, false) => "WRONG",
                (Some(_), true) => "ERASED",
                (None, true) => "OK",
            };
            out.push_str(&format!(
                "  {:<44} committed {:>9}  recomputed {:>9}  {verdict}\n",
                c.commitment, c.committed, got
            ));
            for p in c.problems.iter().chain(&c.erased) {
                out.push_str(&format!("      {p}\n"));
            }
        }
        if self.commitments.is_empty() {
            out.push_str("  the bundle holds no result commitment\n");
        }
        for m in &self.missing {
            out.push_str(&format!("  MISSING: {m}\n"));
        }
        out.push_str(&if self.ok() && self.erased() > 0 {
            format!(
                "\nVERDICT: ERASED — {} commitment(s) recomputed from the feeds; {} could not be, their feeds erased under retention (recompute before retention ends)\n",
                self.commitments.len() - self.erased(),
                self.erased()
            )
        } else if self.ok() {
            format!(
                "\nVERDICT: OK — {} commitment(s) recomputed from the feeds\n",
                self.commitments.len()
            )
        } else {
            "\nVERDICT: FAILED — a committed result is not what its job gives on its feeds, or a commitment used is missing\n"
                .to_string()
        });
        out
    }
}

/// Recomputes every commitment in the comparator's bundle `bundle` from the
/// pulled feeds under `feeds` (the comparator's data directory), and checks
/// that the bundle holds every commitment the comparator logged signing
/// and every one a provider (bundles `providers`) logged checking.
pub fn recompute(
    bundle: &Path,
    feeds: &Path,
    providers: &[PathBuf],
    anchor: &PublicKey,
) -> Result<Recompute, String> {
    let node: crate::audit::log::BundleNode = serde_json::from_slice(
        &std::fs::read(bundle.join("node.json")).map_err(|e| format!("node.json: {e}"))?,
    )
    .map_err(|e| format!("node.json: {e}"))?;
    let comparator = node
        .peer_id
        .parse::<libp2p::PeerId>()
        .ok()
        .and_then(|p| dxmesh_protocol::identity::PublicKey::from_peer_id(&p))
        .ok_or("node.json: not an Ed25519 PeerId")?;
    let mut report = Recompute::default();
    // Nothing here relies on `audit verify` having run: the bundle's files
    // against its signed index, its roster chain against the officer's
    // anchor, every signature used below against the anchored roster.
    report
        .bundle
        .extend(index_problems(bundle, &node.peer_id, &comparator));
    let (rosters, problems) = roster_chain(bundle, anchor);
    report.bundle.extend(problems);
    // Every member of any anchored version (a later version's entry for a
    // key replaces an earlier one): a manifest or answer signed before a
    // member left or changed its key is still its signer's.
    let mut rosters = rosters;
    rosters.sort_by_key(|r| r.version);
    let members: BTreeMap<PublicKey, Member> = rosters
        .into_iter()
        .flat_map(|r| r.members)
        .map(|m| (m.public_key, m))
        .collect();
    if !members.contains_key(&comparator) {
        report.bundle.push(format!(
            "the comparator {} is in no roster version the anchor signed",
            node.peer_id
        ));
    }
    let terms = agreements(bundle)?;
    let manifests = manifests(bundle, &members);
    let departments: BTreeMap<PublicKey, String> = members
        .iter()
        .map(|(k, m)| (*k, m.department.clone()))
        .collect();
    let published = published(providers, &members, &mut report)?;
    let erased = erased_feeds(bundle)?;
    let mut held = BTreeSet::new();
    let basis = Basis {
        commitments: bundle_commitments(bundle, &comparator),
        answers: bundle_answers(bundle, &members),
        logged: ministry_answers_logged(providers)?,
    };
    // The commitments a ministry basis names as its candidates.
    let candidates: BTreeSet<String> = basis
        .commitments
        .values()
        .filter_map(|c| c.ministry.as_ref())
        .map(|m| dxmesh_protocol::hex(&m.candidates))
        .collect();
    for path in sorted_files(&bundle.join("commitments")) {
        let name = path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(".commitment")
                    .to_string()
            })
            .unwrap_or_default();
        let checked = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| codec::decode::<Signed<ResultCommitment>>(&b).map_err(|e| e.to_string()))
            .and_then(|s| {
                held.insert(s.digest());
                s.verify_by(&comparator)
                    .map_err(|e| format!("not signed by the comparator: {e}"))
            }) {
            Ok(c) => {
                let known = Known {
                    comparator: &comparator,
                    terms: &terms,
                    manifests: &manifests,
                    departments: &departments,
                    published: &published,
                    erased: &erased,
                    candidates: &candidates,
                };
                let mut checked = check_one(&name, &c, &known, feeds);
                checked.problems.extend(basis.problems(&c));
                checked
            }
            Err(e) => Checked {
                commitment: name,
                committed: 0,
                recomputed: None,
                problems: vec![e],
                erased: None,
            },
        };
        report.commitments.push(checked);
    }
    report.missing = missing(bundle, providers, &held)?;
    Ok(report)
}

/// The commitments logged as signed (in the comparator's bundle) or as
/// checked (in the providers' bundles) that the comparator's bundle does
/// not hold.
fn missing(
    bundle: &Path,
    providers: &[PathBuf],
    held: &BTreeSet<Hash>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (b, who) in std::iter::once((bundle, "the comparator logged signing")).chain(
        providers
            .iter()
            .map(|p| (p.as_path(), "a provider logged checking")),
    ) {
        for event in events(b)? {
            let digest = match event {
                Event::ResultCommitted { commitment, .. } => commitment,
                Event::CommitmentChecked { commitment, .. } => commitment,
                _ => continue,
            };
            if !held.contains(&digest) {
                out.push(format!(
                    "commitment {} ({who} it, {}) is not in the comparator's bundle",
                    dxmesh_protocol::hex(&digest),
                    b.display()
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What the bundle says that a commitment is checked against.
struct Known<'a> {
    comparator: &'a dxmesh_protocol::identity::PublicKey,
    terms: &'a BTreeMap<Hash, Terms>,
    manifests: &'a BTreeMap<Hash, Manifest>,
    /// Department of each roster member.
    departments: &'a BTreeMap<dxmesh_protocol::identity::PublicKey, String>,
    /// Per provider whose bundle is given: the (agreement, manifest) of
    /// every feed its log says it published.
    published: &'a Published,
    /// The pulled feeds the comparator erased under retention, by
    /// (agreement, epoch), with the last day kept.
    erased: &'a Erased,
    /// The commitments (hex digests) a ministry basis names as its
    /// candidates.
    candidates: &'a BTreeSet<String>,
}

/// Per provider: the (agreement, manifest digest) of every feed published.
type Published = BTreeMap<PublicKey, BTreeSet<(Hash, Hash)>>;

/// What the providers' bundles say they published (`feed_published`), by
/// the key of the node each bundle is from; a provider bundle whose files
/// do not match its signed index, or whose node the anchored roster does
/// not list, is a bundle problem.
fn published(
    providers: &[PathBuf],
    members: &BTreeMap<PublicKey, Member>,
    report: &mut Recompute,
) -> Result<Published, String> {
    let mut out = Published::new();
    for p in providers {
        let node: crate::audit::log::BundleNode = serde_json::from_slice(
            &std::fs::read(p.join("node.json"))
                .map_err(|e| format!("{}: node.json: {e}", p.display()))?,
        )
        .map_err(|e| format!("{}: node.json: {e}", p.display()))?;
        let Some(key) = node
            .peer_id
            .parse::<libp2p::PeerId>()
            .ok()
            .and_then(|id| PublicKey::from_peer_id(&id))
        else {
            return Err(format!("{}: node.json: not an Ed25519 PeerId", p.display()));
        };
        for problem in index_problems(p, &node.peer_id, &key) {
            report.bundle.push(format!("{}: {problem}", p.display()));
        }
        if !members.contains_key(&key) {
            report.bundle.push(format!(
                "{}: its node {} is in no roster version the anchor signed",
                p.display(),
                node.peer_id
            ));
        }
        let set = out.entry(key).or_default();
        for event in events(p)? {
            if let Event::FeedPublished {
                agreement,
                manifest,
                ..
            } = event
            {
                set.insert((agreement, manifest));
            }
        }
    }
    Ok(out)
}

/// A commitment's stage, for a result that has two (` (candidates sent to
/// the ministry)`, ` (final list, after the ministry's answers)`); empty
/// for one that has one. `digest` is the commitment's (hex).
fn stage(c: &ResultCommitment, digest: &str, known: &Known<'_>) -> &'static str {
    if c.ministry.is_some() {
        " (final list, after the ministry's answers)"
    } else if known.candidates.contains(digest) {
        " (candidates sent to the ministry)"
    } else {
        ""
    }
}

/// Recomputes one commitment.
fn check_one(name: &str, c: &ResultCommitment, known: &Known<'_>, feeds: &Path) -> Checked {
    // `<epoch>-<digest>` as exported; shown as the result it is about.
    let digest = name.split_once('-').map_or(name, |(_, d)| d);
    let mut checked = Checked {
        commitment: format!(
            "{}{} of epoch {} ({})",
            c.result_kind,
            stage(c, digest, known),
            c.epoch,
            &digest[..digest.len().min(12)]
        ),
        committed: c.count,
        recomputed: None,
        problems: Vec::new(),
        erased: None,
    };
    match erased_input(c, known, feeds) {
        Some(Ok(note)) => {
            checked.erased = Some(note);
            return checked;
        }
        Some(Err(problem)) => {
            checked.problems.push(problem);
            return checked;
        }
        None => {}
    }
    match result_of(c, known, feeds) {
        Ok(tokens) => {
            let (count, root) = set_root(&tokens);
            checked.recomputed = Some(count);
            if (count, root) != (c.count, c.root) {
                checked.problems.push(format!(
                    "the committed root is not the root of the recomputed result ({count} tokens)"
                ));
                checked.problems.extend(extra_tokens(feeds, c, &tokens));
            }
        }
        Err(e) => checked.problems.push(format!("cannot recompute: {e}")),
    }
    checked
}

/// If a feed the commitment read is no longer among the feeds and the
/// comparator's log says it was erased under retention: which, and when.
fn erased_input(
    c: &ResultCommitment,
    known: &Known<'_>,
    feeds: &Path,
) -> Option<Result<String, String>> {
    c.inputs.iter().find_map(|ci| {
        let m = known.manifests.get(&ci.manifest)?;
        let (kept_until, at) = known.erased.get(&(m.agreement, c.epoch))?;
        if crate::pull::pulls::pull_dir(feeds, &m.agreement, c.epoch).exists() {
            return None;
        }
        // The erasure must have been due: the agreement's retention ends
        // on that day, and the entry was written after it.
        let due = known
            .terms
            .get(&m.agreement)
            .and_then(|t| crate::pull::retention::kept_until(t, c.epoch));
        if due != Some(*kept_until) || at.date() <= *kept_until {
            return Some(Err(format!(
                "input {} (epoch {}) was erased on {} before its retention ended ({}): the commitment cannot be recomputed and is not excused",
                ci.input.name,
                c.epoch,
                at.date(),
                due.map_or("unknown".to_string(), |d| d.to_string())
            )));
        }
        Some(Ok(format!(
            "input {} (epoch {}) was erased under retention, kept until {kept_until} (feed_erased in the comparator's log): not recomputed",
            ci.input.name, c.epoch
        )))
    })
}

/// The pulled feeds the comparator's log says it erased: the last day
/// each was kept, and when the erasure was logged.
fn erased_feeds(bundle: &Path) -> Result<Erased, String> {
    let path = bundle.join("entries.bin");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Erased::new();
    for raw in crate::audit::log::unframe_entries(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        let e = codec::decode::<Entry>(raw).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Event::FeedErased {
            agreement,
            epoch,
            kept_until,
        } = e.event
        {
            out.insert((agreement, epoch), (kept_until, e.at));
        }
    }
    Ok(out)
}

/// Erased pulled feeds by (agreement, epoch): the last day kept, and when
/// the erasure was logged.
type Erased = BTreeMap<
    (Hash, u64),
    (
        dxmesh_protocol::date::Date,
        dxmesh_protocol::time::Timestamp,
    ),
>;

/// The result of the committed expression over the committed feeds.
fn result_of(
    c: &ResultCommitment,
    known: &Known<'_>,
    feeds: &Path,
) -> Result<Vec<IdToken>, String> {
    if c.expr.len() > MAX_EXPR {
        return Err(format!("the expression is longer than {MAX_EXPR} bytes"));
    }
    let job = JobFile {
        inputs: c
            .inputs
            .iter()
            .map(|i| {
                let spec = InputSpec {
                    dataset: i.input.dataset.clone(),
                    provider: i.input.provider.clone(),
                    filter: i.input.filter.iter().cloned().collect(),
                };
                (i.input.name.clone(), spec)
            })
            .collect(),
        results: [(
            "result".to_string(),
            ResultSpec {
                expr: c.expr.clone(),
                disclose: None,
            },
        )]
        .into(),
        order: vec!["result".into()],
        coverage: None,
        ministry: None,
    };
    let compiled = job
        .compile(Path::new("commitment"))
        .map_err(|e| e.message)?;
    let mut inputs = Vec::new();
    for (name, _) in &compiled.inputs {
        let ci = c
            .inputs
            .iter()
            .find(|i| &i.input.name == name)
            .ok_or_else(|| format!("input {name} is not committed"))?;
        let m = known.manifests.get(&ci.manifest).ok_or_else(|| {
            format!(
                "input {name}: the bundle holds no manifest {}",
                dxmesh_protocol::hex(&ci.manifest)
            )
        })?;
        let t = known.terms.get(&m.agreement).ok_or_else(|| {
            format!("input {name}: the bundle holds no transcript of its agreement")
        })?;
        // The feed is the one the input is defined as: its dataset, from a
        // provider of its department, to this comparator, of this epoch.
        let department = known.departments.get(&t.provider).map(String::as_str);
        if m.epoch != c.epoch
            || t.dataset != ci.input.dataset
            || t.consumer != *known.comparator
            || department != Some(ci.input.provider.as_str())
        {
            return Err(format!(
                "input {name} is defined as dataset {:?} from {:?}, but its manifest is of {:?} from {} for epoch {}",
                ci.input.dataset,
                ci.input.provider,
                t.dataset,
                department.unwrap_or("a non-member"),
                m.epoch
            ));
        }
        if m.provider != t.provider {
            return Err(format!(
                "input {name}: its manifest is signed by another node than the agreement's provider"
            ));
        }
        if let Some(set) = known.published.get(&t.provider)
            && !set.contains(&(m.agreement, ci.manifest))
        {
            return Err(format!(
                "input {name}: the provider's bundle shows no such feed published ({})",
                dxmesh_protocol::hex(&ci.manifest)
            ));
        }
        if stored_manifest(feeds, &m.agreement, c.epoch).map(|s| s.digest()) != Some(ci.manifest) {
            return Err(format!(
                "input {name}: the feeds hold another manifest for epoch {}",
                c.epoch
            ));
        }
        let reader =
            FeedReader::open(feeds, t, c.epoch).map_err(|e| format!("input {name}: {e}"))?;
        inputs.push(Input {
            name: name.clone(),
            reader,
        });
    }
    let other = other_province(c, feeds)?;
    let out = run_pass(&compiled, inputs, &other).map_err(|e| e.to_string())?;
    Ok(out.results.into_iter().next().unwrap_or_default())
}

/// The `other_province` set the result was computed with.
fn other_province(c: &ResultCommitment, feeds: &Path) -> Result<Vec<IdToken>, String> {
    let Some(set) = c.sets.iter().find(|s| s.name == "other_province") else {
        return Ok(Vec::new());
    };
    if set.count == 0 {
        return Ok(Vec::new());
    }
    let tokens = load_set(feeds, c.epoch, "other_province")
        .map_err(|e| e.to_string())?
        .ok_or("the committed other_province set is not among the feeds")?;
    if set_root(&tokens) != (set.count, set.root) {
        return Err("the other_province tokens kept are not the committed set".into());
    }
    Ok(tokens)
}

/// The committed tokens that are not in the recomputed result, if the
/// comparator's token list of the commitment is at hand.
fn extra_tokens(feeds: &Path, c: &ResultCommitment, recomputed: &[IdToken]) -> Vec<String> {
    let stems = [
        c.result_kind.clone(),
        format!("{}.candidates", c.result_kind),
    ];
    let Some(kept) = stems.iter().find_map(|s| {
        Committed::load(feeds, c.epoch, s)
            .ok()
            .flatten()
            .filter(|k| set_root(&k.tokens) == (c.count, c.root))
    }) else {
        return Vec::new();
    };
    let recomputed: BTreeSet<&IdToken> = recomputed.iter().collect();
    let extra: Vec<&IdToken> = kept
        .tokens
        .iter()
        .filter(|t| !recomputed.contains(t))
        .collect();
    if extra.is_empty() {
        return Vec::new();
    }
    let shown: Vec<String> = extra.iter().take(10).map(|t| t.to_string()).collect();
    vec![format!(
        "{} committed token(s) are not results of the job: {}{}",
        extra.len(),
        shown.join(", "),
        if extra.len() > 10 { ", ..." } else { "" }
    )]
}

/// The terms of every agreement whose transcript the bundle holds.
fn agreements(bundle: &Path) -> Result<BTreeMap<Hash, Terms>, String> {
    let mut out = BTreeMap::new();
    for f in sorted_files(&bundle.join("transcripts")) {
        let bytes = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let steps: Vec<Signed<Step>> =
            codec::decode(&bytes).map_err(|e| format!("{}: {e}", f.display()))?;
        let n = Negotiation::replay(&steps).map_err(|e| format!("{}: {e}", f.display()))?;
        out.insert(n.terms.id(), n.terms);
    }
    Ok(out)
}

/// The manifests the bundle holds that their signer, a member of the
/// anchored roster, signed, by the digest of the signed manifest.
fn manifests(bundle: &Path, members: &BTreeMap<PublicKey, Member>) -> BTreeMap<Hash, Manifest> {
    sorted_files(&bundle.join("manifests"))
        .into_iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|b| codec::decode::<Signed<Manifest>>(&b).ok())
        .filter(|s| members.contains_key(s.signer()))
        .filter_map(|s| {
            let d = s.digest();
            s.verify()
                .ok()
                .filter(|m| m.provider == *s.signer())
                .map(|m| (d, m))
        })
        .collect()
}
