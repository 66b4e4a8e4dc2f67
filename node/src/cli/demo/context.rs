//! What the demo's steps share: the context of one run ([`Cx`]: the
//! [`Demo`], its options, the output directory and today's date), the peer
//! IDs of the nodes, and the progress line each step shows while it runs.

use super::options::DemoOptions;
use super::process::Demo;
use dxmesh_protocol::date::Date;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Steps of a run (the progress lines count `[n/TOTAL]`).
pub(super) const TOTAL: usize = 11;

/// Peer ID of each node, by its directory and department name.
pub(super) type Peers = BTreeMap<&'static str, String>;

/// One run of the demo, as every step sees it.
pub(super) struct Cx<'a> {
    /// The processes and the `dxmesh` binary.
    pub(super) demo: &'a Demo,
    /// The options.
    pub(super) opts: &'a DemoOptions,
    /// The output directory (absolute); every command runs in it.
    pub(super) out: &'a Path,
    /// Today, when the run began.
    pub(super) today: Date,
}

impl<'a> Cx<'a> {
    /// The context of a run starting now.
    pub(super) fn new(demo: &'a Demo, opts: &'a DemoOptions) -> Cx<'a> {
        Cx {
            demo,
            opts,
            out: &demo.out,
            today: crate::base::clock::now().date(),
        }
    }
}

/// Records how long `node` took for `stage` in `stage_times.json` in the
/// output directory. The demo runs the departments' imports and publishes
/// one after another, so each is timed alone on the machine:
/// `tests/bench/cycle.sh` adds them up to the deployment's critical path.
pub(super) fn record_stage_time(
    out: &Path,
    stage: &str,
    node: &str,
    secs: f64,
) -> anyhow::Result<()> {
    let path = out.join("stage_times.json");
    let mut all: serde_json::Value = match std::fs::read_to_string(&path) {
        Ok(s) => serde_json::from_str(&s)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(e.into()),
    };
    all[stage][node] = serde_json::json!(secs);
    std::fs::write(&path, serde_json::to_string_pretty(&all)?)?;
    Ok(())
}

/// A long step: a spinner on the terminal (stderr) while it runs, then one
/// line on stdout with its duration (kept in logs).
pub(super) struct Step {
    bar: indicatif::ProgressBar,
    line: String,
    started: Instant,
}

pub(super) fn step(n: usize, total: usize, what: &str) -> Step {
    let line = format!("[{n}/{total}] {what}");
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(line.clone());
    bar.enable_steady_tick(Duration::from_millis(120));
    Step {
        bar,
        line,
        started: Instant::now(),
    }
}

pub(super) fn done(s: Step) {
    s.bar.finish_and_clear();
    println!(
        "{} ... done in {:.1}s",
        s.line,
        s.started.elapsed().as_secs_f64()
    );
}
