//! Month after month on one mesh: `dxmesh demo --cycles 3` runs three
//! consecutive cycles on the same seven nodes (their shared clock moved a
//! period each time, each department importing its next month's export),
//! and every cycle's results equal that month's expected lists; each cycle
//! after the first lists who is new, who left and who stayed, and the
//! report shows the cycles side by side.

use std::collections::BTreeSet;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

/// The first column of a CSV file's rows.
fn ids(path: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn three_cycles_on_one_mesh_match_their_expected_results_and_list_the_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let args = ["--residents", "5000", "--seed", "3", "--cycles", "3"];
    let stdout = dxmesh_tests::run_demo(BIN, &dir, &args);
    assert!(stdout.contains("results match"), "{stdout}");
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        report.contains("Cycle by cycle"),
        "the report shows the trend"
    );
    for k in [2, 3] {
        assert!(
            stdout.contains(&format!("cycle {k}: every result matches expected/")),
            "{stdout}"
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("cycle-{k}/summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["epoch"], k - 1, "a new epoch each cycle");
        // The change list is the difference of the two months' lists.
        let before = match k {
            2 => dir.join("uninsured.csv"),
            _ => dir.join(format!("cycle-{}/uninsured.csv", k - 1)),
        };
        let (was, is) = (
            ids(&before),
            ids(&dir.join(format!("cycle-{k}/uninsured.csv"))),
        );
        let changes = &summary["changes"]["results"]["uninsured"];
        assert_eq!(changes["new"], is.difference(&was).count());
        assert_eq!(changes["left"], was.difference(&is).count());
        assert_eq!(changes["stayed"], is.intersection(&was).count());
        assert!(
            changes["new"].as_u64().unwrap() + changes["left"].as_u64().unwrap() > 0,
            "a month changes something: {changes}"
        );
        // Each cycle uploads its verified findings to the ministry.
        assert!(
            stdout.contains(&format!("verified records of cycle {k}")),
            "{stdout}"
        );
    }
    // Every cycle's figures: its steps timed, its results exact, each
    // node's disk and audit entries (growing: each cycle is logged).
    let figures: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cycles.json")).unwrap()).unwrap();
    assert_eq!(figures.len(), 3);
    let entries =
        |c: &serde_json::Value| c["nodes"]["comparator"]["audit_entries"].as_u64().unwrap();
    for (k, c) in figures.iter().enumerate() {
        assert_eq!(c["cycle"], k + 1);
        assert_eq!(c["exact"], true, "{c}");
        for step in ["import", "publish", "compare", "upload"] {
            assert!(c["steps"][step].as_f64().unwrap() > 0.0, "{step} in {c}");
        }
        assert!(c["nodes"]["hr"]["disk_bytes"].as_u64().unwrap() > 0);
        if k > 0 {
            assert!(c["steps"]["synth"].as_f64().unwrap() > 0.0);
            assert!(entries(c) > entries(&figures[k - 1]), "{c}");
        }
        assert!(stdout.contains(&format!("cycle {}: ", k + 1)), "{stdout}");
    }
}
