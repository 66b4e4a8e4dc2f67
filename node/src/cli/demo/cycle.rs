//! Steps 5 to 7 of the demo: the sharing agreements (the comparator
//! proposes, each provider accepts), the providers' signed feeds, and the
//! comparator's cycle (pulls, comparison, ministry check, disclosures)
//! followed by the upload of its verified findings to the ministry under an
//! agreement of their own.

use super::context::{Cx, Peers, TOTAL, done, record_stage_time, step};
use super::figures::Figures;
use super::options::{NODES, TEMPLATES};
use super::process::field;
use anyhow::Context;
use dxmesh_protocol::date::Date;
use std::collections::BTreeMap;
use std::path::Path;

/// The validity and period every agreement of the run gets.
pub(super) struct Terms {
    /// First day the agreements are valid.
    from: Date,
    /// Last day the agreements are valid.
    until: Date,
    /// Length of the cycle period and window, in days.
    pub(super) period_days: i64,
    /// Record quota of the provider agreements.
    quota: String,
}

impl Terms {
    fn new(cx: &Cx<'_>) -> anyhow::Result<Terms> {
        let (opts, today) = (cx.opts, cx.today);
        let days_back = (today.days_since_epoch() - opts.reference.days_since_epoch()).max(0);
        let period_days = days_back + 30;
        let from = opts.reference.min(today).add_days(-1).context("date")?;
        let until = today.add_days(365).context("date")?;
        let quota = (opts.residents.max(1_000) * 2).to_string();
        Ok(Terms {
            from,
            until,
            period_days,
            quota,
        })
    }

    /// An agreement template with the demo's dates, cycle and quota.
    fn fill(&self, template: &str, reference: Date) -> String {
        let period = format!("P{}D", self.period_days);
        template
            .replace("{{FROM}}", &self.from.to_string())
            .replace("{{UNTIL}}", &self.until.to_string())
            .replace("{{ANCHOR}}", &reference.to_string())
            .replace("{{PERIOD}}", &period)
            .replace("{{WINDOW}}", &period)
            .replace("{{QUOTA}}", &self.quota)
    }
}

/// The agreement threads, by provider.
pub(super) type Threads = BTreeMap<&'static str, String>;

/// Step 5: Agreements: the comparator proposes, each provider accepts.
pub(super) fn agreements(cx: &Cx<'_>, peers: &Peers) -> anyhow::Result<(Terms, Threads)> {
    let t = step(5, TOTAL, "negotiating the sharing agreements");
    let terms = Terms::new(cx)?;
    let mut agreements = BTreeMap::new();
    for (name, _, data) in NODES {
        let Some((_, _, template)) = data else {
            continue;
        };
        let thread = negotiate(cx, &terms, name, &peers[name], template)?;
        agreements.insert(name, thread);
    }
    done(t);
    Ok((terms, agreements))
}

/// One provider's agreement from `template`: proposed by the comparator,
/// accepted by the provider once the proposal reaches it; returns the thread.
fn negotiate(
    cx: &Cx<'_>,
    terms: &Terms,
    name: &str,
    peer: &str,
    template: &str,
) -> anyhow::Result<String> {
    let (demo, out, opts) = (cx.demo, cx.out, cx.opts);
    let text = TEMPLATES
        .iter()
        .find(|(n, _)| *n == template)
        .map(|(_, t)| *t)
        .context("template")?;
    let text = terms.fill(text, opts.reference);
    let path = out.join(format!("agreements/{template}"));
    std::fs::create_dir_all(path.parent().context("dir")?)?;
    std::fs::write(&path, text)?;
    propose_and_accept(cx, &path, peer, &demo.node_dir(name), name)
}

/// The terms at `path` proposed by the comparator to `peer`, and accepted
/// at the node in `dir` (`name`) once the proposal reaches it; returns the
/// thread.
fn propose_and_accept(
    cx: &Cx<'_>,
    path: &Path,
    peer: &str,
    dir: &str,
    name: &str,
) -> anyhow::Result<String> {
    let demo = cx.demo;
    let o = demo.dx(&[
        "agreement",
        "propose",
        "--dir",
        "nodes/comparator",
        "--to",
        peer,
        "--terms",
        path.to_str().context("path")?,
    ])?;
    let thread = field(&o, "thread").context("thread id")?;
    demo.wait(&format!("the proposal to reach {name}"), 30, || {
        demo.dx(&["agreement", "list", "--json", "--dir", dir])
            .ok()
            .filter(|l| l.contains(&thread))
    })?;
    demo.dx(&["agreement", "accept", "--dir", dir, &thread[..16]])?;
    Ok(thread)
}

/// Step 6: Publish.
pub(super) fn publish(cx: &Cx<'_>) -> anyhow::Result<()> {
    let demo = cx.demo;
    let t = step(6, TOTAL, "publishing signed feeds at the five departments");
    for (name, _, data) in NODES {
        if data.is_some() && name != "ministry" {
            let dir = demo.node_dir(name);
            let started = std::time::Instant::now();
            demo.wait(&format!("{name} to publish"), 60, || {
                demo.dx(&["publish", "--dir", &dir]).ok()
            })?;
            record_stage_time(cx.out, "publish", name, started.elapsed().as_secs_f64())?;
        }
    }
    done(t);
    Ok(())
}

/// What step 7 printed.
pub(super) struct Compared {
    /// The output of `dxmesh compare`.
    pub(super) summary: String,
    /// Records the ministry pulled from the comparator, as printed by `dxmesh pull`.
    pub(super) uploaded_records: String,
}

/// Step 7: Compare (pulls, one pass, ministry check, disclosures), then
/// upload; each timed in `fig`. Returns what was printed, and the upload
/// agreement for the cycles after.
pub(super) fn compare(
    cx: &Cx<'_>,
    peers: &Peers,
    terms: &Terms,
    fig: &mut Figures,
) -> anyhow::Result<(Compared, Upload)> {
    let t = step(
        7,
        TOTAL,
        "pulling, comparing, checking the ministry, disclosing, uploading to the ministry",
    );
    std::fs::write(cx.out.join("jobs.toml"), cx.opts.job_text())?;
    let summary = fig.time("compare", || compare_into(cx, ".", None))?;
    print_refusals(cx.out)?;
    let upload = Upload::agree(cx, peers, terms)?;
    let uploaded_records = fig.time("upload", || upload.push(cx, "."))?;
    done(t);
    Ok((
        Compared {
            summary,
            uploaded_records,
        },
        upload,
    ))
}

/// The comparator's `compare` of the demo's jobs into `out` (relative to
/// the output directory), against the results in `previous` if any;
/// returns what it printed.
pub(super) fn compare_into(
    cx: &Cx<'_>,
    out: &str,
    previous: Option<&str>,
) -> anyhow::Result<String> {
    let mut args = vec![
        "compare",
        "--dir",
        "nodes/comparator",
        "--jobs",
        "jobs.toml",
        "--out",
        out,
    ];
    if let Some(previous) = previous {
        args.extend(["--previous", previous]);
    }
    cx.demo.dx(&args)
}

/// The agreement under which the comparator uploads its verified findings
/// to the ministry (comparator provides, ministry pulls), every cycle.
pub(super) struct Upload {
    /// Its thread.
    thread: String,
}

impl Upload {
    /// Its thread.
    pub(super) fn thread(&self) -> &str {
        &self.thread
    }

    /// Proposed by the comparator, accepted by the ministry.
    fn agree(cx: &Cx<'_>, peers: &Peers, terms: &Terms) -> anyhow::Result<Upload> {
        let (demo, out, opts) = (cx.demo, cx.out, cx.opts);
        let upload = terms
            .fill(
                include_str!("../../../../deploy/agreements/upload.toml"),
                opts.reference,
            )
            .replace("{{PROVIDER}}", &peers["comparator"])
            .replace("{{CONSUMER}}", &peers["ministry"]);
        let upath = out.join("agreements/upload.toml");
        std::fs::write(&upath, upload)?;
        let thread =
            propose_and_accept(cx, &upath, &peers["ministry"], "nodes/ministry", "ministry")?;
        demo.wait("the upload agreement at the comparator", 30, || {
            demo.dx(&["agreement", "list", "--json", "--dir", "nodes/comparator"])
                .ok()
                .filter(|l| l.contains(&thread) && l.contains("\"active\""))
        })?;
        Ok(Upload { thread })
    }

    /// This epoch's upload: the comparator imports the verified findings of
    /// the results in `results` (relative to the output directory) and
    /// publishes them, the ministry pulls; returns the number of records
    /// pulled, as printed.
    pub(super) fn push(&self, cx: &Cx<'_>, results: &str) -> anyhow::Result<String> {
        let demo = cx.demo;
        let file = Path::new(results).join("verified_registrations.csv");
        demo.dx(&[
            "dataset",
            "import",
            "--dir",
            "nodes/comparator",
            "--dataset",
            "verified_registrations",
            "--file",
            file.to_str().context("path")?,
        ])?;
        let id = &self.thread[..16];
        demo.dx(&["publish", "--dir", "nodes/comparator", "--agreement", id])?;
        let uploaded = demo.dx(&["pull", "--dir", "nodes/ministry", "--agreement", id])?;
        Ok(uploaded
            .split(" records")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .unwrap_or("0")
            .to_string())
    }
}

/// Prints each result whose disclosure its provider refused, with the
/// refusal's code (from `summary.json`).
fn print_refusals(out: &Path) -> anyhow::Result<()> {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json"))?)?;
    for (name, r) in summary["results"].as_object().into_iter().flatten() {
        if let Some(code) = r["refused"].as_str() {
            println!(
                "    result {name}: disclosure refused by its provider [{code}]; no records written for it"
            );
        }
    }
    Ok(())
}
