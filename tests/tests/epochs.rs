//! The epoch as operators see it: `status`, `agreement list/show` and the
//! console name each agreement's current epoch, its reference date and
//! window, and the pulls used, counted alike at the provider and the
//! consumer; a comparison refused its feeds leaves no output folder.

use dxmesh_tests::{registry_terms, setup};

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
}
