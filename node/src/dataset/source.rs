//! Reading department exports: the CSV and JSON Lines sources over the
//! byte tap (`tap`), and the reader thread that hands parsed rows to the normaliser in batches.
//!
//! A CSV line with no quote and no stray CR is split at its commas directly
//! (the fast path, see [`CsvSource`]); the header and every other row go
//! through `csv_core`, the `csv` crate's parser. `csv_core` is lenient
//! where an import must not be: it keeps a quote in the middle of an
//! unquoted field (`ab"c`) as a literal character, glues text after a
//! closing quote onto the field (`"ab"c` reads as `abc`), reads an
//! unterminated quoted field silently to the end of the file, and its line
//! numbers are off after blank lines and with CRLF line ends. The tap
//! therefore runs a small quote state machine over the raw bytes (a `memchr`
//! scan for `"`, so it costs almost nothing on quote-free data) and records
//! the offset of every `\n`; rows get their physical line numbers from those
//! offsets and from the parser's byte positions, and a quoting error is
//! reported as soon as the parser has consumed the bytes it is in, so errors
//! come out in file order.

use super::model::{Format, ImportError, ImportOptions, MAX_ROW_BYTES, Problem, io_err};
pub(super) use super::parsed::{Header, Summary};
use super::tap::{CsvScan, READ_BUFFER, Tap};
use super::workbook::WorkbookSource;
use csv::ByteRecord;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

/// A batch is sent on once its rows hold this many bytes (or it is full).
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// A parsed row larger than this does not keep its buffer for reuse.
pub(super) const KEEP_ROW_BUFFER: usize = 64 * 1024;

/// Rows handed from the reader thread to the normaliser.
pub(super) struct Batch {
    pub records: Vec<ByteRecord>,
    pub lines: Vec<u64>,
    pub len: usize,
    /// Cells the source already found wrong, in row order: (row in the
    /// batch, column, reason), e.g. a workbook number too long to be exact.
    pub problems: Vec<(usize, usize, &'static str)>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            records: Vec::new(),
            lines: Vec::new(),
            len: 0,
            problems: Vec::new(),
        }
    }
}

/// A source of rows.
pub(super) enum Source {
    Csv(CsvSource),
    Json(JsonSource),
    Workbook(WorkbookSource),
}

impl Source {
    /// Opens the export `opts.file` in `format` and reads its header.
    pub fn open(opts: &ImportOptions, format: Format) -> Result<(Source, Header), ImportError> {
        let path = &opts.file;
        match format {
            Format::Csv => {
                let (s, h) = CsvSource::open(path, opts.encoding, opts.delimiter)?;
                Ok((Source::Csv(s), h))
            }
            Format::JsonLines => {
                let (s, h) = JsonSource::open(path, opts.encoding)?;
                Ok((Source::Json(s), h))
            }
            Format::Xlsx | Format::Xls | Format::Xlsb | Format::Ods => {
                let (s, h) = WorkbookSource::open(path, format, opts.sheet.as_deref())?;
                Ok((Source::Workbook(s), h))
            }
        }
    }

    /// Reads the next row into `rec`; its 1-based physical line, or `None` at the end.
    fn next(&mut self, rec: &mut ByteRecord) -> Result<Option<u64>, ImportError> {
        match self {
            Source::Csv(s) => s.next(rec),
            Source::Json(s) => s.next(rec),
            Source::Workbook(s) => s.next(rec),
        }
    }

    /// Reads the remaining bytes (for the hash) and returns the summary.
    fn finish(self) -> Result<Summary, ImportError> {
        let (mut tap, path, delimiter) = match self {
            Source::Csv(s) => {
                let d = s.delimiter;
                (s.tap, s.path, Some(d))
            }
            Source::Json(s) => (s.rdr.into_inner(), s.path, None),
            Source::Workbook(s) => return s.finish(),
        };
        io::copy(&mut tap, &mut io::sink()).map_err(io_err(&path))?;
        let encoding = tap.encoding().name().to_string();
        Ok(Summary {
            sha256: tap.finish()?,
            encoding,
            delimiter,
            sheet: None,
        })
    }

    /// The reader thread: parses rows into batches and sends them on. A batch
    /// that ends in an error is sent first, so the normaliser can report an
    /// earlier error in its rows; then the error is returned.
    pub fn run(
        mut self,
        out: SyncSender<Batch>,
        spare: Receiver<Batch>,
        batch_rows: usize,
    ) -> Result<Summary, ImportError> {
        loop {
            let mut batch = spare.try_recv().unwrap_or_else(|_| Batch::new());
            batch.len = 0;
            batch.problems.clear();
            let mut end = false;
            let mut failure = None;
            let mut bytes = 0;
            while batch.len < batch_rows && bytes < BATCH_BYTES {
                if batch.records.len() == batch.len {
                    batch.records.push(ByteRecord::new());
                    batch.lines.push(0);
                }
                let rec = &mut batch.records[batch.len];
                match self.next(rec) {
                    Ok(Some(line)) => {
                        if let Source::Workbook(w) = &mut self {
                            let row = batch.len;
                            batch
                                .problems
                                .extend(w.problems.drain(..).map(|(c, why)| (row, c, why)));
                        }
                        let rec = &batch.records[batch.len];
                        bytes += rec.as_slice().len();
                        batch.lines[batch.len] = line;
                        batch.len += 1;
                    }
                    Ok(None) => {
                        end = true;
                        break;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if batch.len > 0 && out.send(batch).is_err() {
                // The normaliser stopped (it reports why).
                return Err(ImportError::Internal("normaliser stopped".into()));
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if end {
                drop(out);
                return self.finish();
            }
        }
    }
}

/// CSV with the tap's quote checks and line numbers. A complete line in the
/// buffer with no `"` and no `\r` (other than a CRLF ending) is split at
/// its commas directly, which is what RFC 4180 and `csv_core` make of it;
/// every other row (quoted fields, lone CRs, a line longer than the buffer
/// or without a final newline) goes through `csv_core`'s parser, as does the
/// header. The fast path reads almost every row of a real export: it costs a
/// `memchr` for the line end and one for quotes, where the parser's state
/// machine costs several cycles per byte on the busiest thread of the import.
pub(super) struct CsvSource {
    tap: Tap,
    path: PathBuf,
    /// Bytes read from the tap; `buf[pos..filled]` are not parsed yet.
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    /// Stream offset (BOM excluded) of `buf[0]`.
    buf_offset: u64,
    /// The tap has no more bytes.
    eof: bool,
    core: Box<csv_core::Reader>,
    /// The parser's output for the row in progress: field bytes, field ends.
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Fields of the first row (the header); every row must have as many.
    width: Option<usize>,
    /// `\n` bytes before the end of the last parsed row.
    newlines_before: u64,
    /// Plain lines take the fast path (always, except in tests).
    fast: bool,
    /// The last row came from the fast path (a single line).
    last_fast: bool,
    /// The field delimiter.
    delimiter: u8,
}

impl CsvSource {
    fn open(
        path: &Path,
        encoding: Option<&'static encoding_rs::Encoding>,
        delimiter: Option<u8>,
    ) -> Result<(CsvSource, Header), ImportError> {
        Self::open_with(path, (READ_BUFFER, encoding, delimiter), true)
    }

    /// [`CsvSource::open`] with a read buffer of `capacity` bytes and the
    /// fast path on or off (tests compare tiny buffers, which put rows across
    /// buffer ends, and the parser alone).
    fn open_with(
        path: &Path,
        (capacity, encoding, delimiter): (
            usize,
            Option<&'static encoding_rs::Encoding>,
            Option<u8>,
        ),
        fast: bool,
    ) -> Result<(CsvSource, Header), ImportError> {
        let tap = Tap::open(path, Some(delimiter), encoding)?;
        let delimiter = tap.delimiter();
        let mut source = CsvSource {
            tap,
            path: path.to_path_buf(),
            buf: vec![0; capacity.max(1)],
            pos: 0,
            filled: 0,
            buf_offset: 0,
            eof: false,
            core: Box::new(csv_core::ReaderBuilder::new().delimiter(delimiter).build()),
            out: vec![0; 1024],
            ends: vec![0; 64],
            width: None,
            newlines_before: 0,
            fast,
            last_fast: false,
            delimiter,
        };
        let mut rec = ByteRecord::new();
        // The header through the parser: it also sets the parser's
        // "has read" state, after which it never strips a BOM again.
        let res = source.slow_row(&mut rec);
        let Some(line) = source.finish_row(&mut rec, res)? else {
            return Err(source.malformed(1, Problem::Empty));
        };
        let mut names = Vec::with_capacity(rec.len());
        for (i, field) in rec.iter().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| {
                source.malformed(
                    line,
                    Problem::InvalidUtf8 {
                        column: Some(format!("#{}", i + 1)),
                    },
                )
            })?;
            names.push(name.to_string());
        }
        Ok((source, Header { names, line }))
    }

    /// The stream offset of the first unparsed byte.
    fn position(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// Moves the unparsed bytes to the front of the buffer and reads more
    /// after them (growing the buffer only when it is full of one row).
    /// Returns false at the end of the file.
    fn refill(&mut self) -> Result<bool, ImportError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.buf_offset += self.pos as u64;
            self.filled -= self.pos;
            self.pos = 0;
        }
        if self.filled == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        loop {
            match self.tap.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&self.path)(e)),
            }
        }
    }

    /// Splits a complete plain line at `buf[pos..]` into `rec`; false if the
    /// next row needs the parser (or more bytes).
    fn fast_row(&mut self, rec: &mut ByteRecord) -> bool {
        if !self.fast {
            return false;
        }
        let rest = &self.buf[self.pos..self.filled];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return false;
        };
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if memchr::memchr2(b'"', b'\r', line).is_some() {
            return false;
        }
        rec.clear();
        if !line.is_empty() {
            // Fields are short: a plain loop beats a vectorised search here.
            let mut start = 0;
            let delimiter = self.delimiter;
            for (i, &b) in line.iter().enumerate() {
                if b == delimiter {
                    rec.push_field(&line[start..i]);
                    start = i + 1;
                }
            }
            rec.push_field(&line[start..]);
        }
        self.pos += nl + 1;
        self.last_fast = true;
        true
    }

    /// Parses the next row with `csv_core` into `rec`, reading as needed;
    /// false at the end of the input.
    fn slow_row(&mut self, rec: &mut ByteRecord) -> Result<bool, ImportError> {
        use csv_core::ReadRecordResult as R;
        self.last_fast = false;
        let (mut outlen, mut endlen) = (0, 0);
        loop {
            if self.pos == self.filled {
                self.refill()?;
            }
            let (res, nin, nout, nend) = self.core.read_record(
                &self.buf[self.pos..self.filled],
                &mut self.out[outlen..],
                &mut self.ends[endlen..],
            );
            self.pos += nin;
            outlen += nout;
            endlen += nend;
            match res {
                R::InputEmpty => {}
                R::OutputFull => {
                    let grown = self.out.len() * 2;
                    self.out.resize(grown, 0);
                }
                R::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                R::Record => {
                    rec.clear();
                    let mut start = 0;
                    for &end in &self.ends[..endlen] {
                        rec.push_field(&self.out[start..end]);
                        start = end;
                    }
                    return Ok(true);
                }
                R::End => return Ok(false),
            }
        }
    }

    /// Reads the next row into `rec`, by the fast path where it can.
    fn parse_row(&mut self, rec: &mut ByteRecord) -> Result<bool, ImportError> {
        loop {
            // Blank lines are no rows (as the parser skips them).
            while self.fast_row(rec) {
                if !rec.is_empty() {
                    return Ok(true);
                }
            }
            // No complete line left: read more, unless the buffer holds the
            // start of a row that the parser must read anyway.
            let rest = &self.buf[self.pos..self.filled];
            let needs_parser = memchr::memchr(b'\n', rest).is_some()
                || (self.filled - self.pos == self.buf.len() && self.pos == 0);
            if needs_parser || !self.refill()? {
                return self.slow_row(rec);
            }
        }
    }

    /// Checks a parsed row (quoting, width, size) and returns its line.
    fn finish_row(
        &mut self,
        rec: &mut ByteRecord,
        res: Result<bool, ImportError>,
    ) -> Result<Option<u64>, ImportError> {
        let end = self.position();
        // A quoting error inside what the parser has consumed comes first:
        // it explains whatever the parser made of those bytes.
        let quote_error = self
            .tap
            .csv
            .as_ref()
            .and_then(|s| s.quotes.error.clone())
            .filter(|q| q.offset < end);
        if let Some(q) = quote_error {
            let line = self.line_of_offset(q.offset);
            return Err(self.malformed(line, q.problem));
        }
        if !res? {
            return Ok(None);
        }
        let line = self.row_line(rec, end);
        // A row of another width than the header goes on: the normaliser
        // quarantines it (`ragged_row`) with its line.
        self.width.get_or_insert(rec.len());
        let bytes = rec.as_slice().len();
        if bytes > MAX_ROW_BYTES {
            return Err(self.malformed(
                line,
                Problem::RowTooLarge {
                    bytes,
                    limit: MAX_ROW_BYTES,
                },
            ));
        }
        Ok(Some(line))
    }

    fn malformed(&self, line: u64, problem: Problem) -> ImportError {
        ImportError::Malformed {
            file: self.path.clone(),
            line,
            problem,
        }
    }

    fn scan(&mut self) -> Option<&mut CsvScan> {
        self.tap.csv.as_mut()
    }

    /// The physical line of a byte offset not before the last parsed row's end.
    fn line_of_offset(&mut self, offset: u64) -> u64 {
        let before = self.newlines_before;
        let ahead = self.scan().map_or(0, |s| {
            s.newlines.iter().take_while(|&&p| p < offset).count() as u64
        });
        1 + before + ahead
    }

    /// Assigns the newlines before `end` (the parser's position after a row)
    /// and returns the row's first physical line.
    fn row_line(&mut self, rec: &ByteRecord, end: u64) -> u64 {
        let mut popped = 0u64;
        let mut last = None;
        if let Some(scan) = self.scan() {
            while let Some(&p) = scan.newlines.front() {
                if p >= end {
                    break;
                }
                popped += 1;
                last = Some(p);
                scan.newlines.pop_front();
            }
        }
        self.newlines_before += popped;
        // The row's last line: a `\n` terminator was consumed with it (LF);
        // with CR or CRLF terminators, or at the end of the file, it was not.
        let terminated_by_lf = last.is_some_and(|p| p + 1 == end);
        let last_line = 1 + self.newlines_before - u64::from(terminated_by_lf);
        // A row split on the fast path is one line; the parser's may hold
        // line breaks inside quoted fields.
        let inside = if self.last_fast {
            0
        } else {
            memchr::memchr_iter(b'\n', rec.as_slice()).count() as u64
        };
        last_line.saturating_sub(inside).max(1)
    }

    fn next(&mut self, rec: &mut ByteRecord) -> Result<Option<u64>, ImportError> {
        let res = self.parse_row(rec);
        self.finish_row(rec, res)
    }
}

/// JSON Lines: one object per line; the first object's keys are the columns.
pub(super) struct JsonSource {
    rdr: BufReader<Tap>,
    path: PathBuf,
    line: u64,
    buf: Vec<u8>,
    /// Raw key to column index.
    index: HashMap<String, usize>,
    /// The current object's values, by column.
    slots: Vec<Option<String>>,
    /// The first object, already parsed while reading the header.
    first: Option<(u64, Vec<(String, String)>)>,
}

/// A JSON object with its keys in file order.
struct Object(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Object, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    fields.push((k, v));
                }
                Ok(Object(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl JsonSource {
    fn open(
        path: &Path,
        encoding: Option<&'static encoding_rs::Encoding>,
    ) -> Result<(JsonSource, Header), ImportError> {
        let tap = Tap::open(path, None, encoding)?;
        let mut source = JsonSource {
            rdr: BufReader::with_capacity(READ_BUFFER, tap),
            path: path.to_path_buf(),
            line: 0,
            buf: Vec::new(),
            index: HashMap::new(),
            slots: Vec::new(),
            first: None,
        };
        let Some(fields) = source.next_object()? else {
            return Err(source.malformed(1, Problem::Empty));
        };
        let line = source.line;
        let mut names = Vec::with_capacity(fields.len());
        for (i, (key, _)) in fields.iter().enumerate() {
            if source.index.insert(key.clone(), i).is_some() {
                return Err(source.malformed(line, Problem::DuplicateJsonKey { key: key.clone() }));
            }
            names.push(key.clone());
        }
        source.slots = vec![None; names.len()];
        source.first = Some((line, fields));
        Ok((source, Header { names, line }))
    }

    fn malformed(&self, line: u64, problem: Problem) -> ImportError {
        ImportError::Malformed {
            file: self.path.clone(),
            line,
            problem,
        }
    }

    /// The next non-blank line's object as (key, text value) pairs.
    fn next_object(&mut self) -> Result<Option<Vec<(String, String)>>, ImportError> {
        loop {
            self.buf.clear();
            let n = (&mut self.rdr)
                .take(MAX_ROW_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(io_err(&self.path))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.buf.len() > MAX_ROW_BYTES {
                return Err(self.malformed(
                    self.line,
                    Problem::RowTooLarge {
                        bytes: self.buf.len(),
                        limit: MAX_ROW_BYTES,
                    },
                ));
            }
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Err(self.malformed(self.line, Problem::InvalidUtf8 { column: None }));
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if !text.starts_with('{') {
                return Err(self.malformed(self.line, Problem::NotAnObject));
            }
            let object: Object = serde_json::from_str(text).map_err(|e| {
                let problem = match e.classify() {
                    serde_json::error::Category::Data => Problem::NotAnObject,
                    _ => Problem::InvalidJson(e.to_string()),
                };
                self.malformed(self.line, problem)
            })?;
            let mut fields = Vec::with_capacity(object.0.len());
            for (key, value) in object.0 {
                let text = match value {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                        return Err(self.malformed(self.line, Problem::NestedJsonValue { key }));
                    }
                };
                fields.push((key, text));
            }
            return Ok(Some(fields));
        }
    }

    fn next(&mut self, rec: &mut ByteRecord) -> Result<Option<u64>, ImportError> {
        let (line, fields) = match self.first.take() {
            Some(first) => first,
            None => match self.next_object()? {
                Some(fields) => (self.line, fields),
                None => return Ok(None),
            },
        };
        self.slots.iter_mut().for_each(|s| *s = None);
        for (key, value) in fields {
            let Some(&i) = self.index.get(&key) else {
                return Err(self.malformed(line, Problem::UnknownJsonKey { key }));
            };
            if self.slots[i].replace(value).is_some() {
                return Err(self.malformed(line, Problem::DuplicateJsonKey { key }));
            }
        }
        rec.clear();
        for slot in &self.slots {
            rec.push_field(slot.as_deref().unwrap_or("").as_bytes());
        }
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows = Vec<(u64, Vec<Vec<u8>>)>;

    /// Every row with its physical line (the header first), or the error.
    fn read_all(path: &Path, capacity: usize, fast: bool, delimiter: u8) -> Result<Rows, String> {
        let (mut src, header) = CsvSource::open_with(path, (capacity, None, Some(delimiter)), fast)
            .map_err(|e| e.to_string())?;
        let names = header.names.iter().map(|n| n.as_bytes().to_vec());
        let mut rows = vec![(header.line, names.collect())];
        let mut rec = ByteRecord::new();
        loop {
            match src.next(&mut rec) {
                Ok(Some(line)) => rows.push((line, rec.iter().map(<[u8]>::to_vec).collect())),
                Ok(None) => return Ok(rows),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn plain_lines_take_the_fast_path_and_quoted_ones_the_parser() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "id,name\r\na,b\r\n\"c\",d\n").unwrap();
        let (mut src, _) = CsvSource::open_with(&path, (READ_BUFFER, None, None), true).unwrap();
        let mut rec = ByteRecord::new();
        assert_eq!(src.next(&mut rec).unwrap(), Some(2));
        assert!(src.last_fast && rec == vec!["a", "b"]);
        assert_eq!(src.next(&mut rec).unwrap(), Some(3));
        assert!(!src.last_fast && rec == vec!["c", "d"]);
        assert_eq!(src.next(&mut rec).unwrap(), None);
    }

    proptest::proptest! {
        /// The fast path, with any buffer size and delimiter, reads
        /// exactly what the parser alone reads: the same rows, lines and
        /// errors.
        #[test]
        fn the_fast_path_reads_what_the_parser_reads(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "bc", ",", ",", "\"", "\"\"", "\r", "\n", "\n", "\r\n", "é", " ",
                    "\t", ";", "|",
                ]),
                0..80,
            ),
            delimiter in proptest::sample::select(vec![b',', b'\t', b';', b'|']),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.csv");
            std::fs::write(&path, parts.concat()).unwrap();
            let want = read_all(&path, READ_BUFFER, false, delimiter);
            for capacity in [1, 2, 3, 7, 64, READ_BUFFER] {
                proptest::prop_assert_eq!(
                    &read_all(&path, capacity, true, delimiter),
                    &want,
                    "buffer {}",
                    capacity
                );
            }
        }
    }
}
