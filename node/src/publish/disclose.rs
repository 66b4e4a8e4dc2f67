//! Disclosure at the provider: resolving result tokens through the epoch's
//! private index to the allowed fields of the records they came from,
//! reading only the dataset blocks that hold them.

use super::store::{FeedStoreError, ROW_BITS, feed_dir, io_err};
use crate::dataset::{BlockCursor, DatasetReader};
use dxmesh_protocol::agreement::Terms;
use dxmesh_protocol::feed::{DisclosedRecord, Disclosure};
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::IdToken;
use rayon::prelude::*;
use std::io::Read;
use std::path::Path;

/// Resolves `tokens` through the epoch's index to the values of `fields`
/// (`id_number` is the normalised ID; other names are dataset columns).
pub fn disclose(
    data_dir: &Path,
    terms: &Terms,
    epoch: u64,
    result_kind: &str,
    fields: &[String],
    tokens: &[IdToken],
    now: Timestamp,
) -> Result<Disclosure, FeedStoreError> {
    let agreement = terms.id();
    let index_path = feed_dir(data_dir, &agreement, epoch).join("index.bin");
    let bytes = std::fs::read(&index_path).map_err(io_err(&index_path))?;
    if bytes.len() < 8 || (bytes.len() - 8) % 20 != 0 {
        return Err(FeedStoreError::Io {
            path: index_path,
            message: "malformed index".into(),
        });
    }
    let mut g = [0u8; 8];
    g.copy_from_slice(&bytes[..8]);
    let generation = u64::from_be_bytes(g);
    let entries = &bytes[8..];
    let n = entries.len() / 20;
    let token_at = |i: usize| &entries[i * 20..i * 20 + 16];
    let row_at = |i: usize| {
        let mut r = [0u8; 4];
        r.copy_from_slice(&entries[i * 20 + 16..i * 20 + 20]);
        u32::from_be_bytes(r)
    };
    // Token -> rows, by binary search in the sorted index.
    let mut wanted: Vec<(u32, IdToken)> = Vec::new();
    let mut unknown = Vec::new();
    for t in tokens {
        let lo = partition(n, |i| token_at(i) < &t.0[..]);
        let mut i = lo;
        while i < n && token_at(i) == &t.0[..] {
            wanted.push((row_at(i), *t));
            i += 1;
        }
        if i == lo {
            unknown.push(*t);
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let reader = DatasetReader::open(data_dir, &terms.dataset)?;
    if reader.report().generation != generation {
        return Err(FeedStoreError::GenerationGone {
            dataset: terms.dataset.clone(),
            epoch,
            generation,
        });
    }
    let sources: Vec<Option<usize>> = fields
        .iter()
        .map(|f| {
            if f == reader.id_column() {
                Ok(None)
            } else {
                reader
                    .columns()
                    .iter()
                    .position(|c| c == f)
                    .map(Some)
                    .ok_or_else(|| FeedStoreError::Schema {
                        dataset: terms.dataset.clone(),
                        problem: format!("has no column {f:?} to disclose"),
                    })
            }
        })
        .collect::<Result<_, _>>()?;
    // Decode only the blocks that hold wanted rows, in parallel.
    let mut by_block: std::collections::BTreeMap<usize, Vec<(u32, IdToken)>> =
        std::collections::BTreeMap::new();
    for (row, token) in &wanted {
        by_block
            .entry((row >> ROW_BITS) as usize)
            .or_default()
            .push((row & ((1 << ROW_BITS) - 1), *token));
    }
    let offsets = block_offsets(&reader)?;
    let path = reader.dir().join("records.bin");
    let per_block: Vec<Result<Vec<DisclosedRecord>, FeedStoreError>> = by_block
        .into_par_iter()
        // One block buffer per worker, reused: a request reads most blocks.
        .map_init(Vec::new, |buf, (b, rows)| {
            let (off, len) = *offsets.get(b).ok_or_else(|| FeedStoreError::Io {
                path: path.clone(),
                message: format!("no block {b}"),
            })?;
            buf.resize(len, 0);
            let f = std::fs::File::open(&path).map_err(io_err(&path))?;
            std::os::unix::fs::FileExt::read_exact_at(&f, buf, off).map_err(io_err(&path))?;
            let bad_block = |problem: String| FeedStoreError::Io {
                path: path.clone(),
                message: format!("block {b} does not decode: {problem}"),
            };
            // The rows asked for, in block order; each record is read once.
            let mut rows = rows;
            rows.sort_unstable();
            let mut cursor = BlockCursor::new(buf).map_err(|e| bad_block(e.to_string()))?;
            let mut values = Vec::new();
            let mut out = Vec::with_capacity(rows.len());
            let mut next = rows.iter().peekable();
            let mut i = 0u32;
            while next.peek().is_some() {
                let wanted = |c: usize| sources.contains(&Some(c));
                let Some(id) = cursor
                    .next_record(wanted, &mut values)
                    .map_err(|e| bad_block(e.to_string()))?
                else {
                    // The index names a row the block does not have.
                    let row = next.peek().map_or(i, |(row, _)| *row);
                    return Err(bad_block(format!(
                        "the index names row {row}, past its end ({i} records)"
                    )));
                };
                while let Some((_, token)) = next.next_if(|(row, _)| *row == i) {
                    let values = sources
                        .iter()
                        .map(|s| match s {
                            None => id.as_str().to_string(),
                            Some(c) => values.get(*c).map(|v| v.to_string()).unwrap_or_default(),
                        })
                        .collect();
                    out.push(DisclosedRecord {
                        token: *token,
                        values,
                    });
                }
                i += 1;
            }
            Ok(out)
        })
        .collect();
    let mut records = Vec::with_capacity(wanted.len());
    for r in per_block {
        records.extend(r?);
    }
    Ok(Disclosure {
        agreement,
        epoch,
        result_kind: result_kind.to_string(),
        fields: fields.to_vec(),
        records,
        unknown,
        at: now,
    })
}

/// (byte offset of the body, body length) of every block of the records file.
fn block_offsets(reader: &DatasetReader) -> Result<Vec<(u64, usize)>, FeedStoreError> {
    use std::io::{Seek, SeekFrom};
    let path = reader.dir().join("records.bin");
    let mut f = std::io::BufReader::new(std::fs::File::open(&path).map_err(io_err(&path))?);
    let mut out = Vec::new();
    let mut pos = 0u64;
    loop {
        let mut header = [0u8; 4];
        match f.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io_err(&path)(e)),
        }
        let len = u32::from_be_bytes(header) as usize;
        out.push((pos + 4, len));
        pos += 4 + len as u64;
        f.seek(SeekFrom::Start(pos)).map_err(io_err(&path))?;
    }
    Ok(out)
}

/// First index in `0..n` where `pred` is false (pred is true then false).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
