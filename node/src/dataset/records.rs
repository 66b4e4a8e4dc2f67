//! The block format of `records.bin` and the two hot-path views of it: a
//! [`Block`] of rows as the normaliser writes them, and [`BlockCursor`],
//! which reads a block's records where they lie. Writing is `writer`,
//! reading a dataset back is `reader`.
//!
//! A block is a 4-byte big-endian length followed by
//! `codec::encode(&Vec<Record>)`: the number of records, then each record
//! (its ID string, the number of values, each value), every string as its
//! length and bytes, every length and count as the codec's variable-length
//! integer (`codec::put_varint`). The normaliser writes each kept row in exactly
//! that form as it normalises it, so the writer only prefixes a count and
//! copies the rows that are not duplicates: going through serde instead cost
//! a `String` per value, or a fresh multi-megabyte buffer per block and a
//! second copy, about a fifth of an import's CPU time. The tests check the
//! bytes against `codec::encode`, and every import checks its first block by
//! decoding and re-encoding it through the codec; a difference (the codec's
//! format changed) fails the import rather than writing records the codec
//! cannot read.

use super::model::{ImportError, Record};
use dxmesh_protocol::codec::{self, get_varint, put_varint};
use dxmesh_protocol::id::IdNumber;

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
    put_varint(&mut body, count as u64);
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

/// Reads a length-prefixed byte string.
fn get_bytes<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(get_varint(bytes)?).ok()?;
    let (value, rest) = bytes.split_at_checked(len)?;
    *bytes = rest;
    Some(value)
}

/// Why a stored block does not decode (the dataset store is damaged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The block does not begin with its record count.
    #[error("the block has no record count")]
    NoCount,
    /// Bytes follow the last record the count announces.
    #[error("{0} bytes after the last record")]
    TrailingBytes(usize),
    /// A record ends before its fields do.
    #[error("a record is cut short")]
    Truncated,
    /// A stored ID number is not a normalised one.
    #[error("a stored ID: {0}")]
    BadId(String),
    /// A value a caller reads is not UTF-8.
    #[error("value {0} is not UTF-8")]
    NotUtf8(usize),
}

/// Reads the records of one block body where they lie, the inverse of the
/// writer above, for the hot paths (publishing, disclosure, the national
/// lookup): no allocation per record, and only the columns a caller uses
/// are checked to be UTF-8. Every length is bounds-checked; the ID is
/// validated again ([`IdNumber::from_normalised`]).
pub(crate) struct BlockCursor<'a> {
    rest: &'a [u8],
    left: u64,
}

impl<'a> BlockCursor<'a> {
    /// A cursor at the first record of `body` (a block without its length prefix).
    pub(crate) fn new(body: &'a [u8]) -> Result<BlockCursor<'a>, BlockError> {
        let mut rest = body;
        let left = get_varint(&mut rest).ok_or(BlockError::NoCount)?;
        Ok(BlockCursor { rest, left })
    }

    /// A cursor over the bytes of one record (as a feed's index locates it).
    pub(crate) fn one(record: &'a [u8]) -> BlockCursor<'a> {
        BlockCursor {
            rest: record,
            left: 1,
        }
    }

    /// Where in `body` (the slice this cursor was made from) the next
    /// record begins.
    pub(crate) fn offset_in(&self, body: &[u8]) -> usize {
        body.len() - self.rest.len()
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
    ) -> Result<Option<IdNumber>, BlockError> {
        if self.left == 0 {
            return if self.rest.is_empty() {
                Ok(None)
            } else {
                Err(BlockError::TrailingBytes(self.rest.len()))
            };
        }
        let id = get_bytes(&mut self.rest).ok_or(BlockError::Truncated)?;
        let id = IdNumber::from_normalised(id).map_err(|e| BlockError::BadId(e.to_string()))?;
        let count = get_varint(&mut self.rest).ok_or(BlockError::Truncated)?;
        values.clear();
        for i in 0..count as usize {
            let v = get_bytes(&mut self.rest).ok_or(BlockError::Truncated)?;
            values.push(if wanted(i) {
                std::str::from_utf8(v).map_err(|_| BlockError::NotUtf8(i))?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_reads_what_the_codec_writes() {
        let long = "长".repeat(300); // a length above 250 takes a wide varint
        let records = vec![
            Record {
                id: IdNumber::from_normalised(b"11010519491231002X").unwrap(),
                values: vec!["张三".into(), long.clone(), String::new()],
            },
            Record {
                id: IdNumber::from_normalised(b"440524188001010014").unwrap(),
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
        assert_eq!(err, BlockError::TrailingBytes(1));
        let mut bad_id = body.clone();
        bad_id[2] = b'A'; // count, id length, then the first ID character
        let e = BlockCursor::new(&bad_id)
            .unwrap()
            .next_record(|_| true, &mut values)
            .unwrap_err();
        assert!(matches!(e, BlockError::BadId(_)), "{e}");
        let mut bad_utf8 = body.clone();
        let at = 1 + 1 + 18 + 1 + 1; // count, id, value count, first value's length
        bad_utf8[at] = 0xFF;
        let e = BlockCursor::new(&bad_utf8)
            .unwrap()
            .next_record(|_| true, &mut values)
            .unwrap_err();
        assert_eq!(e, BlockError::NotUtf8(0));
        assert!(
            BlockCursor::new(&bad_utf8)
                .unwrap()
                .next_record(|i| i != 0, &mut values)
                .is_ok()
        );
    }
}
