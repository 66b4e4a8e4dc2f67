//! Results for analysts: `dxmesh results export` turns the canonical files
//! of a compare output (`summary.json`, one CSV per result, `coverage.csv`)
//! into files an analyst opens in Excel, in another directory, leaving the
//! canonical ones untouched. Each result becomes a CSV file with the
//! columns an analyst filters by first (`reason`: the finding in words;
//! `region`: the first six digits of the disclosed `id_number`), then the
//! disclosed fields; coverage gains `coverage_rate`. The CSV files are UTF-8
//! with a byte-order mark (else GB18030), headers and reasons in English or
//! Chinese; a comparison made with `--previous` also gives each result's
//! change list (`changes_<result>.csv`: who is new, who left, who stayed,
//! with the note); `results.xlsx` optionally holds the same tables, one sheet
//! each. Every file is read and written row by row and replaced
//! atomically.
//!
//! Files: the options and report (`options`), errors (`error`), reading a
//! canonical file as a table (`table`), the CSV (`csvout`) and workbook
//! (`workbook`) writers and their atomic file (`atomic`).

mod atomic;
mod csvout;
pub mod error;
pub mod options;
mod table;

pub(crate) use table::reason;
mod workbook;

#[cfg(test)]
mod tests;

pub use error::ExportError;
pub use options::{Encoding, ExportOptions, Headers, Persons, Report, Written};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use table::TableReader;
use workbook::Book;

/// The name of the workbook in the output directory.
pub const WORKBOOK: &str = "results.xlsx";

/// What the export reads of `summary.json`.
#[derive(Debug, Deserialize)]
struct Summary {
    /// Each result by name.
    results: BTreeMap<String, ResultEntry>,
    /// Coverage by region, if the job counts it.
    #[serde(default)]
    coverage: BTreeMap<String, serde_json::Value>,
    /// The change lists since a previous comparison, if it named one.
    #[serde(default)]
    changes: Option<ChangesEntry>,
}

/// What the export reads of `summary.json`'s `changes`.
#[derive(Debug, Deserialize)]
struct ChangesEntry {
    /// Each result's change list, by result.
    #[serde(default)]
    results: BTreeMap<String, ResultEntry>,
}

/// One result of `summary.json`.
#[derive(Debug, Deserialize)]
struct ResultEntry {
    /// Its CSV file (empty if none was written).
    #[serde(default)]
    file: String,
    /// The provider's refusal code, if it refused to disclose.
    #[serde(default)]
    refused: Option<String>,
    /// Persons in the result.
    #[serde(default)]
    count: Option<u64>,
    /// Persons with more than one record disclosed.
    #[serde(default)]
    persons_with_several_rows: Option<u64>,
}

/// Exports the compare output `opts.from` to `opts.out` (created if need
/// be; it must be another directory).
pub fn export(opts: &ExportOptions) -> Result<Report, ExportError> {
    let summary = read_summary(&opts.from)?;
    let out = prepare_out(&opts.from, &opts.out)?;
    let mut book = match opts.xlsx {
        true => Some(Book::new(&out.join(WORKBOOK))?),
        false => None,
    };
    let mut report = Report::default();
    for (name, r) in &summary.results {
        // Only the file's name: the compare output may have moved since.
        let file = Path::new(&r.file).file_name();
        let Some(file) = file.filter(|_| !r.file.is_empty()) else {
            let why = match &r.refused {
                Some(code) => format!("disclosure refused [{code}]"),
                None => "no file written".to_string(),
            };
            report.skipped.push((name.clone(), why));
            continue;
        };
        let src = opts.from.join(file);
        let table = TableReader::result(&src, name, opts.headers)?;
        let mut written = copy_table(table, name, &out.join(file), opts, book.as_mut())?;
        written.persons = r.count.map(|persons| Persons {
            persons,
            with_several_rows: r.persons_with_several_rows.unwrap_or(0),
        });
        report.written.push(written);
    }
    // Each change list as `changes_<result>.csv` (and a sheet).
    for name in summary.changes.iter().flat_map(|c| c.results.keys()) {
        let src = opts
            .from
            .join(crate::compare::changes::CHANGES_DIR)
            .join(format!("{name}.csv"));
        let table = TableReader::changes(&src, name, opts.headers)?;
        let label = format!("changes_{name}");
        let dest = out.join(format!("{label}.csv"));
        report
            .written
            .push(copy_table(table, &label, &dest, opts, book.as_mut())?);
    }
    let coverage = opts.from.join("coverage.csv");
    if !summary.coverage.is_empty() || coverage.exists() {
        let table = TableReader::coverage(&coverage, opts.headers)?;
        let dest = out.join("coverage.csv");
        report
            .written
            .push(copy_table(table, "coverage", &dest, opts, book.as_mut())?);
    }
    if let Some(book) = book {
        let (rows, sheets) = book.save()?;
        report.written.push(Written {
            path: out.join(WORKBOOK),
            rows,
            sheets,
            persons: None,
        });
    }
    Ok(report)
}

/// Creates `out`; returns it, refused if it is `from`.
fn prepare_out(from: &Path, out: &Path) -> Result<PathBuf, ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ExportError::Io { path, error }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let same = std::fs::canonicalize(from).map_err(io(from))?
        == std::fs::canonicalize(out).map_err(io(out))?;
    if same {
        return Err(ExportError::SameDirectory {
            dir: out.to_path_buf(),
        });
    }
    Ok(out.to_path_buf())
}

/// Reads `summary.json` of the compare output `from`.
fn read_summary(from: &Path) -> Result<Summary, ExportError> {
    let path = from.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|error| ExportError::Io {
        path: path.clone(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|error| ExportError::Summary { path, error })
}

/// Copies `table` to the CSV file `dest` and, if there is a workbook, to a
/// sheet named `name`.
fn copy_table(
    mut table: TableReader,
    name: &str,
    dest: &Path,
    opts: &ExportOptions,
    mut book: Option<&mut Book>,
) -> Result<Written, ExportError> {
    let mut csv = csvout::CsvSink::create(dest, opts.encoding, table.header())?;
    if let Some(b) = book.as_mut() {
        b.begin(name, table.header())?;
    }
    while let Some(row) = table.next_row()? {
        csv.write_row(&row)?;
        if let Some(b) = book.as_mut() {
            b.write_row(&row)?;
        }
    }
    if let Some(b) = book.as_mut() {
        b.end()?;
    }
    Ok(Written {
        path: dest.to_path_buf(),
        rows: csv.finish()?,
        sheets: Vec::new(),
        persons: None,
    })
}
