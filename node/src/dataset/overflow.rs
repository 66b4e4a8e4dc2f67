//! Duplicate rows past the duplicate table (see `dedup`): when an export
//! has more distinct rows than the table may hold in the import's memory,
//! the rows after it filled are written as they come, each row's key and
//! its number among them go to the node's external sort
//! ([`super::extsort`]), and once the file is written the sorted keys say
//! which rows repeat an earlier one (every copy of a key after its first);
//! `records.bin` is then copied without them, block by block, and put in
//! place of the first (a temporary file, synced, renamed). The counts of
//! the import (rows kept, duplicates, distinct IDs, IDs with several rows)
//! come out as the table alone would give them: the sorted keys are
//! grouped by ID and checked against the rows of that ID the table holds.

use super::extsort::{Sorter, Width};
use super::model::ImportError;
use super::records::BlockCursor;
use dxmesh_protocol::codec::put_varint;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A sort record: the row's key (16 bytes) and its number (8), big-endian.
const RECORD: usize = 24;

/// The order of sort records: their bytes (key, then number).
type ByBytes = fn(&[u8], &[u8]) -> std::cmp::Ordering;

fn internal(what: &str, path: &Path, e: impl std::fmt::Display) -> ImportError {
    ImportError::Internal(format!("{what} {}: {e}", path.display()))
}

/// The rows written after the duplicate table filled.
pub(super) struct Overflow {
    sorter: Sorter<ByBytes>,
    /// Rows kept (written) before the table filled.
    before: u64,
    /// Rows written since.
    rows: u64,
}

/// What the rows past the table add to the import's counts.
#[derive(Debug, Default)]
pub(super) struct Past {
    pub rows_kept: u64,
    pub duplicate_rows: u64,
    pub distinct_ids: u64,
    pub ids_with_several_rows: u64,
}

/// The distinct rows of one ID past the table.
struct IdGroup {
    id: u64,
    /// Distinct rows of the ID past the table.
    rows: u64,
}

impl Overflow {
    /// Rows past a table that held `before` rows, sorted in `memory`
    /// bytes with runs in `dir`.
    pub fn new(dir: &Path, memory: usize, before: u64) -> Overflow {
        let by_bytes: ByBytes = |a, b| a.cmp(b);
        Overflow {
            // Pushed from the import's writer thread, not a rayon worker.
            sorter: Sorter::new(dir, "dedup", memory, Width::Fixed(RECORD), by_bytes)
                .sorting_runs_in_parallel(),
            before,
            rows: 0,
        }
    }

    /// The next row written: its key.
    pub fn push(&mut self, key: u128) -> Result<(), ImportError> {
        let mut r = [0u8; RECORD];
        r[..16].copy_from_slice(&key.to_be_bytes());
        r[16..].copy_from_slice(&self.rows.to_be_bytes());
        self.sorter.push(&r)?;
        self.rows += 1;
        Ok(())
    }

    /// Finds the later copies of rows, removes them from `records` and
    /// counts; `id_of` is the ID of a key, `rows_of` how many rows of an ID
    /// the table holds (0, 1, or 2 for several).
    pub fn finish(
        self,
        id_of: fn(u128) -> u64,
        rows_of: impl Fn(u64) -> u8,
        records: &Path,
    ) -> Result<Past, ImportError> {
        let mut past = Past::default();
        let stats = &mut past;
        let mut merged = self.sorter.finish()?;
        // One bit a row past the table: whether it repeats an earlier row.
        let mut repeats = vec![0u64; self.rows.div_ceil(64) as usize];
        let mut any = false;
        let mut prev_key: Option<u128> = None;
        let mut group: Option<IdGroup> = None;
        let close = |g: IdGroup, stats: &mut Past| match rows_of(g.id) {
            0 => {
                stats.distinct_ids += 1;
                if g.rows >= 2 {
                    stats.ids_with_several_rows += 1;
                }
            }
            1 => stats.ids_with_several_rows += 1,
            _ => {}
        };
        while let Some(r) = merged.next()? {
            let mut k = [0u8; 16];
            k.copy_from_slice(&r[..16]);
            let key = u128::from_be_bytes(k);
            let mut n = [0u8; 8];
            n.copy_from_slice(&r[16..]);
            let row = u64::from_be_bytes(n);
            if prev_key == Some(key) {
                repeats[(row / 64) as usize] |= 1 << (row % 64);
                stats.duplicate_rows += 1;
                any = true;
                continue;
            }
            prev_key = Some(key);
            stats.rows_kept += 1;
            let id = id_of(key);
            match group.as_mut() {
                Some(g) if g.id == id => g.rows += 1,
                _ => {
                    if let Some(done) = group.replace(IdGroup { id, rows: 1 }) {
                        close(done, stats);
                    }
                }
            }
        }
        if let Some(done) = group {
            close(done, stats);
        }
        drop(merged);
        if any {
            drop_repeats(records, self.before, &repeats)?;
        }
        Ok(past)
    }
}

/// Copies `path` without the rows past the first `before` whose bit in
/// `repeats` is set, block by block (a block left with no rows is left
/// out, as the writer leaves it out), and puts the copy in its place.
fn drop_repeats(path: &Path, before: u64, repeats: &[u64]) -> Result<(), ImportError> {
    let tmp = PathBuf::from(format!("{}.dedup", path.display()));
    let file = std::fs::File::open(path).map_err(|e| internal("cannot read", path, e))?;
    let mut src = BufReader::with_capacity(1 << 20, file);
    // Private like every file of a dataset; a copy a killed import left is
    // replaced.
    let _ = std::fs::remove_file(&tmp);
    let out = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| internal("cannot create", &tmp, e))?
    };
    let mut dst = BufWriter::with_capacity(1 << 20, out);
    let write = |dst: &mut BufWriter<std::fs::File>, bytes: &[u8]| {
        dst.write_all(bytes)
            .map_err(|e| internal("cannot write", &tmp, e))
    };
    let (mut body, mut kept, mut count_bytes) = (Vec::new(), Vec::new(), Vec::new());
    let mut row = 0u64;
    loop {
        let mut len = [0u8; 4];
        match src.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(internal("cannot read", path, e)),
        }
        body.resize(u32::from_be_bytes(len) as usize, 0);
        src.read_exact(&mut body)
            .map_err(|e| internal("cannot read", path, e))?;
        let mut cursor = BlockCursor::new(&body).map_err(|e| internal("a block of", path, e))?;
        kept.clear();
        let mut values = Vec::new();
        let mut count = 0u64;
        let mut start = cursor.offset_in(&body);
        while cursor
            .next_record(|_| false, &mut values)
            .map_err(|e| internal("a block of", path, e))?
            .is_some()
        {
            let end = cursor.offset_in(&body);
            let repeat = row >= before && {
                let i = row - before;
                repeats[(i / 64) as usize] & (1 << (i % 64)) != 0
            };
            if !repeat {
                kept.extend_from_slice(&body[start..end]);
                count += 1;
            }
            row += 1;
            start = end;
        }
        if count > 0 {
            count_bytes.clear();
            put_varint(&mut count_bytes, count);
            let len = (count_bytes.len() + kept.len()) as u32;
            write(&mut dst, &len.to_be_bytes())?;
            write(&mut dst, &count_bytes)?;
            write(&mut dst, &kept)?;
        }
    }
    let out = dst
        .into_inner()
        .map_err(|e| internal("cannot write", &tmp, e))?;
    out.sync_all()
        .map_err(|e| internal("cannot sync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| internal("cannot replace", path, e))?;
    Ok(())
}
