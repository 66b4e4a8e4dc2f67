//! Offline verification of evidence bundles (`dxmesh audit verify`): for a
//! security officer on a machine with none of the nodes. Checks every
//! signature, the log's Merkle tree against every checkpoint, that each
//! pull and disclosure served was covered by an active agreement inside its
//! epoch's window, within its pull maximum and quota, to a roster member not
//! revoked at the time, that every manifest used was signed by the provider
//! the agreement names, and, across bundles, that what one node served the
//! other received and that witnesses' cosigned views match the logs.

use dxmesh_protocol::agreement::{Negotiation, Status, Step};
use dxmesh_protocol::audit::{Checkpoint, Entry, Event, verify_cosignature};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::{Hash, RootBuilder};
use dxmesh_protocol::roster::{self, Admission, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Bundle (node PeerId).
    pub bundle: String,
    /// Entry sequence number, when the finding is about an entry.
    pub entry: Option<u64>,
    /// What failed.
    pub problem: String,
}

/// The verification report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Bundles checked: PeerId -> (department, entries, checkpoints, cosignatures).
    pub bundles: BTreeMap<String, BundleSummary>,
    /// Checks passed, by name.
    pub checks: BTreeMap<String, u64>,
    /// Failures.
    pub failures: Vec<Finding>,
}

/// Per-bundle counts.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BundleSummary {
    /// Department.
    pub department: String,
    /// Entries.
    pub entries: u64,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Cosignatures verified.
    pub cosignatures: u64,
    /// Agreement transcripts verified.
    pub transcripts: u64,
}

impl Report {
    /// Whether everything verified.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    fn pass(&mut self, check: &str) {
        *self.checks.entry(check.to_string()).or_default() += 1;
    }

    fn fail(&mut self, bundle: &str, entry: Option<u64>, problem: String) {
        self.failures.push(Finding {
            bundle: bundle.to_string(),
            entry,
            problem,
        });
    }

    /// A readable report.
    pub fn render(&self) -> String {
        let mut out = String::from("dxmesh audit verification\n\n");
        for (peer, b) in &self.bundles {
            out.push_str(&format!(
                "bundle {peer} ({}): {} entries, {} checkpoints, {} cosignatures, {} agreement transcripts\n",
                b.department, b.entries, b.checkpoints, b.cosignatures, b.transcripts
            ));
        }
        out.push_str("\nchecks passed:\n");
        for (c, n) in &self.checks {
            out.push_str(&format!("  {c:<48} {n}\n"));
        }
        if self.failures.is_empty() {
            out.push_str("\nVERDICT: OK — every signature, log, pull and disclosure verified\n");
        } else {
            out.push_str(&format!(
                "\nVERDICT: FAILED — {} problem(s):\n",
                self.failures.len()
            ));
            for f in &self.failures {
                match f.entry {
                    Some(e) => out.push_str(&format!("  {} entry {e}: {}\n", f.bundle, f.problem)),
                    None => out.push_str(&format!("  {}: {}\n", f.bundle, f.problem)),
                }
            }
        }
        out
    }
}

/// Agreement id -> (its state, its steps with time and signer).
type Agreements = BTreeMap<Hash, (Negotiation, Vec<(Timestamp, Step, PublicKey)>)>;

struct Bundle {
    peer: String,
    key: PublicKey,
    entries: Vec<Entry>,
    prefix_roots: Vec<Hash>,
    agreements: Agreements,
    manifests: BTreeMap<Hash, Signed<Manifest>>,
    witnessed: BTreeMap<String, Checkpoint>,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The roster in force at `t`: the newest version issued at or before it.
fn roster_at(rosters: &[Roster], t: Timestamp) -> Option<&Roster> {
    rosters
        .iter()
        .rev()
        .find(|r| r.issued_at <= t)
        .or(rosters.first())
}

/// Status of an agreement at `t` from the steps taken up to `t`.
fn status_at(
    steps: &[(Timestamp, Step, PublicKey)],
    transcript: &[Signed<Step>],
    t: Timestamp,
) -> Option<(Status, Negotiation)> {
    let upto: Vec<Signed<Step>> = transcript
        .iter()
        .zip(steps)
        .take_while(|(_, (at, _, _))| *at <= t)
        .map(|(s, _)| s.clone())
        .collect();
    let n = Negotiation::replay(&upto).ok()?;
    Some((n.status(t, false), n))
}

/// Verifies bundles; the first is the main one, the others are its peers.
pub fn verify(paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let mut bundles: Vec<Bundle> = Vec::new();
    let mut transcripts_raw: BTreeMap<Hash, Vec<Signed<Step>>> = BTreeMap::new();
    let mut all_rosters: Vec<Roster> = Vec::new();
    for path in paths {
        match load_bundle(path, &mut report, &mut transcripts_raw, &mut all_rosters) {
            Ok(b) => bundles.push(b),
            Err(e) => report.fail(&path.display().to_string(), None, e),
        }
    }
    all_rosters.sort_by_key(|r| r.version);
    all_rosters.dedup_by_key(|r| r.version);
    // Coverage of pulls and disclosures by agreements, per bundle.
    for b in &bundles {
        let mut pulls: BTreeMap<(Hash, u64), BTreeSet<[u8; 16]>> = BTreeMap::new();
        let mut disclosed: BTreeMap<(Hash, u64), u64> = BTreeMap::new();
        for e in &b.entries {
            let (agreement, epoch, requester, kind) = match &e.event {
                Event::PullServed {
                    agreement,
                    epoch,
                    consumer,
                    pull_id,
                    new_pull,
                    ..
                } => {
                    if *new_pull {
                        pulls
                            .entry((*agreement, *epoch))
                            .or_default()
                            .insert(*pull_id);
                    }
                    (*agreement, *epoch, *consumer, "pull")
                }
                Event::DisclosureServed {
                    agreement,
                    epoch,
                    consumer,
                    requested,
                    ..
                } => {
                    *disclosed.entry((*agreement, *epoch)).or_default() += requested;
                    (*agreement, *epoch, *consumer, "disclosure")
                }
                _ => continue,
            };
            let Some((_, steps)) = b.agreements.get(&agreement) else {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!(
                        "{kind} under agreement {} with no transcript in the bundle",
                        dxmesh_protocol::hex(&agreement)
                    ),
                );
                continue;
            };
            let Some(transcript) = transcripts_raw.get(&thread_of(&b.agreements, &agreement))
            else {
                continue;
            };
            let Some((status, n)) = status_at(steps, transcript, e.at) else {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!("{kind} at {} before the agreement was even proposed", e.at),
                );
                continue;
            };
            let mut ok = true;
            if status != Status::Active {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!("{kind} while the agreement was {status}"),
                );
                ok = false;
            }
            if requester != n.terms.consumer {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!("{kind} to a node that is not the agreement's consumer"),
                );
                ok = false;
            }
            if n.terms.provider != b.key {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!("{kind} served by a node that is not the agreement's provider"),
                );
                ok = false;
            }
            match n.terms.cycle.epoch_at(e.at) {
                Some(cur) if cur == epoch => {
                    if kind == "pull"
                        && let Some((s, end)) = n.terms.cycle.window(epoch)
                        && (e.at < s || e.at >= end)
                    {
                        report.fail(&b.peer, Some(e.seq), format!("pull outside the pull window of epoch {epoch} ({s} to {end}) at {}", e.at));
                        ok = false;
                    }
                }
                other => {
                    report.fail(
                        &b.peer,
                        Some(e.seq),
                        format!("{kind} for epoch {epoch} when the current epoch was {other:?}"),
                    );
                    ok = false;
                }
            }
            if let Some(r) = roster_at(&all_rosters, e.at) {
                let adm = r.admission(&requester, e.at);
                if adm != Admission::Admitted {
                    report.fail(
                        &b.peer,
                        Some(e.seq),
                        format!(
                            "{kind} to a node that was {adm} at the time (roster v{})",
                            r.version
                        ),
                    );
                    ok = false;
                }
            }
            if kind == "pull"
                && pulls.get(&(agreement, epoch)).map(|s| s.len()).unwrap_or(0)
                    > n.terms.cycle.max_pulls as usize
            {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!(
                        "more than the {} pulls allowed in epoch {epoch}",
                        n.terms.cycle.max_pulls
                    ),
                );
                ok = false;
            }
            if kind == "disclosure"
                && disclosed.get(&(agreement, epoch)).copied().unwrap_or(0)
                    > n.terms.disclosure.max_records_per_epoch
            {
                report.fail(
                    &b.peer,
                    Some(e.seq),
                    format!(
                        "disclosures over the quota of {} for epoch {epoch}",
                        n.terms.disclosure.max_records_per_epoch
                    ),
                );
                ok = false;
            }
            if ok {
                report.pass(&format!("{kind}s covered by an active agreement"));
            }
        }
        // Manifests used by a comparator were signed by the agreement's provider.
        for e in &b.entries {
            if let Event::PullCompleted {
                agreement,
                manifest,
                provider,
                ..
            } = &e.event
            {
                match (b.manifests.get(manifest), b.agreements.get(agreement)) {
                    (Some(m), Some((n, _))) => {
                        if m.verify_by(&n.terms.provider).is_ok() && *provider == n.terms.provider {
                            report.pass("pulled manifests signed by the agreement's provider");
                        } else {
                            report.fail(
                                &b.peer,
                                Some(e.seq),
                                "a pulled manifest is not signed by the agreement's provider"
                                    .into(),
                            );
                        }
                    }
                    (None, _) => report.fail(
                        &b.peer,
                        Some(e.seq),
                        "the pulled manifest is missing from the bundle".into(),
                    ),
                    (_, None) => report.fail(
                        &b.peer,
                        Some(e.seq),
                        "pull under an agreement with no transcript in the bundle".into(),
                    ),
                }
            }
        }
    }
    // Across bundles: served vs received; witnessed views vs logs.
    let by_key: BTreeMap<PublicKey, &Bundle> = bundles.iter().map(|b| (b.key, b)).collect();
    for b in &bundles {
        for e in &b.entries {
            match &e.event {
                Event::DisclosureServed {
                    consumer, digest, ..
                } => {
                    if let Some(c) = by_key.get(consumer) {
                        let received = c.entries.iter().any(|x| matches!(&x.event, Event::DisclosureReceived { digest: d, .. } if d == digest));
                        if received {
                            report.pass("disclosures served were received");
                        } else {
                            report.fail(
                                &b.peer,
                                Some(e.seq),
                                format!(
                                    "disclosure served to {} that its log does not show received",
                                    c.peer
                                ),
                            );
                        }
                    }
                }
                Event::PullCompleted {
                    provider,
                    pull_id,
                    manifest,
                    ..
                } => {
                    if let Some(p) = by_key.get(provider) {
                        let served = p.entries.iter().any(|x| {
                            matches!(&x.event, Event::PullServed { pull_id: i, manifest: m, .. } if i == pull_id && m == manifest)
                        });
                        if served {
                            report.pass("pulls received were served");
                        } else {
                            report.fail(
                                &b.peer,
                                Some(e.seq),
                                format!("a pull from {} that its log does not show served", p.peer),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        for (peer, cp) in &b.witnessed {
            if let Some(other) = bundles.iter().find(|o| &o.peer == peer) {
                match other.prefix_roots.get(cp.size as usize).copied() {
                    Some(root) if root == cp.root => report.pass("witnessed checkpoints consistent with the logs"),
                    Some(_) => report.fail(&other.peer, None, format!(
                        "{} witnessed a checkpoint of {} entries that this log does not reproduce: the log was rewritten",
                        b.peer, cp.size
                    )),
                    // The witness saw a newer log than this bundle holds (the
                    // bundle was exported earlier): nothing to compare yet.
                    None => report.pass("witnessed checkpoints newer than the bundle (not comparable)"),
                }
            }
        }
    }
    report
}

fn thread_of(agreements: &Agreements, agreement: &Hash) -> Hash {
    agreements
        .get(agreement)
        .map(|(n, _)| n.thread)
        .unwrap_or([0; 32])
}

fn load_bundle(
    path: &Path,
    report: &mut Report,
    transcripts_raw: &mut BTreeMap<Hash, Vec<Signed<Step>>>,
    all_rosters: &mut Vec<Roster>,
) -> Result<Bundle, String> {
    let node: crate::audit::log::BundleNode =
        serde_json::from_slice(&read(&path.join("node.json"))?)
            .map_err(|e| format!("node.json: {e}"))?;
    let anchor = PublicKey::from_pem(&String::from_utf8_lossy(&read(
        &path.join("anchor.pub.pem"),
    )?))
    .map_err(|e| format!("anchor.pub.pem: {e}"))?;
    let peer = node.peer_id.clone();
    // Roster chain.
    let mut chain: Vec<Signed<Roster>> = Vec::new();
    for f in files(&path.join("roster")) {
        chain.push(codec::decode(&read(&f)?).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    let mut rosters = Vec::new();
    let mut held: Option<Signed<Roster>> = None;
    for s in &chain {
        match roster::accept_chain(held.as_ref(), std::slice::from_ref(s), &anchor) {
            Ok(r) => {
                rosters.push(r);
                held = Some(s.clone());
                report.pass("roster versions signed by the anchor and chained");
            }
            Err(e) => report.fail(&peer, None, format!("roster: {e}")),
        }
    }
    all_rosters.extend(rosters.iter().cloned());
    let key = libp2p::PeerId::from_str_checked(&peer)
        .and_then(|p| PublicKey::from_peer_id(&p))
        .ok_or("node.json: not an Ed25519 PeerId")?;
    if !rosters.iter().any(|r| r.member(&key).is_some()) {
        report.fail(&peer, None, "the node is in no roster version".into());
    }
    // Entries and checkpoints.
    let raw = read(&path.join("entries.bin"))?;
    let frames = crate::audit::log::unframe_entries(&raw)?;
    let entries: Vec<Entry> = {
        use rayon::prelude::*;
        frames
            .par_iter()
            .enumerate()
            .map(|(i, b)| {
                codec::decode::<Entry>(b)
                    .map_err(|e| format!("entries.bin: entry at position {i} does not decode: {e}"))
            })
            .collect::<Result<_, _>>()?
    };
    let mut summary = BundleSummary {
        department: node.department.clone(),
        entries: entries.len() as u64,
        ..Default::default()
    };
    let mut prefix_roots = Vec::with_capacity(entries.len() + 1);
    let mut builder = RootBuilder::default();
    prefix_roots.push(builder.root());
    let leaves: Vec<Hash> = {
        use rayon::prelude::*;
        entries.par_iter().map(Entry::leaf_hash).collect()
    };
    for leaf in &leaves {
        builder.push(*leaf);
        prefix_roots.push(builder.root());
    }
    let mut pinpointed: Option<u64> = None;
    // Name the first entry that is out of place or was edited: a wrong
    // position number (deleted, inserted or moved), or an entry whose
    // successor's link does not match it (edited).
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as u64 {
            report.fail(&peer, Some(i as u64), format!("entry at position {i} says it is entry {}: an entry was deleted, inserted or moved here", e.seq));
            pinpointed = Some(i as u64);
            break;
        }
        let expected_prev = if i == 0 { [0u8; 32] } else { leaves[i - 1] };
        if e.prev != expected_prev {
            report.fail(
                &peer,
                Some(i as u64),
                "this entry's link to the previous one is broken".into(),
            );
            pinpointed = Some(i as u64);
            break;
        }
        if let Some(next) = entries.get(i + 1)
            && next.seq == i as u64 + 1
            && next.prev != leaves[i]
        {
            report.fail(
                &peer,
                Some(i as u64),
                "this entry was changed: the next entry's link to it does not match".into(),
            );
            pinpointed = Some(i as u64);
            break;
        }
    }
    let mut last_size = 0u64;
    let mut last_good = 0u64;
    let mut notes: Vec<(u64, String)> = Vec::new();
    for f in files(&path.join("checkpoints")) {
        notes.push((0, String::from_utf8_lossy(&read(&f)?).into_owned()));
    }
    let verified: Vec<Result<Checkpoint, String>> = {
        use rayon::prelude::*;
        notes
            .par_iter()
            .map(|(_, note)| Checkpoint::verify(note, &peer, &key).map_err(|e| e.to_string()))
            .collect()
    };
    for cp in verified {
        match cp {
            Ok(cp) => {
                summary.checkpoints += 1;
                report.pass("checkpoint signatures");
                if cp.size < last_size {
                    report.fail(
                        &peer,
                        None,
                        format!("checkpoint {} is smaller than an earlier one", cp.size),
                    );
                }
                last_size = cp.size;
                match prefix_roots.get(cp.size as usize) {
                    Some(root) if *root == cp.root => {
                        report.pass("log matches its checkpoints");
                        last_good = cp.size;
                    }
                    Some(_) => report.fail(
                        &peer,
                        Some(pinpointed.filter(|k| (last_good..cp.size).contains(k)).unwrap_or(last_good)),
                        format!(
                            "the log does not match its signed checkpoint of {} entries: an entry from {last_good} to {} was changed",
                            cp.size,
                            cp.size - 1
                        ),
                    ),
                    None => report.fail(
                        &peer,
                        Some(entries.len() as u64),
                        format!("a signed checkpoint covers {} entries but the log has {}: entries were deleted", cp.size, entries.len()),
                    ),
                }
            }
            Err(e) => report.fail(&peer, None, format!("a checkpoint does not verify: {e}")),
        }
    }
    if last_size < entries.len() as u64 {
        report.fail(
            &peer,
            Some(last_size),
            format!("entries after {last_size} are covered by no signed checkpoint"),
        );
    }
    // Cosignatures on our checkpoints.
    for f in files(&path.join("cosignatures")) {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some((size, witness)) = name.trim_end_matches(".line").split_once('-') else {
            continue;
        };
        let Ok(size) = size.parse::<u64>() else {
            continue;
        };
        let line = String::from_utf8_lossy(&read(&f)?).into_owned();
        let Some(wkey) =
            libp2p::PeerId::from_str_checked(witness).and_then(|p| PublicKey::from_peer_id(&p))
        else {
            continue;
        };
        let body = Checkpoint {
            origin: node.origin.clone(),
            size,
            root: prefix_roots.get(size as usize).copied().unwrap_or([0; 32]),
        }
        .body();
        match verify_cosignature(&line, witness, &wkey, &body) {
            Ok(_) => {
                summary.cosignatures += 1;
                report.pass("cosignatures by witnesses");
            }
            Err(_) => report.fail(
                &peer,
                Some(size.saturating_sub(1)),
                format!("the cosignature of {witness} on {size} entries does not match this log"),
            ),
        }
    }
    // Witnessed checkpoints of others.
    let mut witnessed = BTreeMap::new();
    for f in files(&path.join("witnessed")) {
        let name = f
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let note = String::from_utf8_lossy(&read(&f)?).into_owned();
        if let Some(k) =
            libp2p::PeerId::from_str_checked(&name).and_then(|p| PublicKey::from_peer_id(&p))
            && let Ok(cp) = Checkpoint::verify(&note, &name, &k)
        {
            witnessed.insert(name, cp);
        }
    }
    for f in files(&path.join("evidence")) {
        report.fail(
            &peer,
            None,
            format!("the node holds fork evidence: {}", f.display()),
        );
    }
    // Agreements.
    let mut agreements = BTreeMap::new();
    for f in files(&path.join("transcripts")) {
        let steps: Vec<Signed<Step>> =
            codec::decode(&read(&f)?).map_err(|e| format!("{}: {e}", f.display()))?;
        match Negotiation::replay(&steps) {
            Ok(n) => {
                summary.transcripts += 1;
                report.pass("agreement transcripts (signatures, chain, transitions)");
                let timed: Vec<(Timestamp, Step, PublicKey)> = steps
                    .iter()
                    .filter_map(|s| {
                        codec::decode::<Step>(s.body())
                            .ok()
                            .map(|st| (st.at, st, *s.signer()))
                    })
                    .collect();
                transcripts_raw.insert(n.thread, steps);
                agreements.insert(n.terms.id(), (n, timed));
            }
            Err(e) => report.fail(&peer, None, format!("{}: {e}", f.display())),
        }
    }
    let mut manifests = BTreeMap::new();
    for f in files(&path.join("manifests")) {
        if let Ok(m) = codec::decode::<Signed<Manifest>>(&read(&f)?) {
            manifests.insert(m.digest(), m);
        }
    }
    report.bundles.insert(peer.clone(), summary);
    Ok(Bundle {
        peer,
        key,
        entries,
        prefix_roots,
        agreements,
        manifests,
        witnessed,
    })
}

trait PeerIdExt {
    fn from_str_checked(s: &str) -> Option<libp2p::PeerId>;
}

impl PeerIdExt for libp2p::PeerId {
    fn from_str_checked(s: &str) -> Option<libp2p::PeerId> {
        s.parse().ok()
    }
}
