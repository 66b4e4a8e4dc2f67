//! Department exports in a provider node's dataset store: this module owns
//! `DATA_DIR/datasets/`. [`import`] streams a CSV or JSON Lines export from
//! the department's own system, renames its columns to the canonical names
//! with an optional mapping file, normalises resident ID numbers and dates,
//! quarantines every value that cannot be normalised (nothing is dropped
//! silently), collapses exact duplicate rows, and writes a new generation of
//! the dataset that becomes visible atomically. [`DatasetReader`] streams the
//! current generation back block by block; [`list`] reports every dataset.
//!
//! ## Store layout
//!
//! ```text
//! DATA_DIR/datasets/<name>/
//!     LOCK                  advisory lock held by the import in progress
//!     CURRENT               the current generation number, as text
//!     gen-<n>/records.bin   blocks: u32 big-endian length + codec::encode(&Vec<Record>)
//!     gen-<n>/report.json   the ImportReport of that import
//!     gen-<n>/quarantine.csv  file,line,column,raw_value,reason
//! ```
//!
//! An import writes `gen-<n+1>/` completely, fsyncs its files and the
//! directories, then replaces `CURRENT` atomically
//! ([`crate::fsutil::write_atomic`]) and only then removes older generations.
//! A crash at any moment leaves the previous import intact; readers follow
//! `CURRENT` only. A failed import removes its partial generation.
//!
//! ## Input rules
//!
//! - CSV: UTF-8 with a header line (a UTF-8 BOM is removed), RFC 4180
//!   quoting; JSON Lines: one object per line, the first object's keys are
//!   the columns, values are strings, numbers or booleans (as text) or null
//!   (empty); blank lines are skipped in both.
//! - Column names are trimmed and lowercased, then renamed by the mapping
//!   file (`mapping`); the key column (`id_number` unless the mapping says
//!   otherwise) is required.
//! - ID columns ([`ID_COLUMNS`]) are normalised with
//!   `dxmesh_protocol::id::normalize_with_fixes` (the key always, the others
//!   when non-empty); date columns (`*_date`, `since`) accept `YYYY-MM-DD`,
//!   `YYYYMMDD`, `YYYY/MM/DD` and `YYYY.MM.DD` and are stored `YYYY-MM-DD`;
//!   other values are trimmed (including U+3000).
//! - A value that cannot be normalised sends its row to the quarantine
//!   report (one line per bad value, `reason` is `IdError::code()` or
//!   `invalid_date`). Malformed input (ragged rows, bad quoting, invalid
//!   UTF-8, no header, duplicate or empty column names, a JSON line that is
//!   not an object) stops the import with an error naming the file, the
//!   1-based physical line and the problem.
//!
//! ## Throughput
//!
//! The import is a pipeline (about 3.8 million registry rows a second on
//! two cores): a reader thread (file reads, BOM removal, quote and line
//! tracking, CSV parsing into reused `csv::ByteRecord`s, plain lines split
//! directly and the rest by `csv_core`, see `source`) with a helper that
//! hashes the source (SHA-256); the calling thread (UTF-8 check,
//! normalisation straight into the records' final encoding, quarantine);
//! and a writer thread (duplicate detection, see `dedup`, and `O_DIRECT`
//! writes, see `records`). Memory stays bounded whatever the file size,
//! except for the duplicate table: 16 bytes per slot, at most 3/4 full
//! (about 21 bytes per distinct row).

mod dedup;
mod mapping;
mod normalise;
mod records;
mod source;
#[cfg(test)]
mod tests;

pub(crate) use records::{BlockCursor, DirectWriter, RecordsReader};
pub use records::{Blocks, DatasetReader};

use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::IdNumber;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Directory under the node's data directory that holds every dataset.
pub const DATASETS_DIR: &str = "datasets";
/// File naming the current generation of a dataset.
pub const CURRENT_FILE: &str = "CURRENT";
/// The records file of a generation.
pub const RECORDS_FILE: &str = "records.bin";
/// The import report of a generation.
pub const REPORT_FILE: &str = "report.json";
/// The quarantine report of a generation.
pub const QUARANTINE_FILE: &str = "quarantine.csv";
const LOCK_FILE: &str = "LOCK";
/// Most records in one block of `records.bin`.
pub const MAX_BLOCK_RECORDS: usize = 65_536;
/// A block is cut early when its encoding would exceed this many bytes
/// (half the codec's decode limit).
pub const BLOCK_SOFT_LIMIT: usize = 8 * 1024 * 1024;
/// Largest row accepted (its encoding must fit in one block).
pub const MAX_ROW_BYTES: usize = BLOCK_SOFT_LIMIT - 64;

/// The canonical column names (see the domain description).
pub const CANONICAL_COLUMNS: [&str; 16] = [
    "id_number",
    "name",
    "gender",
    "birth_date",
    "region_code",
    "address",
    "status",
    "death_date",
    "category",
    "level",
    "certificate_date",
    "insurance_type",
    "since",
    "province_code",
    "child_id_number",
    "mother_id_number",
];

/// Canonical columns holding resident ID numbers (normalised when non-empty).
pub const ID_COLUMNS: [&str; 3] = ["id_number", "child_id_number", "mother_id_number"];

/// Whether a canonical column holds dates (`*_date` and `since`).
pub fn is_date_column(canonical: &str) -> bool {
    canonical.ends_with("_date") || canonical == "since"
}

/// What to import and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Dataset name: `[a-z0-9_]{1,64}`.
    pub dataset: String,
    /// The department export.
    pub file: PathBuf,
    /// Optional TOML mapping file (column renames, value translations).
    pub mapping: Option<PathBuf>,
    /// `None`: from the extension (`.csv`, `.jsonl`, `.ndjson`).
    pub format: Option<Format>,
    /// Latest possible birth date, normally today.
    pub reference: Date,
}

/// Input format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// UTF-8 CSV with a header line (a UTF-8 BOM is removed).
    Csv,
    /// One JSON object per line; the first object's keys are the columns.
    JsonLines,
}

impl Format {
    /// The format an extension implies, if any (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// One kept row: the normalised ID and the other columns' normalised values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The key column's normalised ID number.
    pub id: IdNumber,
    /// The other columns, in [`DatasetReader::columns`] order.
    pub values: Vec<String>,
}

/// What an import read, kept, fixed and quarantined; `report.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Dataset name.
    pub dataset: String,
    /// The source file, as given.
    pub file: String,
    /// Its format.
    pub format: Format,
    /// Canonical column names in source order, the key column included.
    pub columns: Vec<String>,
    /// The key column's canonical name.
    pub id_column: String,
    /// Data rows read (the header excluded).
    pub rows_read: u64,
    /// Rows stored (after quarantine and duplicate collapse).
    pub rows_kept: u64,
    /// Rows with at least one value that could not be normalised.
    pub rows_quarantined: u64,
    /// ID values (key and other ID columns) that needed each fix, by fix name
    /// (`full_width`, `lowercase_x`, `whitespace`, `separator`, `legacy_15`),
    /// counted over the rows that were not quarantined (duplicates included).
    pub fixes: BTreeMap<String, u64>,
    /// Quarantined values by reason (`check_character`, `invalid_date`, ...).
    pub quarantined: BTreeMap<String, u64>,
    /// Rows identical (after normalisation) to an earlier row, not stored.
    pub duplicate_rows: u64,
    /// Distinct ID numbers among the kept rows.
    pub distinct_ids: u64,
    /// Distinct ID numbers having more than one kept row.
    pub ids_with_several_rows: u64,
    /// SHA-256 of the source file's bytes, hex.
    pub source_sha256: String,
    /// Unix seconds when the import finished.
    pub imported_at: u64,
    /// The generation this import created.
    pub generation: u64,
}

/// What is wrong with an input file at a given line.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// No header line.
    #[error("empty file: no header line")]
    Empty,
    /// A header column whose name is empty.
    #[error("header column {position} has an empty name")]
    EmptyColumnName {
        /// 1-based position in the header.
        position: usize,
    },
    /// Two header columns with the same (canonical) name.
    #[error("header columns {first:?} and {second:?} both name the column {name:?}")]
    DuplicateColumn {
        /// The canonical name.
        name: String,
        /// The first source column.
        first: String,
        /// The second source column.
        second: String,
    },
    /// The key column is not in the header.
    #[error("no key column {column:?}; columns found: {}", found.join(", "))]
    MissingIdColumn {
        /// The key column's canonical name.
        column: String,
        /// The canonical names found.
        found: Vec<String>,
    },
    /// A row with a different number of fields than the header.
    #[error("row has {found} fields, the header has {expected}")]
    RaggedRow {
        /// Fields in the header.
        expected: u64,
        /// Fields in the row.
        found: u64,
    },
    /// A quoted field that is never closed.
    #[error("quoted field opened here is never closed")]
    UnterminatedQuote,
    /// A `"` inside a field that does not start with one.
    #[error(
        "quote character inside an unquoted field (quote the whole field and double the quote)"
    )]
    QuoteInUnquotedField,
    /// Characters between a closing quote and the next separator.
    #[error("text after the closing quote of a quoted field")]
    TextAfterClosingQuote,
    /// Bytes that are not UTF-8.
    #[error("invalid UTF-8{}", column.as_ref().map(|c| format!(" in column {c:?}")).unwrap_or_default())]
    InvalidUtf8 {
        /// The source column, when known.
        column: Option<String>,
    },
    /// A JSON Lines line that is not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A JSON Lines line that is not valid JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A key not present in the first object (the first object fixes the columns).
    #[error("key {key:?} is not a column (the first object's keys are the columns)")]
    UnknownJsonKey {
        /// The key.
        key: String,
    },
    /// A key given twice in one object.
    #[error("key {key:?} appears twice")]
    DuplicateJsonKey {
        /// The key.
        key: String,
    },
    /// An array or object value.
    #[error(
        "value of {key:?} is an array or object; only strings, numbers, booleans and null are accepted"
    )]
    NestedJsonValue {
        /// The key.
        key: String,
    },
    /// A row too large to store.
    #[error("row of {bytes} bytes exceeds the limit of {limit} bytes")]
    RowTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// Why an import, or reading a dataset, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Not `[a-z0-9_]{1,64}`.
    #[error("invalid dataset name {0:?}: use 1 to 64 characters among a-z, 0-9 and _")]
    InvalidName(String),
    /// No format given and the extension says nothing.
    #[error(
        "{}: cannot tell the format from the extension (.csv, .jsonl, .ndjson); give the format",
        file.display()
    )]
    UnknownFormat {
        /// The source file.
        file: PathBuf,
    },
    /// The input file is malformed; nothing of this import became visible.
    #[error("{}:{line}: {problem}", file.display())]
    Malformed {
        /// The source file.
        file: PathBuf,
        /// 1-based physical line.
        line: u64,
        /// What is wrong.
        problem: Problem,
    },
    /// The mapping file is invalid.
    #[error("mapping file {}:{line}: {message}", file.display())]
    Mapping {
        /// The mapping file.
        file: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The dataset has no completed import.
    #[error("dataset {0:?} has no completed import")]
    NotFound(String),
    /// Another import of the same dataset holds its lock.
    #[error("dataset {0:?} is being imported by another process")]
    Busy(String),
    /// A block of a records file cannot be read back.
    #[error("{}: corrupt block at byte offset {offset}: {problem}", file.display())]
    CorruptBlock {
        /// The records file.
        file: PathBuf,
        /// Byte offset of the block's length prefix.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A store file (`CURRENT`, `report.json`, `records.bin`) is invalid.
    #[error("{}: {problem}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A pipeline thread failed unexpectedly.
    #[error("import failed: {0}")]
    Internal(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a dataset name: `[a-z0-9_]{1,64}`.
pub fn validate_name(name: &str) -> Result<(), ImportError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ImportError::InvalidName(name.to_string()))
    }
}

fn dataset_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(DATASETS_DIR).join(name)
}

fn generation_dir(dataset_dir: &Path, generation: u64) -> PathBuf {
    dataset_dir.join(format!("gen-{generation}"))
}

/// The current generation of a dataset directory, if it has one.
fn read_current(dataset_dir: &Path) -> Result<Option<u64>, ImportError> {
    let path = dataset_dir.join(CURRENT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(Some)
            .ok_or_else(|| ImportError::Corrupt {
                file: path,
                problem: format!("not a generation number: {:?}", text.trim()),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The directory of the current generation of dataset `name`
/// (`DATA_DIR/datasets/<name>/gen-<n>`, holding `quarantine.csv` and `report.json`).
pub fn current_dir(data_dir: &Path, name: &str) -> Result<PathBuf, ImportError> {
    validate_name(name)?;
    let dir = dataset_dir(data_dir, name);
    let generation = read_current(&dir)?.ok_or_else(|| ImportError::NotFound(name.to_string()))?;
    Ok(generation_dir(&dir, generation))
}

/// The reports of every dataset with a completed import, by name.
pub fn list(data_dir: &Path) -> Result<Vec<ImportReport>, ImportError> {
    let root = data_dir.join(DATASETS_DIR);
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&root)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&root))?;
        if let Some(name) = entry.file_name().to_str()
            && validate_name(name).is_ok()
            && entry.path().is_dir()
        {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut reports = Vec::new();
    for name in names {
        match records::read_current_report(data_dir, &name) {
            Ok(report) => reports.push(report),
            Err(ImportError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(reports)
}

fn create_dir_private(path: &Path) -> Result<(), ImportError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))
}

fn sync_dir(path: &Path) -> Result<(), ImportError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(path))
}

fn create_private_file(path: &Path) -> Result<File, ImportError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))
}

/// Holds the dataset's advisory lock while alive.
struct DatasetLock(#[allow(dead_code)] File);

fn lock_dataset(dataset_dir: &Path, name: &str) -> Result<DatasetLock, ImportError> {
    let path = dataset_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(DatasetLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(ImportError::Busy(name.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// Imports a department export as a new generation of dataset `opts.dataset`
/// under `data_dir`, and returns its report (also kept as `report.json`).
///
/// On any error nothing of this import becomes visible: the previous
/// generation stays current and readable.
pub fn import(data_dir: &Path, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    validate_name(&opts.dataset)?;
    let format = match opts.format {
        Some(f) => f,
        None => Format::from_path(&opts.file).ok_or_else(|| ImportError::UnknownFormat {
            file: opts.file.clone(),
        })?,
    };
    let mapping = match &opts.mapping {
        Some(path) => mapping::Mapping::load(path)?,
        None => mapping::Mapping::default(),
    };
    let (source, header) = source::Source::open(&opts.file, format)?;
    let plan = normalise::Plan::new(&header, &mapping, &opts.file)?;

    let root = data_dir.join(DATASETS_DIR);
    let ds_dir = root.join(&opts.dataset);
    create_dir_private(&ds_dir)?;
    sync_dir(&root)?;
    sync_dir(data_dir)?;
    let _lock = lock_dataset(&ds_dir, &opts.dataset)?;
    let previous = read_current(&ds_dir)?;
    let generation = previous
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| ImportError::Corrupt {
            file: ds_dir.join(CURRENT_FILE),
            problem: "generation number overflow".into(),
        })?;
    let gen_dir = generation_dir(&ds_dir, generation);
    if gen_dir.exists() {
        // Left over by an import that crashed before publishing (we hold the lock).
        std::fs::remove_dir_all(&gen_dir).map_err(io_err(&gen_dir))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(&gen_dir)
        .map_err(io_err(&gen_dir))?;

    let report = match write_generation(&gen_dir, source, &plan, opts, format, generation) {
        Ok(report) => report,
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(&gen_dir) {
                tracing::warn!(dir = %gen_dir.display(), error = %rm, "cannot remove failed import");
            }
            return Err(e);
        }
    };
    sync_dir(&gen_dir)?;
    sync_dir(&ds_dir)?;
    let current = ds_dir.join(CURRENT_FILE);
    crate::fsutil::write_atomic(&current, format!("{generation}\n").as_bytes(), 0o600)
        .map_err(io_err(&current))?;
    remove_old_generations(&ds_dir, generation);
    Ok(report)
}

/// Removes every generation directory but `keep` (best effort: a leftover
/// costs disk space, never correctness, since readers follow `CURRENT`).
fn remove_old_generations(ds_dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(ds_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("gen-"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if n != keep
            && let Err(e) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove old generation");
        }
    }
}

/// Batches of parsed rows travel from the reader thread to the normaliser.
const BATCH_ROWS: usize = 4096;
/// Batches in flight between the reader thread and the normaliser.
const BATCHES_IN_FLIGHT: usize = 16;

fn write_generation(
    gen_dir: &Path,
    source: source::Source,
    plan: &normalise::Plan,
    opts: &ImportOptions,
    format: Format,
    generation: u64,
) -> Result<ImportReport, ImportError> {
    let records_path = gen_dir.join(RECORDS_FILE);
    let records_file = create_private_file(&records_path)?;
    let quarantine_path = gen_dir.join(QUARANTINE_FILE);
    let quarantine_file = create_private_file(&quarantine_path)?;
    let file_len = std::fs::metadata(&opts.file)
        .map_err(io_err(&opts.file))?
        .len();
    let quarantine = normalise::Quarantine::new(
        BufWriter::with_capacity(64 * 1024, quarantine_file),
        &quarantine_path,
        opts.file.display().to_string(),
    )?;
    let mut normaliser =
        normalise::Normaliser::new(plan, opts.reference, &opts.file, file_len, quarantine);

    let (stats, kept, summary) = std::thread::scope(|s| {
        let (batch_tx, batch_rx) = mpsc::sync_channel::<source::Batch>(BATCHES_IN_FLIGHT);
        let (spare_batch_tx, spare_batch_rx) = mpsc::channel::<source::Batch>();
        let (block_tx, block_rx) = mpsc::sync_channel::<normalise::Block>(4);
        let (spare_block_tx, spare_block_rx) = mpsc::channel::<normalise::Block>();
        let reader = std::thread::Builder::new()
            .name("dataset-read".into())
            .spawn_scoped(s, move || source.run(batch_tx, spare_batch_rx, BATCH_ROWS))
            .map_err(|e| ImportError::Internal(format!("cannot start reader thread: {e}")))?;
        let writer_path = records_path.clone();
        let writer = std::thread::Builder::new()
            .name("dataset-write".into())
            .spawn_scoped(s, move || {
                records::write_blocks(records_file, &writer_path, block_rx, spare_block_tx)
            })
            .map_err(|e| ImportError::Internal(format!("cannot start writer thread: {e}")))?;
        let outcome = normaliser.run(batch_rx, spare_batch_tx, block_tx, spare_block_rx);
        let read = reader
            .join()
            .map_err(|_| ImportError::Internal("reader thread panicked".into()))?;
        let written = writer
            .join()
            .map_err(|_| ImportError::Internal("writer thread panicked".into()))?;
        // Errors in file order: the normaliser saw earlier rows than the
        // reader's error; the writer fails only on I/O.
        match outcome {
            Err(normalise::Stop::Failed(e)) => return Err(e),
            Err(normalise::Stop::WriterGone) => {
                written?;
                return Err(ImportError::Internal("writer thread stopped".into()));
            }
            Ok(()) => {}
        }
        let summary = read?;
        let kept = written?;
        Ok((normaliser.finish()?, kept, summary))
    })?;

    let imported_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report = ImportReport {
        dataset: opts.dataset.clone(),
        file: opts.file.display().to_string(),
        format,
        columns: plan.canonical_names(),
        id_column: plan.id_column().to_string(),
        rows_read: stats.rows_read,
        rows_kept: kept.rows_kept,
        rows_quarantined: stats.rows_quarantined,
        fixes: stats.fixes,
        quarantined: stats.quarantined,
        duplicate_rows: kept.duplicate_rows,
        distinct_ids: kept.distinct_ids,
        ids_with_several_rows: kept.ids_with_several_rows,
        source_sha256: summary.sha256,
        imported_at,
        generation,
    };
    let report_path = gen_dir.join(REPORT_FILE);
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| ImportError::Internal(format!("cannot encode report: {e}")))?;
    let mut file = create_private_file(&report_path)?;
    file.write_all(&json)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io_err(&report_path))?;
    Ok(report)
}
