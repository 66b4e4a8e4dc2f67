//! Reading a dataset back: [`DatasetReader`] opens the current generation
//! (its report and `records.bin`), [`Blocks`] decodes its blocks one by
//! one, and [`RecordsReader`] streams the raw file past the page cache with
//! `O_DIRECT` for the bulk paths.

use super::model::{
    CURRENT_FILE, ImportError, ImportReport, RECORDS_FILE, REPORT_FILE, Record, dataset_dir,
    generation_dir, io_err, read_current, validate_name,
};
use crate::base::fsutil::DIRECT_ALIGN;
use dxmesh_protocol::codec::{self, MAX_DECODE_BYTES};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
        let (file, direct, start) =
            match (direct, crate::base::fsutil::aligned(&mut buf, DIRECT_READ)) {
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

pub(super) fn read_report(gen_dir: &Path) -> Result<ImportReport, ImportError> {
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

    /// Opens generation `generation` of dataset `name`, current or kept for
    /// a feed (see `pins`); [`ImportError::GenerationGone`] if it is not
    /// held.
    pub fn open_at(
        data_dir: &Path,
        name: &str,
        generation: u64,
    ) -> Result<DatasetReader, ImportError> {
        validate_name(name)?;
        let dir = generation_dir(&dataset_dir(data_dir, name), generation);
        match DatasetReader::open_generation(&dir) {
            Err(ImportError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(ImportError::GenerationGone {
                    dataset: name.to_string(),
                    generation,
                })
            }
            Ok(reader) if reader.report.generation != generation => Err(ImportError::Corrupt {
                file: dir.join(REPORT_FILE),
                problem: format!(
                    "report of generation {} in the directory of generation {generation}",
                    reader.report.generation
                ),
            }),
            other => other,
        }
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

/// Reads the raw blocks of a dataset's records file one at a time (a block is a
/// 4-byte big-endian length and the encoded `Vec<Record>`; see `dataset`).
pub struct RawBlocks {
    path: PathBuf,
    file: RecordsReader,
    /// File offset of the next block's length.
    next: u64,
}

impl RawBlocks {
    /// Opens the dataset's records for one pass from start to end.
    /// `once`: the caller reads them once (publishing), so they bypass the
    /// page cache; otherwise (a lookup repeated per request) they go
    /// through it and later passes read memory.
    pub fn open(reader: &DatasetReader, once: bool) -> Result<RawBlocks, ImportError> {
        let path = reader.dir().join(RECORDS_FILE);
        let file = RecordsReader::open(&path, once).map_err(io_err(&path))?;
        Ok(RawBlocks {
            path,
            file,
            next: 0,
        })
    }

    /// The file offset where the body of the next block will begin (after
    /// its 4-byte length): where a record read from it lies in the file.
    pub fn next_body_offset(&self) -> u64 {
        self.next + 4
    }

    /// Reads the next block into a new buffer; None at the end.
    pub fn next_block(&mut self) -> Result<Option<Vec<u8>>, ImportError> {
        let mut buf = Vec::new();
        Ok(self.next_block_into(&mut buf)?.then_some(buf))
    }

    /// Reads the next block into `buf` (reusing its memory); false at the end.
    pub fn next_block_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, ImportError> {
        let mut header = [0u8; 4];
        match self.file.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(io_err(&self.path)(e)),
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > codec::MAX_DECODE_BYTES {
            return Err(ImportError::Corrupt {
                file: self.path.clone(),
                problem: format!("a block claims {len} bytes"),
            });
        }
        // Only growth is zeroed; a reused buffer is overwritten in place.
        buf.resize(len, 0);
        self.file.read_exact(buf).map_err(io_err(&self.path))?;
        self.next += 4 + len as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
