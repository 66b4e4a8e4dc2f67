//! The normaliser: column plan, value normalisation, quarantine, duplicate
//! detection and block building. It runs on the importing thread, between
//! the reader thread and the writer thread.
//!
//! ## Duplicate detection
//!
//! A kept row's key is 128 bits: the high half is the row's ID number as an
//! integer (its first 17 digits determine it, and fit in 57 bits) with a
//! marker bit, the low half a 64-bit XXH3 hash of the whole normalised row
//! (ID, value lengths and values). Two rows are taken as identical when their
//! keys are equal, so rows with different IDs never collide, and two
//! different rows of the same ID collide with probability 2^-64 per pair
//! (an ID has a handful of rows). XXH3 was chosen over keyed SipHash for
//! speed (about 10 ns per row); the input is a department's own export, so
//! hash flooding is not a threat model here. The keys live in an
//! open-addressing table with linear probing ([`RowSet`], 16 bytes per slot,
//! at most 3/4 full); a second table ([`IdSet`], 8 bytes per slot) counts
//! distinct IDs and IDs with several rows. Both are sized up front from the
//! file size, so a 10-million-row registry needs about 400 MB. Rows are
//! resolved in windows of [`WINDOW`]: the slots the window will probe are
//! loaded first, independently, so their cache misses overlap instead of
//! costing one memory latency each (software prefetching without `unsafe`).

use super::mapping::{Mapping, column_key};
use super::source::{Batch, Header};
use super::{
    BLOCK_SOFT_LIMIT, ID_COLUMNS, ImportError, MAX_BLOCK_RECORDS, MAX_ROW_BYTES, Problem, io_err,
    is_date_column,
};
use csv::ByteRecord;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::{self, Fixes, IdNumber};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender};

/// Rows resolved against the duplicate tables at once.
const WINDOW: usize = 32;

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
            return Err(malformed(Problem::MissingIdColumn {
                column: mapping.id_column.clone(),
                found: columns.iter().map(|c| c.canonical.clone()).collect(),
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

/// Trims Unicode whitespace (including the ideographic space U+3000) and BOMs.
pub(super) fn clean(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if f > b' ' && f < 0x7F && l > b' ' && l < 0x7F => s,
        _ => s.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}'),
    }
}

/// Parses `YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD` or `YYYY.MM.DD`.
pub(super) fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let (y, m, d) = match b.len() {
        8 => (&b[0..4], &b[4..6], &b[6..8]),
        10 if matches!(b[4], b'-' | b'/' | b'.') && b[7] == b[4] => (&b[0..4], &b[5..7], &b[8..10]),
        _ => return None,
    };
    let num = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    Date::new(
        u16::try_from(num(y)?).ok()?,
        u8::try_from(num(m)?).ok()?,
        u8::try_from(num(d)?).ok()?,
    )
}

fn push_date(out: &mut String, date: Date) {
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let y = u32::from(date.year());
    for n in [y / 1000, y / 100, y / 10, y] {
        out.push(digit(n));
    }
    out.push('-');
    out.push(digit(u32::from(date.month()) / 10));
    out.push(digit(u32::from(date.month())));
    out.push('-');
    out.push(digit(u32::from(date.day()) / 10));
    out.push(digit(u32::from(date.day())));
}

/// The ID number as an integer (its first 17 digits; the 18th follows from them).
fn id_value(id: &IdNumber) -> u64 {
    id.as_bytes()[..17]
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0'))
}

/// Bytes of a bincode variable-length integer.
fn varint_len(n: usize) -> usize {
    match n {
        0..=250 => 1,
        251..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

/// `splitmix64`'s finaliser: spreads structured integers over the table.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn table_slots(rows: usize) -> usize {
    (rows.saturating_mul(4) / 3 + 1)
        .next_power_of_two()
        .max(1024)
}

/// Set of 128-bit row keys (never 0): linear probing, at most 3/4 full.
pub(super) struct RowSet {
    slots: Vec<u128>,
    len: usize,
}

impl RowSet {
    fn new() -> RowSet {
        RowSet {
            slots: vec![0; 1024],
            len: 0,
        }
    }
    fn home(&self, key: u128) -> usize {
        (key as u64 as usize) & (self.slots.len() - 1)
    }
    fn peek(&self, key: u128) -> u64 {
        self.slots[self.home(key)] as u64
    }
    fn reserve(&mut self, rows: usize) {
        if table_slots(rows) > self.slots.len() {
            self.rebuild(table_slots(rows));
        }
    }
    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        self.len = 0;
        for key in old.into_iter().filter(|&k| k != 0) {
            self.insert(key);
        }
    }
    /// Inserts `key`; false if it was there.
    fn insert(&mut self, key: u128) -> bool {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.rebuild(self.slots.len() * 2);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                self.slots[i] = key;
                self.len += 1;
                return true;
            }
            if slot == key {
                return false;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Set of ID values with a "seen several times" flag per ID.
pub(super) struct IdSet {
    slots: Vec<u64>,
    len: usize,
}

const OCCUPIED: u64 = 1 << 63;
const SEVERAL: u64 = 1 << 62;
const ID_BITS: u64 = SEVERAL - 1;

/// What adding an ID to an [`IdSet`] found.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    First,
    Second,
    More,
}

impl IdSet {
    fn new() -> IdSet {
        IdSet {
            slots: vec![0; 1024],
            len: 0,
        }
    }
    fn home(&self, id: u64) -> usize {
        (mix64(id) as usize) & (self.slots.len() - 1)
    }
    fn peek(&self, id: u64) -> u64 {
        self.slots[self.home(id)]
    }
    fn reserve(&mut self, ids: usize) {
        if table_slots(ids) > self.slots.len() {
            self.rebuild(table_slots(ids));
        }
    }
    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        let mask = slots - 1;
        for entry in old.into_iter().filter(|&e| e != 0) {
            let mut i = self.home(entry & ID_BITS);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = entry;
        }
    }
    fn add(&mut self, id: u64) -> Seen {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.rebuild(self.slots.len() * 2);
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(id);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                self.slots[i] = id | OCCUPIED;
                self.len += 1;
                return Seen::First;
            }
            if slot & ID_BITS == id {
                if slot & SEVERAL != 0 {
                    return Seen::More;
                }
                self.slots[i] = slot | SEVERAL;
                return Seen::Second;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Up to [`super::MAX_BLOCK_RECORDS`] kept rows, in the layout the writer encodes.
pub(super) struct Block {
    pub ids: Vec<IdNumber>,
    /// The values of every row, concatenated.
    pub data: String,
    /// End offset in `data` of each value (`values_per_row` per row).
    pub ends: Vec<u32>,
    pub values_per_row: usize,
    /// Bytes the encoding will take, about (exactly, for the codec today).
    pub encoded: usize,
}

impl Block {
    fn new(values_per_row: usize) -> Block {
        Block {
            ids: Vec::new(),
            data: String::new(),
            ends: Vec::new(),
            values_per_row,
            encoded: 0,
        }
    }
    pub fn clear(&mut self) {
        self.ids.clear();
        self.data.clear();
        self.ends.clear();
        self.encoded = 0;
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// The values of row `r`.
    pub fn values(&self, r: usize) -> impl ExactSizeIterator<Item = &str> + '_ {
        let ends = &self.ends[r * self.values_per_row..(r + 1) * self.values_per_row];
        let mut start = if r == 0 || self.values_per_row == 0 {
            0
        } else {
            self.ends[r * self.values_per_row - 1] as usize
        };
        ends.iter().map(move |&end| {
            let s = self.data.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            s
        })
    }
}

/// One normalised row waiting for duplicate resolution.
struct Pending {
    id: Option<IdNumber>,
    values: String,
    /// Value lengths.
    lens: Vec<u32>,
    key: u128,
    size: usize,
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
    pub rows_kept: u64,
    pub rows_quarantined: u64,
    pub duplicate_rows: u64,
    pub distinct_ids: u64,
    pub ids_with_several_rows: u64,
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
    rows: RowSet,
    ids: IdSet,
    block: Option<Block>,
    pending: Vec<Pending>,
    pending_len: usize,
    /// Problems of the current row: (column, reason).
    problems: Vec<(usize, &'static str)>,
    /// Hash input for a row's ID and value lengths.
    scratch: Vec<u8>,
    sized: bool,
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
            rows: RowSet::new(),
            ids: IdSet::new(),
            block: Some(Block::new(plan.columns.len() - 1)),
            pending: Vec::new(),
            pending_len: 0,
            problems: Vec::new(),
            scratch: Vec::new(),
            sized: false,
        }
    }

    /// Processes every batch; then flushes the last block. Dropping
    /// `blocks` (on return) tells the writer there is no more.
    pub fn run(
        &mut self,
        batches: Receiver<Batch>,
        spare_batches: Sender<Batch>,
        blocks: SyncSender<Block>,
        spare_blocks: Receiver<Block>,
    ) -> Result<(), Stop> {
        for batch in batches {
            if !self.sized {
                self.size_tables(&batch);
            }
            for i in 0..batch.len {
                self.row(&batch.records[i], batch.lines[i], &blocks, &spare_blocks)?;
            }
            // The reader may have gone (after an error); that is fine.
            let _ = spare_batches.send(batch);
        }
        self.resolve(&blocks, &spare_blocks)?;
        if let Some(block) = self.block.take()
            && block.len() > 0
        {
            blocks.send(block).map_err(|_| Stop::WriterGone)?;
        }
        Ok(())
    }

    /// Sizes the duplicate tables from the file size and the first batch's
    /// average row length, so they rarely grow (growing rehashes everything).
    fn size_tables(&mut self, batch: &Batch) {
        self.sized = true;
        let bytes: usize = batch.records[..batch.len]
            .iter()
            .map(|r| r.as_slice().len() + r.len())
            .sum();
        if bytes == 0 {
            return;
        }
        let estimate = (self.file_len as f64 * batch.len as f64 / bytes as f64) as usize;
        let estimate = estimate.min(1 << 31);
        self.rows.reserve(estimate);
        self.ids.reserve(estimate);
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

    fn row(
        &mut self,
        rec: &ByteRecord,
        line: u64,
        blocks: &SyncSender<Block>,
        spare: &Receiver<Block>,
    ) -> Result<(), Stop> {
        self.stats.rows_read += 1;
        let Ok(text) = std::str::from_utf8(rec.as_slice()) else {
            return Err(self.utf8_error(rec, line));
        };
        if self.pending.len() == self.pending_len {
            self.pending.push(Pending {
                id: None,
                values: String::new(),
                lens: Vec::new(),
                key: 0,
                size: 0,
            });
        }
        let plan = self.plan;
        let reference = self.reference;
        let mut fix_counts = [0u64; 5];
        let mut count = |fixes: Fixes| {
            for (n, (fix, _)) in fix_counts.iter_mut().zip(Fixes::ALL) {
                *n += u64::from(fixes.contains(fix));
            }
        };
        self.problems.clear();
        let p = &mut self.pending[self.pending_len];
        p.id = None;
        p.values.clear();
        p.lens.clear();
        let mut offset = 0;
        for (i, field) in rec.iter().enumerate() {
            // Every field of a valid record is valid UTF-8 unless a field
            // boundary splits a character.
            let Some(raw) = text.get(offset..offset + field.len()) else {
                return Err(self.utf8_error(rec, line));
            };
            offset += field.len();
            let col = &plan.columns[i];
            let cleaned = clean(raw);
            let translated = col
                .translate
                .as_ref()
                .and_then(|t| t.get(cleaned))
                .map(String::as_str);
            let before = p.values.len();
            match col.kind {
                Kind::Key => {
                    match id::normalize_with_fixes(translated.unwrap_or(raw), reference) {
                        Ok((id, fixes)) => {
                            p.id = Some(id);
                            count(fixes);
                        }
                        Err(e) => self.problems.push((i, e.code())),
                    }
                    continue;
                }
                Kind::Id => {
                    let v = translated.unwrap_or(raw);
                    if !clean(v).is_empty() {
                        match id::normalize_with_fixes(v, reference) {
                            Ok((id, fixes)) => {
                                p.values.push_str(id.as_str());
                                count(fixes);
                            }
                            Err(e) => self.problems.push((i, e.code())),
                        }
                    }
                }
                Kind::Date => {
                    let v = clean(translated.unwrap_or(cleaned));
                    if !v.is_empty() {
                        match parse_date(v) {
                            Some(d) => push_date(&mut p.values, d),
                            None => self.problems.push((i, "invalid_date")),
                        }
                    }
                }
                Kind::Text => p.values.push_str(translated.unwrap_or(cleaned)),
            }
            p.lens.push((p.values.len() - before) as u32);
        }
        if !self.problems.is_empty() {
            return self.quarantine_row(rec, text, line);
        }
        let Some(id) = p.id else {
            return Err(Stop::Failed(ImportError::Internal(
                "row without a key column".into(),
            )));
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(id.as_bytes());
        let mut size = 1 + 18 + varint_len(p.lens.len());
        for &len in &p.lens {
            self.scratch.extend_from_slice(&len.to_le_bytes());
            size += varint_len(len as usize) + len as usize;
        }
        let seed = xxhash_rust::xxh3::xxh3_64(&self.scratch);
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(p.values.as_bytes(), seed);
        p.key = (u128::from(id_value(&id) | OCCUPIED) << 64) | u128::from(hash);
        p.size = size;
        if size > MAX_ROW_BYTES {
            return Err(self.malformed(
                line,
                Problem::RowTooLarge {
                    bytes: size,
                    limit: MAX_ROW_BYTES,
                },
            ));
        }
        for (total, n) in self.fixes.iter_mut().zip(fix_counts) {
            *total += n;
        }
        self.pending_len += 1;
        if self.pending_len == WINDOW {
            self.resolve(blocks, spare)?;
        }
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

    /// Resolves the pending window against the duplicate tables and moves
    /// the new rows into the block.
    fn resolve(&mut self, blocks: &SyncSender<Block>, spare: &Receiver<Block>) -> Result<(), Stop> {
        let n = self.pending_len;
        if n == 0 {
            return Ok(());
        }
        // Touch every slot the window will probe first: the loads are
        // independent, so their cache misses overlap.
        let mut touch = 0u64;
        for p in &self.pending[..n] {
            touch ^= self.rows.peek(p.key) ^ self.ids.peek((p.key >> 64) as u64 & ID_BITS);
        }
        std::hint::black_box(touch);
        for k in 0..n {
            let key = self.pending[k].key;
            if !self.rows.insert(key) {
                self.stats.duplicate_rows += 1;
                continue;
            }
            self.stats.rows_kept += 1;
            match self.ids.add((key >> 64) as u64 & ID_BITS) {
                Seen::First => self.stats.distinct_ids += 1,
                Seen::Second => self.stats.ids_with_several_rows += 1,
                Seen::More => {}
            }
            let size = self.pending[k].size;
            let full = self.block.as_ref().is_none_or(|b| {
                b.len() >= MAX_BLOCK_RECORDS || (b.len() > 0 && b.encoded + size > BLOCK_SOFT_LIMIT)
            });
            if full {
                if let Some(block) = self.block.take() {
                    blocks.send(block).map_err(|_| Stop::WriterGone)?;
                }
                let mut block = spare
                    .try_recv()
                    .unwrap_or_else(|_| Block::new(self.plan.columns.len() - 1));
                block.clear();
                self.block = Some(block);
            }
            let Some(block) = self.block.as_mut() else {
                continue;
            };
            let p = &self.pending[k];
            let Some(id) = p.id else { continue };
            block.ids.push(id);
            let mut end = block.data.len();
            block.data.push_str(&p.values);
            for &len in &p.lens {
                end += len as usize;
                block.ends.push(end as u32);
            }
            block.encoded += size;
        }
        self.pending_len = 0;
        Ok(())
    }
}
