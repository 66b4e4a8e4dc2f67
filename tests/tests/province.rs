//! A whole province on real nodes (issues 6 and 8): `dxmesh demo` runs the
//! seven-node mesh on a generated province; its result lists must equal the
//! generator's expected results exactly, and also what a naive in-memory
//! join of the raw department CSVs computes; no process may be left behind.

use dxmesh_protocol::id::normalise;
use dxmesh_protocol::token::normalise_attr;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

fn run_demo(dir: &Path, residents: &str, seed: &str) -> String {
    dxmesh_tests::run_demo(BIN, dir, &["--residents", residents, "--seed", seed])
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && cmd.contains(" run ") {
                found.push(cmd);
            }
        }
    }
    found
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    let header = v.remove(0);
    v.sort();
    v.insert(0, header);
    v
}

#[test]
fn the_demo_finds_exactly_the_expected_results_and_leaves_no_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let stdout = run_demo(&dir, "20000", "7");
    assert!(stdout.contains("results match"), "{stdout}");
    assert!(
        stdout.contains("audit: every signature, log, pull and disclosure verified"),
        "{stdout}"
    );
    assert!(stdout.contains("uploaded to the ministry:"), "{stdout}");
    // The analysts' files: UTF-8 with a byte-order mark, and the workbook.
    let analyst = std::fs::read(dir.join("analyst/uninsured.csv")).unwrap();
    assert!(analyst.starts_with(b"\xEF\xBB\xBFreason,region,id_number"));
    assert!(dir.join("analyst/results.xlsx").exists());
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        report.contains("<svg")
            && report.contains("Data quality per department")
            && !report.contains("<script")
    );
    // What a reader looks for: regions by name, results in words, the two
    // uninsured commitments told apart, every agreement (the upload too),
    // the timing as a table.
    for needle in [
        "广州市</text>",
        "海珠区</text>",
        "Not insured <code>uninsured</code>",
        "Deceased but still insured",
        "uninsured_candidates (candidates sent to the ministry) of epoch 0",
        "uninsured (final list, after the ministry's answers) of epoch 0",
        "<td>verified_registrations</td><td>comparator (…",
        "<td>pulling the feeds</td>",
    ] {
        assert!(report.contains(needle), "report.html lacks {needle:?}");
    }
    // As a browser shows it (target/screenshots/report.png).
    if let Some(chromium) = dxmesh_tests::browser::chromium() {
        let url = format!("file://{}", dir.join("report.html").display());
        let dom = dxmesh_tests::browser::render(chromium, &url, "report");
        for words in [
            "海珠区",
            "Not insured",
            "Timing of the comparison",
            "verified_registrations",
        ] {
            assert!(dom.contains(words), "the rendered report lacks {words:?}");
        }
        assert!(!dxmesh_tests::browser::has_byte_array(&dom));
    }
    for dept in [
        "public_security",
        "civil_affairs",
        "health",
        "disabled_federation",
        "hr",
        "comparator",
        "ministry",
    ] {
        assert!(
            dir.join("audit").join(dept).join("entries.bin").exists(),
            "no audit bundle for {dept}"
        );
    }
    for f in [
        "uninsured.csv",
        "deceased_insured.csv",
        "disabled_uninsured.csv",
        "name_conflicts.csv",
        "coverage.csv",
    ] {
        let have = lines(&dir.join(f));
        let want = lines(&dir.join("input/expected").join(f));
        assert_eq!(have, want, "{f} differs from the expected result");
        assert!(have.len() > 1 || f == "name_conflicts.csv", "{f} is empty");
    }
    assert_eq!(
        lines(&dir.join("uninsured.csv"))[0],
        "id_number,name,address"
    );
    // deceased_insured is computed over pension rows (`insured_pension`'s
    // `where`): HR discloses those rows only, although some of these
    // persons have other insurance still active.
    let pension = |t: &str| t == "enterprise_pension" || t == "resident_pension";
    let deceased_insured = read_csv(&dir.join("deceased_insured.csv"));
    assert!(
        deceased_insured
            .iter()
            .all(|r| pension(&r["insurance_type"])),
        "a non-pension row was disclosed for deceased_insured"
    );
    let ids: BTreeSet<&str> = deceased_insured
        .iter()
        .map(|r| r["id_number"].as_str())
        .collect();
    let today = dxmesh_protocol::date::Date::new(2100, 1, 1).unwrap();
    let other_active = read_csv(&dir.join("input/hr/insured.csv"))
        .iter()
        .filter(|r| r["status"] == "active" && !pension(&r["insurance_type"]))
        .filter_map(|r| normalise(&r["id_number"], today).ok())
        .filter(|id| ids.contains(id.as_str()))
        .count();
    assert!(
        other_active > 0,
        "no deceased insured person has another active row: the scope is not exercised"
    );
    let summary_text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(
        summary_text.contains("\"persons_with_several_rows\""),
        "{summary_text}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["ministry"]["removed_other_province"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        dir.join("providers/public_security/quarantine.csv")
            .exists()
    );
    let left = processes_mentioning(dir.to_str().unwrap());
    assert!(left.is_empty(), "processes left behind: {left:?}");
    a_final_result_without_the_ministrys_answer_does_not_recompute(&dir);
}

/// The comparator re-signs its final `uninsured` result as if the
/// ministry had found nobody insured elsewhere (its `other_province`
/// empty), once naming no ministry answer and once naming the answers it
/// got, and puts both in its evidence: recompute, given the ministry's
/// bundle, names the answer left out, the set that is not what the
/// ministry's answers give, and the results that do not recompute.
fn a_final_result_without_the_ministrys_answer_does_not_recompute(dir: &Path) {
    use dxmesh_protocol::commitment::{CommittedSet, ResultCommitment, set_root};
    let data = dir.join("nodes/comparator/data");
    let kept = dxmesh_node::compare::commit::Committed::load(&data, 0, "uninsured")
        .unwrap()
        .unwrap();
    let key =
        dxmesh_node::base::keyfile::read_identity(&dir.join("nodes/comparator/node.key")).unwrap();
    for drop_answers in [true, false] {
        let mut statement: ResultCommitment =
            dxmesh_protocol::codec::decode(kept.signed.body()).unwrap();
        let basis = statement
            .ministry
            .as_mut()
            .expect("the final result names its basis");
        assert!(!basis.answers.is_empty());
        if drop_answers {
            basis.answers.clear();
        }
        let (count, root) = set_root(&[]);
        statement.sets = vec![CommittedSet {
            name: "other_province".into(),
            count,
            root,
        }];
        let forged = dxmesh_protocol::signed::Signed::sign(&key, &statement).unwrap();
        let file = dir.join(format!(
            "audit/comparator/commitments/0-{}.commitment",
            dxmesh_protocol::hex(&forged.digest())
        ));
        std::fs::write(&file, dxmesh_protocol::codec::encode(&forged).unwrap()).unwrap();
    }
    let mut args: Vec<String> = [
        "audit",
        "recompute",
        "--bundle",
        "audit/comparator",
        "--anchor",
        "anchor.pub.pem",
        "--feeds",
    ]
    .map(String::from)
    .to_vec();
    args.push(data.display().to_string());
    for b in [
        "public_security",
        "civil_affairs",
        "health",
        "disabled_federation",
        "hr",
        "ministry",
    ] {
        args.extend(["--provider".to_string(), format!("audit/{b}")]);
    }
    let out = std::process::Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for needle in [
        "an answer the basis leaves out",
        "its other_province set is not what the ministry's answers give",
        "the committed root is not the root of the recomputed result",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn a_naive_join_of_the_raw_exports_gives_the_same_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    run_demo(&dir, "6000", "11");
    let input = dir.join("input");
    // The cycle's reference date (not the clock now: a run may cross midnight).
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let today =
        dxmesh_protocol::date::Date::parse(summary["reference_date"].as_str().unwrap()).unwrap();
    let norm = |raw: &str| normalise(raw, today).ok().map(|id| id.as_str().to_string());
    let pension = |t: &str| t == "enterprise_pension" || t == "resident_pension";
    // The central-copy way: load everything, join in memory.
    let mut scope: BTreeSet<String> = BTreeSet::new();
    let mut scope_names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut scope_regions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in read_csv(&input.join("public_security/registry.csv")) {
        let Some(id) = norm(&r["id_number"]) else {
            continue;
        };
        let birth = normalise(&id, today).unwrap().birth_date();
        if r["status"] == "active" && birth.age_on(today) >= 16 {
            scope.insert(id.clone());
            scope_names
                .entry(id.clone())
                .or_default()
                .insert(normalise_attr(&r["name"]));
            scope_regions
                .entry(id)
                .or_default()
                .insert(r["region_code"].clone());
        }
    }
    let mut deceased = BTreeSet::new();
    for f in ["civil_affairs/deaths.csv", "health/deaths.csv"] {
        deceased.extend(
            read_csv(&input.join(f))
                .iter()
                .filter_map(|r| norm(&r["id_number"])),
        );
    }
    let mut insured_pension = BTreeSet::new();
    let mut hr_names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in read_csv(&input.join("hr/insured.csv")) {
        let Some(id) = norm(&r["id_number"]) else {
            continue;
        };
        if r["status"] == "active" {
            hr_names
                .entry(id.clone())
                .or_default()
                .insert(normalise_attr(&r["name"]));
            if pension(&r["insurance_type"]) {
                insured_pension.insert(id);
            }
        }
    }
    let other: BTreeSet<String> = read_csv(&input.join("ministry/national.csv"))
        .iter()
        .filter(|r| r["province_code"] != "44" && pension(&r["insurance_type"]))
        .filter_map(|r| norm(&r["id_number"]))
        .collect();
    let disabled: BTreeSet<String> = read_csv(&input.join("disabled_federation/register.csv"))
        .iter()
        .filter_map(|r| norm(&r["id_number"]))
        .collect();
    let uninsured: BTreeSet<String> = scope
        .iter()
        .filter(|id| {
            !insured_pension.contains(*id) && !deceased.contains(*id) && !other.contains(*id)
        })
        .cloned()
        .collect();
    let deceased_insured: BTreeSet<String> =
        insured_pension.intersection(&deceased).cloned().collect();
    let disabled_uninsured: BTreeSet<String> = uninsured.intersection(&disabled).cloned().collect();
    let name_conflicts: BTreeSet<String> = scope
        .iter()
        .filter(|id| {
            hr_names
                .get(*id)
                .is_some_and(|h| Some(h) != scope_names.get(*id))
        })
        .cloned()
        .collect();
    let mut coverage: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for id in scope.iter().filter(|id| !deceased.contains(*id)) {
        for region in &scope_regions[id] {
            let e = coverage.entry(region.clone()).or_default();
            e.0 += 1;
            e.1 += u64::from(!uninsured.contains(id));
        }
    }
    // dxmesh's answers.
    let ids = |f: &str| -> BTreeSet<String> {
        read_csv(&dir.join(f))
            .iter()
            .map(|r| r["id_number"].clone())
            .collect()
    };
    assert_eq!(ids("uninsured.csv"), uninsured);
    assert_eq!(ids("deceased_insured.csv"), deceased_insured);
    assert_eq!(ids("disabled_uninsured.csv"), disabled_uninsured);
    assert_eq!(ids("name_conflicts.csv"), name_conflicts);
    let have: BTreeMap<String, (u64, u64)> = read_csv(&dir.join("coverage.csv"))
        .iter()
        .map(|r| {
            (
                r["region_code"].clone(),
                (
                    r["eligible"].parse().unwrap(),
                    r["covered"].parse().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(have, coverage);
    assert!(!uninsured.is_empty() && !deceased_insured.is_empty());
}
