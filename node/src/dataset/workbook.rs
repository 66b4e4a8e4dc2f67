//! Workbook exports (`.xlsx`, `.xlsm`, `.xls`, `.xlsb`, `.ods`), read with
//! `calamine` on a thread of their own that hands rows of text to the
//! import's reader thread (see `source`).
//!
//! An `.xlsx` sheet is read as its XML streams, one row at a time; the
//! other formats are read a sheet at a time (their layout allows no less).
//! The sheet is the one named, else the first. Its first non-empty row is
//! the header; empty rows are skipped, as blank lines are in a CSV; a row's
//! "line" is its Excel row number, so a quarantined value can be found in
//! the sheet. Cells become text:
//!
//! - text as it is; whole numbers without a decimal point (`15` digits at
//!   most); other numbers in their shortest exact form;
//! - a whole number of 16 digits or more is reported
//!   (`number_precision_lost`): Excel keeps 15 significant digits, so an
//!   18-digit ID number typed into a number cell has lost its last digits
//!   and only the department's system can say what they were;
//! - a date cell as `YYYY-MM-DD` (with ` HH:MM:SS` if it has a time; in a
//!   date column the normaliser keeps the date);
//! - `TRUE`/`FALSE` as `true`/`false`; an error cell (`#N/A`, `#REF!`, ...)
//!   is reported (`cell_error`).
//!
//! A value outside the header's columns makes the row ragged (`ragged_row`).
//! The report's hash is over the workbook file's bytes.

use super::model::{Format, ImportError, io_err};
use super::parsed::{Header, Summary};
use calamine::{Data, DataRef, Reader};
use csv::ByteRecord;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

/// Rows sent to the reader thread at a time.
const ROWS_PER_MESSAGE: usize = 1024;
/// Excel's precision: whole numbers from here on may have lost digits.
const EXACT_LIMIT: f64 = 1e15;
/// A value the workbook reports as wrong: `number_precision_lost`.
pub(super) const PRECISION_LOST: &str = "number_precision_lost";
/// An error value in a cell: `cell_error`.
pub(super) const CELL_ERROR: &str = "cell_error";

/// One non-empty row of the sheet.
struct Row {
    /// The Excel row number (1-based).
    line: u64,
    record: ByteRecord,
    /// (column, reason) of the cells found wrong.
    problems: Vec<(usize, &'static str)>,
}

enum Message {
    Header(Header),
    Rows(Vec<Row>),
    End(Summary),
    Failed(ImportError),
}

/// The rows of a workbook's sheet, read by a thread of their own.
pub(super) struct WorkbookSource {
    rx: Receiver<Message>,
    rows: std::vec::IntoIter<Row>,
    summary: Option<Summary>,
    /// The problems of the row last returned by [`WorkbookSource::next`].
    pub(super) problems: Vec<(usize, &'static str)>,
}

impl WorkbookSource {
    /// Opens the workbook, picks the sheet and reads its header.
    pub(super) fn open(
        path: &Path,
        format: Format,
        sheet: Option<&str>,
    ) -> Result<(WorkbookSource, Header), ImportError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (path_owned, sheet) = (path.to_path_buf(), sheet.map(str::to_string));
        std::thread::Builder::new()
            .name("dataset-workbook".into())
            .spawn(move || {
                if let Err(e) = produce(&path_owned, format, sheet.as_deref(), &tx) {
                    let _ = tx.send(Message::Failed(e));
                }
            })
            .map_err(|e| ImportError::Internal(format!("cannot start workbook thread: {e}")))?;
        let mut source = WorkbookSource {
            rx,
            rows: Vec::new().into_iter(),
            summary: None,
            problems: Vec::new(),
        };
        match source.recv()? {
            Message::Header(header) => Ok((source, header)),
            Message::Failed(e) => Err(e),
            _ => Err(ImportError::Internal(
                "workbook thread sent no header".into(),
            )),
        }
    }

    fn recv(&mut self) -> Result<Message, ImportError> {
        self.rx
            .recv()
            .map_err(|_| ImportError::Internal("workbook thread stopped".into()))
    }

    /// The next row into `rec` (its problems into `self.problems`) and its
    /// Excel row number, or `None` after the last.
    pub(super) fn next(&mut self, rec: &mut ByteRecord) -> Result<Option<u64>, ImportError> {
        self.problems.clear();
        loop {
            if let Some(mut row) = self.rows.next() {
                std::mem::swap(rec, &mut row.record);
                self.problems = row.problems;
                return Ok(Some(row.line));
            }
            if self.summary.is_some() {
                return Ok(None);
            }
            match self.recv()? {
                Message::Rows(rows) => self.rows = rows.into_iter(),
                Message::End(summary) => self.summary = Some(summary),
                Message::Failed(e) => return Err(e),
                Message::Header(_) => {
                    return Err(ImportError::Internal("workbook sent two headers".into()));
                }
            }
        }
    }

    /// The summary (hash, sheet) once every row has been read.
    pub(super) fn finish(mut self) -> Result<Summary, ImportError> {
        let mut rec = ByteRecord::new();
        while self.next(&mut rec)?.is_some() {}
        self.summary
            .take()
            .ok_or_else(|| ImportError::Internal("workbook ended without a summary".into()))
    }
}

fn workbook_error(path: &Path, e: impl std::fmt::Display) -> ImportError {
    let reader = e.to_string();
    ImportError::Workbook {
        file: path.to_path_buf(),
        message: match damage(&reader) {
            true => format!(
                "the workbook is damaged or truncated (a copy cut short, or not saved whole): export or copy it again [{reader}]"
            ),
            false => reader,
        },
    }
}

/// Whether the reader's error says the file itself is broken: its
/// container (the zip of .xlsx/.xlsb/.ods, the compound file of .xls) or
/// the XML or records inside it ending too soon.
fn damage(reader: &str) -> bool {
    let lower = reader.to_ascii_lowercase();
    [
        "zip",
        "eocd",
        "cfb",
        "invalid ole",
        "unexpected end",
        "eof",
        "end of file",
        "corrupt",
        "truncated",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The sheet to read: the one named, else the first.
fn pick_sheet(path: &Path, names: Vec<String>, want: Option<&str>) -> Result<String, ImportError> {
    match want {
        Some(w) => names
            .iter()
            .find(|n| n.as_str() == w)
            .cloned()
            .ok_or_else(|| ImportError::NoSuchSheet {
                file: path.to_path_buf(),
                sheet: w.to_string(),
                sheets: names.clone(),
            }),
        None => names
            .into_iter()
            .next()
            .ok_or_else(|| workbook_error(path, "the workbook has no sheet")),
    }
}

/// The workbook thread: reads the sheet and sends its rows, then the summary.
fn produce(
    path: &Path,
    format: Format,
    sheet: Option<&str>,
    tx: &SyncSender<Message>,
) -> Result<(), ImportError> {
    let mut rows = Rows::new(tx);
    let name = if format == Format::Xlsx {
        let mut wb: calamine::Xlsx<_> =
            calamine::open_workbook(path).map_err(|e| workbook_error(path, e))?;
        let name = pick_sheet(path, wb.sheet_names(), sheet)?;
        let mut cells = wb
            .worksheet_cells_reader(&name)
            .map_err(|e| workbook_error(path, e))?;
        while let Some(cell) = cells.next_cell().map_err(|e| workbook_error(path, e))? {
            let (r, c) = cell.get_position();
            rows.cell(r, c, |out| data_ref_text(cell.get_value(), out))?;
        }
        name
    } else {
        let mut wb = calamine::open_workbook_auto(path).map_err(|e| workbook_error(path, e))?;
        let name = pick_sheet(path, wb.sheet_names(), sheet)?;
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| workbook_error(path, e))?;
        let (r0, c0) = range.start().unwrap_or((0, 0));
        for (i, row) in range.rows().enumerate() {
            for (j, value) in row.iter().enumerate() {
                if *value == Data::Empty {
                    continue;
                }
                rows.cell(r0 + i as u32, c0 + j as u32, |out| data_text(value, out))?;
            }
        }
        name
    };
    rows.end_row()?;
    rows.flush()?;
    if rows.header.is_none() {
        return Err(ImportError::Malformed {
            file: path.to_path_buf(),
            line: 1,
            problem: super::model::Problem::Empty,
        });
    }
    let sha256 = hash_file(path)?;
    let _ = tx.send(Message::End(Summary {
        sha256,
        encoding: "workbook".into(),
        delimiter: None,
        sheet: Some(name),
    }));
    Ok(())
}

/// SHA-256 of the file's bytes, hex.
fn hash_file(path: &Path) -> Result<String, ImportError> {
    let mut file = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            return Ok(hex::encode(sha.finish().as_ref()));
        }
        sha.update(&buf[..n]);
    }
}

/// Gathers cells (in row order) into rows and sends them on. A row's
/// texts go back to back into one buffer and become one `ByteRecord`: no
/// allocation per cell.
struct Rows<'a> {
    tx: &'a SyncSender<Message>,
    /// The header's first and last columns, once read.
    header: Option<(u32, u32)>,
    /// The row being gathered: its index, its cells' texts, and per cell
    /// (column, text start, text end, problem).
    row: Option<u32>,
    text: String,
    cells: Vec<(u32, usize, usize, Option<&'static str>)>,
    out: Vec<Row>,
}

impl<'a> Rows<'a> {
    fn new(tx: &'a SyncSender<Message>) -> Rows<'a> {
        Rows {
            tx,
            header: None,
            row: None,
            text: String::new(),
            cells: Vec::new(),
            out: Vec::with_capacity(ROWS_PER_MESSAGE),
        }
    }

    fn send(&self, m: Message) -> Result<(), ImportError> {
        // The reader stopped: it reports why.
        self.tx
            .send(m)
            .map_err(|_| ImportError::Internal("import stopped reading the workbook".into()))
    }

    /// Adds the cell at row `r`, column `c`; `write` appends its text and
    /// returns what is wrong with it.
    fn cell(
        &mut self,
        r: u32,
        c: u32,
        write: impl FnOnce(&mut String) -> Option<&'static str>,
    ) -> Result<(), ImportError> {
        if self.row != Some(r) {
            self.end_row()?;
            self.row = Some(r);
        }
        let start = self.text.len();
        let problem = write(&mut self.text);
        if self.text.len() > start || problem.is_some() {
            self.cells.push((c, start, self.text.len(), problem));
        }
        Ok(())
    }

    /// Turns the gathered cells into the header or a row.
    fn end_row(&mut self) -> Result<(), ImportError> {
        let Some(r) = self.row.take() else {
            return Ok(());
        };
        if self.cells.is_empty() {
            self.text.clear();
            return Ok(());
        }
        if !self.cells.is_sorted_by_key(|c| c.0) {
            self.cells.sort_by_key(|c| c.0);
        }
        let line = u64::from(r) + 1;
        let (lo, hi) = (self.cells[0].0, self.cells[self.cells.len() - 1].0);
        let Some((first, last)) = self.header else {
            let mut names = vec![String::new(); (hi - lo + 1) as usize];
            for &(c, a, b, _) in &self.cells {
                names[(c - lo) as usize] = self.text[a..b].to_string();
            }
            self.cells.clear();
            self.text.clear();
            self.header = Some((lo, hi));
            return self.send(Message::Header(Header { names, line }));
        };
        let width = (last - first + 1) as usize;
        let (start, mut len) = if lo < first || hi > last {
            // Values outside the table: the whole row, of another width.
            (lo.min(first), (hi.max(last) - lo.min(first) + 1) as usize)
        } else {
            (first, width)
        };
        if len == width && start != first {
            len += 1;
        }
        let mut record = ByteRecord::with_capacity(self.text.len(), len);
        let mut problems = Vec::new();
        let mut cells = self.cells.iter().peekable();
        for i in 0..len {
            let col = start + i as u32;
            // A column given twice keeps its first cell.
            while cells.next_if(|c| c.0 < col).is_some() {}
            match cells.next_if(|c| c.0 == col) {
                Some(&(_, a, b, problem)) => {
                    record.push_field(&self.text.as_bytes()[a..b]);
                    if let Some(p) = problem.filter(|_| len == width) {
                        problems.push((i, p));
                    }
                }
                None => record.push_field(b""),
            }
        }
        self.cells.clear();
        self.text.clear();
        self.out.push(Row {
            line,
            record,
            problems,
        });
        if self.out.len() >= ROWS_PER_MESSAGE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(&mut self.out, Vec::with_capacity(ROWS_PER_MESSAGE));
        self.send(Message::Rows(rows))
    }
}

/// A number as text: whole numbers without a decimal point; from 16
/// digits on as Excel shows them (15 significant digits, then zeros).
fn number_text(f: f64, out: &mut String) -> Option<&'static str> {
    use std::fmt::Write;
    if !(f.fract() == 0.0 && f.is_finite()) {
        let _ = write!(out, "{f}");
        return None;
    }
    if f.abs() < EXACT_LIMIT {
        let _ = write!(out, "{f:.0}");
        return None;
    }
    // `d.dddddddddddddde<exp>`: 15 significant digits, rounded.
    let sci = format!("{f:.14e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: usize = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    if f < 0.0 {
        out.push('-');
    }
    out.push_str(&digits);
    out.extend(std::iter::repeat_n(
        '0',
        (exp + 1).saturating_sub(digits.len()),
    ));
    Some(PRECISION_LOST)
}

/// A date cell as `YYYY-MM-DD`, with ` HH:MM:SS` if it has a time; a
/// duration as its number of days.
fn datetime_text(d: &calamine::ExcelDateTime, out: &mut String) {
    use std::fmt::Write;
    if !d.is_datetime() {
        let _ = write!(out, "{}", d.as_f64());
        return;
    }
    let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
    let _ = write!(out, "{y:04}-{mo:02}-{da:02}");
    if (h, mi, s, ms) != (0, 0, 0, 0) {
        let _ = write!(out, " {h:02}:{mi:02}:{s:02}");
    }
}

/// An `.xlsx` cell as text, and what is wrong with it, if anything.
fn data_ref_text(v: &DataRef<'_>, out: &mut String) -> Option<&'static str> {
    match v {
        DataRef::Int(i) => out.push_str(&i.to_string()),
        DataRef::Float(f) => return number_text(*f, out),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => out.push_str(s),
        DataRef::SharedString(s) => out.push_str(s),
        DataRef::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        DataRef::DateTime(d) => datetime_text(d, out),
        DataRef::Error(e) => {
            out.push_str(&e.to_string());
            return Some(CELL_ERROR);
        }
        DataRef::Empty => {}
    }
    None
}

/// A cell of the other formats as text, and what is wrong with it.
fn data_text(v: &Data, out: &mut String) -> Option<&'static str> {
    match v {
        Data::Int(i) => out.push_str(&i.to_string()),
        Data::Float(f) => return number_text(*f, out),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => out.push_str(s),
        Data::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Data::DateTime(d) => datetime_text(d, out),
        Data::Error(e) => {
            out.push_str(&e.to_string());
            return Some(CELL_ERROR);
        }
        Data::Empty => {}
    }
    None
}
