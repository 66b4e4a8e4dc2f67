//! `records.bin`: writing blocks (the writer thread) and reading them back
//! ([`DatasetReader`]).
//!
//! A block is a 4-byte big-endian length followed by
//! `codec::encode(&Vec<Record>)`. The writer encodes a borrowed view of the
//! normaliser's block, which serialises exactly as a `Vec<Record>` does
//! (a sequence of `Record { id, values }` structs) without building a
//! `String` per value; a test pins that the bytes are identical.

use super::normalise::Block;
use super::{
    CURRENT_FILE, ImportError, ImportReport, RECORDS_FILE, REPORT_FILE, Record, dataset_dir,
    generation_dir, io_err, read_current, validate_name,
};
use dxmesh_protocol::codec::{self, MAX_DECODE_BYTES};
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};

/// Bytes written between background `fdatasync` calls.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// A [`Block`] serialised as the `Vec<Record>` it holds.
pub(super) struct BlockView<'a>(pub &'a Block);

struct RowView<'a> {
    block: &'a Block,
    row: usize,
}

struct ValuesView<'a> {
    block: &'a Block,
    row: usize,
}

impl Serialize for BlockView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for row in 0..self.0.len() {
            seq.serialize_element(&RowView { block: self.0, row })?;
        }
        seq.end()
    }
}

impl Serialize for RowView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Record", 2)?;
        st.serialize_field("id", &self.block.ids[self.row])?;
        st.serialize_field(
            "values",
            &ValuesView {
                block: self.block,
                row: self.row,
            },
        )?;
        st.end()
    }
}

impl Serialize for ValuesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.block.values_per_row))?;
        for value in self.block.values(self.row) {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

/// Encodes one block with its length prefix.
pub(super) fn encode_block(block: &Block) -> Result<Vec<u8>, ImportError> {
    let body = codec::encode(&BlockView(block))
        .map_err(|e| ImportError::Internal(format!("cannot encode block: {e}")))?;
    if body.len() > MAX_DECODE_BYTES {
        return Err(ImportError::Internal(format!(
            "block of {} bytes exceeds the decode limit",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The writer thread: encodes and appends blocks, hands the emptied blocks
/// back for reuse, and has a helper thread `fdatasync` the file every
/// [`SYNC_EVERY`] bytes so that the final `fsync` has little left to do.
pub(super) fn write_blocks(
    mut file: File,
    path: &Path,
    blocks: Receiver<Block>,
    spare: Sender<Block>,
) -> Result<(), ImportError> {
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
    let mut unsynced = 0u64;
    let mut result = Ok(());
    for mut block in blocks {
        let bytes = match encode_block(&block) {
            Ok(bytes) => bytes,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if let Err(e) = file.write_all(&bytes) {
            result = Err(io_err(path)(e));
            break;
        }
        unsynced += bytes.len() as u64;
        if unsynced >= SYNC_EVERY {
            unsynced = 0;
            let _ = sync_tx.send(());
        }
        block.clear();
        let _ = spare.send(block);
    }
    drop(sync_tx);
    let synced = syncer
        .join()
        .map_err(|_| ImportError::Internal("sync thread panicked".into()))?;
    result?;
    synced.map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
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
