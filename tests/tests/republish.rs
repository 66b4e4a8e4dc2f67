//! A month where an export arrives late: the epoch's feed was already
//! published from the previous import. The late import is said, never
//! silent; the published feed keeps working (its generation is kept for
//! its disclosures); the operator can republish the epoch, and the
//! comparator then pulls and compares the new feed, both sides logging the
//! supersession.

use dxmesh_tests::{registry_csv, registry_rows, registry_terms, setup};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// The registry job, its result disclosed (ID number and name).
fn job() -> String {
    format!(
        "{}disclose = {{ input = \"registry\", fields = [\"id_number\", \"name\"] }}\n",
        dxmesh_tests::REGISTRY_JOB
    )
}

/// The `uninsured` count (every registry resident in scope) of a compare
/// into `name`.
fn uninsured(s: &dxmesh_tests::Setup, name: &str) -> u64 {
    let summary = s.compare(&job(), name);
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
    // Compared again, against the first comparison: the change lists.
    let jobs = s.mesh.path().join("before.toml");
    let (prev, out) = (s.mesh.path().join("before"), s.mesh.path().join("after"));
    let printed = s.pcmp.cli(&[
        "compare",
        "--jobs",
        jobs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--previous",
        prev.to_str().unwrap(),
    ]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let after = summary["results"]["uninsured"]["count"].as_u64().unwrap();
    assert_eq!(after, more.iter().filter(|r| r.in_scope()).count() as u64);
    let changes = &summary["changes"]["results"]["uninsured"];
    assert_eq!(changes["new"].as_u64(), Some(after - before), "{summary}");
    assert_eq!(
        (changes["left"].as_u64(), changes["stayed"].as_u64()),
        (Some(0), Some(before))
    );
    assert!(printed.contains("changes since"), "{printed}");
    let list = std::fs::read_to_string(out.join("changes/uninsured.csv")).unwrap();
    let new: Vec<&str> = list.lines().filter(|l| l.contains(",new,")).collect();
    assert_eq!(new.len() as u64, after - before);
    for line in new {
        let id = line.split(',').next().unwrap();
        let row = more.iter().find(|r| r.id == id).expect("a new resident");
        assert!(!rows.iter().any(|r| r.id == id), "{id} was there before");
        assert!(row.in_scope());
    }
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

#[test]
fn a_republished_epoch_with_no_pull_left_keeps_the_feed_held() {
    // One pull an epoch, used by the first pull.
    let (s, rows) = setup(BIN, 300, &registry_terms(1, 1000));
    s.pps.cli(&["publish"]);
    let before = uninsured(&s, "before");
    std::fs::write(
        s.mesh.path().join("late.csv"),
        registry_csv(&registry_rows(360)),
    )
    .unwrap();
    s.mesh.import("ps", "registry", "late.csv");
    s.pps
        .cli(&["publish", "--agreement", &s.agreement[..12], "--republish"]);
    // The comparator cannot pull the new feed: it keeps and uses the one held.
    let again = uninsured(&s, "again");
    assert_eq!(again, before);
    assert_eq!(before, rows.iter().filter(|r| r.in_scope()).count() as u64);
    let held = s.cmp.dir.join("data/pulls").join(&s.agreement).join("1");
    assert!(
        held.join("complete").exists(),
        "the feed held is not erased"
    );
    assert!(
        s.pcmp.log_text().contains("every pull of it is used"),
        "{}",
        s.pcmp.log_text()
    );
}
