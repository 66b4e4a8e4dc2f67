//! The dataset store's names and types: the files of a generation, block
//! limits, canonical columns, what an import is asked to do and what it
//! reports, every problem a row can have and every error an import can end
//! with, and where a dataset's generations live.

use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::IdNumber;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

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
pub(super) const LOCK_FILE: &str = "LOCK";
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
    /// `None`: from the extension (`.csv`, `.tsv`, `.txt`, `.jsonl`,
    /// `.ndjson`, `.xlsx`, `.xlsm`, `.xls`, `.xlsb`, `.ods`).
    pub format: Option<Format>,
    /// Latest possible birth date, normally today.
    pub reference: Date,
    /// The export's text encoding; `None`: from its byte-order mark, else
    /// UTF-8, or GB18030 if its start is not UTF-8 but Chinese text in
    /// GB18030.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The CSV field delimiter (`,`, tab, `;` or `|`); `None`: the one
    /// the header line uses most (outside quotes), a comma if it has none.
    pub delimiter: Option<u8>,
    /// The workbook sheet to read; `None`: the first.
    pub sheet: Option<String>,
    /// Replace the current generation even with one of no rows or under
    /// half its rows (a truncated export is refused otherwise).
    pub accept_shrink: bool,
    /// Bytes of memory the duplicate detection keeps to (half for its
    /// table, half for sorting the rows past it on disk).
    pub memory: usize,
}

/// Below this share of the current generation's rows (and at none), an
/// import is taken for a truncated export and refused unless accepted.
pub const SHRINK_LIMIT_PERCENT: u64 = 50;

/// The CSV delimiters an import reads (`--delimiter` names them
/// `comma`, `tab`, `semicolon`, `pipe`, or by the character).
pub const DELIMITERS: [(u8, &str); 4] = [
    (b',', "comma"),
    (b'\t', "tab"),
    (b';', "semicolon"),
    (b'|', "pipe"),
];

/// The delimiter a name or character stands for.
pub fn delimiter_named(name: &str) -> Option<u8> {
    let name = name.trim_matches(|c: char| c == ' ' || c == '\'');
    DELIMITERS.iter().find_map(|&(b, n)| {
        let as_char = (b as char).to_string();
        (name.eq_ignore_ascii_case(n) || name == as_char || (b == b'\t' && name == "\\t"))
            .then_some(b)
    })
}

/// The name of a delimiter (`comma`, `tab`, ...).
pub fn delimiter_name(b: u8) -> &'static str {
    DELIMITERS
        .iter()
        .find(|&&(d, _)| d == b)
        .map_or("comma", |&(_, n)| n)
}

/// Input format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// CSV with a header line (in any encoding the import reads, see `ImportOptions::encoding`).
    Csv,
    /// One JSON object per line; the first object's keys are the columns.
    JsonLines,
    /// An Excel 2007+ workbook (`.xlsx`, `.xlsm`), read as it streams.
    Xlsx,
    /// An Excel 97-2003 workbook (`.xls`).
    Xls,
    /// An Excel binary workbook (`.xlsb`).
    Xlsb,
    /// An OpenDocument spreadsheet (`.ods`).
    Ods,
}

impl Format {
    /// The format an extension implies, if any (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            "xls" => Some(Format::Xls),
            "xlsb" => Some(Format::Xlsb),
            "ods" => Some(Format::Ods),
            _ => None,
        }
    }

    /// Whether this is a workbook format (sheets of typed cells).
    pub fn is_workbook(self) -> bool {
        matches!(
            self,
            Format::Xlsx | Format::Xls | Format::Xlsb | Format::Ods
        )
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
    /// The export's own column names, in the same order.
    #[serde(default)]
    pub source_columns: Vec<String>,
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
    /// The encoding the source was read in (`UTF-8`, `gb18030`, `GBK`,
    /// `UTF-16LE`, `UTF-16BE`: `encoding_rs` names).
    #[serde(default = "utf8_name")]
    pub encoding: String,
    /// A CSV export's field delimiter (`comma`, `tab`, `semicolon`, `pipe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// A workbook's sheet that was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
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
    #[error(
        "no key column {column:?}: the file's columns are {}; a column is read as {column:?} if it is named {}{}",
        found.join(", "),
        accepted.join(" or "),
        if accepted.len() > 1 { " (the mapping's names for it)" } else { " (a mapping file, --mapping, names it otherwise: deploy/mappings/zh-headers.toml knows the usual Chinese names)" }
    )]
    MissingIdColumn {
        /// The key column's canonical name.
        column: String,
        /// The file's column names, as its header writes them (trimmed).
        found: Vec<String>,
        /// The names that would be read as the key column: its canonical
        /// name and the mapping's names for it.
        accepted: Vec<String>,
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
    #[error("invalid UTF-8{} (an export in GB18030 or GBK: import it with --encoding gb18030)", column.as_ref().map(|c| format!(" in column {c:?}")).unwrap_or_default())]
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

fn utf8_name() -> String {
    "UTF-8".into()
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
        "{}: cannot tell the format from the extension (.csv, .tsv, .txt, .jsonl, .ndjson, .xlsx, .xlsm, .xls, .xlsb, .ods); give the format",
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
    /// A workbook that cannot be opened or read.
    #[error("{}: {message}", file.display())]
    Workbook {
        /// The workbook.
        file: PathBuf,
        /// What is wrong (the reader's words).
        message: String,
    },
    /// The sheet asked for is not in the workbook.
    #[error("{}: no sheet named {sheet:?}; its sheets: {}", file.display(), sheets.join(", "))]
    NoSuchSheet {
        /// The workbook.
        file: PathBuf,
        /// The sheet asked for.
        sheet: String,
        /// The workbook's sheets.
        sheets: Vec<String>,
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
    /// The export would replace the dataset with one of no rows or under
    /// half its rows: nothing was imported.
    #[error(
        "{}: {rows} rows to keep where dataset {dataset:?} now has {current} (generation {generation}); a truncated export would replace it, so nothing was imported. If the dataset really shrank, import again with --accept-shrink",
        file.display()
    )]
    Shrinking {
        /// The export.
        file: PathBuf,
        /// The dataset.
        dataset: String,
        /// Rows the export would keep.
        rows: u64,
        /// Rows of the current generation.
        current: u64,
        /// The current generation.
        generation: u64,
    },
    /// A generation asked for is no longer held (an import replaced it and
    /// nothing pinned it).
    #[error("dataset {dataset:?} no longer holds generation {generation}")]
    GenerationGone {
        /// The dataset.
        dataset: String,
        /// The generation asked for.
        generation: u64,
    },
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
    /// The disk has no room for the import, or sorting its rows past the
    /// duplicate table failed.
    #[error(transparent)]
    Sort(#[from] super::sorted_error::SortedError),
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

pub(super) fn dataset_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(DATASETS_DIR).join(name)
}

pub(super) fn generation_dir(dataset_dir: &Path, generation: u64) -> PathBuf {
    dataset_dir.join(format!("gen-{generation}"))
}

/// The dataset directory's lock file, opened (created if need be), and
/// its path; the caller takes the lock.
pub(super) fn lock_file(dataset_dir: &Path) -> Result<(std::fs::File, PathBuf), ImportError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dataset_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    Ok((file, path))
}

/// The current generation of a dataset directory, if it has one.
pub(super) fn read_current(dataset_dir: &Path) -> Result<Option<u64>, ImportError> {
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
