//! The console's views read from the node's files rather than its daemon:
//! feeds published and pulled per epoch (their signed manifests), the
//! refusals (recent ones from the daemon, counts since start from the
//! metrics), and the comparator's last results (its `summary.json`, with
//! the changes since the previous cycle when it was compared against one,
//! and the report beside it).

use super::pages::{self, esc};
use super::respond::{error_page, require, show, to_login};
use super::state::State as Shared;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::signed::Signed;
use std::path::Path;
use std::sync::Arc;

type St = State<Arc<Shared>>;

/// `(agreement, epoch, manifest)` of every feed under `DATA_DIR/<kind>/`
/// (`feeds` published, `pulls` pulled), newest epoch first.
fn manifests(data_dir: &Path, kind: &str) -> Vec<(String, u64, Option<Manifest>)> {
    let mut out = Vec::new();
    let Ok(agreements) = std::fs::read_dir(data_dir.join(kind)) else {
        return out;
    };
    for a in agreements.flatten() {
        let Ok(epochs) = std::fs::read_dir(a.path()) else {
            continue;
        };
        for e in epochs.flatten() {
            let Some(epoch) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            let manifest = std::fs::read(e.path().join(crate::base::layout::MANIFEST_FILE))
                .ok()
                .and_then(|b| codec::decode::<Signed<Manifest>>(&b).ok())
                .and_then(|s| codec::decode::<Manifest>(s.body()).ok());
            out.push((
                a.file_name().to_string_lossy().into_owned(),
                epoch,
                manifest,
            ));
        }
    }
    out.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    out
}

fn feed_rows(
    list: &[(String, u64, Option<Manifest>)],
    complete: impl Fn(&str, u64) -> bool,
) -> Vec<Vec<String>> {
    list.iter()
        .map(|(agreement, epoch, m)| {
            vec![
                format!(
                    "<code>{}</code>",
                    esc(&agreement[..agreement.len().min(16)])
                ),
                epoch.to_string(),
                m.as_ref().map_or("-".into(), |m| esc(&m.dataset)),
                m.as_ref().map_or("-".into(), |m| m.records.to_string()),
                m.as_ref()
                    .map_or("-".into(), |m| m.chunk_hashes.len().to_string()),
                if complete(agreement, *epoch) {
                    "<span class=\"ok\">complete</span>".into()
                } else {
                    "<span class=\"note\">incomplete</span>".into()
                },
            ]
        })
        .collect()
}

pub(super) async fn feeds_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let data = st.data_dir.clone();
    let published = manifests(&data, crate::base::layout::FEEDS);
    let pulled = manifests(&data, crate::base::layout::PULLS);
    let head = [
        "agreement",
        "epoch",
        "dataset",
        "records",
        "chunks",
        "state",
    ];
    let publish = if s.role.may(super::accounts::Action::Publish) {
        format!(
            "<form method=\"post\" action=\"/publish\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button>Publish the current epoch of every active agreement</button></form>",
            esc(&s.csrf)
        )
    } else {
        String::new()
    };
    let published = feed_rows(&published, |_, _| true);
    let pulled = feed_rows(&pulled, |a, e| {
        let agreement: Option<[u8; 32]> = hex::decode(a).ok().and_then(|b| b.try_into().ok());
        agreement.is_some_and(|a| crate::pull::pulls::is_complete(&data, &a, e))
    });
    let listed = |rows: &[Vec<String>], none: &str| {
        if rows.is_empty() {
            format!("<p class=\"note\">{none}</p>")
        } else {
            pages::table(&head, rows)
        }
    };
    let body = format!(
        "{publish}<h2>Published</h2>{}<h2>Pulled</h2>{}",
        listed(&published, "No feed published and kept on this node."),
        listed(&pulled, "No feed pulled and kept on this node."),
    );
    show("Feeds", &s, &body)
}

pub(super) async fn refusals_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let status = match st.status().await {
        Ok(status) => status,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let counts: Vec<Vec<String>> = st
        .metrics
        .refusal_counts()
        .into_iter()
        .map(|((kind, code, peer), n)| {
            vec![
                esc(&kind),
                esc(&code),
                format!("<code>{}</code>", esc(&peer)),
                n.to_string(),
            ]
        })
        .collect();
    let recent: Vec<Vec<String>> = status
        .refusals
        .iter()
        .rev()
        .map(|r| {
            vec![
                esc(&r.at),
                format!("<code>{}</code>", esc(r.peer_id.as_deref().unwrap_or("-"))),
                esc(r.remote.as_deref().unwrap_or("-")),
                esc(&r.reason),
            ]
        })
        .collect();
    let or_none = |rows: &[Vec<String>], table: String| {
        if rows.is_empty() {
            "<p class=\"note\">No refusals since the node started.</p>".to_string()
        } else {
            table
        }
    };
    let body = format!(
        "<h2>By code and peer, since the node started</h2>{}<h2>Most recent</h2>{}",
        or_none(
            &counts,
            pages::table(&["kind", "code", "peer", "count"], &counts)
        ),
        or_none(
            &recent,
            pages::table(&["at", "peer", "address", "reason"], &recent)
        )
    );
    show("Refusals", &s, &body)
}

pub(super) async fn results_page(State(st): St, headers: HeaderMap) -> Response {
    let Some(s) = require(&st, &headers) else {
        return to_login();
    };
    let Some(out) = st.metrics.last_compare() else {
        return show(
            "Results",
            &s,
            "<p class=\"note\">No comparison has run on this node since it started.</p>",
        );
    };
    let summary: Option<serde_json::Value> = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let Some(summary) = summary else {
        return show(
            "Results",
            &s,
            &format!(
                "<p class=\"note\">No summary in {} yet (the cycle may still run).</p>",
                esc(&out.display().to_string())
            ),
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
    let report = if out.join("report.html").exists() {
        "<p><a href=\"/results/report\">The report</a></p>"
    } else {
        ""
    };
    let body = format!(
        "<p>Epoch {} · {}</p>{report}<h2>Results</h2>{}{}<h2>Stages</h2>{}",
        summary["epoch"],
        esc(&out.display().to_string()),
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
        pages::table(&["stage", "time"], &timing)
    );
    show("Results", &s, &body)
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
        c["previous_epoch"],
        esc(c["previous"].as_str().unwrap_or("")),
        pages::table(&["result", "new", "left", "stayed", "not compared"], &rows)
    )
}

pub(super) async fn report_page(State(st): St, headers: HeaderMap) -> Response {
    if require(&st, &headers).is_none() {
        return to_login();
    }
    match st
        .metrics
        .last_compare()
        .and_then(|out| std::fs::read_to_string(out.join("report.html")).ok())
    {
        Some(html) => Html(html).into_response(),
        None => error_page(StatusCode::NOT_FOUND, "no report for the last comparison"),
    }
}

#[cfg(test)]
mod tests {
    use super::changes_section;

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
}
