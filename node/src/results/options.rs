//! What an analyst export is asked for ([`ExportOptions`]: where from,
//! where to, the encoding, the workbook, the headers' language) and what it
//! reports back ([`Report`]). Data only; a leaf module.

use std::path::PathBuf;

/// The character encoding of the exported CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-8 with a byte-order mark, so Excel reads Chinese text right.
    #[default]
    #[value(name = "utf-8")]
    Utf8,
    /// GB18030, for spreadsheet programs set up for it.
    #[value(name = "gb18030")]
    Gb18030,
}

/// The language of the column headers and reason texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Headers {
    /// English: the canonical field names.
    #[default]
    En,
    /// Chinese.
    Zh,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The output directory of `dxmesh compare` (holds `summary.json`).
    pub from: PathBuf,
    /// Where to write the analysts' files (another directory).
    pub out: PathBuf,
    /// The encoding of the CSV files.
    pub encoding: Encoding,
    /// Whether to write `results.xlsx` too.
    pub xlsx: bool,
    /// The language of headers and reasons.
    pub headers: Headers,
}

/// One file the export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Data rows (without the header rows), over every sheet of a workbook.
    pub rows: u64,
    /// A workbook's sheets, in order (empty for a CSV file).
    pub sheets: Vec<String>,
    /// For a result's file: the persons in the result and how many of them
    /// have more than one row (why rows outnumber persons), as
    /// `summary.json` counts them.
    pub persons: Option<Persons>,
}

/// The persons of a result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persons {
    /// Persons in the result.
    pub persons: u64,
    /// Persons with more than one row.
    pub with_several_rows: u64,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The files written, in order.
    pub written: Vec<Written>,
    /// Results without a file in the compare output, each with why
    /// (the provider's refusal code, or that none was written).
    pub skipped: Vec<(String, String)>,
}
