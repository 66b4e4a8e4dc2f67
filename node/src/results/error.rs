//! Why an analyst export fails, by cause; each message names the file (and
//! the line or row) it is about and ends with the underlying error's own
//! message (which is why none is given as a `source` too: `{:#}` would
//! print it twice). A leaf module.

use std::path::PathBuf;

/// Why an analyst export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A file or folder could not be read or written.
    #[error("{path}: {error}", path = .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A canonical CSV file is not what `dxmesh compare` writes.
    #[error("{path}: line {line}: {what}", path = .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line (1 is the header).
        line: u64,
        /// What is wrong.
        what: String,
    },
    /// `summary.json` could not be read as a compare summary.
    #[error("{path}: not a dxmesh compare summary: {error}", path = .path.display())]
    Summary {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        error: serde_json::Error,
    },
    /// A character has no encoding in the encoding asked for.
    #[error(
        "{path}: row {row}: {ch:?} (U+{code:04X}) cannot be written in {encoding}",
        path = .path.display(),
        code = u32::from(*.ch)
    )]
    Unencodable {
        /// The output file.
        path: PathBuf,
        /// The row of the output file (1 is the header).
        row: u64,
        /// The character.
        ch: char,
        /// The encoding.
        encoding: &'static str,
    },
    /// The workbook could not be built or written.
    #[error("{path}: {error}", path = .path.display())]
    Xlsx {
        /// The workbook.
        path: PathBuf,
        /// The writer's error.
        error: rust_xlsxwriter::XlsxError,
    },
    /// The output directory is the compare output itself, whose canonical
    /// files the export would replace.
    #[error(
        "{dir}: the export must go to another directory than the compare output (it would replace the canonical result files)",
        dir = .dir.display()
    )]
    SameDirectory {
        /// The directory.
        dir: PathBuf,
    },
}
