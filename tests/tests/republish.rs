//! A month where an export arrives late: the epoch's feed was already
//! published from the previous import. The late import is said, never
//! silent; the published feed keeps working (its generation is kept for
//! its disclosures); the operator can republish the epoch, and the
//! comparator then pulls and compares the new feed, both sides logging the
//! supersession.

use dxmesh_tests::{registry_csv, registry_rows, registry_terms, setup};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// The `uninsured` count (every registry resident in scope) of a compare
/// into `name`.
fn uninsured(s: &dxmesh_tests::Setup, name: &str) -> u64 {
    let summary = s.compare(dxmesh_tests::REGISTRY_JOB, name);
    summary["results"]["uninsured"]["count"].as_u64().unwrap()
}

fn manifest_of(out: &str) -> String {
    out.split("manifest ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no manifest in {out}"))
        .to_string()
}

#[test]
fn a_late_import_is_said_kept_apart_and_republished_and_the_comparator_uses_the_new_feed() {
    let (s, rows) = setup(BIN, 300, &registry_terms(3, 1000));
    let first = s.pps.cli(&["publish"]);
    let before = uninsured(&s, "before");
    assert_eq!(before, rows.iter().filter(|r| r.in_scope()).count() as u64);

    // The late export: 60 more residents.
    let more = registry_rows(360);
    std::fs::write(s.mesh.path().join("late.csv"), registry_csv(&more)).unwrap();
    let imported = s.mesh.import("ps", "registry", "late.csv");
    assert!(
        imported.contains(&format!(
            "note: the feed of epoch 1 of agreement {} was published from generation 1",
            &s.agreement[..16]
        )) && imported.contains("--republish"),
        "the late import says what to do: {imported}"
    );
    let again = s.pps.cli(&["publish"]);
    assert_eq!(
        manifest_of(&again),
        manifest_of(&first),
        "not rebuilt by itself"
    );
    assert!(
        again.contains("has been imported since (generation 2)") && again.contains("--republish"),
        "a stale feed is not returned silently: {again}"
    );
    // The published feed still discloses: its generation is kept.
    let kept = s.ps.dir.join("data/datasets/registry/gen-1");
    assert!(kept.is_dir(), "the generation the feed reads is kept");
    let disclosed = s.pcmp.cli(&[
        "disclose",
        "--agreement",
        &s.agreement[..12],
        "--kind",
        "uninsured",
        "--fields",
        "id_number,name",
        "--first",
        "3",
    ]);
    assert!(disclosed.contains("disclosed 3 records"), "{disclosed}");

    let republished = s
        .pps
        .cli(&["publish", "--agreement", &s.agreement[..12], "--republish"]);
    assert_ne!(manifest_of(&republished), manifest_of(&first));
    assert!(
        republished.contains(&format!("supersedes manifest {}", manifest_of(&first))),
        "{republished}"
    );
    let after = uninsured(&s, "after");
    assert_eq!(after, more.iter().filter(|r| r.in_scope()).count() as u64);
    assert!(after > before);
    // Both sides logged the supersession; the new pull counted.
    for (node, name) in [(&s.pps, "ps"), (&s.pcmp, "cmp")] {
        let bundle = s.mesh.path().join(format!("bundle-{name}"));
        node.cli(&["audit", "export", "--out", bundle.to_str().unwrap()]);
        let entries = std::fs::read_to_string(bundle.join("entries.json")).unwrap();
        let superseded = entries
            .lines()
            .filter(|l| l.contains("FeedSuperseded"))
            .count();
        assert_eq!(superseded, 1, "{name}: {entries}");
    }
    let status: serde_json::Value =
        serde_json::from_str(&s.pcmp.cli(&["status", "--json"])).unwrap();
    assert_eq!(status["epochs"][0]["epoch"]["pulls"], 2, "{status}");
    // The next import no longer needs generation 1.
    s.mesh.import("ps", "registry", "late.csv");
    assert!(
        !kept.exists(),
        "a generation no feed pins goes with the next import"
    );
}
