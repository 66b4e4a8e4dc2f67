//! `dxmesh demo --cycles N`: the next months on the same mesh. For each
//! cycle after the first: the province's next month is generated
//! (`synth --cycle`: the same people, that month's deaths, new pensions,
//! moves out and 16th birthdays, and its expected results), every
//! department imports its new export while the epoch is still the last
//! one, the mesh's shared clock moves one period (a new epoch everywhere),
//! the departments publish, and the comparator compares into `cycle-<k>/`
//! against the month before (its change lists), checks them against that
//! month's expected results and uploads its verified findings to the
//! ministry; each cycle's figures (`figures.rs`) are printed as it ends.

use super::context::Cx;
use super::cycle::{Terms, Upload, compare_into};
use super::figures::Figures;
use super::results::matches_expected;
use anyhow::Context;
use std::path::PathBuf;

/// Runs cycles 2 to `opts.cycles` after the first (in the output
/// directory itself); returns whether every one matched its expected
/// results, and their summaries (None if there are no later cycles).
pub(super) fn run(
    cx: &Cx<'_>,
    terms: &Terms,
    upload: &Upload,
) -> anyhow::Result<Option<(bool, Vec<serde_json::Value>)>> {
    let (demo, opts) = (cx.demo, cx.opts);
    if opts.cycles <= 1 {
        return Ok(None);
    }
    let mut all = true;
    let mut summaries = Vec::new();
    let mut previous = PathBuf::from(".");
    for k in 2..=opts.cycles {
        let months = i64::from(k - 1);
        println!(
            "\n== cycle {k} of {}: {} days on",
            opts.cycles,
            months * terms.period_days
        );
        let mut fig = Figures::new(k);
        let input = cx.out.join(format!("input/cycle-{k}"));
        let period_days = u32::try_from(terms.period_days).context("period")?;
        fig.time("synth", || {
            crate::sim::synth::synth(&crate::sim::synth::SynthOptions {
                residents: opts.residents,
                out: input.clone(),
                seed: opts.seed,
                reference: opts.reference,
                home_province: opts.home_province.clone(),
                cycle: k - 1,
                period_days,
            })
            .map_err(anyhow::Error::from)
        })?;
        // Imported while the last epoch runs, so the new one starts with it.
        fig.time("import", || super::setup::import(cx, &input))?;
        demo.set_clock(months * terms.period_days)?;
        fig.time("publish", || super::cycle::publish(cx))?;
        let out = format!("cycle-{k}");
        let since = previous.to_str().context("path")?;
        let printed = fig.time("compare", || compare_into(cx, &out, Some(since)))?;
        print!("{printed}");
        let records = fig.time("upload", || upload.push(cx, &out))?;
        println!("the ministry pulled {records} verified records of cycle {k}");
        let verdict = matches_expected(cx, &cx.out.join(&out), &input.join("expected"));
        match verdict {
            Some(true) => println!("cycle {k}: every result matches expected/"),
            Some(false) => println!("cycle {k}: results differ from expected/"),
            None => {}
        }
        fig.finish(cx, verdict)?;
        all &= verdict != Some(false);
        let summary = std::fs::read_to_string(cx.out.join(&out).join("summary.json"))?;
        summaries.push(serde_json::from_str(&summary)?);
        previous = PathBuf::from(out);
    }
    Ok(Some((all, summaries)))
}
