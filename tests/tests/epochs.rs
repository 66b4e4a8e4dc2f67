//! The epoch as operators see it: `status`, `agreement list/show` and the
//! console name each agreement's current epoch, its reference date and
//! window, and the pulls used, counted alike at the provider and the
//! consumer; a comparison refused its feeds leaves no output folder.

use dxmesh_tests::{registry_terms, setup, short_retention_terms};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// The `epochs` line of `status --json` for the agreement `id`.
fn epoch_of(status: &serde_json::Value, id: &str) -> serde_json::Value {
    status["epochs"]
        .as_array()
        .expect("epochs")
        .iter()
        .find(|e| e["agreement"] == id)
        .unwrap_or_else(|| panic!("no epoch for {id} in {status}"))
        .clone()
}

#[test]
fn status_and_agreements_show_the_epoch_and_the_pulls_used_on_both_sides() {
    let (s, _) = setup(BIN, 300, &registry_terms(3, 1000));
    let status = |node: &dxmesh_tests::NodeProc| -> serde_json::Value {
        serde_json::from_str(&node.cli(&["status", "--json"])).unwrap()
    };
    let before = epoch_of(&status(&s.pcmp), &s.agreement);
    assert_eq!(before["epoch"]["epoch"], 1, "{before}");
    assert_eq!(before["side"], "consumer");
    assert_eq!(
        (
            before["epoch"]["pulls"].as_u64(),
            before["epoch"]["max_pulls"].as_u64()
        ),
        (Some(0), Some(3))
    );
    assert!(
        before["epoch"]["reference_date"]
            .as_str()
            .is_some_and(|d| d.len() == 10),
        "{before}"
    );
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    for (node, side) in [(&s.pps, "provider"), (&s.pcmp, "consumer")] {
        let e = epoch_of(&status(node), &s.agreement);
        assert_eq!(e["side"], side);
        assert_eq!(e["epoch"]["pulls"], 1, "{side}: {e}");
    }
    let text = s.pcmp.cli(&["status"]);
    assert!(
        text.contains("current epochs:")
            && text.contains("epoch 1 (reference date ")
            && text.contains("pulls 1/3"),
        "{text}"
    );
    let shown = s.pps.cli(&["agreement", "show", &s.agreement[..12]]);
    assert!(
        shown.contains("now:       epoch 1") && shown.contains("pulls 1/3"),
        "{shown}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&s.pcmp.cli(&["agreement", "list", "--json"])).unwrap();
    let a = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agreement"] == s.agreement.as_str())
        .expect("the agreement is listed");
    assert_eq!(a["epoch"]["pulls"], 1, "{a}");
}

#[test]
fn a_comparison_refused_its_feeds_leaves_no_output_folder() {
    // A one-second window after midnight: now is outside it.
    let terms = registry_terms(2, 10).replacen("window = \"P1D\"", "window = \"PT1S\"", 1);
    let (s, _) = setup(BIN, 200, &terms);
    s.pps.cli(&["publish"]);
    let jobs = s.mesh.path().join("jobs.toml");
    std::fs::write(&jobs, dxmesh_tests::REGISTRY_JOB).unwrap();
    let out = s.mesh.path().join("refused");
    let e = s.pcmp.cli_fails(&[
        "compare",
        "--jobs",
        jobs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("[outside_window]"), "{e}");
    assert!(!out.exists(), "a refused comparison left {}", out.display());
    // A `--previous` that is not a comparison's output is refused before
    // anything is asked of the node, naming it, and leaves nothing.
    let not_one = s.mesh.path().join("not-a-comparison");
    std::fs::create_dir_all(&not_one).unwrap();
    let e = s.pcmp.cli_fails(&[
        "compare",
        "--jobs",
        jobs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--previous",
        not_one.to_str().unwrap(),
    ]);
    assert!(
        e.contains(&format!(
            "--previous {}: not the output of a comparison (it has no summary.json)",
            not_one.display()
        )),
        "{e}"
    );
    assert!(!out.exists(), "a refused comparison left {}", out.display());
}

/// Copies the files (not the folders) of `from` into `to`.
fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Waits until `path` is gone (a daemon tick erases it).
fn wait_gone(path: &std::path::Path, what: &str) {
    let t = std::time::Instant::now();
    while path.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "{what} is still there: {}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Lines of a node's exported audit log that hold `event`.
fn logged(
    s: &dxmesh_tests::Setup,
    node: &dxmesh_tests::NodeProc,
    name: &str,
    event: &str,
) -> usize {
    let bundle = s.mesh.path().join(format!("bundle-{name}"));
    let _ = std::fs::remove_dir_all(&bundle);
    node.cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
    std::fs::read_to_string(bundle.join("entries.json"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(event))
        .count()
}

#[test]
fn published_feeds_and_commitment_tokens_go_when_retention_ends() {
    // Epochs every two days from ten days ago (epoch 5 starts today), each
    // kept three days after its start.
    let terms = short_retention_terms();
    let (s, _) = setup(BIN, 300, &terms);
    s.pps.cli(&["publish"]);
    s.pcmp.cli(&["pull", "--agreement", &s.agreement[..12]]);
    s.commit_results();
    // Epoch 1 (kept until five days ago) as if published, pulled and
    // compared then.
    let feeds = s.ps.dir.join("data/feeds").join(&s.agreement);
    let pulls = s.cmp.dir.join("data/pulls").join(&s.agreement);
    let commitments = s.cmp.dir.join("data/commitments");
    copy_files(&feeds.join("5"), &feeds.join("1"));
    copy_files(&pulls.join("5"), &pulls.join("1"));
    copy_files(&commitments.join("5"), &commitments.join("1"));
    assert!(commitments.join("1/uninsured.tokens").exists());

    wait_gone(&feeds.join("1"), "the provider's expired feed");
    wait_gone(&pulls.join("1"), "the comparator's expired feed");
    wait_gone(
        &commitments.join("1/uninsured.tokens"),
        "the expired epoch's commitment tokens",
    );
    // The signed evidence stays; the current epoch is untouched.
    let evidence = s.ps.dir.join("data/evidence/feeds").join(&s.agreement);
    assert!(evidence.join("1/manifest.bin").exists());
    assert!(commitments.join("1/uninsured.commitment").exists());
    assert!(feeds.join("5/manifest.bin").exists() && pulls.join("5/complete").exists());
    assert!(commitments.join("5/uninsured.tokens").exists());
    assert_eq!(logged(&s, &s.pps, "ps", "FeedErased"), 1);
    let verified = s.mesh.audit_verify(&s.mesh.path().join("bundle-ps"));
    assert!(
        verified.status.success(),
        "the provider's bundle verifies after the erasure: {}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert_eq!(logged(&s, &s.pcmp, "cmp", "TokensErased"), 1);
}
