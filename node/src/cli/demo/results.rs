//! Steps 8 to 11 of the demo and its end: the providers' quarantine
//! reports, every node's audit bundle verified together offline, the
//! results checked against the generator's `expected/` lists, the
//! analysts' files (`dxmesh results export`), `report.html`, and the
//! closing summary on stdout.

use super::context::{Cx, TOTAL, done, step};
use super::cycle::{Compared, Threads};
use super::options::NODES;
use anyhow::bail;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Step 8: Quarantine reports for each provider.
pub(super) fn quarantine(cx: &Cx<'_>) -> anyhow::Result<()> {
    let out = cx.out;
    let t = step(8, TOTAL, "collecting the providers' quarantine reports");
    for (name, _, data) in NODES {
        if let Some((_, dataset, _)) = data {
            let q = out.join(format!("nodes/{name}/data/datasets/{dataset}"));
            if let Ok(current) = std::fs::read_to_string(q.join("CURRENT")) {
                let src = q.join(format!("gen-{}/quarantine.csv", current.trim()));
                let _ = std::fs::copy(&src, out.join(format!("providers/{name}/quarantine.csv")));
            }
        }
    }
    done(t);
    Ok(())
}

/// Step 9: Audit: every node's evidence bundle, verified together offline;
/// returns whether the verification passed.
pub(super) fn audit(cx: &Cx<'_>) -> anyhow::Result<bool> {
    let (demo, out) = (cx.demo, cx.out);
    let t = step(
        9,
        TOTAL,
        "exporting every node's audit bundle, verifying them together and recomputing the committed results",
    );
    std::thread::sleep(Duration::from_millis(1500)); // let the last checkpoints be witnessed
    let mut bundles = Vec::new();
    for (name, _, _) in NODES {
        let b = format!("audit/{name}");
        demo.dx(&[
            "audit",
            "export",
            "--dir",
            &demo.node_dir(name),
            "--out",
            &b,
        ])?;
        bundles.push(b);
    }
    let mut verify_args = vec![
        "audit",
        "verify",
        bundles[5].as_str(),
        "--anchor",
        "anchor.pub.pem",
    ];
    for b in bundles.iter().filter(|b| !b.ends_with("comparator")) {
        verify_args.push("--bundle");
        verify_args.push(b);
    }
    verify_args.extend(["--json", "audit/report.json"]);
    let audit = Command::new(&demo.exe)
        .env(
            crate::base::clock::CLOCK_FILE_ENV,
            demo.out.join(super::process::CLOCK),
        )
        .args(&verify_args)
        .current_dir(out)
        .env("RUST_LOG", "warn")
        .output()?;
    std::fs::write(out.join("audit/report.txt"), &audit.stdout)?;
    let feeds = format!("{}/data", demo.node_dir("comparator"));
    let mut recompute_args = vec![
        "audit",
        "recompute",
        "--bundle",
        bundles[5].as_str(),
        "--anchor",
        "anchor.pub.pem",
        "--feeds",
        feeds.as_str(),
        "--json",
        "audit/recompute.json",
    ];
    for b in bundles.iter().filter(|b| !b.ends_with("comparator")) {
        recompute_args.push("--provider");
        recompute_args.push(b);
    }
    let recompute = Command::new(&demo.exe)
        .env(
            crate::base::clock::CLOCK_FILE_ENV,
            demo.out.join(super::process::CLOCK),
        )
        .args(&recompute_args)
        .current_dir(out)
        .env("RUST_LOG", "warn")
        .output()?;
    std::fs::write(out.join("audit/recompute.txt"), &recompute.stdout)?;
    let audit_ok = audit.status.success() && recompute.status.success();
    done(t);
    Ok(audit_ok)
}

/// Step 10: Check against `expected_dir`: whether every result list matches
/// (None without one).
pub(super) fn check(cx: &Cx<'_>, expected_dir: &Path) -> Option<bool> {
    let t = step(10, TOTAL, "checking the results");
    let verdict = matches_expected(cx, cx.out, expected_dir);
    done(t);
    verdict
}

/// Whether the compare output in `out` holds exactly the expected lists in
/// `expected_dir` (of the results the job computes); none without them.
pub(super) fn matches_expected(cx: &Cx<'_>, out: &Path, expected_dir: &Path) -> Option<bool> {
    if expected_dir.exists() {
        let mut mismatches = Vec::new();
        // The expected lists of the results the job computes.
        let job: Option<crate::compare::jobs::JobFile> = toml::from_str(cx.opts.job_text()).ok();
        let computes = |f: &str| {
            job.as_ref().is_some_and(|j| match f.strip_suffix(".csv") {
                Some("coverage") => j.coverage.is_some(),
                Some(name) => j.results.contains_key(name),
                None => false,
            })
        };
        for f in [
            "uninsured.csv",
            "deceased_insured.csv",
            "disabled_uninsured.csv",
            "name_conflicts.csv",
            "coverage.csv",
        ]
        .into_iter()
        .filter(|f| computes(f))
        {
            let want = std::fs::read_to_string(expected_dir.join(f)).unwrap_or_default();
            let have = std::fs::read_to_string(out.join(f)).unwrap_or_default();
            let sorted = |s: &str| {
                let mut v: Vec<String> = s.lines().skip(1).map(String::from).collect();
                v.sort();
                v
            };
            if sorted(&want) != sorted(&have) || want.lines().next() != have.lines().next() {
                mismatches.push(f);
            }
        }
        if mismatches.is_empty() {
            Some(true)
        } else {
            eprintln!("results differ from expected/: {}", mismatches.join(", "));
            Some(false)
        }
    } else {
        None
    }
}

/// Step 11: the analysts' files: `dxmesh results export` of the compare
/// output into `analyst/`, with the workbook.
pub(super) fn analyst(cx: &Cx<'_>) -> anyhow::Result<()> {
    let t = step(
        11,
        TOTAL,
        "writing the analysts' files (CSV and results.xlsx)",
    );
    cx.demo.dx(&[
        "results", "export", "--from", ".", "--out", ANALYST, "--xlsx",
    ])?;
    done(t);
    Ok(())
}

/// Where step 11 writes the analysts' files, in the output directory.
const ANALYST: &str = "analyst";

/// `report.html`, from the comparator's outputs and every node's reports.
pub(super) fn write_report(
    cx: &Cx<'_>,
    agreements: &Threads,
    verdict: Option<bool>,
    later: &[serde_json::Value],
) -> anyhow::Result<()> {
    let out = cx.out;
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json"))?)?;
    let coverage = coverage_rows(out);
    let imports = import_reports(cx);
    let agreement_views = agreement_views(cx, agreements);
    let read_json = |f: &str| -> Option<serde_json::Value> {
        std::fs::read_to_string(out.join(f))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    };
    let mut audit_json = read_json("audit/report.json");
    if let (Some(serde_json::Value::Object(a)), Some(r)) =
        (audit_json.as_mut(), read_json("audit/recompute.json"))
    {
        a.insert("recompute".into(), r);
    }
    let page = crate::sim::report::render(&crate::sim::report::ReportInputs {
        summary: &summary,
        coverage: &coverage,
        imports: &imports,
        agreements: &agreement_views,
        audit: audit_json.as_ref(),
        expected: verdict,
        later,
    });
    std::fs::write(out.join("report.html"), page)?;
    Ok(())
}

/// The comparator's `coverage.csv`: (region, eligible, covered).
fn coverage_rows(out: &Path) -> Vec<(String, u64, u64)> {
    std::fs::read_to_string(out.join("coverage.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((
                it.next()?.to_string(),
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// `dataset show --json` of every node that imports (and the comparator).
fn import_reports(cx: &Cx<'_>) -> Vec<(String, serde_json::Value)> {
    let demo = cx.demo;
    let mut imports = Vec::new();
    for (name, _, data) in NODES {
        if data.is_some() || name == "comparator" {
            let v = demo
                .dx(&["dataset", "show", "--json", "--dir", &demo.node_dir(name)])
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            imports.push((name.to_string(), v));
        }
    }
    imports
}

/// `agreement show --json` at the comparator of every provider agreement.
fn agreement_views(cx: &Cx<'_>, agreements: &Threads) -> Vec<serde_json::Value> {
    let mut agreement_views = Vec::new();
    for thread in agreements.values() {
        if let Ok(t) = cx.demo.dx(&[
            "agreement",
            "show",
            "--json",
            "--dir",
            "nodes/comparator",
            &thread[..16],
        ]) && let Ok(v) = serde_json::from_str(&t)
        {
            agreement_views.push(v);
        }
    }
    agreement_views
}

/// The closing summary on stdout; fails if the audit verification failed.
pub(super) fn print_summary(
    cx: &Cx<'_>,
    compared: &Compared,
    expected_dir: &Path,
    verdict: Option<bool>,
    audit_ok: bool,
) -> anyhow::Result<()> {
    let out = cx.out;
    // Nodes were started comparator first, then the others in NODES order.
    let order: Vec<&str> = std::iter::once("comparator")
        .chain(NODES.iter().map(|n| n.0).filter(|n| *n != "comparator"))
        .collect();
    let peaks: Vec<String> = order
        .iter()
        .zip(cx.demo.children.peaks())
        .map(|(n, kib)| format!("{n} {} MiB", kib / 1024))
        .collect();
    println!("\npeak memory per node: {}", peaks.join(", "));
    if let Ok(text) = std::fs::read_to_string(out.join("stage_times.json"))
        && let Ok(times) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(imports) = times["import_peak_mib"].as_object()
    {
        let peaks: Vec<String> = imports
            .iter()
            .map(|(n, mib)| format!("{n} {} MiB", mib.as_f64().unwrap_or(0.0)))
            .collect();
        println!("peak memory per import: {}", peaks.join(", "));
    }
    println!("\n{}", compared.summary);
    println!(
        "  uploaded to the ministry: {} verified findings",
        compared.uploaded_records
    );
    match verdict {
        Some(true) => println!("results match {} exactly", expected_dir.display()),
        Some(false) => println!("RESULTS DIFFER from {}", expected_dir.display()),
        None => println!("(no expected/ results to compare with)"),
    }
    println!(
        "audit: {} (reports in {} and {})",
        if audit_ok {
            "every signature, log, pull and disclosure verified; every committed result recomputed"
        } else {
            "VERIFICATION OR RECOMPUTE FAILED"
        },
        out.join("audit/report.txt").display(),
        out.join("audit/recompute.txt").display()
    );
    println!("report: {}", out.join("report.html").display());
    println!("results: {}", out.display());
    println!(
        "for analysts (Excel): {} and {}",
        out.join(ANALYST).display(),
        out.join(ANALYST).join("results.xlsx").display()
    );
    if !audit_ok {
        bail!(
            "the audit verification failed; see {}",
            out.join("audit/report.txt").display()
        );
    }
    Ok(())
}
