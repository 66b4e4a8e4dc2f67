//! `results.xlsx` ([`Book`]): one sheet per table, streamed in constant
//! memory (each sheet's rows go to a temporary file in the output
//! directory as they come). Every sheet has a bold, frozen header row, an
//! autofilter and columns as wide as their widest text (within bounds); every text is a text cell, so ID numbers and region codes
//! keep all their digits (Excel keeps 15 of a number's); counts are
//! numbers and rates percentages. A table longer than a sheet goes on in
//! a sheet named `<name> (2)`, and so on. Written atomically.

use crate::results::atomic;
use crate::results::error::ExportError;
use crate::results::table::Cell;
use rust_xlsxwriter::{ColNum, Format, RowNum, Workbook, XlsxError};
use std::path::{Path, PathBuf};

/// Rows a sheet holds (Excel's limit), the header included.
const SHEET_ROWS: RowNum = 1_048_576;
/// Longest sheet name Excel accepts.
const SHEET_NAME_CHARS: usize = 31;

/// Narrowest and widest column, in Excel's character widths: a column is
/// as wide as its widest text (and the autofilter's button), within these.
const MIN_WIDTH: f64 = 8.0;
const MAX_WIDTH: f64 = 60.0;

/// The width of `text` in Excel's character widths: two for a Chinese
/// (wide) character, one for any other.
fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if (c as u32) >= 0x1100 { 2.0 } else { 1.0 })
        .sum()
}

/// A sheet being written.
struct Sheet {
    /// Its index in the workbook.
    index: usize,
    /// The table's name (sheet names of continuations derive from it).
    table: String,
    /// The header, for continuations.
    header: Vec<String>,
    /// Each column's widest text so far (header included), in Excel's
    /// character widths ([`text_width`]).
    widths: Vec<f64>,
    /// The next row to write.
    row: RowNum,
    /// Which part of the table it is (1 for the first sheet).
    part: u32,
}

/// The workbook being written.
pub(crate) struct Book {
    path: PathBuf,
    workbook: Workbook,
    bold: Format,
    percent: Format,
    names: Vec<String>,
    sheet: Option<Sheet>,
    rows: u64,
    /// Rows a sheet holds, the header included ([`SHEET_ROWS`]).
    sheet_rows: RowNum,
}

impl Book {
    /// A workbook to be saved as `path`, its temporary files in `path`'s
    /// directory.
    pub(crate) fn new(path: &Path) -> Result<Self, ExportError> {
        let mut workbook = Workbook::new();
        let dir = path.parent().unwrap_or(Path::new("."));
        workbook
            .set_tempdir(dir)
            .map_err(|source| xlsx(path, source))?;
        Ok(Book {
            path: path.to_path_buf(),
            workbook,
            bold: Format::new().set_bold(),
            percent: Format::new().set_num_format("0.00%"),
            names: Vec::new(),
            sheet: None,
            rows: 0,
            sheet_rows: SHEET_ROWS,
        })
    }

    /// The same workbook with shorter sheets (to test continuations).
    #[cfg(test)]
    pub(crate) fn with_sheet_rows(self, sheet_rows: RowNum) -> Self {
        Book { sheet_rows, ..self }
    }

    /// Starts the sheet of table `name`.
    pub(crate) fn begin(&mut self, name: &str, header: &[String]) -> Result<(), ExportError> {
        self.end()?;
        self.open_sheet(Sheet {
            index: 0,
            table: name.to_string(),
            header: header.to_vec(),
            widths: header.iter().map(|t| text_width(t)).collect(),
            row: 0,
            part: 1,
        })
    }

    /// Writes one row of the current sheet.
    pub(crate) fn write_row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        if self
            .sheet
            .as_ref()
            .is_some_and(|s| s.row >= self.sheet_rows)
            && let Some(full) = self.sheet.take()
        {
            self.close_sheet(&full)?;
            self.open_sheet(Sheet {
                row: 0,
                part: full.part + 1,
                ..full
            })?;
        }
        let path = self.path.clone();
        let Some(sheet) = self.sheet.as_mut() else {
            return Ok(());
        };
        let ws = self
            .workbook
            .worksheet_from_index(sheet.index)
            .map_err(|e| xlsx(&path, e))?;
        for (col, cell) in cells.iter().enumerate() {
            let width = match cell {
                Cell::Text(t) => text_width(t),
                Cell::Count(n) => n.to_string().len() as f64,
                Cell::Rate(_) => 7.0,
            };
            if let Some(w) = sheet.widths.get_mut(col) {
                *w = w.max(width);
            }
            let col = col as ColNum;
            match cell {
                Cell::Text(t) => ws.write_string(sheet.row, col, t).map(|_| ()),
                Cell::Count(n) => ws.write_number(sheet.row, col, *n as f64).map(|_| ()),
                Cell::Rate(Some(r)) => ws
                    .write_number_with_format(sheet.row, col, *r, &self.percent)
                    .map(|_| ()),
                Cell::Rate(None) => Ok(()),
            }
            .map_err(|e| xlsx(&path, e))?;
        }
        sheet.row += 1;
        self.rows += 1;
        Ok(())
    }

    /// Ends the current sheet (its autofilter covers every row written).
    pub(crate) fn end(&mut self) -> Result<(), ExportError> {
        match self.sheet.take() {
            Some(s) => self.close_sheet(&s),
            None => Ok(()),
        }
    }

    /// Saves the workbook atomically; returns its data rows and sheets.
    pub(crate) fn save(mut self) -> Result<(u64, Vec<String>), ExportError> {
        self.end()?;
        let tmp = atomic::temp_for(&self.path)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file());
            self.workbook
                .save_to_writer(&mut w)
                .map_err(|e| xlsx(&self.path, e))?;
            std::io::Write::flush(&mut w).map_err(|error| ExportError::Io {
                path: self.path.clone(),
                error,
            })?;
        }
        atomic::commit(tmp, &self.path)?;
        Ok((self.rows, self.names))
    }

    /// Adds `sheet`'s worksheet: its name and the bold header row, frozen
    /// (its column widths are set when it ends, from what it holds).
    fn open_sheet(&mut self, mut sheet: Sheet) -> Result<(), ExportError> {
        let name = self.sheet_name(&sheet.table, sheet.part);
        let path = self.path.clone();
        let e = |e: XlsxError| xlsx(&path, e);
        let ws = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(e)?;
        ws.set_name(&name).map_err(e)?;
        for (col, title) in sheet.header.iter().enumerate() {
            ws.write_string_with_format(0, col as ColNum, title, &self.bold)
                .map_err(e)?;
        }
        ws.set_freeze_panes(1, 0).map_err(e)?;
        sheet.index = self.names.len();
        sheet.row = 1;
        self.names.push(name);
        self.sheet = Some(sheet);
        Ok(())
    }

    /// Sizes `sheet`'s columns to their widest text (bounded), and sets its
    /// autofilter over its header and rows.
    fn close_sheet(&mut self, sheet: &Sheet) -> Result<(), ExportError> {
        let path = self.path.clone();
        let e = |e: XlsxError| xlsx(&path, e);
        let last_col = sheet.header.len().saturating_sub(1) as ColNum;
        let ws = self.workbook.worksheet_from_index(sheet.index).map_err(e)?;
        for (col, width) in sheet.widths.iter().enumerate() {
            // Room for the autofilter's button, then the bounds.
            let width = (width + 3.0).clamp(MIN_WIDTH, MAX_WIDTH);
            ws.set_column_width(col as ColNum, width).map_err(e)?;
        }
        ws.autofilter(0, 0, sheet.row.saturating_sub(1), last_col)
            .map(|_| ())
            .map_err(e)
    }

    /// A sheet name Excel accepts, unique in the workbook: the table's name
    /// without `[]:*?/\`, at most 31 characters (with ` (n)` for part n).
    fn sheet_name(&self, table: &str, part: u32) -> String {
        let clean: String = table
            .chars()
            .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
            .collect();
        let clean = clean.trim_matches('\'');
        let clean = if clean.is_empty() { "sheet" } else { clean };
        let mut n = part;
        loop {
            let suffix = if n > 1 {
                format!(" ({n})")
            } else {
                String::new()
            };
            let keep = SHEET_NAME_CHARS - suffix.chars().count();
            let name: String = clean.chars().take(keep).collect::<String>() + &suffix;
            if !self
                .names
                .iter()
                .any(|u| u.to_lowercase() == name.to_lowercase())
            {
                return name;
            }
            n += 1;
        }
    }
}

fn xlsx(path: &Path, source: XlsxError) -> ExportError {
    ExportError::Xlsx {
        path: path.to_path_buf(),
        error: source,
    }
}
