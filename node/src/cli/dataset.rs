//! `dxmesh dataset`: importing department exports and showing what was
//! imported.

use crate::base::clock::now;
use crate::base::config::Config;
use anyhow::bail;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// `dxmesh dataset ...`.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Import a department export (CSV or other delimited text in UTF-8,
    /// GB18030/GBK or UTF-16, JSON Lines, or an .xlsx/.xls/.xlsb/.ods
    /// workbook):
    /// normalise IDs, quarantine what cannot be normalised, store the
    /// dataset atomically.
    Import {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Dataset name (`[a-z0-9_]`).
        #[arg(long)]
        dataset: String,
        /// The export and how to read it.
        #[command(flatten)]
        export: ExportArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Replace the dataset even if the export keeps no rows or under
        /// half its current rows (refused otherwise: a truncated export).
        #[arg(long)]
        accept_shrink: bool,
    },
    /// Show what importing an export would do, without importing it: the
    /// encoding and format found, each column and the canonical name it
    /// maps to, every row accounted for (kept, quarantined with the
    /// reason, duplicate) and the first rows as they would be stored. A
    /// dry run of the whole file in a temporary directory; the node is not
    /// touched.
    Inspect {
        /// The export and how to read it.
        #[command(flatten)]
        export: ExportArgs,
        /// How many rows (and quarantined values) to show.
        #[arg(long, default_value_t = 10)]
        rows: usize,
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
    /// The quarantine report of a dataset's current import: every row
    /// accounted for (read = kept + quarantined + duplicates), the counts by
    /// reason, and each quarantined value with its line, column and reason.
    Quarantine {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// The dataset.
        name: String,
        /// Show at most this many values.
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// An export file, its mapping and its encoding (`import` and `inspect`).
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The export file.
    #[arg(long)]
    file: PathBuf,
    /// Mapping file (TOML) renaming columns to canonical names.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// The export's text encoding (`utf-8`, `gb18030`, `gbk`, `utf-16le`,
    /// `utf-16be`, or another WHATWG label). Default: from its byte-order
    /// mark, else UTF-8, or GB18030 if it does not start as UTF-8 but as
    /// Chinese text in GB18030.
    #[arg(long)]
    encoding: Option<String>,
    /// A CSV export's field delimiter: `comma`, `tab`, `semicolon`, `pipe`
    /// (or the character). Default: the one its header line uses most.
    #[arg(long)]
    delimiter: Option<String>,
    /// The workbook sheet to read (`.xlsx`, `.xls`, ...). Default: the first.
    #[arg(long)]
    sheet: Option<String>,
}

impl ExportArgs {
    /// The import options these arguments ask for.
    fn options(
        self,
        dataset: String,
        accept_shrink: bool,
    ) -> anyhow::Result<crate::dataset::ImportOptions> {
        let delimiter = match &self.delimiter {
            Some(d) => Some(crate::dataset::delimiter_named(d).ok_or_else(|| {
                anyhow::anyhow!("--delimiter {d:?}: not a delimiter (comma, tab, semicolon, pipe)")
            })?),
            None => None,
        };
        Ok(crate::dataset::ImportOptions {
            dataset,
            file: self.file,
            mapping: self.mapping,
            format: None,
            reference: now().date(),
            encoding: encoding_named(self.encoding)?,
            delimiter,
            sheet: self.sheet,
            accept_shrink,
            memory: crate::base::config::LimitsConfig::default().sort_bytes(),
        })
    }
}

/// Runs `dxmesh dataset ...`.
pub fn run(cmd: DatasetCommand) -> anyhow::Result<()> {
    use crate::dataset;
    let data_dir = |dir: &Path| -> anyhow::Result<PathBuf> { Ok(Config::load(dir)?.data_dir(dir)) };
    match cmd {
        DatasetCommand::Import {
            dir,
            dataset,
            export,
            json,
            accept_shrink,
        } => {
            let config = Config::load(&dir)?;
            let opts = crate::dataset::ImportOptions {
                memory: config.limits.sort_bytes(),
                ..export.options(dataset, accept_shrink)?
            };
            let data = config.data_dir(&dir);
            let report = dataset::import(&data, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_report(&report));
                let q = dataset::current_dir(&data, &report.dataset)?.join("quarantine.csv");
                if report.rows_quarantined > 0 {
                    println!("quarantine report: {}", q.display());
                    println!(
                        "  (dxmesh dataset quarantine --dir {} {} shows it with the accounting)",
                        dir.display(),
                        report.dataset
                    );
                }
            }
            for (feed, generation) in dataset::older_pins(&data, &report.dataset, report.generation)
            {
                let (agreement, epoch) = feed.rsplit_once('-').unwrap_or((&feed, "?"));
                println!(
                    "note: the feed of epoch {epoch} of agreement {} was published from generation {generation}; it keeps using it. To publish this import for that epoch: dxmesh publish --dir {} --agreement {} --epoch {epoch} --republish",
                    &agreement[..agreement.len().min(16)],
                    dir.display(),
                    &agreement[..agreement.len().min(16)],
                );
            }
            Ok(())
        }
        DatasetCommand::Inspect { export, rows } => {
            inspect(export.options("inspect".into(), false)?, rows)
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
        DatasetCommand::Quarantine { dir, name, limit } => {
            let data = data_dir(&dir)?;
            let gen_dir = dataset::current_dir(&data, &name)?;
            let report = dataset::list(&data)?
                .into_iter()
                .find(|r| r.dataset == name)
                .ok_or_else(|| anyhow::anyhow!("no dataset {name:?} has been imported"))?;
            println!(
                "dataset {name} (generation {}) from {}",
                report.generation, report.file
            );
            println!("rows: {}", accounting(&report));
            for (reason, n) in &report.quarantined {
                println!("  {reason:<28} {n}");
            }
            print_quarantine(&gen_dir.join(dataset::QUARANTINE_FILE), limit)
        }
    }
}

/// `N read = K kept + Q quarantined + D duplicates`.
fn accounting(r: &crate::dataset::ImportReport) -> String {
    format!(
        "{} read = {} kept + {} quarantined + {} duplicates",
        r.rows_read, r.rows_kept, r.rows_quarantined, r.duplicate_rows
    )
}

/// Prints the values of a quarantine report (at most `limit`), with line,
/// column and reason.
fn print_quarantine(path: &Path, limit: Option<usize>) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("{}: cannot read", path.display()))?;
    println!("quarantined values (line, column, value, reason):");
    for rec in rdr.records().take(limit.unwrap_or(usize::MAX)) {
        let rec = rec.with_context(|| format!("{}: cannot read", path.display()))?;
        let field = |i: usize| rec.get(i).unwrap_or_default();
        println!(
            "  line {}, {}: {:?} ({})",
            field(1),
            field(2),
            field(3),
            field(4)
        );
    }
    Ok(())
}

/// The encoding `--encoding` names, if given.
fn encoding_named(label: Option<String>) -> anyhow::Result<Option<&'static encoding_rs::Encoding>> {
    match label {
        Some(label) => match encoding_rs::Encoding::for_label(label.as_bytes()) {
            Some(e) => Ok(Some(e)),
            None => bail!(
                "--encoding {label:?}: not an encoding name (try utf-8, gb18030, gbk, utf-16le, utf-16be)"
            ),
        },
        None => Ok(None),
    }
}

/// `dxmesh dataset inspect`: a dry-run import into a temporary directory.
fn inspect(opts: crate::dataset::ImportOptions, rows: usize) -> anyhow::Result<()> {
    use crate::dataset::{self, DatasetReader};
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let report = dataset::import(&data, &opts)?;
    println!("file:      {}", report.file);
    println!("format:    {}", dialect(&report));
    println!(
        "columns (export name -> canonical name; key column {}):",
        report.id_column
    );
    for (raw, canonical) in report.source_columns.iter().zip(&report.columns) {
        println!("  {raw:<24} -> {canonical}");
    }
    println!("rows:      {}", accounting(&report));
    let reader = DatasetReader::open(&data, "inspect")?;
    println!("first rows as stored ({}):", reader.columns().join(", "));
    let mut shown = 0;
    'blocks: for block in reader.blocks() {
        for r in block? {
            if shown == rows {
                break 'blocks;
            }
            println!("  {} | {}", r.id, r.values.join(" | "));
            shown += 1;
        }
    }
    if report.rows_quarantined > 0 {
        let q = dataset::current_dir(&data, "inspect")?.join(dataset::QUARANTINE_FILE);
        print_quarantine(&q, Some(rows))?;
    }
    Ok(())
}

/// The format and how it was read: `csv, encoding UTF-8, delimiter tab`,
/// `xlsx, sheet "Sheet1"`.
fn dialect(r: &crate::dataset::ImportReport) -> String {
    let format = serde_json::to_value(r.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match (&r.sheet, &r.delimiter) {
        (Some(sheet), _) => format!("{format}, sheet {sheet:?}"),
        (None, Some(d)) => format!("{format}, encoding {}, delimiter {d}", r.encoding),
        (None, None) => format!("{format}, encoding {}", r.encoding),
    }
}

fn render_report(r: &crate::dataset::ImportReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "dataset {} (generation {}) from {} ({})\n",
        r.dataset,
        r.generation,
        r.file,
        dialect(r)
    ));
    out.push_str(&format!("  rows:                {}\n", accounting(r)));
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
