//! The comparator's results pages: every comparison it has run, a cycle
//! to a line (`/results`: epoch, reference date, counts and what changed
//! since the cycle before), and a page per cycle (`/results/<k>`: its
//! results, the changes since the previous cycle, its stages, the files it
//! wrote and its report). The list is the node's `comparisons.json`
//! (`crate::compare::history`); each cycle's figures are its own
//! `summary.json`.

use super::pages::{self, esc};
use super::respond::{error_page, require, show, to_login};
use super::state::State as Shared;
use crate::compare::history::{self, Comparison};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::path::Path;
use std::sync::Arc;

type St = State<Arc<Shared>>;

/// The text of `file`, if it is a regular file (not a link: the console
/// shows what the comparison wrote, nothing a link in its directory points
/// to) of at most `cap` bytes.
fn read_regular(file: &Path, cap: u64) -> Option<String> {
    let meta = std::fs::symlink_metadata(file).ok()?;
    if !meta.is_file() || meta.len() > cap {
        return None;
    }
    std::fs::read_to_string(file).ok()
}

/// A comparison's `summary.json`, if it is there and reads.
fn summary(out: &Path) -> Option<serde_json::Value> {
    read_regular(&out.join("summary.json"), 16 << 20).and_then(|t| serde_json::from_str(&t).ok())
}

/// A number of a summary, as the page shows it ("-" if it is not one).
fn number(v: &serde_json::Value) -> String {
    v.as_u64().map_or("-".into(), |n| n.to_string())
}

/// Each result's count, with `(+new / −left)` when the cycle was compared
/// with the one before.
fn counts(summary: &serde_json::Value) -> String {
    summary["results"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, r)| {
            let c = &summary["changes"]["results"][name];
            let moved = match (c["new"].as_u64(), c["left"].as_u64()) {
                (Some(new), Some(left)) => format!(" (+{new} / −{left})"),
                _ => String::new(),
            };
            format!("{} {}{moved}", esc(name), r["count"].as_u64().unwrap_or(0))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// `/results`: every comparison, newest first.
pub(super) async fn results_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    show("Results", &s, &list_body(&history::list(&st.data_dir)))
}

/// The list of comparisons (`all` oldest first), newest first.
fn list_body(all: &[Comparison]) -> String {
    if all.is_empty() {
        return "<p class=\"note\">No comparison has run on this node yet (<code>dxmesh compare</code> lists each one here).</p>".into();
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .rev()
        .map(|c| {
            let s = summary(&c.out);
            let reference = s
                .as_ref()
                .and_then(|s| s["reference_date"].as_str().map(esc))
                .unwrap_or_default();
            vec![
                format!("<a href=\"/results/{}\">cycle {}</a>", c.number, c.number),
                c.epoch.to_string(),
                reference,
                esc(&c.started),
                s.as_ref()
                    .map_or("<span class=\"note\">no summary.json</span>".into(), counts),
                format!("<code>{}</code>", esc(&c.out.display().to_string())),
            ]
        })
        .collect();
    pages::table(
        &[
            "cycle",
            "epoch",
            "reference date",
            "compared at",
            "persons (+new / −left since the cycle before)",
            "results in",
        ],
        &rows,
    )
}

/// Cycle `number`, with the numbers of the cycles listed before and
/// after it, if there is one.
fn cycle_of(st: &Shared, number: u64) -> Option<(Comparison, Option<u64>, Option<u64>)> {
    let all = history::list(&st.data_dir);
    let at = all.iter().position(|c| c.number == number)?;
    let before = at.checked_sub(1).map(|b| all[b].number);
    let after = all.get(at + 1).map(|c| c.number);
    Some((all[at].clone(), before, after))
}

/// `/results/<k>`: one cycle.
pub(super) async fn cycle_page(
    State(st): St,
    headers: HeaderMap,
    UrlPath(k): UrlPath<u64>,
) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let Some((c, before, after)) = cycle_of(&st, k) else {
        return error_page(StatusCode::NOT_FOUND, &format!("no cycle {k} on this node"));
    };
    show(&format!("Cycle {k}"), &s, &cycle_body(&c, before, after))
}

/// A cycle's page, with links to the cycles listed `before` and `after` it.
fn cycle_body(c: &Comparison, before: Option<u64>, after: Option<u64>) -> String {
    let k = c.number;
    let nav = format!(
        "<p>{}<a href=\"/results\">every cycle</a>{}</p>",
        before.map_or(String::new(), |b| format!(
            "<a href=\"/results/{b}\">← cycle {b}</a> · "
        )),
        after.map_or(String::new(), |a| format!(
            " · <a href=\"/results/{a}\">cycle {a} →</a>"
        ))
    );
    let Some(summary) = summary(&c.out) else {
        return format!(
            "{nav}<p class=\"note\">No summary.json in {} (moved or removed since).</p>",
            esc(&c.out.display().to_string())
        );
    };
    let results: Vec<Vec<String>> = summary["results"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, r)| {
            let n = |k: &str| r[k].as_u64().map_or("-".into(), |c| c.to_string());
            vec![
                esc(name),
                n("count"),
                n("disclosed_records"),
                n("persons_with_several_rows"),
                esc(r["refused"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    let timing: Vec<Vec<String>> = summary["timing_secs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(stage, secs)| vec![esc(stage), format!("{:.2} s", secs.as_f64().unwrap_or(0.0))])
        .collect();
    let report = if c.out.join("report.html").exists() {
        format!("<p><a href=\"/results/{k}/report\">The report of this cycle</a></p>")
    } else {
        String::new()
    };
    format!(
        "{nav}<p>Epoch {} · reference date {} · compared at {}</p>{report}<h2>Results</h2>{}{}<h2>Files</h2>{}<h2>Stages</h2>{}",
        number(&summary["epoch"]),
        esc(summary["reference_date"].as_str().unwrap_or("")),
        esc(&c.started),
        pages::table(
            &[
                "result",
                "persons",
                "records disclosed",
                "persons with several records",
                "refused",
            ],
            &results
        ),
        changes_section(&summary["changes"]),
        files(&c.out),
        pages::table(&["stage", "time"], &timing)
    )
}

/// The files a cycle wrote, with their sizes: where the analysts take them
/// from (`dxmesh results export` makes their spreadsheets).
fn files(out: &Path) -> String {
    let mut names: Vec<(String, u64)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            (meta.is_file() && (name.ends_with(".csv") || name.ends_with(".json")))
                .then_some((name, meta.len()))
        })
        .collect();
    names.sort();
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|(name, len)| {
            vec![
                format!(
                    "<code>{}</code>",
                    esc(&out.join(name).display().to_string())
                ),
                format!("{len} bytes"),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "<p class=\"note\">No result files left in the directory.</p>".into();
    }
    pages::table(&["file", "size"], &rows)
}

/// What changed since the previous comparison (`compare --previous`): per
/// result, new, left and stayed, and the results that could not be
/// compared, with why; nothing without a previous comparison.
fn changes_section(c: &serde_json::Value) -> String {
    let Some(results) = c["results"].as_object() else {
        return String::new();
    };
    let mut rows: Vec<Vec<String>> = results
        .iter()
        .map(|(name, r)| {
            let n = |k: &str| r[k].as_u64().map_or("-".into(), |c| c.to_string());
            vec![esc(name), n("new"), n("left"), n("stayed"), String::new()]
        })
        .collect();
    rows.extend(
        c["not_compared"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, why)| {
                let dash = || "-".to_string();
                vec![
                    esc(name),
                    dash(),
                    dash(),
                    dash(),
                    esc(why.as_str().unwrap_or("")),
                ]
            }),
    );
    format!(
        "<h2>Changes since epoch {} ({})</h2>{}",
        number(&c["previous_epoch"]),
        esc(c["previous"].as_str().unwrap_or("")),
        pages::table(&["result", "new", "left", "stayed", "not compared"], &rows)
    )
}

/// `/results/<k>/report`: that cycle's `report.html`, as it is.
pub(super) async fn report_page(
    State(st): St,
    headers: HeaderMap,
    UrlPath(k): UrlPath<u64>,
) -> Response {
    if require(&st, &headers).is_none() {
        return to_login();
    }
    match cycle_of(&st, k).and_then(|(c, _, _)| read_regular(&c.out.join("report.html"), 64 << 20))
    {
        Some(html) => Html(html).into_response(),
        None => error_page(StatusCode::NOT_FOUND, &format!("no report for cycle {k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_results_page_shows_the_changes_since_the_previous_cycle() {
        let c = serde_json::json!({
            "previous": "/results/2026-11",
            "previous_epoch": 2,
            "results": {"uninsured": {"new": 60, "left": 7, "stayed": 240, "file": "x"}},
            "not_compared": {"name_conflicts": "not disclosed: <tokens>"},
        });
        let html = changes_section(&c);
        assert!(
            html.contains("Changes since epoch 2 (/results/2026-11)"),
            "{html}"
        );
        for cell in ["<td>60</td>", "<td>7</td>", "<td>240</td>"] {
            assert!(html.contains(cell), "{cell} in {html}");
        }
        assert!(
            html.contains("not disclosed: &lt;tokens&gt;"),
            "escaped: {html}"
        );
        assert_eq!(changes_section(&serde_json::Value::Null), "");
    }

    #[test]
    fn every_cycle_is_listed_newest_first_and_has_a_page_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let out = |k: u64| {
            let d = dir.path().join(format!("cycle-{k}"));
            std::fs::create_dir_all(&d).unwrap();
            let mut s = serde_json::json!({"epoch": k, "reference_date": format!("2026-0{}-01", k + 1),
                "results": {"uninsured": {"count": 100 + k}}, "timing_secs": {"total": 1.5}});
            if k > 0 {
                s["changes"] = serde_json::json!({"previous": "x", "previous_epoch": k - 1,
                    "results": {"uninsured": {"new": 3, "left": 2, "stayed": 98}}});
            }
            std::fs::write(d.join("summary.json"), s.to_string()).unwrap();
            std::fs::write(d.join("uninsured.csv"), "id_number\n").unwrap();
            Comparison {
                number: k + 1,
                epoch: k,
                out: d,
                started: format!("2026-0{}-02T00:00:00Z", k + 1),
            }
        };
        let all = [out(0), out(1)];
        let list = list_body(&all);
        assert!(list.find("cycle 2</a>").unwrap() < list.find("cycle 1</a>").unwrap());
        assert!(list.contains("uninsured 101 (+3 / −2)"), "{list}");
        assert!(list.contains("<td>2026-02-01</td>"), "{list}");
        let page = cycle_body(&all[1], Some(1), None);
        assert!(
            page.contains("<a href=\"/results/1\">← cycle 1</a>"),
            "{page}"
        );
        assert!(!page.contains("cycle 3"), "{page}");
        assert!(page.contains("Changes since epoch 0"), "{page}");
        assert!(page.contains("uninsured.csv</code>"), "{page}");
        assert!(page.contains("<td>10 bytes</td>"), "{page}");
        // A cycle whose directory went away says so.
        let gone = Comparison {
            number: 1,
            epoch: 5,
            out: PathBuf::from("/nowhere/cycle"),
            started: String::new(),
        };
        assert!(cycle_body(&gone, None, None).contains("No summary.json in /nowhere/cycle"));
        assert!(list_body(&[]).contains("No comparison has run"));
        // A summary's values are shown as numbers or escaped, never as
        // they are; a linked file is not read.
        let d = dir.path().join("odd");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("summary.json"),
            r#"{"epoch": "<meta http-equiv=refresh>", "changes": {"previous_epoch": "<b>", "results": {}}}"#,
        )
        .unwrap();
        let odd = Comparison {
            number: 3,
            epoch: 0,
            out: d.clone(),
            started: String::new(),
        };
        let page = cycle_body(&odd, None, None);
        assert!(!page.contains("<meta") && !page.contains("<b>"), "{page}");
        std::os::unix::fs::symlink(
            dir.path().join("cycle-0/summary.json"),
            d.join("report.html"),
        )
        .unwrap();
        assert_eq!(read_regular(&d.join("report.html"), 1 << 20), None);
        assert!(read_regular(&d.join("summary.json"), 1 << 20).is_some());
        assert_eq!(read_regular(&d.join("summary.json"), 10), None);
    }
}
