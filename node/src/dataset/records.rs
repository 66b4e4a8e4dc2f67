//! `records.bin`: writing blocks (the writer thread) and reading them back
//! ([`DatasetReader`]).
//!
//! A block is a 4-byte big-endian length followed by
//! `codec::encode(&Vec<Record>)`: the number of records, then each record
//! (its ID string, the number of values, each value), every string as its
//! length and bytes, every length and count as the codec's variable-length
//! integer ([`put_varint`]). The normaliser writes each kept row in exactly
//! that form as it normalises it, so the writer only prefixes a count and
//! copies the rows that are not duplicates: going through serde instead cost
//! a `String` per value, or a fresh multi-megabyte buffer per block and a
//! second copy, about a fifth of an import's CPU time. The tests check the
//! bytes against `codec::encode`, and every import checks its first block by
//! decoding and re-encoding it through the codec; a difference (the codec's
//! format changed) fails the import rather than writing records the codec
//! cannot read.

use super::dedup::{Dedup, DedupStats};
use super::normalise::Block;
use super::{
    CURRENT_FILE, ImportError, ImportReport, RECORDS_FILE, REPORT_FILE, Record, dataset_dir,
    generation_dir, io_err, read_current, validate_name,
};
use crate::fsutil::DIRECT_ALIGN;
use dxmesh_protocol::codec::{self, MAX_DECODE_BYTES};
use dxmesh_protocol::id::IdNumber;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};

/// Bytes written between background `fdatasync` calls.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// Appends `n` as the codec's variable-length integer: below 251 one byte;
/// else a marker byte (251, 252, 253) and a little-endian `u16`, `u32` or `u64`.
pub(super) fn put_varint(out: &mut Vec<u8>, n: usize) {
    let n = n as u64;
    if n < 251 {
        out.push(n as u8);
    } else if n <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// The kept rows of a block as `(count, byte ranges of runs of kept rows)`.
fn kept_runs(block: &Block) -> (usize, Vec<std::ops::Range<usize>>) {
    let mut count = 0;
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for r in 0..block.len() {
        if !block.keep.get(r).copied().unwrap_or(true) {
            continue;
        }
        count += 1;
        let (start, end) = (block.start(r), block.ends[r] as usize);
        match runs.last_mut() {
            Some(run) if run.end == start => run.end = end,
            _ => runs.push(start..end),
        }
    }
    (count, runs)
}

/// The block body (without the length prefix) of the kept rows.
pub(super) fn block_body(block: &Block) -> Vec<u8> {
    let (count, runs) = kept_runs(block);
    let mut body = Vec::new();
    put_varint(&mut body, count);
    for run in runs {
        body.extend_from_slice(&block.data[run]);
    }
    body
}

/// Checks that the codec reads `body` as a `Vec<Record>` and encodes those
/// records to the same bytes.
pub(super) fn check_body(body: &[u8]) -> Result<(), ImportError> {
    let records: Vec<Record> = codec::decode(body).map_err(|e| {
        ImportError::Internal(format!("records encoding disagrees with the codec: {e}"))
    })?;
    let again = codec::encode(&records)
        .map_err(|e| ImportError::Internal(format!("cannot encode records: {e}")))?;
    if again != body {
        return Err(ImportError::Internal(
            "records encoding disagrees with the codec".into(),
        ));
    }
    Ok(())
}

/// Reads the codec's variable-length integer (see [`put_varint`]).
fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = bytes.split_first()?;
    let width = match first {
        0..=250 => {
            *bytes = rest;
            return Some(u64::from(first));
        }
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return None,
    };
    let (le, rest) = rest.split_at_checked(width)?;
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(le);
    *bytes = rest;
    Some(u64::from_le_bytes(buf))
}

/// Reads a length-prefixed byte string.
fn get_bytes<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(get_varint(bytes)?).ok()?;
    let (value, rest) = bytes.split_at_checked(len)?;
    *bytes = rest;
    Some(value)
}

/// Reads the records of one block body where they lie, the inverse of the
/// writer above, for the hot paths (publishing, disclosure, the national
/// lookup): no allocation per record, and only the columns a caller uses
/// are checked to be UTF-8. Every length is bounds-checked; the ID is
/// validated again ([`IdNumber::from_normalized`]).
pub(crate) struct BlockCursor<'a> {
    rest: &'a [u8],
    left: u64,
}

impl<'a> BlockCursor<'a> {
    /// A cursor at the first record of `body` (a block without its length prefix).
    pub(crate) fn new(body: &'a [u8]) -> Result<BlockCursor<'a>, String> {
        let mut rest = body;
        let left = get_varint(&mut rest).ok_or("the block has no record count")?;
        Ok(BlockCursor { rest, left })
    }

    /// Records not read yet.
    pub(crate) fn remaining(&self) -> u64 {
        self.left
    }

    /// The next record's ID, with its values in `values` (cleared first):
    /// the value of column `i` if `wanted(i)`, else `""`. `None` after the
    /// last record; an error if the block is malformed or has bytes after it.
    pub(crate) fn next_record(
        &mut self,
        wanted: impl Fn(usize) -> bool,
        values: &mut Vec<&'a str>,
    ) -> Result<Option<IdNumber>, String> {
        if self.left == 0 {
            return if self.rest.is_empty() {
                Ok(None)
            } else {
                Err(format!("{} bytes after the last record", self.rest.len()))
            };
        }
        let truncated = || "a record is cut short".to_string();
        let id = get_bytes(&mut self.rest).ok_or_else(truncated)?;
        let id = IdNumber::from_normalized(id).map_err(|e| format!("a stored ID: {e}"))?;
        let count = get_varint(&mut self.rest).ok_or_else(truncated)?;
        values.clear();
        for i in 0..count as usize {
            let v = get_bytes(&mut self.rest).ok_or_else(truncated)?;
            values.push(if wanted(i) {
                std::str::from_utf8(v).map_err(|_| format!("value {i} is not UTF-8"))?
            } else {
                ""
            });
        }
        self.left -= 1;
        Ok(Some(id))
    }
}

/// Bytes read per `O_DIRECT` read of `records.bin`.
const DIRECT_READ: usize = 8 * 1024 * 1024;

/// Reads `records.bin` front to back. For a single pass (publishing) with
/// `O_DIRECT`, like it was written: the device fills an aligned buffer and
/// the page cache is neither filled nor copied from (on these virtual
/// machines filling it is what a buffered read costs most). Where
/// `O_DIRECT` is refused (tmpfs, some network file systems), or at an
/// unaligned offset (only the file's last partial page), and for passes
/// that repeat (a lookup per request), through an ordinary descriptor.
pub(crate) struct RecordsReader {
    path: PathBuf,
    file: File,
    direct: bool,
    buf: Vec<u8>,
    /// Aligned start of the data in `buf`.
    start: usize,
    /// Next unread byte and end of the data, both relative to `start`.
    pos: usize,
    len: usize,
    /// File offset of the next read.
    offset: u64,
}

impl RecordsReader {
    /// Opens `path` for reading from its start; with `O_DIRECT` if `direct`
    /// and the file system allows it.
    pub(crate) fn open(path: &Path, direct: bool) -> io::Result<RecordsReader> {
        let direct = if direct {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
        } else {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        };
        let mut buf = Vec::new();
        let (file, direct, start) = match (direct, crate::fsutil::aligned(&mut buf, DIRECT_READ)) {
            (Ok(f), Some(start)) => (f, true, start),
            _ => (File::open(path)?, false, 0),
        };
        Ok(RecordsReader {
            path: path.to_path_buf(),
            file,
            direct,
            buf,
            start,
            pos: 0,
            len: 0,
            offset: 0,
        })
    }

    /// Whether reads bypass the page cache.
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct
    }

    fn buffered(&mut self) -> io::Result<()> {
        self.file = File::open(&self.path)?;
        self.direct = false;
        Ok(())
    }

    fn refill(&mut self) -> io::Result<()> {
        self.pos = 0;
        self.len = 0;
        loop {
            if self.direct && !self.offset.is_multiple_of(DIRECT_ALIGN as u64) {
                self.buffered()?;
            }
            let region = &mut self.buf[self.start..self.start + DIRECT_READ];
            match self.file.read_at(region, self.offset) {
                Ok(n) => {
                    self.len = n;
                    self.offset += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    self.buffered()?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl io::Read for RecordsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            self.refill()?;
        }
        let n = out.len().min(self.len - self.pos);
        let from = self.start + self.pos;
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Bytes gathered before an `O_DIRECT` write.
const DIRECT_CHUNK: usize = 4 * 1024 * 1024;

/// Where the records go.
///
/// Preferably `O_DIRECT`: the blocks are written straight from an aligned
/// buffer to the device, bypassing the page cache. That saves the copy into
/// the page cache (on virtual machines whose freed guest memory goes back to
/// the host, filling a gigabyte of new page cache is the most expensive part
/// of an import) and leaves nothing for the final `fsync` to write. The
/// unaligned tail goes through an ordinary descriptor. Where `O_DIRECT` is
/// refused (tmpfs, some network file systems), ordinary writes with a helper
/// thread calling `fdatasync` every [`SYNC_EVERY`] bytes, so that the final
/// `fsync` has little left to do.
enum Sink {
    Direct {
        direct: File,
        buf: Vec<u8>,
        /// Aligned start of the data in `buf`.
        start: usize,
        len: usize,
        /// File offset of `buf[start]`.
        offset: u64,
    },
    Buffered {
        unsynced: u64,
        sync_tx: Option<std::sync::mpsc::Sender<()>>,
        syncer: Option<std::thread::JoinHandle<io::Result<()>>>,
    },
}

impl Sink {
    fn open(file: &File, path: &Path) -> Result<Sink, ImportError> {
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        if let Ok(direct) = direct {
            let buf = vec![0u8; DIRECT_CHUNK + 2 * DIRECT_ALIGN];
            let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
            if start < DIRECT_ALIGN {
                return Ok(Sink::Direct {
                    direct,
                    buf,
                    start,
                    len: 0,
                    offset: 0,
                });
            }
        }
        Sink::buffered(file, path, 0)
    }

    fn buffered(file: &File, path: &Path, unsynced: u64) -> Result<Sink, ImportError> {
        let syncer_file = file.try_clone().map_err(io_err(path))?;
        let (sync_tx, sync_rx) = std::sync::mpsc::channel::<()>();
        let syncer = std::thread::Builder::new()
            .name("dataset-sync".into())
            .spawn(move || -> io::Result<()> {
                while sync_rx.recv().is_ok() {
                    while sync_rx.try_recv().is_ok() {}
                    syncer_file.sync_data()?;
                }
                Ok(())
            })
            .map_err(|e| ImportError::Internal(format!("cannot start sync thread: {e}")))?;
        Ok(Sink::Buffered {
            unsynced,
            sync_tx: Some(sync_tx),
            syncer: Some(syncer),
        })
    }

    fn write(&mut self, file: &mut File, path: &Path, mut bytes: &[u8]) -> Result<(), ImportError> {
        while !bytes.is_empty() {
            let full = match self {
                Sink::Buffered {
                    unsynced, sync_tx, ..
                } => {
                    file.write_all(bytes).map_err(io_err(path))?;
                    *unsynced += bytes.len() as u64;
                    if *unsynced >= SYNC_EVERY {
                        *unsynced = 0;
                        if let Some(tx) = sync_tx {
                            let _ = tx.send(());
                        }
                    }
                    return Ok(());
                }
                Sink::Direct {
                    buf, start, len, ..
                } => {
                    let n = (DIRECT_CHUNK + DIRECT_ALIGN - *len).min(bytes.len());
                    let at = *start + *len;
                    buf[at..at + n].copy_from_slice(&bytes[..n]);
                    *len += n;
                    bytes = &bytes[n..];
                    *len >= DIRECT_CHUNK
                }
            };
            if full {
                self.flush_aligned(file, path)?;
            }
        }
        Ok(())
    }

    /// Writes the aligned part of the direct buffer; on a refusal, switches
    /// to ordinary writes.
    fn flush_aligned(&mut self, file: &mut File, path: &Path) -> Result<(), ImportError> {
        let Sink::Direct {
            direct,
            buf,
            start,
            len,
            offset,
        } = self
        else {
            return Ok(());
        };
        let aligned = *len / DIRECT_ALIGN * DIRECT_ALIGN;
        if aligned == 0 {
            return Ok(());
        }
        match direct.write_all_at(&buf[*start..*start + aligned], *offset) {
            Ok(()) => {
                buf.copy_within(*start + aligned..*start + *len, *start);
                *len -= aligned;
                *offset += aligned as u64;
                Ok(())
            }
            // The device wants another alignment: write ordinarily.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.fall_back(file, path),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Switches from `O_DIRECT` to ordinary writes, writing what is buffered.
    fn fall_back(&mut self, file: &mut File, path: &Path) -> Result<(), ImportError> {
        let Sink::Direct {
            buf,
            start,
            len,
            offset,
            ..
        } = self
        else {
            return Ok(());
        };
        let end = *offset + *len as u64;
        file.write_all_at(&buf[*start..*start + *len], *offset)
            .map_err(io_err(path))?;
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(end)).map_err(io_err(path))?;
        *self = Sink::buffered(file, path, 0)?;
        Ok(())
    }

    /// Writes what is left and makes the file durable.
    fn finish(mut self, file: &mut File, path: &Path) -> Result<(), ImportError> {
        self.flush_aligned(file, path)?;
        match self {
            Sink::Direct {
                buf,
                start,
                len,
                offset,
                ..
            } => {
                file.write_all_at(&buf[start..start + len], offset)
                    .map_err(io_err(path))?;
            }
            Sink::Buffered {
                mut sync_tx,
                mut syncer,
                ..
            } => {
                drop(sync_tx.take());
                if let Some(syncer) = syncer.take() {
                    syncer
                        .join()
                        .map_err(|_| ImportError::Internal("sync thread panicked".into()))?
                        .map_err(io_err(path))?;
                }
            }
        }
        file.sync_all().map_err(io_err(path))
    }
}

/// A large file written front to back like `records.bin` (see [`Sink`]):
/// with `O_DIRECT` where allowed. Used for a feed's private index.
pub(crate) struct DirectWriter {
    file: File,
    path: PathBuf,
    sink: Sink,
}

impl DirectWriter {
    /// Creates `path`.
    pub(crate) fn create(path: &Path) -> Result<DirectWriter, ImportError> {
        let file = File::create(path).map_err(io_err(path))?;
        let sink = Sink::open(&file, path)?;
        Ok(DirectWriter {
            file,
            path: path.to_path_buf(),
            sink,
        })
    }

    /// Appends `bytes`.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), ImportError> {
        self.sink.write(&mut self.file, &self.path, bytes)
    }

    /// Writes what is buffered and syncs the file.
    pub(crate) fn finish(self) -> Result<File, ImportError> {
        let DirectWriter {
            mut file,
            path,
            sink,
        } = self;
        sink.finish(&mut file, &path)?;
        Ok(file)
    }
}

/// The writer thread: drops duplicate rows (see `dedup`), appends the
/// blocks (see [`Sink`]), and hands the emptied blocks back for reuse.
pub(super) fn write_blocks(
    mut file: File,
    path: &Path,
    blocks: Receiver<Block>,
    spare: Sender<Block>,
) -> Result<DedupStats, ImportError> {
    let mut sink = Sink::open(&file, path)?;
    let mut dedup = Dedup::new();
    let mut first = true;
    let mut head = Vec::with_capacity(16);
    for mut block in blocks {
        if block.estimated_rows > 0 {
            dedup.reserve(block.estimated_rows);
        }
        let mut keep = std::mem::take(&mut block.keep);
        dedup.check(&block.keys, &mut keep);
        block.keep = keep;
        let (count, runs) = kept_runs(&block);
        if count > 0 {
            if first {
                first = false;
                check_body(&block_body(&block))?;
            }
            let mut count_bytes = Vec::with_capacity(9);
            put_varint(&mut count_bytes, count);
            let len = count_bytes.len() + runs.iter().map(|r| r.len()).sum::<usize>();
            if len > MAX_DECODE_BYTES {
                return Err(ImportError::Internal(format!(
                    "block of {len} bytes exceeds the decode limit"
                )));
            }
            head.clear();
            head.extend_from_slice(&(len as u32).to_be_bytes());
            head.extend_from_slice(&count_bytes);
            sink.write(&mut file, path, &head)?;
            for run in runs {
                sink.write(&mut file, path, &block.data[run])?;
            }
        }
        block.clear();
        let _ = spare.send(block);
    }
    sink.finish(&mut file, path)?;
    Ok(dedup.stats)
}

/// Reads the report of the current generation of dataset `name`.
pub(super) fn read_current_report(
    data_dir: &Path,
    name: &str,
) -> Result<ImportReport, ImportError> {
    validate_name(name)?;
    let ds = dataset_dir(data_dir, name);
    // A concurrent import may remove the generation between reading
    // `CURRENT` and opening its files: follow `CURRENT` again.
    for attempt in 0.. {
        let generation = read_current(&ds)?.ok_or_else(|| ImportError::NotFound(name.into()))?;
        match read_report(&generation_dir(&ds, generation)) {
            Err(ImportError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && attempt < 5 => {}
            other => return other,
        }
    }
    Err(ImportError::NotFound(name.into()))
}

fn read_report(gen_dir: &Path) -> Result<ImportReport, ImportError> {
    let path = gen_dir.join(REPORT_FILE);
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    let report: ImportReport =
        serde_json::from_slice(&bytes).map_err(|e| ImportError::Corrupt {
            file: path.clone(),
            problem: format!("invalid report: {e}"),
        })?;
    if !report.columns.contains(&report.id_column) {
        return Err(ImportError::Corrupt {
            file: path,
            problem: format!("key column {:?} is not among the columns", report.id_column),
        });
    }
    Ok(report)
}

/// Reads the current generation of a dataset, block by block.
#[derive(Debug)]
pub struct DatasetReader {
    dir: PathBuf,
    records_path: PathBuf,
    records: File,
    records_len: u64,
    report: ImportReport,
    value_columns: Vec<String>,
}

impl DatasetReader {
    /// Opens the current generation of dataset `name` under `data_dir`.
    pub fn open(data_dir: &Path, name: &str) -> Result<DatasetReader, ImportError> {
        validate_name(name)?;
        let ds = dataset_dir(data_dir, name);
        for attempt in 0.. {
            let generation =
                read_current(&ds)?.ok_or_else(|| ImportError::NotFound(name.to_string()))?;
            let dir = generation_dir(&ds, generation);
            match DatasetReader::open_generation(&dir) {
                Err(ImportError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && attempt < 5 => {}
                Ok(reader) if reader.report.generation != generation => {
                    return Err(ImportError::Corrupt {
                        file: dir.join(REPORT_FILE),
                        problem: format!(
                            "report of generation {} in the directory of generation {generation} ({})",
                            reader.report.generation,
                            ds.join(CURRENT_FILE).display()
                        ),
                    });
                }
                other => return other,
            }
        }
        Err(ImportError::NotFound(name.to_string()))
    }

    fn open_generation(dir: &Path) -> Result<DatasetReader, ImportError> {
        // Open the records first: once open, removing the generation does not affect us.
        let records_path = dir.join(RECORDS_FILE);
        let records = File::open(&records_path).map_err(io_err(&records_path))?;
        let records_len = records.metadata().map_err(io_err(&records_path))?.len();
        let report = read_report(dir)?;
        let value_columns = report
            .columns
            .iter()
            .filter(|c| **c != report.id_column)
            .cloned()
            .collect();
        Ok(DatasetReader {
            dir: dir.to_path_buf(),
            records_path,
            records,
            records_len,
            report,
            value_columns,
        })
    }

    /// The import report of this generation.
    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    /// The non-key columns, in [`Record::values`] order.
    pub fn columns(&self) -> &[String] {
        &self.value_columns
    }

    /// The key column's canonical name.
    pub fn id_column(&self) -> &str {
        &self.report.id_column
    }

    /// The generation directory (holding `quarantine.csv`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Another handle on the records file opened with this reader: unlike
    /// opening `dir()/records.bin` again, it still reads this generation
    /// after a newer import has removed it. (It shares the file offset with
    /// other clones; [`DatasetReader::blocks`] reads at explicit offsets.)
    pub fn records_file(&self) -> Result<File, ImportError> {
        self.records.try_clone().map_err(io_err(&self.records_path))
    }

    /// The records, one block at a time. A corrupt block, or a file holding
    /// fewer records than the report says, is an error (and the last item).
    pub fn blocks(&self) -> Blocks<'_> {
        Blocks {
            reader: self,
            offset: 0,
            records: 0,
            done: false,
        }
    }
}

/// Iterator over the blocks of a records file; see [`DatasetReader::blocks`].
#[derive(Debug)]
pub struct Blocks<'a> {
    reader: &'a DatasetReader,
    offset: u64,
    records: u64,
    done: bool,
}

impl Blocks<'_> {
    fn corrupt(&mut self, problem: String) -> Option<Result<Vec<Record>, ImportError>> {
        self.done = true;
        Some(Err(ImportError::CorruptBlock {
            file: self.reader.records_path.clone(),
            offset: self.offset,
            problem,
        }))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), ImportError> {
        self.reader
            .records
            .read_exact_at(buf, offset)
            .map_err(io_err(&self.reader.records_path))
    }
}

impl Iterator for Blocks<'_> {
    type Item = Result<Vec<Record>, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let len = self.reader.records_len;
        let expected = self.reader.report.rows_kept;
        if self.offset == len {
            self.done = true;
            if self.records != expected {
                return Some(Err(ImportError::Corrupt {
                    file: self.reader.records_path.clone(),
                    problem: format!("holds {} records; the report says {expected}", self.records),
                }));
            }
            return None;
        }
        if len - self.offset < 4 {
            return self.corrupt("truncated length prefix".into());
        }
        let mut prefix = [0u8; 4];
        if let Err(e) = self.read_at(&mut prefix, self.offset) {
            self.done = true;
            return Some(Err(e));
        }
        let size = u32::from_be_bytes(prefix) as u64;
        if size > MAX_DECODE_BYTES as u64 {
            return self.corrupt(format!("block length {size} exceeds the decode limit"));
        }
        if size > len - self.offset - 4 {
            return self.corrupt(format!("block length {size} runs past the end of the file"));
        }
        let mut body = vec![0u8; size as usize];
        if let Err(e) = self.read_at(&mut body, self.offset + 4) {
            self.done = true;
            return Some(Err(e));
        }
        let block: Vec<Record> = match codec::decode(&body) {
            Ok(block) => block,
            Err(e) => return self.corrupt(e.to_string()),
        };
        let width = self.reader.value_columns.len();
        if let Some(bad) = block.iter().find(|r| r.values.len() != width) {
            return self.corrupt(format!(
                "record {} has {} values; the dataset has {width} non-key columns",
                bad.id,
                bad.values.len()
            ));
        }
        self.records += block.len() as u64;
        self.offset += 4 + size;
        Some(Ok(block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn sinks_write_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pieces = [
            bytes(10, 1),
            bytes(DIRECT_CHUNK + 5000, 2),
            bytes(3, 3),
            bytes(2 * DIRECT_CHUNK, 4),
            bytes(4096, 5),
        ];
        let want = pieces.concat();
        for mode in ["direct", "buffered", "fall back"] {
            let path = dir.path().join(mode);
            let mut file = File::create(&path).unwrap();
            let mut sink = match mode {
                "buffered" => Sink::buffered(&file, &path, 0).unwrap(),
                _ => Sink::open(&file, &path).unwrap(),
            };
            for (i, piece) in pieces.iter().enumerate() {
                sink.write(&mut file, &path, piece).unwrap();
                if mode == "fall back" && i == 1 {
                    sink.fall_back(&mut file, &path).unwrap();
                    assert!(matches!(sink, Sink::Buffered { .. }));
                }
            }
            sink.finish(&mut file, &path).unwrap();
            assert!(std::fs::read(&path).unwrap() == want, "{mode}");
        }
    }

    #[test]
    fn the_cursor_reads_what_the_codec_writes() {
        let long = "长".repeat(300); // a length above 250 takes a wide varint
        let records = vec![
            Record {
                id: IdNumber::from_normalized(b"11010519491231002X").unwrap(),
                values: vec!["张三".into(), long.clone(), String::new()],
            },
            Record {
                id: IdNumber::from_normalized(b"440524188001010014").unwrap(),
                values: vec!["李四".into(), "x".into(), "y".into()],
            },
        ];
        let body = codec::encode(&records).unwrap();
        let mut cursor = BlockCursor::new(&body).unwrap();
        assert_eq!(cursor.remaining(), 2);
        let mut values = Vec::new();
        for want in &records {
            let id = cursor.next_record(|_| true, &mut values).unwrap().unwrap();
            assert_eq!(id, want.id);
            assert_eq!(
                values,
                want.values.iter().map(String::as_str).collect::<Vec<_>>()
            );
        }
        assert_eq!(cursor.next_record(|_| true, &mut values).unwrap(), None);

        // Unwanted columns are not read as text.
        let mut cursor = BlockCursor::new(&body).unwrap();
        cursor
            .next_record(|i| i == 0, &mut values)
            .unwrap()
            .unwrap();
        assert_eq!(values, ["张三", "", ""]);

        // Every cut is an error, never a short block read as complete.
        for cut in 0..body.len() {
            let read_all = BlockCursor::new(&body[..cut]).and_then(|mut c| {
                while c.next_record(|_| true, &mut values)?.is_some() {}
                Ok(())
            });
            assert!(read_all.is_err(), "cut at {cut} read as complete");
        }
        // Trailing bytes, a bad ID, a non-UTF-8 wanted value.
        let mut trailing = body.clone();
        trailing.push(0);
        let mut c = BlockCursor::new(&trailing).unwrap();
        let err = loop {
            match c.next_record(|_| true, &mut values) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("trailing bytes accepted"),
                Err(e) => break e,
            }
        };
        assert!(err.contains("after the last record"), "{err}");
        let mut bad_id = body.clone();
        bad_id[2] = b'A'; // count, id length, then the first ID character
        let e = BlockCursor::new(&bad_id)
            .unwrap()
            .next_record(|_| true, &mut values)
            .unwrap_err();
        assert!(e.contains("a stored ID"), "{e}");
        let mut bad_utf8 = body.clone();
        let at = 1 + 1 + 18 + 1 + 1; // count, id, value count, first value's length
        bad_utf8[at] = 0xFF;
        let e = BlockCursor::new(&bad_utf8)
            .unwrap()
            .next_record(|_| true, &mut values)
            .unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
        assert!(
            BlockCursor::new(&bad_utf8)
                .unwrap()
                .next_record(|i| i != 0, &mut values)
                .is_ok()
        );
    }

    #[test]
    fn the_records_reader_returns_every_byte_direct_or_not() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around the read size and the alignment, and an empty file.
        for size in [
            0,
            1,
            4095,
            4096,
            4097,
            DIRECT_READ - 1,
            DIRECT_READ + 12_345,
        ] {
            let path = dir.path().join(format!("records-{size}.bin"));
            let want: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(&path, &want).unwrap();
            for direct in [true, false] {
                let mut reader = RecordsReader::open(&path, direct).unwrap();
                assert!(direct || !reader.is_direct());
                let direct = reader.is_direct();
                let mut got = Vec::new();
                // Odd read sizes, like a block reader's header then body.
                let mut piece = vec![0u8; 1_000_003];
                loop {
                    let n = io::Read::read(&mut reader, &mut piece[..4]).unwrap();
                    got.extend_from_slice(&piece[..n]);
                    let m = io::Read::read(&mut reader, &mut piece).unwrap();
                    got.extend_from_slice(&piece[..m]);
                    if n == 0 && m == 0 {
                        break;
                    }
                }
                assert!(got == want, "size {size}, direct {direct}");
            }
        }
    }

    #[test]
    fn varints_match_the_codec() {
        for n in [
            0usize,
            1,
            250,
            251,
            252,
            65_535,
            65_536,
            1 << 31,
            u32::MAX as usize + 1,
        ] {
            let mut ours = Vec::new();
            put_varint(&mut ours, n);
            assert_eq!(ours, codec::encode(&(n as u64)).unwrap(), "{n}");
        }
    }
}
