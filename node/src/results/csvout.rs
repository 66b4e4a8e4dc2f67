//! One analyst CSV file, written row by row ([`CsvSink`]): UTF-8 with a
//! byte-order mark or GB18030, CRLF line ends (what Excel expects), and
//! any value that Excel would take for a formula (one starting with `=`,
//! `+`, `-`, `@`, a tab or a carriage return) written after a `'`, so that
//! opening the file never runs data as a formula. Written atomically.

use crate::results::atomic;
use crate::results::error::ExportError;
use crate::results::options::Encoding;
use crate::results::table::Cell;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// The UTF-8 byte-order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An analyst CSV file being written.
pub(crate) struct CsvSink {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
    encoding: Encoding,
    /// How a row is written (a writer per row, over `line`).
    builder: csv::WriterBuilder,
    /// The bytes of the row being written (reused).
    line: Vec<u8>,
    /// Rows written, the header included.
    rows: u64,
}

impl CsvSink {
    /// Starts `path` (in an existing directory) with `header`.
    pub(crate) fn create(
        path: &Path,
        encoding: Encoding,
        header: &[String],
    ) -> Result<Self, ExportError> {
        let mut sink = CsvSink {
            path: path.to_path_buf(),
            out: BufWriter::new(atomic::temp_for(path)?),
            encoding,
            builder: {
                let mut b = csv::WriterBuilder::new();
                b.terminator(csv::Terminator::CRLF).buffer_capacity(1024);
                b
            },
            line: Vec::new(),
            rows: 0,
        };
        if encoding == Encoding::Utf8 {
            sink.out.write_all(BOM).map_err(|e| sink.io(e))?;
        }
        sink.write_fields(header.iter().map(String::as_str))?;
        Ok(sink)
    }

    /// Writes one row.
    pub(crate) fn write_row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        let texts: Vec<String> = cells.iter().map(text_of).collect();
        self.write_fields(texts.iter().map(String::as_str))
    }

    /// Finishes the file; returns its data rows (the header not counted).
    pub(crate) fn finish(self) -> Result<u64, ExportError> {
        let rows = self.rows.saturating_sub(1);
        let path = self.path;
        let tmp = self.out.into_inner().map_err(|e| ExportError::Io {
            path: path.clone(),
            error: e.into_error(),
        })?;
        atomic::commit(tmp, &path)?;
        Ok(rows)
    }

    fn write_fields<'a>(
        &mut self,
        fields: impl Iterator<Item = &'a str>,
    ) -> Result<(), ExportError> {
        self.rows += 1;
        let fields: Vec<std::borrow::Cow<'a, str>> = fields.map(neutralised).collect();
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        let mut w = self.builder.from_writer(line);
        w.write_record(fields.iter().map(|f| f.as_bytes()))
            .map_err(|e| self.io(std::io::Error::other(e)))?;
        self.line = w.into_inner().map_err(|e| self.io(e.into_error()))?;
        let bytes = &self.line;
        match self.encoding {
            Encoding::Utf8 => self.out.write_all(bytes).map_err(|e| self.io(e)),
            Encoding::Gb18030 => {
                // The csv writer was given `&str`s, so its bytes are UTF-8.
                let text = String::from_utf8_lossy(bytes);
                let (gb, _, unmappable) = encoding_rs::GB18030.encode(&text);
                if unmappable {
                    return Err(self.unencodable(&text));
                }
                self.out.write_all(&gb).map_err(|e| self.io(e))
            }
        }
    }

    /// The error for a row holding a character GB18030 cannot write.
    fn unencodable(&self, text: &str) -> ExportError {
        let mut buf = [0u8; 4];
        let ch = text
            .chars()
            .find(|c| encoding_rs::GB18030.encode(c.encode_utf8(&mut buf)).2)
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        ExportError::Unencodable {
            path: self.path.clone(),
            row: self.rows,
            ch,
            encoding: "GB18030",
        }
    }

    fn io(&self, source: std::io::Error) -> ExportError {
        ExportError::Io {
            path: self.path.clone(),
            error: source,
        }
    }
}

/// A cell as CSV text: a rate as a percentage with two decimals.
fn text_of(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => t.clone(),
        Cell::Count(n) => n.to_string(),
        Cell::Rate(Some(r)) => format!("{:.2}%", r * 100.0),
        Cell::Rate(None) => String::new(),
    }
}

/// A value Excel would read as a formula, written after a `'`.
pub(crate) fn neutralised(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}
