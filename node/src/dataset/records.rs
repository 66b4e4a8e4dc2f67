//! The block format of `records.bin` and the two hot-path views of it: a
//! [`Block`] of rows as the normaliser writes them, and [`BlockCursor`],
//! which reads a block's records where they lie. Writing is `writer`,
//! reading a dataset back is `reader`.
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

use super::model::{ImportError, Record};
use dxmesh_protocol::codec;
use dxmesh_protocol::id::IdNumber;

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
pub(super) fn kept_runs(block: &Block) -> (usize, Vec<std::ops::Range<usize>>) {
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

/// Rows in their final form: each row encoded exactly as the codec encodes
/// a [`super::model::Record`] (see `records`), one after the other.
pub(super) struct Block {
    pub data: Vec<u8>,
    /// End offset of each row in `data`.
    pub ends: Vec<u32>,
    /// Duplicate key of each row (see `dedup`).
    pub keys: Vec<u128>,
    /// Filled by the writer: whether each row is new (kept).
    pub keep: Vec<bool>,
    /// Set on the first block: about how many rows the file has.
    pub estimated_rows: usize,
}

impl Block {
    pub fn new() -> Block {
        Block {
            data: Vec::new(),
            ends: Vec::new(),
            keys: Vec::new(),
            keep: Vec::new(),
            estimated_rows: 0,
        }
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.keys.clear();
        self.keep.clear();
        self.estimated_rows = 0;
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Where row `r` starts in `data`.
    pub fn start(&self, r: usize) -> usize {
        if r == 0 { 0 } else { self.ends[r - 1] as usize }
    }

    /// Moves the last row to the (empty) block `to`.
    pub(super) fn move_last_row(&mut self, to: &mut Block) {
        let Some(r) = self.len().checked_sub(1) else {
            return;
        };
        let start = self.start(r);
        to.data.extend_from_slice(&self.data[start..]);
        to.ends.push(to.data.len() as u32);
        to.keys.push(self.keys[r]);
        self.data.truncate(start);
        self.ends.truncate(r);
        self.keys.truncate(r);
    }
}
