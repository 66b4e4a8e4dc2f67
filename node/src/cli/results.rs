//! `dxmesh results export`: a compare output as files an analyst opens in
//! Excel (`crate::results`); prints each file written and its rows.

use crate::results::{Encoding, ExportOptions, Headers};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `dxmesh results ...`.
#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// Write a compare output's results and coverage as files for analysts:
    /// one CSV per result with `reason` and `region` columns first, coverage
    /// with `coverage_rate`, optionally `results.xlsx`. The compare output
    /// is not changed.
    Export(ExportArgs),
}

/// `dxmesh results export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The output directory of `dxmesh compare` (with `summary.json`).
    #[arg(long)]
    from: PathBuf,
    /// Where to write the analysts' files (created if missing; not the
    /// compare output).
    #[arg(long)]
    out: PathBuf,
    /// Encoding of the CSV files: UTF-8 with a byte-order mark (what Excel
    /// needs to read Chinese) or GB18030.
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    encoding: Encoding,
    /// Also write `results.xlsx`: a sheet per result and one for coverage,
    /// ID numbers and region codes as text.
    #[arg(long)]
    xlsx: bool,
    /// Language of the column headers and reasons.
    #[arg(long, value_enum, default_value_t = Headers::En)]
    headers: Headers,
}

/// Runs a `dxmesh results` command.
pub fn run(cmd: ResultsCommand) -> anyhow::Result<()> {
    let ResultsCommand::Export(a) = cmd;
    let report = crate::results::export(&ExportOptions {
        from: a.from,
        out: a.out,
        encoding: a.encoding,
        xlsx: a.xlsx,
        headers: a.headers,
    })
    .context("results export")?;
    let rows = |n: u64| format!("{n} row{}", if n == 1 { "" } else { "s" });
    for w in &report.written {
        if let Some(p) = w.persons {
            let several = match p.with_several_rows {
                0 => String::new(),
                1 => "; 1 person has more than one row".into(),
                n => format!("; {n} persons have more than one row"),
            };
            println!(
                "wrote {} ({}, {} person{}{several})",
                w.path.display(),
                rows(w.rows),
                p.persons,
                if p.persons == 1 { "" } else { "s" }
            );
        } else if w.sheets.is_empty() {
            println!("wrote {} ({})", w.path.display(), rows(w.rows));
        } else {
            println!(
                "wrote {} ({}; sheets: {})",
                w.path.display(),
                rows(w.rows),
                w.sheets.join(", ")
            );
        }
    }
    for (name, why) in &report.skipped {
        println!("result {name}: not exported ({why})");
    }
    Ok(())
}
