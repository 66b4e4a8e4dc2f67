//! Department exports in a provider node's dataset store: this module owns
//! `DATA_DIR/datasets/`. [`import`] streams a CSV, JSON Lines or workbook export from
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
//!     pins/<agreement>-<epoch>  the generation that feed was built from
//! ```
//!
//! An import writes `gen-<n+1>/` completely, fsyncs its files and the
//! directories, then replaces `CURRENT` atomically
//! ([`crate::base::fsutil::write_atomic`]) and only then removes older
//! generations, but for those a published feed pins (`pins/<feed>`, see
//! `pins`): a feed's disclosures read the generation it was built from.
//! A crash at any moment leaves the previous import intact; readers follow
//! `CURRENT` only. A failed import removes its partial generation. So does
//! one that would replace the dataset with no rows or under half its rows
//! (a truncated export, `SHRINK_LIMIT_PERCENT`), unless the operator
//! accepts it (`ImportOptions::accept_shrink`, `--accept-shrink`).
//!
//! ## Input rules
//!
//! - Encodings: UTF-8 (a BOM is removed), GB18030/GBK, UTF-16LE/BE with a
//!   BOM; found by the tap (`tap`) or named (`ImportOptions::encoding`),
//!   decoded as the file streams; a byte the encoding does not define
//!   stops the import with its line and column.
//! - CSV: a header line, RFC 4180 quoting, a comma, tab, `;` or `|`
//!   between fields (named, or the one the header line uses most, see
//!   `tap`); JSON Lines: one object per line, the first object's keys are
//!   the columns, values are strings, numbers or booleans (as text) or null
//!   (empty); blank lines are skipped in both. Workbooks (`.xlsx`, `.xls`,
//!   `.xlsb`, `.ods`): a named or the first sheet, its first non-empty row
//!   the header, cells as text (see `workbook`: number cells too long to
//!   be exact are quarantined, date cells read as dates, and in a date
//!   column a number is an Excel serial date).
//! - Column names are trimmed and lowercased, then renamed by the mapping
//!   file (`mapping`); the key column (`id_number` unless the mapping says
//!   otherwise) is required.
//! - ID columns ([`ID_COLUMNS`]) are normalised with
//!   `dxmesh_protocol::id::normalise_with_fixes` (the key always, the others
//!   when non-empty); date columns (`*_date`, `since`) accept `YYYY-MM-DD`,
//!   `YYYYMMDD`, `YYYY/MM/DD` and `YYYY.MM.DD` and are stored `YYYY-MM-DD`;
//!   other values are trimmed (including U+3000).
//! - A value that cannot be normalised sends its row to the quarantine
//!   report (one line per bad value, `reason` is `IdError::code()` or
//!   `invalid_date`); so does a CSV row with more or fewer fields than the
//!   header (the whole row, `ragged_row`). Every row read is kept,
//!   quarantined or a duplicate. Malformed input (bad quoting, invalid
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
//! writes, see `records`). Memory stays bounded whatever the file size:
//! the duplicate table (16 bytes per slot, at most 3/4 full: about 21
//! bytes per distinct row) grows to half of `ImportOptions::memory` (the
//! node's `[limits] memory_mib`), and the rows past it are deduplicated by
//! sorting their keys on disk (`overflow`), which gives the same dataset.

mod dedup;
#[cfg(test)]
mod dialect_tests;
#[cfg(test)]
mod encoding_tests;
pub mod extsort;
#[cfg(test)]
mod generation_tests;
mod import;
mod mapping;
mod model;
mod normalise;
mod overflow;
#[cfg(test)]
mod overflow_tests;
mod parsed;
mod pins;
mod reader;
mod records;
pub mod sorted;
mod sorted_error;
mod source;
mod tap;
#[cfg(test)]
mod tests;
mod text;
mod workbook;
mod writer;

pub use import::{RECEIPTS_DIR, import, list, receipts};
pub use model::{
    BLOCK_SOFT_LIMIT, CANONICAL_COLUMNS, CURRENT_FILE, DATASETS_DIR, DELIMITERS, Format,
    ID_COLUMNS, ImportError, ImportOptions, ImportReport, MAX_BLOCK_RECORDS, MAX_ROW_BYTES,
    Problem, QUARANTINE_FILE, RECORDS_FILE, REPORT_FILE, Record, current_dir, delimiter_name,
    delimiter_named, is_date_column, validate_name,
};
pub use pins::{PINS_DIR, older_pins, pin, unpin};
pub use reader::{Blocks, DatasetReader, RawBlocks};
pub(crate) use records::BlockCursor;
pub use records::BlockError;
