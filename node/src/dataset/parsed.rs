//! What every source of rows (`source` for CSV and JSON Lines, `workbook`
//! for workbooks) hands on besides the rows: the header it read, and the
//! summary of the whole file once it is read. A leaf module, so that the
//! sources share these types without importing each other.

/// The header of a source: raw column names and the line they are on.
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub names: Vec<String>,
    pub line: u64,
}

/// What the reader thread learned about the whole file.
#[derive(Debug, Clone)]
pub(super) struct Summary {
    pub sha256: String,
    /// The encoding the source was read in.
    pub encoding: String,
    /// A CSV source's delimiter.
    pub delimiter: Option<u8>,
    /// A workbook source's sheet.
    pub sheet: Option<String>,
}
