//! Audit (issue 7): the evidence bundle of a real exchange verifies; any
//! changed, deleted, reordered or inserted entry makes verification fail and
//! name the entry (property test over random positions); a node that
//! rewrites its own log is caught by its peer's witness with both
//! checkpoints kept as evidence; a pull outside its window that appears in a
//! log, properly signed, is flagged.

use dxmesh_node::audit::verify::verify;
use dxmesh_protocol::audit::{Entry, Event};
use dxmesh_protocol::codec;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_tests::{Setup, registry_terms, setup};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// Publish, pull and disclose, then export both bundles.
fn exchange(s: &mut Setup) -> (PathBuf, PathBuf) {
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    let out = s.mesh.path().join("d.csv");
    s.pcmp.cli(&[
        "disclose",
        "--agreement",
        &s.agreement[..12],
        "--kind",
        "uninsured",
        "--fields",
        "id_number,name",
        "--first",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    // Each node's log, disclosure included, is witnessed by the other.
    s.pps.wait_witnessed(&s.cmp);
    s.pcmp.wait_witnessed(&s.ps);
    let bp = s.mesh.path().join("bundle-ps");
    let bc = s.mesh.path().join("bundle-cmp");
    s.pps
        .cli(&["audit", "export", "--out", bp.to_str().unwrap()]);
    // A second export into the same folder is refused: the index of a
    // bundle covers every file in its folder.
    let e = s
        .pps
        .cli_fails(&["audit", "export", "--out", bp.to_str().unwrap()]);
    assert!(e.contains("the folder is not empty"), "{e}");
    s.pcmp
        .cli(&["audit", "export", "--out", bc.to_str().unwrap()]);
    (bp, bc)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

struct Shared {
    provider: PathBuf,
    comparator: PathBuf,
    /// The mesh's trust anchor, as the security officer holds it.
    anchor: PublicKey,
    /// Its PEM file.
    anchor_pem: PathBuf,
    /// The comparator's identity (what a hostile comparator signs with).
    comparator_key: dxmesh_protocol::identity::Identity,
    /// The provider's identity (what a node rewriting its past signs with).
    provider_key: dxmesh_protocol::identity::Identity,
}

/// The trust anchor of the setup's mesh.
fn anchor_of(s: &Setup) -> PublicKey {
    PublicKey::from_pem(&std::fs::read_to_string(s.mesh.path().join("anchor.pub.pem")).unwrap())
        .unwrap()
}

/// One real exchange, shared by the tests: its two bundles are copied out
/// and the nodes are stopped (a static is never dropped, so it must not
/// own processes).
fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let (mut s, _) = setup(BIN, 300, &registry_terms(2, 10_000));
        let (p, c) = exchange(&mut s);
        let keep = tempfile::tempdir().unwrap().keep();
        let (provider, comparator) = (keep.join("bundle-ps"), keep.join("bundle-cmp"));
        copy_dir(&p, &provider);
        copy_dir(&c, &comparator);
        let anchor_pem = keep.join("anchor.pub.pem");
        std::fs::copy(s.mesh.path().join("anchor.pub.pem"), &anchor_pem).unwrap();
        let anchor = anchor_of(&s);
        let comparator_key =
            dxmesh_node::base::keyfile::read_identity(&s.cmp.dir.join("node.key")).unwrap();
        let provider_key =
            dxmesh_node::base::keyfile::read_identity(&s.ps.dir.join("node.key")).unwrap();
        drop(s);
        Shared {
            provider,
            comparator,
            anchor,
            anchor_pem,
            comparator_key,
            provider_key,
        }
    })
}

#[test]
fn the_bundles_of_a_real_exchange_verify_alone_and_together() {
    let sh = shared();
    let r = verify(&[sh.provider.clone(), sh.comparator.clone()], &sh.anchor);
    assert!(r.ok(), "{}", r.render());
    for check in [
        "pulls covered by an active agreement",
        "disclosures covered by an active agreement",
        "disclosures served were received",
        "pulls received were served",
        "pulled manifests signed by the agreement's provider",
        "witnessed checkpoints consistent with the logs",
        "cosignatures by witnesses",
        "bundle files match the signed index",
    ] {
        assert!(
            r.checks.get(check).copied().unwrap_or(0) > 0,
            "no `{check}` in {}",
            r.render()
        );
    }
    // The offline command agrees, and writes JSON.
    let json = sh.provider.parent().unwrap().join("report.json");
    let out = std::process::Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&sh.provider)
        .arg("--anchor")
        .arg(&sh.anchor_pem)
        .arg("--bundle")
        .arg(&sh.comparator)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("VERDICT: OK"));
    assert!(
        std::fs::read_to_string(json)
            .unwrap()
            .contains("\"failures\": []")
    );
    // No raw identifiers in the logs: entries hold tokens, counts and hashes only.
    let entries = std::fs::read_to_string(sh.provider.join("entries.json")).unwrap();
    assert!(
        !entries.contains("id_number,") && !entries.contains("测"),
        "raw data in the audit log"
    );
}

/// Every file of a bundle below `dir`, relative to it.
fn bundle_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            bundle_files(&e.path(), &format!("{rel}/"), out);
        } else {
            out.push(rel);
        }
    }
}

/// A verification of a copy of the provider's bundle changed by `change`.
fn verify_changed(change: impl FnOnce(&Path)) -> dxmesh_node::audit::verify::Report {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shared().provider, dir.path());
    change(dir.path());
    verify(&[dir.path().to_path_buf()], &shared().anchor)
}

#[test]
fn a_changed_byte_in_any_file_of_a_bundle_an_added_file_and_a_removed_one_are_each_named() {
    let mut files = Vec::new();
    bundle_files(&shared().provider, "", &mut files);
    for f in ["entries.json", "node.json", "index.bin", "anchor.pub.pem"] {
        assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    for prefix in ["keys/", "manifests/published-", "checkpoints/", "roster/"] {
        assert!(
            files.iter().any(|x| x.starts_with(prefix)),
            "{prefix} in {files:?}"
        );
    }
    for f in &files {
        let r = verify_changed(|d| {
            let path = d.join(f);
            let mut bytes = std::fs::read(&path).unwrap();
            // The last byte, so that text files stay parseable and only the
            // index can tell.
            match bytes.last_mut() {
                Some(b) => *b ^= 0x01,
                None => bytes.push(b'x'),
            }
            std::fs::write(&path, bytes).unwrap();
        });
        assert!(!r.ok(), "a changed byte in {f} went unnoticed");
        // Named by the index, or, for a file the verifier must read to
        // know whose bundle it is (`node.json`), by the file's own error.
        assert!(
            r.failures.iter().any(|x| x.problem.starts_with(f.as_str())),
            "{f}: {}",
            r.render()
        );
    }
    let r = verify_changed(|d| std::fs::write(d.join("keys/extra.pem"), "x").unwrap());
    assert!(
        r.failures
            .iter()
            .any(|x| x.problem
                == "keys/extra.pem: not in the bundle's index (added after the export)"),
        "{}",
        r.render()
    );
    let r = verify_changed(|d| std::fs::remove_file(d.join("entries.json")).unwrap());
    assert!(
        r.failures
            .iter()
            .any(|x| x.problem == "entries.json: listed in the bundle's index but missing"),
        "{}",
        r.render()
    );
    // An index signed by another node (the comparator's) does not vouch for
    // the provider's bundle.
    let r = verify_changed(|d| {
        std::fs::copy(shared().comparator.join("index.bin"), d.join("index.bin")).unwrap();
    });
    assert!(
        r.failures
            .iter()
            .any(|x| x.problem.starts_with("index.bin is not signed by")),
        "{}",
        r.render()
    );
}

#[derive(Debug, Clone)]
enum Mutation {
    Change(usize),
    Delete(usize),
    Swap(usize),
    Insert(usize, usize),
}

fn mutate(bundle: &Path, m: &Mutation, n: usize) -> (PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap().keep();
    copy_dir(bundle, &dir);
    let path = dir.join("entries.bin");
    let bytes = std::fs::read(&path).unwrap();
    let mut entries: Vec<Entry> = dxmesh_node::audit::log::unframe_entries(&bytes)
        .unwrap()
        .into_iter()
        .map(|b| codec::decode(b).unwrap())
        .collect();
    let expect = match *m {
        Mutation::Change(i) => {
            let i = i % n;
            entries[i].at = dxmesh_protocol::time::Timestamp(entries[i].at.0 + 1);
            i
        }
        Mutation::Delete(i) => {
            let i = i % n;
            entries.remove(i);
            i
        }
        Mutation::Swap(i) => {
            let i = i % (n - 1);
            entries.swap(i, i + 1);
            i
        }
        Mutation::Insert(i, j) => {
            let (i, j) = (i % n, j % n);
            let copy = entries[j].clone();
            entries.insert(i, copy);
            // A copy of the very entry it precedes is indistinguishable from
            // it; the duplicate shows one position later.
            if i == j { i + 1 } else { i }
        }
    };
    let raw: Vec<Vec<u8>> = entries.iter().map(|e| codec::encode(e).unwrap()).collect();
    std::fs::write(&path, dxmesh_node::audit::log::frame_entries(&raw)).unwrap();
    (dir, expect as u64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn any_single_entry_change_deletion_reordering_or_insertion_is_named(
        m in prop_oneof![
            any::<usize>().prop_map(Mutation::Change),
            any::<usize>().prop_map(Mutation::Delete),
            any::<usize>().prop_map(Mutation::Swap),
            (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Insert(i, j)),
        ]
    ) {
        let sh = shared();
        let n = verify(std::slice::from_ref(&sh.provider), &sh.anchor).bundles.values().next().unwrap().entries as usize;
        let (dir, expect) = mutate(&sh.provider, &m, n);
        let r = verify(&[dir], &sh.anchor);
        prop_assert!(!r.ok(), "{m:?} went unnoticed");
        let first = r.failures.iter().filter_map(|f| f.entry).min();
        if matches!(m, Mutation::Change(i) if i % n == n - 1) {
            // The last entry has no successor to vouch for it: it is caught
            // by the checkpoint that covers it, which names its batch.
            prop_assert!(first.is_some_and(|f| f <= expect), "{:?}: {}", m, r.render());
        } else {
            prop_assert_eq!(first, Some(expect), "{:?}: {}", m, r.render());
        }
    }
}

#[test]
fn a_node_that_rewrites_its_log_is_caught_by_its_witness() {
    let (mut s, _) = setup(BIN, 200, &registry_terms(2, 10));
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    // Wait until the comparator has witnessed the provider's log.
    let witnessed = |s: &Setup| {
        s.mesh.dx.run(
            s.mesh.path(),
            &["audit", "alerts", "--dir", s.cmp.dir.to_str().unwrap()],
        )
    };
    s.pps.wait_witnessed(&s.cmp);
    assert!(String::from_utf8_lossy(&witnessed(&s).stdout).contains("no security alerts"));
    // The provider's operator rebuilds a different history on disk.
    let old = std::mem::replace(
        &mut s.pps,
        dxmesh_tests::NodeProc::placeholder(&s.mesh.dx, &s.ps),
    );
    assert!(old.stop());
    // With the database in hand, as an operator has it: both audit tables go.
    let db = redb::Database::open(s.ps.dir.join("data/state.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    for table in ["audit_entries", "audit_checkpoints"] {
        let def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new(table);
        assert!(tx.delete_table(def).unwrap(), "{table} existed");
    }
    tx.commit().unwrap();
    drop(db);
    s.restart_provider(&[]);
    // At the next contact the comparator refuses to cosign and keeps both checkpoints.
    let start = std::time::Instant::now();
    loop {
        let out = String::from_utf8_lossy(&witnessed(&s).stdout).into_owned();
        if out.contains("SECURITY ALERT") {
            assert!(out.contains(&format!("dxmesh/{}", s.ps.peer_id)), "{out}");
            assert!(
                out.contains("\"earlier\"") && out.contains("\"later\""),
                "{out}"
            );
            assert!(
                out.contains("shrank") || out.contains("different roots") || out.contains("fails"),
                "{out}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no alert: {out}\n{}",
            s.pcmp.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // An officer holding the comparator's bundle sees the rewrite too.
    let bc = s.mesh.path().join("bc");
    let bp = s.mesh.path().join("bp");
    s.pcmp
        .cli(&["audit", "export", "--out", bc.to_str().unwrap()]);
    s.pps
        .cli(&["audit", "export", "--out", bp.to_str().unwrap()]);
    let r = verify(&[bp, bc], &anchor_of(&s));
    assert!(!r.ok());
    assert!(
        r.render().contains("fork evidence") || r.render().contains("rewritten"),
        "{}",
        r.render()
    );
}

#[test]
fn a_pull_outside_its_window_in_a_signed_log_is_flagged() {
    // Two-day epochs from today, pulls allowed on the first day only.
    let terms = registry_terms(2, 10)
        .replacen("period = \"daily\"", "period = \"P2D\"", 1)
        .replacen(
            &format!("anchor = \"{}\"", dxmesh_tests::day(-1)),
            &format!("anchor = \"{}\"", dxmesh_tests::day(0)),
            1,
        );
    assert!(terms.contains("P2D"));
    let (mut s, _) = setup(BIN, 200, &terms);
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    // Someone with the provider's key writes a pull, dated on the epoch's
    // second day (outside the window), into its log and signs it.
    let old = std::mem::replace(
        &mut s.pps,
        dxmesh_tests::NodeProc::placeholder(&s.mesh.dx, &s.ps),
    );
    assert!(old.stop());
    let store = dxmesh_node::base::store::Store::open(&s.ps.dir.join("data")).unwrap();
    let identity = dxmesh_node::base::keyfile::read_identity(&s.ps.dir.join("node.key")).unwrap();
    let mut log = dxmesh_node::audit::log::AuditLog::open(&store, &identity).unwrap();
    let consumer = dxmesh_node::trust::roster_file::key_of_peer_id(&s.cmp.peer_id).unwrap();
    let agreement: [u8; 32] = hex::decode(&s.agreement).unwrap().try_into().unwrap();
    let at =
        dxmesh_protocol::time::Timestamp::parse(&format!("{}T12:00:00Z", dxmesh_tests::day(1)))
            .unwrap();
    let forged = log
        .append(
            &store,
            at,
            Event::PullServed {
                agreement,
                epoch: 0,
                consumer,
                pull_id: [7; 16],
                new_pull: true,
                manifest: [0; 32],
            },
        )
        .unwrap();
    log.seal(&store, &identity).unwrap();
    drop(store);
    s.restart_provider(&[]);
    let bp = s.mesh.path().join("bp");
    s.pps
        .cli(&["audit", "export", "--out", bp.to_str().unwrap()]);
    let r = verify(std::slice::from_ref(&bp), &anchor_of(&s));
    let f = r
        .failures
        .iter()
        .find(|f| f.entry == Some(forged))
        .unwrap_or_else(|| panic!("{}", r.render()));
    assert!(
        f.problem
            .contains("pull outside the pull window of epoch 0"),
        "{f:?}"
    );
    let out = s.mesh.audit_verify(&bp);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("entry {forged}")));
}

/// A hostile comparator makes an anchor of its own, re-signs its roster
/// chain with it, puts its public key in its bundle and re-signs the
/// bundle's index: a consistent bundle, if the anchor were taken from it.
/// `audit verify` and `audit recompute`, given the security officer's
/// anchor, refuse it and say why.
#[test]
fn a_bundle_that_brings_its_own_anchor_and_roster_is_refused() {
    use dxmesh_protocol::roster::Roster;
    use dxmesh_protocol::signed::Signed;
    let sh = shared();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&sh.comparator, dir.path());
    let fake = dxmesh_protocol::identity::Identity::from_seed([0x66; 32]).unwrap();
    std::fs::write(dir.path().join("anchor.pub.pem"), fake.public().to_pem()).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("roster"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut previous = None;
    for f in files {
        let signed: Signed<Roster> = codec::decode(&std::fs::read(&f).unwrap()).unwrap();
        let mut roster: Roster = codec::decode(signed.body()).unwrap();
        roster.previous = previous;
        let forged = Signed::sign(&fake, &roster).unwrap();
        previous = Some(forged.digest());
        std::fs::write(&f, codec::encode(&forged).unwrap()).unwrap();
    }
    resign_index(dir.path(), &sh.comparator_key);
    // Trusting the bundle's own anchor, it would pass.
    let trusting = verify(&[dir.path().to_path_buf()], &fake.public());
    assert!(trusting.ok(), "{}", trusting.render());
    // With the security officer's anchor it does not.
    let r = verify(&[dir.path().to_path_buf()], &sh.anchor);
    let text = r.render();
    assert!(!r.ok(), "{text}");
    assert!(text.contains("is not the trust anchor given"), "{text}");
    assert!(text.contains("roster:"), "{text}");
    assert!(text.contains("the node is in no roster version"), "{text}");
    let rc =
        dxmesh_node::audit::recompute::recompute(dir.path(), dir.path(), &[], &sh.anchor).unwrap();
    assert!(!rc.ok());
    let text = rc.render();
    assert!(
        text.contains("BUNDLE: the bundle's anchor.pub.pem is not the trust anchor given"),
        "{text}"
    );
    assert!(
        text.contains("is in no roster version the anchor signed"),
        "{text}"
    );
}

/// Re-signs the bundle's index over its files as they are now, with `key`.
fn resign_index(dir: &Path, key: &dxmesh_protocol::identity::Identity) {
    use dxmesh_protocol::audit::BundleIndex;
    use dxmesh_protocol::signed::Signed;
    let index_path = dir.join("index.bin");
    let signed: Signed<BundleIndex> = codec::decode(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut index: BundleIndex = codec::decode(signed.body()).unwrap();
    index
        .files
        .retain(|(rel, _)| dir.join(rel.as_str()).exists());
    for (rel, hash) in &mut index.files {
        *hash = dxmesh_protocol::hash::sha256(&std::fs::read(dir.join(rel.as_str())).unwrap());
    }
    let resigned = Signed::sign(key, &index).unwrap();
    std::fs::write(&index_path, codec::encode(&resigned).unwrap()).unwrap();
}

/// The provider rewrites its past with its own key: its
/// `commitment_checked` and `disclosure_served` entries dropped, the rest
/// re-chained, one checkpoint over the new log signed, the cosignatures
/// of the old one removed, the index re-signed. On its own the bundle
/// verifies; with the comparator's bundle, whose node witnessed the
/// provider's log at a larger size, it fails, showing both signed notes.
#[test]
fn a_node_that_rewrites_its_past_is_caught_with_its_witnesses_bundles() {
    use dxmesh_node::audit::log::{frame_entries, unframe_entries};
    use dxmesh_protocol::audit::Checkpoint;
    let sh = shared();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&sh.provider, dir.path());
    let bytes = std::fs::read(dir.path().join("entries.bin")).unwrap();
    let entries: Vec<Entry> = unframe_entries(&bytes)
        .unwrap()
        .into_iter()
        .map(|b| codec::decode(b).unwrap())
        .collect();
    let before = entries.len();
    let mut kept: Vec<Entry> = entries
        .into_iter()
        .filter(|e| {
            !matches!(
                e.event,
                Event::CommitmentChecked { .. } | Event::DisclosureServed { .. }
            )
        })
        .collect();
    assert!(kept.len() < before, "the exchange logged a disclosure");
    let mut leaves = Vec::new();
    let mut prev = [0u8; 32];
    for (i, e) in kept.iter_mut().enumerate() {
        e.seq = i as u64;
        e.prev = prev;
        prev = e.leaf_hash();
        leaves.push(prev);
    }
    let raw: Vec<Vec<u8>> = kept.iter().map(|e| codec::encode(e).unwrap()).collect();
    std::fs::write(dir.path().join("entries.bin"), frame_entries(&raw)).unwrap();
    for sub in ["checkpoints", "cosignatures"] {
        for f in std::fs::read_dir(dir.path().join(sub)).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
    let peer = sh.provider_key.peer_id().to_string();
    let cp = Checkpoint {
        origin: format!("dxmesh/{peer}"),
        size: kept.len() as u64,
        root: dxmesh_protocol::merkle::root(&leaves),
    };
    std::fs::write(
        dir.path().join(format!("checkpoints/{:010}.note", cp.size)),
        cp.sign(&sh.provider_key, &peer),
    )
    .unwrap();
    resign_index(dir.path(), &sh.provider_key);
    let alone = verify(&[dir.path().to_path_buf()], &sh.anchor);
    assert!(alone.ok(), "{}", alone.render());
    let r = verify(
        &[dir.path().to_path_buf(), sh.comparator.clone()],
        &sh.anchor,
    );
    let text = r.render();
    assert!(!r.ok(), "{text}");
    assert!(
        text.contains(&format!("but this bundle's log holds {}", kept.len())),
        "{text}"
    );
    assert!(
        text.contains("--- witnessed by") && text.contains("--- the bundle's newest checkpoint:"),
        "{text}"
    );
}

/// Three imports within a second, and one while the daemon is down, give
/// one `imported` entry each (the durable receipts each import leaves),
/// none twice, and no receipt is left behind.
#[test]
fn every_import_is_logged_however_quickly_they_come() {
    let (mut s, _) = setup(BIN, 50, &registry_terms(2, 10));
    for _ in 0..3 {
        s.mesh.import("ps", "registry", "registry.csv");
    }
    let old = std::mem::replace(
        &mut s.pps,
        dxmesh_tests::NodeProc::placeholder(&s.mesh.dx, &s.ps),
    );
    assert!(old.stop());
    s.mesh.import("ps", "registry", "registry.csv");
    s.restart_provider(&[]);
    let receipts = s.ps.dir.join("data/datasets/registry/imports");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&receipts).map_or(0, |d| d.count()) > 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "receipts left");
        std::thread::sleep(Duration::from_millis(200));
    }
    let generations: Vec<u64> = provider_events(&s, "bundle-imports")
        .into_iter()
        .filter_map(|e| match e {
            Event::Imported {
                dataset,
                generation,
                ..
            } if dataset == "registry" => Some(generation),
            _ => None,
        })
        .collect();
    assert_eq!(generations, vec![1, 2, 3, 4, 5]);
}

/// A comparator asking again and again for a feed that is not published
/// is refused every time (and each refusal shown in `status`), but the
/// provider's log gets one `request_refused` entry for the run, not one per
/// request; the rest are counted into the next entry a minute later.
#[test]
fn a_refusal_asked_again_and_again_is_one_entry_a_minute() {
    let (mut s, _) = setup(BIN, 50, &registry_terms(2, 10));
    for _ in 0..5 {
        let e = s
            .pcmp
            .cli_fails(&["pull", "--agreement", &s.agreement[..12]]);
        assert!(e.contains("[not_published]"), "{e}");
    }
    s.pps
        .wait_for("five refusals", Duration::from_secs(20), |st| {
            st.refusals
                .iter()
                .filter(|r| r.reason.contains("not_published"))
                .count()
                == 5
        });
    let counts: Vec<u64> = provider_events(&s, "bundle-refusals")
        .into_iter()
        .filter_map(|e| match e {
            Event::RequestRefused { refusal, count, .. } if refusal.code() == "not_published" => {
                Some(count)
            }
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![1]);
}

/// The events of the provider's log, from a bundle it exports into `name`.
fn provider_events(s: &Setup, name: &str) -> Vec<Event> {
    let out = s.mesh.path().join(name);
    s.pps
        .cli(&["audit", "export", "--out", out.to_str().unwrap()]);
    let bytes = std::fs::read(out.join("entries.bin")).unwrap();
    dxmesh_node::audit::log::unframe_entries(&bytes)
        .unwrap()
        .into_iter()
        .map(|b| codec::decode::<Entry>(b).unwrap().event)
        .collect()
}
