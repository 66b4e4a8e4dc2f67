//! `dxmesh dataset`: importing department exports and showing what was
//! imported.

use crate::base::clock::now;
use crate::base::config::Config;
use anyhow::bail;
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// `dxmesh dataset ...`.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Import a department export (CSV or JSON Lines): normalise IDs,
    /// quarantine what cannot be normalised, store the dataset atomically.
    Import {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Dataset name (`[a-z0-9_]`).
        #[arg(long)]
        dataset: String,
        /// The export file.
        #[arg(long)]
        file: PathBuf,
        /// Mapping file (TOML) renaming columns to canonical names.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the import statistics of every dataset (or one).
    Show {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Only this dataset.
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `dxmesh dataset ...`.
pub fn run(cmd: DatasetCommand) -> anyhow::Result<()> {
    use crate::dataset::{self, ImportOptions};
    let data_dir = |dir: &Path| -> anyhow::Result<PathBuf> { Ok(Config::load(dir)?.data_dir(dir)) };
    match cmd {
        DatasetCommand::Import {
            dir,
            dataset,
            file,
            mapping,
            json,
        } => {
            let data = data_dir(&dir)?;
            let reference = now().date();
            let report = dataset::import(
                &data,
                &ImportOptions {
                    dataset,
                    file,
                    mapping,
                    format: None,
                    reference,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_report(&report));
                let q = dataset::current_dir(&data, &report.dataset)?.join("quarantine.csv");
                if report.rows_quarantined > 0 {
                    println!("quarantine report: {}", q.display());
                }
            }
            Ok(())
        }
        DatasetCommand::Show { dir, name, json } => {
            let data = data_dir(&dir)?;
            let reports: Vec<_> = dataset::list(&data)?
                .into_iter()
                .filter(|r| name.as_ref().is_none_or(|n| &r.dataset == n))
                .collect();
            if let Some(n) = &name
                && reports.is_empty()
            {
                bail!("no dataset {n:?} has been imported into {}", dir.display());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    print!("{}", render_report(r));
                    println!();
                }
            }
            Ok(())
        }
    }
}

fn render_report(r: &crate::dataset::ImportReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "dataset {} (generation {}) from {}\n",
        r.dataset, r.generation, r.file
    ));
    out.push_str(&format!(
        "  columns:             {}\n",
        r.columns.join(", ")
    ));
    out.push_str(&format!("  rows read:           {}\n", r.rows_read));
    out.push_str(&format!("  rows kept:           {}\n", r.rows_kept));
    out.push_str(&format!("  rows quarantined:    {}\n", r.rows_quarantined));
    for (k, v) in &r.quarantined {
        out.push_str(&format!("    {k:<28} {v}\n"));
    }
    out.push_str(&format!("  duplicate rows:      {}\n", r.duplicate_rows));
    out.push_str(&format!("  distinct IDs:        {}\n", r.distinct_ids));
    out.push_str(&format!(
        "  IDs with >1 row:     {}\n",
        r.ids_with_several_rows
    ));
    out.push_str("  ID numbers normalised:\n");
    for (k, v) in &r.fixes {
        out.push_str(&format!("    {k:<28} {v}\n"));
    }
    out.push_str(&format!("  source sha256:       {}\n", r.source_sha256));
    out
}
