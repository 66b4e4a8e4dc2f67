//! The normaliser: the column plan, value normalisation, the quarantine
//! report and block building. It runs on the importing thread, between the
//! reader thread and the writer thread (which checks duplicates, see
//! `dedup`). Each kept row is normalised straight into the block the writer
//! will encode, with its duplicate key computed here (the hash is the costly
//! part of the key, and the row's bytes are hot in this thread's cache).

use super::dedup::row_key;
use super::mapping::{Mapping, column_key};
use super::model::{
    BLOCK_SOFT_LIMIT, ID_COLUMNS, ImportError, MAX_BLOCK_RECORDS, MAX_ROW_BYTES, Problem, io_err,
    is_date_column,
};
use super::records::Block;
use super::source::{Batch, Header, KEEP_ROW_BUFFER};
use super::text::{clean, parse_date};
use csv::ByteRecord;
use dxmesh_protocol::codec::put_varint;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::{self, Fixes};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

/// How a column's values are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The key column: an ID number, required.
    Key,
    /// Another ID column: normalised when non-empty.
    Id,
    /// A date: `YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD`, `YYYY.MM.DD`; stored `YYYY-MM-DD`.
    Date,
    /// Anything else: trimmed.
    Text,
}

#[derive(Debug, Clone)]
pub(super) struct Column {
    /// The name in the source header (trimmed).
    pub source: String,
    pub canonical: String,
    pub kind: Kind,
    pub translate: Option<HashMap<String, String>>,
}

/// The columns of one import.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub columns: Vec<Column>,
    pub key: usize,
}

impl Plan {
    pub fn new(header: &Header, mapping: &Mapping, file: &Path) -> Result<Plan, ImportError> {
        let malformed = |problem| ImportError::Malformed {
            file: file.to_path_buf(),
            line: header.line,
            problem,
        };
        let mut columns: Vec<Column> = Vec::with_capacity(header.names.len());
        for (i, raw) in header.names.iter().enumerate() {
            let key = column_key(raw);
            if key.is_empty() {
                return Err(malformed(Problem::EmptyColumnName { position: i + 1 }));
            }
            let canonical = mapping.columns.get(&key).cloned().unwrap_or(key);
            if let Some(first) = columns.iter().find(|c| c.canonical == canonical) {
                return Err(malformed(Problem::DuplicateColumn {
                    name: canonical,
                    first: first.source.clone(),
                    second: clean(raw).to_string(),
                }));
            }
            let kind = if canonical == mapping.id_column {
                Kind::Key
            } else if ID_COLUMNS.contains(&canonical.as_str()) {
                Kind::Id
            } else if is_date_column(&canonical) {
                Kind::Date
            } else {
                Kind::Text
            };
            columns.push(Column {
                source: clean(raw).to_string(),
                translate: mapping.values.get(&canonical).cloned(),
                canonical,
                kind,
            });
        }
        let Some(key) = columns.iter().position(|c| c.kind == Kind::Key) else {
            let mut accepted: Vec<String> = mapping
                .columns
                .iter()
                .filter(|(_, to)| **to == mapping.id_column)
                .map(|(from, _)| from.clone())
                .collect();
            accepted.sort();
            accepted.insert(0, mapping.id_column.clone());
            return Err(malformed(Problem::MissingIdColumn {
                column: mapping.id_column.clone(),
                found: columns.iter().map(|c| c.source.clone()).collect(),
                accepted,
            }));
        };
        Ok(Plan { columns, key })
    }

    pub fn canonical_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.canonical.clone()).collect()
    }

    pub fn id_column(&self) -> &str {
        &self.columns[self.key].canonical
    }
}

/// Parses a date and appends it as `YYYY-MM-DD`; false if it is no date.
fn push_date(out: &mut Vec<u8>, value: &str) -> bool {
    let Some(date) = parse_date(value) else {
        return false;
    };
    let b = value.as_bytes();
    if b.len() == 10 && b[4] == b'-' {
        // Already `YYYY-MM-DD`.
        out.extend_from_slice(b);
        return true;
    }
    push_ymd(out, date);
    true
}

/// Appends a date as `YYYY-MM-DD`.
fn push_ymd(out: &mut Vec<u8>, date: Date) {
    let mut text = *b"0000-00-00";
    let mut put = |range: std::ops::Range<usize>, mut n: u32| {
        for i in range.rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0..4, u32::from(date.year()));
    put(5..7, u32::from(date.month()));
    put(8..10, u32::from(date.day()));
    out.extend_from_slice(&text);
}

/// Parses a workbook's date cell with a time (`YYYY-MM-DD HH:MM:SS`, as
/// `workbook` writes one) and appends its date; false if it is none.
fn push_cell_datetime(out: &mut Vec<u8>, value: &str) -> bool {
    let b = value.as_bytes();
    let time_ok = b.len() == 19
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && [11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    time_ok && b[4] == b'-' && push_date(out, &value[..10])
}

/// Days from Excel's day 0 (1899-12-30 in its 1900 date system) to 1970-01-01.
const EXCEL_UNIX_DAYS: i64 = 25_569;

/// Parses a workbook's whole number of at most 5 digits as an Excel serial
/// date (61 = 1900-03-01 to 99999 = 2173-10-14; below 61 Excel's dates
/// count a 29 February 1900 that never was) and appends it; false if it is
/// none.
fn push_serial_date(out: &mut Vec<u8>, value: &str) -> bool {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(serial) = value.parse::<i64>() else {
        return false;
    };
    match (serial >= 61)
        .then(|| Date::from_days_since_epoch(serial - EXCEL_UNIX_DAYS))
        .flatten()
    {
        Some(date) => {
            push_ymd(out, date);
            true
        }
        None => false,
    }
}

/// The quarantine report being written.
pub(super) struct Quarantine {
    out: csv::Writer<BufWriter<File>>,
    path: PathBuf,
    source: String,
}

impl Quarantine {
    pub fn new(
        out: BufWriter<File>,
        path: &Path,
        source: String,
    ) -> Result<Quarantine, ImportError> {
        let mut q = Quarantine {
            out: csv::Writer::from_writer(out),
            path: path.to_path_buf(),
            source,
        };
        q.write(&["file", "line", "column", "raw_value", "reason"])?;
        Ok(q)
    }
    fn write(&mut self, fields: &[&str]) -> Result<(), ImportError> {
        self.out.write_record(fields).map_err(|e| self.err(e))
    }
    fn err(&self, e: csv::Error) -> ImportError {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => io_err(&self.path)(io),
            other => ImportError::Internal(format!("{}: {other:?}", self.path.display())),
        }
    }
    fn finish(self) -> Result<(), ImportError> {
        let path = self.path.clone();
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err(&path)(std::io::Error::other(e.to_string())))?
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        file.sync_all().map_err(io_err(&path))
    }
}

/// Counts for the report.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub rows_read: u64,
    pub rows_quarantined: u64,
    pub fixes: BTreeMap<String, u64>,
    pub quarantined: BTreeMap<String, u64>,
}

/// Why the normaliser stopped early.
pub(super) enum Stop {
    /// An error in the input (or the quarantine file).
    Failed(ImportError),
    /// The writer thread is gone; it returns the reason.
    WriterGone,
}

impl From<ImportError> for Stop {
    fn from(e: ImportError) -> Stop {
        Stop::Failed(e)
    }
}

pub(super) struct Normaliser<'a> {
    plan: &'a Plan,
    reference: Date,
    file: &'a Path,
    file_len: u64,
    quarantine: Option<Quarantine>,
    stats: Stats,
    fixes: [u64; 5],
    quarantined: HashMap<&'static str, u64>,
    /// The block being filled.
    block: Block,
    /// Problems of the current row: (column, reason).
    problems: Vec<(usize, &'static str)>,
    first: bool,
    /// A whole number of at most 5 digits in a date column is an Excel
    /// serial date, and a date cell with a time is its date (workbooks).
    pub workbook_dates: bool,
}

impl<'a> Normaliser<'a> {
    pub fn new(
        plan: &'a Plan,
        reference: Date,
        file: &'a Path,
        file_len: u64,
        quarantine: Quarantine,
    ) -> Normaliser<'a> {
        Normaliser {
            plan,
            reference,
            file,
            file_len,
            quarantine: Some(quarantine),
            stats: Stats::default(),
            fixes: [0; 5],
            quarantined: HashMap::new(),
            block: Block::new(),
            problems: Vec::new(),
            first: true,
            workbook_dates: false,
        }
    }

    /// Processes every batch, sending full blocks to the writer; then the
    /// last block. Dropping `blocks` (on return) tells the writer there is
    /// no more.
    pub fn run(
        &mut self,
        batches: Receiver<Batch>,
        spare_batches: Sender<Batch>,
        blocks: SyncSender<Block>,
        spare_blocks: Receiver<Block>,
    ) -> Result<(), Stop> {
        for mut batch in batches {
            if self.first {
                self.first = false;
                self.block.estimated_rows = self.estimate_rows(&batch);
            }
            let mut p = 0;
            for i in 0..batch.len {
                let from = p;
                while p < batch.problems.len() && batch.problems[p].0 == i {
                    p += 1;
                }
                self.row(&batch.records[i], batch.lines[i], &batch.problems[from..p])?;
                let block = &self.block;
                if block.len() > MAX_BLOCK_RECORDS
                    || (block.len() > 1 && block.data.len() + 9 > BLOCK_SOFT_LIMIT)
                {
                    // The last row does not fit: it starts the next block.
                    let mut next = spare_blocks.try_recv().unwrap_or_else(|_| Block::new());
                    next.clear();
                    self.block.move_last_row(&mut next);
                    let full = std::mem::replace(&mut self.block, next);
                    blocks.send(full).map_err(|_| Stop::WriterGone)?;
                }
            }
            // Rows recycled with their buffers: drop the buffers of long ones
            // so that memory stays bounded by the longest rows in flight.
            for rec in &mut batch.records[..batch.len] {
                if rec.as_slice().len() > KEEP_ROW_BUFFER {
                    *rec = ByteRecord::new();
                }
            }
            // The reader may have gone (after an error); that is fine.
            let _ = spare_batches.send(batch);
        }
        if self.block.len() > 0 || self.block.estimated_rows > 0 {
            let last = std::mem::replace(&mut self.block, Block::new());
            blocks.send(last).map_err(|_| Stop::WriterGone)?;
        }
        Ok(())
    }

    /// About how many rows the file has, from its size and the first
    /// batch's average row length (the writer sizes its tables with it).
    fn estimate_rows(&self, batch: &Batch) -> usize {
        let bytes: usize = batch.records[..batch.len]
            .iter()
            .map(|r| r.as_slice().len() + r.len())
            .sum();
        if bytes == 0 {
            return 1;
        }
        ((self.file_len as f64 * batch.len as f64 / bytes as f64) as usize).clamp(1, 1 << 31)
    }

    pub fn finish(&mut self) -> Result<Stats, ImportError> {
        if let Some(q) = self.quarantine.take() {
            q.finish()?;
        }
        let mut stats = std::mem::take(&mut self.stats);
        for ((_, name), n) in Fixes::ALL.iter().zip(self.fixes) {
            stats.fixes.insert((*name).to_string(), n);
        }
        stats.quarantined = self
            .quarantined
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect();
        Ok(stats)
    }

    fn malformed(&self, line: u64, problem: Problem) -> Stop {
        Stop::Failed(ImportError::Malformed {
            file: self.file.to_path_buf(),
            line,
            problem,
        })
    }

    fn utf8_error(&self, rec: &ByteRecord, line: u64) -> Stop {
        let column = rec
            .iter()
            .position(|f| std::str::from_utf8(f).is_err())
            .and_then(|i| self.plan.columns.get(i))
            .map(|c| c.source.clone());
        self.malformed(line, Problem::InvalidUtf8 { column })
    }

    /// Normalises one row onto the end of the block (or quarantines it);
    /// `found` are the cells its source already found wrong (row, column,
    /// reason).
    fn row(
        &mut self,
        rec: &ByteRecord,
        line: u64,
        found: &[(usize, usize, &'static str)],
    ) -> Result<(), Stop> {
        self.stats.rows_read += 1;
        let Ok(text) = simdutf8::basic::from_utf8(rec.as_slice()) else {
            return Err(self.utf8_error(rec, line));
        };
        let plan = self.plan;
        if rec.len() != plan.columns.len() {
            return self.quarantine_ragged(rec, line);
        }
        let reference = self.reference;
        let mut fix_counts = [0u64; 5];
        let mut count = |fixes: Fixes| {
            if !fixes.is_empty() {
                for (n, (fix, _)) in fix_counts.iter_mut().zip(Fixes::ALL) {
                    *n += u64::from(fixes.contains(fix));
                }
            }
        };
        self.problems.clear();
        self.problems
            .extend(found.iter().map(|&(_, c, why)| (c, why)));
        let data = &mut self.block.data;
        let row_start = data.len();
        // The ID string (length 18, then 18 bytes) comes first whatever the
        // key column's place: reserve it; then the number of values.
        data.resize(row_start + 19, 0);
        put_varint(data, (plan.columns.len() - 1) as u64);
        let mut key_id = None;
        let mut offset = 0;
        for (i, field) in rec.iter().enumerate() {
            // Every field of a valid record is valid UTF-8 unless a field
            // boundary splits a character.
            let Some(raw) = text.get(offset..offset + field.len()) else {
                data.truncate(row_start);
                return Err(self.utf8_error(rec, line));
            };
            offset += field.len();
            if !found.is_empty() && found.iter().any(|p| p.1 == i) {
                // Reported already; the row is quarantined.
                continue;
            }
            let col = &plan.columns[i];
            let cleaned = clean(raw);
            let translated = match &col.translate {
                Some(t) => t.get(cleaned).map(String::as_str),
                None => None,
            };
            if col.kind == Kind::Key {
                match id::normalise_with_fixes(translated.unwrap_or(raw), reference) {
                    Ok((id, fixes)) => {
                        key_id = Some(id);
                        count(fixes);
                    }
                    Err(e) => self.problems.push((i, e.code())),
                }
                continue;
            }
            // A one-byte length, fixed up below for long values.
            let len_at = data.len();
            data.push(0);
            match col.kind {
                Kind::Key => {}
                Kind::Id => {
                    let v = translated.unwrap_or(raw);
                    if !clean(v).is_empty() {
                        match id::normalise_with_fixes(v, reference) {
                            Ok((id, fixes)) => {
                                data.extend_from_slice(id.as_bytes());
                                count(fixes);
                            }
                            Err(e) => self.problems.push((i, e.code())),
                        }
                    }
                }
                Kind::Date => {
                    let v = clean(translated.unwrap_or(cleaned));
                    let read = v.is_empty()
                        || push_date(data, v)
                        || (self.workbook_dates
                            && (push_serial_date(data, v) || push_cell_datetime(data, v)));
                    if !read {
                        self.problems.push((i, "invalid_date"));
                    }
                }
                Kind::Text => data.extend_from_slice(translated.unwrap_or(cleaned).as_bytes()),
            }
            let len = data.len() - len_at - 1;
            if len < 251 {
                data[len_at] = len as u8;
            } else {
                let mut prefix = Vec::with_capacity(9);
                put_varint(&mut prefix, len as u64);
                data.splice(len_at..=len_at, prefix);
            }
        }
        let id = match key_id {
            Some(id) if self.problems.is_empty() => id,
            _ => {
                data.truncate(row_start);
                return self.quarantine_row(rec, text, line);
            }
        };
        data[row_start] = 18;
        data[row_start + 1..row_start + 19].copy_from_slice(id.as_bytes());
        let size = data.len() - row_start;
        if size > MAX_ROW_BYTES {
            data.truncate(row_start);
            return Err(self.malformed(
                line,
                Problem::RowTooLarge {
                    bytes: size,
                    limit: MAX_ROW_BYTES,
                },
            ));
        }
        // The encoding is unambiguous (every string carries its length), so
        // equal hashes of it are equal rows up to hash collisions.
        let hash = xxhash_rust::xxh3::xxh3_64(&data[row_start..]);
        let end = data.len() as u32;
        self.block.ends.push(end);
        self.block.keys.push(row_key(&id, hash));
        for (total, n) in self.fixes.iter_mut().zip(fix_counts) {
            *total += n;
        }
        Ok(())
    }

    /// Quarantines a row with more or fewer fields than the header: the
    /// whole row, its fields joined by commas, with reason `ragged_row`.
    fn quarantine_ragged(&mut self, rec: &ByteRecord, line: u64) -> Result<(), Stop> {
        self.stats.rows_quarantined += 1;
        *self.quarantined.entry("ragged_row").or_insert(0) += 1;
        let Some(q) = self.quarantine.as_mut() else {
            return Ok(());
        };
        let fields: Vec<String> = rec
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let column = format!(
            "({} fields; the header has {})",
            rec.len(),
            self.plan.columns.len()
        );
        let source = q.source.clone();
        q.write(&[
            &source,
            &line.to_string(),
            &column,
            &fields.join(","),
            "ragged_row",
        ])?;
        Ok(())
    }

    fn quarantine_row(&mut self, rec: &ByteRecord, text: &str, line: u64) -> Result<(), Stop> {
        self.stats.rows_quarantined += 1;
        let line_text = line.to_string();
        let mut bounds = Vec::with_capacity(rec.len());
        let mut offset = 0;
        for field in rec.iter() {
            bounds.push((offset, offset + field.len()));
            offset += field.len();
        }
        self.problems.sort_by_key(|p| p.0);
        for &(_, reason) in &self.problems {
            *self.quarantined.entry(reason).or_insert(0) += 1;
        }
        let Some(q) = self.quarantine.as_mut() else {
            return Ok(());
        };
        let source = q.source.clone();
        for &(col, reason) in &self.problems {
            let (a, b) = bounds[col];
            let raw = text.get(a..b).unwrap_or_default();
            q.write(&[
                &source,
                &line_text,
                &self.plan.columns[col].source,
                raw,
                reason,
            ])?;
        }
        Ok(())
    }
}
