//! Building the epoch's feed for an agreement from the imported dataset:
//! read, scope, project and tokenise every record ([`tokenise`]), sort and
//! deduplicate the rows, cut them into chunks, write the chunks and the
//! private index ([`write_files`]), sign the manifest and move the feed
//! into place atomically ([`install`]).
//!
//! A reader thread keeps blocks read ahead into reused buffers; rayon
//! workers take them as they come and append compact fixed-size rows (the
//! order does not matter: the sort fixes it). Chunks are built, encoded,
//! hashed and written in parallel while another thread writes the index,
//! both with `O_DIRECT` (written once, they need no page cache). Every file
//! is fsynced before the manifest is signed.

use super::plan::{Plan, RecordRef, value};
use super::store::{FeedStoreError, feed_dir, io_err, read_manifest};
use crate::dataset::sorted::SortedWriter;
use crate::dataset::{BlockCursor, DatasetReader, RawBlocks};
use dxmesh_protocol::agreement::{FieldTerm, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{CHUNK_TARGET_BYTES, Chunk, Manifest, Quality};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{self, Hash};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::{AttrToken, EpochKey, IdToken, normalise_attr_into};
use rayon::prelude::*;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// What publishing needs.
pub struct PublishInput<'a> {
    /// Node data directory.
    pub data_dir: &'a Path,
    /// The agreement's terms.
    pub terms: &'a Terms,
    /// Epoch to publish.
    pub epoch: u64,
    /// The group's epoch key.
    pub key: Option<&'a EpochKey>,
    /// The provider's identity (signs the manifest).
    pub identity: &'a Identity,
    /// Digest of the previous epoch's signed manifest, if any.
    pub previous: Option<Hash>,
    /// Now.
    pub now: Timestamp,
    /// Build the epoch's feed again from the current import even if it is
    /// published: the new signed manifest supersedes the one held.
    pub republish: bool,
}

/// A feed published, or found published.
#[derive(Debug, Clone)]
pub struct Published {
    /// Its signed manifest.
    pub manifest: Signed<Manifest>,
    /// Whether this call built it (not found it built before).
    pub built: bool,
    /// The dataset generation it was built from.
    pub generation: u64,
    /// The dataset's current generation, if newer than `generation`: the
    /// feed is older than the last import (republish to use it).
    pub newer_import: Option<u64>,
    /// The manifest it superseded (a republish).
    pub superseded: Option<Hash>,
}

/// The pin holder name of the feed of `agreement` for `epoch` (see
/// [`crate::dataset::pin`]).
pub fn pin_holder(agreement: &dxmesh_protocol::agreement::AgreementId, epoch: u64) -> String {
    format!("{}-{epoch}", dxmesh_protocol::hex(agreement))
}

/// The dataset generation the stored feed in `dir` was built from (its
/// private index's meta).
pub fn feed_generation(dir: &Path) -> Result<u64, FeedStoreError> {
    let path = dir.join(INDEX_FILE);
    let index = crate::dataset::sorted::SortedFile::open(&path)?;
    <[u8; 8]>::try_from(index.meta())
        .map(u64::from_be_bytes)
        .map_err(|_| FeedStoreError::Io {
            path,
            message: "the index names no dataset generation".into(),
        })
}

/// The feed's private index file.
pub const INDEX_FILE: &str = "index.bin";

/// At most this many attribute-token fields per feed (rows are fixed-size).
const MAX_ATTRS: usize = 3;

/// One projected, tokenised record, fixed-size: clear values live in an
/// arena (joined by 0x1F) so that sorting moves no heap data.
#[derive(Clone, Copy)]
struct Row {
    token: IdToken,
    attrs: [AttrToken; MAX_ATTRS],
    /// Where the record lies in `records.bin`: its byte offset (low 40
    /// bits) and length (high 24 bits), for the private index.
    at: u64,
    clear_len: u16,
    clear_off: u32,
}

/// Bits of [`Row::at`] that hold the offset.
const OFFSET_BITS: u32 = 40;

/// Every row of a feed, its clear-value arena and the rows out of scope.
struct Rows {
    rows: Vec<Row>,
    arena: Vec<u8>,
    out_of_scope: u64,
}

/// Rows whose clear values are loaded together when chunks are built.
const PREFETCH_ROWS: usize = 32;

/// Blocks read ahead of the tokenising workers (bounds the buffers in flight).
const READ_AHEAD_BLOCKS: usize = 16;

/// Builds, signs and stores the feed, keeping the generation it reads for
/// its disclosures (a pin). If the feed exists, returns it unchanged (and
/// says if an import came since), unless `republish` asks for it again:
/// then the new feed replaces it and names the manifest it superseded.
pub fn publish(input: &PublishInput<'_>) -> Result<Published, FeedStoreError> {
    let terms = input.terms;
    let agreement = terms.id();
    let dir = feed_dir(input.data_dir, &agreement, input.epoch);
    let held = read_manifest(input.data_dir, &agreement, input.epoch)?;
    if let Some(manifest) = &held
        && !input.republish
    {
        let generation = feed_generation(&dir)?;
        let current = DatasetReader::open(input.data_dir, &terms.dataset)?
            .report()
            .generation;
        return Ok(Published {
            manifest: manifest.clone(),
            built: false,
            generation,
            newer_import: (current > generation).then_some(current),
            superseded: None,
        });
    }
    let reference = terms
        .cycle
        .epoch_start(input.epoch)
        .ok_or(FeedStoreError::Epoch(input.epoch))?;
    let reader = DatasetReader::open(input.data_dir, &terms.dataset)?;
    // Kept while the feed is built, then for the feed once it is in place.
    let holder = pin_holder(&agreement, input.epoch);
    let building = format!("{holder}.building");
    let generation = reader.report().generation;
    crate::dataset::pin(input.data_dir, &terms.dataset, &building, generation)?;
    let built = build(input, &reader, reference, held.as_ref().map(Signed::digest));
    let pinned = built.and_then(|p| {
        crate::dataset::pin(input.data_dir, &terms.dataset, &holder, generation)?;
        Ok(p)
    });
    if let Err(e) = crate::dataset::unpin(input.data_dir, &terms.dataset, &building) {
        tracing::warn!(error = %e, "cannot remove the pin of a feed build");
    }
    pinned
}

/// Builds the feed from `reader` and puts it in place (replacing the feed
/// whose manifest is `superseded`, if any).
fn build(
    input: &PublishInput<'_>,
    reader: &DatasetReader,
    reference: dxmesh_protocol::date::Date,
    superseded: Option<Hash>,
) -> Result<Published, FeedStoreError> {
    let terms = input.terms;
    let agreement = terms.id();
    let dir = feed_dir(input.data_dir, &agreement, input.epoch);
    let plan = Plan::new(reader, terms, reference)?;
    if plan.attrs.len() > MAX_ATTRS {
        return Err(FeedStoreError::Schema {
            dataset: terms.dataset.clone(),
            problem: format!("at most {MAX_ATTRS} attribute-token fields per feed"),
        });
    }
    let started = std::time::Instant::now();
    let mut rows = tokenise(reader, &plan, input.key, &terms.dataset)?;
    let t_tokenised = started.elapsed();
    let sorted = Sorted::new(&mut rows, plan.attrs.len(), plan.clear.len());
    let t_sorted = started.elapsed();
    let parent = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| input.data_dir.to_path_buf());
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{}-", input.epoch))
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    let report = reader.report();
    let (ranges, distinct_ids) = sorted.chunk_ranges();
    let (chunk_hashes, first_tokens) = write_files(
        tmp.path(),
        &sorted,
        &ranges,
        &terms.fields,
        report.generation,
    )?;
    let t_written = started.elapsed();
    let manifest = Manifest {
        provider: input.identity.public(),
        agreement,
        consumer: terms.consumer,
        dataset: terms.dataset.clone(),
        epoch: input.epoch,
        reference_date: reference,
        schema: terms.fields.clone(),
        records: sorted.rows.len() as u64,
        root: merkle::root(&chunk_hashes),
        chunk_hashes,
        first_tokens,
        quality: Quality {
            rows_read: report.rows_read,
            quarantined: report
                .quarantined
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            fixes: report.fixes.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            duplicate_rows: report.duplicate_rows,
            rows_kept: report.rows_kept,
            rows_out_of_scope: rows.out_of_scope,
            distinct_ids,
        },
        created_at: input.now,
        previous: input.previous,
    };
    let signed = install(tmp, &dir, &parent, input.identity, &manifest)?;
    let generation = report.generation;
    tracing::debug!(
        records = manifest.records,
        tokenise_ms = t_tokenised.as_millis() as u64,
        sort_ms = (t_sorted - t_tokenised).as_millis() as u64,
        write_ms = (t_written - t_sorted).as_millis() as u64,
        sync_sign_ms = (started.elapsed() - t_written).as_millis() as u64,
        "feed built"
    );
    Ok(Published {
        manifest: signed,
        built: true,
        generation,
        newer_import: None,
        superseded,
    })
}

/// Reads every block of the dataset, keeps the records in scope and turns
/// each into a [`Row`] (a reader thread ahead, rayon workers behind it).
fn tokenise(
    reader: &DatasetReader,
    plan: &Plan,
    key: Option<&EpochKey>,
    dataset: &str,
) -> Result<Rows, FeedStoreError> {
    let mut raw = RawBlocks::open(reader, true)?;
    let records_path = reader.dir().join(crate::dataset::RECORDS_FILE);
    // Sized once from the import report: growing by doubling would briefly
    // need twice the memory.
    let acc = std::sync::Mutex::new(Rows {
        rows: Vec::with_capacity(reader.report().rows_kept as usize),
        arena: Vec::new(),
        out_of_scope: 0,
    });
    let (block_tx, block_rx) = std::sync::mpsc::sync_channel::<
        Result<(usize, u64, Vec<u8>), FeedStoreError>,
    >(READ_AHEAD_BLOCKS);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let panicked = || FeedStoreError::Io {
        path: records_path.clone(),
        message: "a tokenising worker panicked".into(),
    };
    std::thread::scope(|scope| -> Result<(), FeedStoreError> {
        scope.spawn(move || {
            for b in 0usize.. {
                let mut buf = spent_rx.try_recv().unwrap_or_default();
                let at = raw.next_body_offset();
                let message = match raw.next_block_into(&mut buf) {
                    Ok(true) => Ok((b, at, buf)),
                    Ok(false) => return,
                    Err(e) => Err(FeedStoreError::from(e)),
                };
                let failed = message.is_err();
                if block_tx.send(message).is_err() || failed {
                    return;
                }
            }
        });
        block_rx.into_iter().par_bridge().try_for_each(|message| {
            let (b, at, bytes) = message?;
            let mut part = tokenise_block(plan, key, (b, at), &bytes, &records_path)?;
            let _ = spent_tx.send(bytes);
            let mut acc = acc.lock().map_err(|_| panicked())?;
            let base = acc.arena.len() as u64;
            if base + part.arena.len() as u64 > u64::from(u32::MAX) {
                return Err(FeedStoreError::Schema {
                    dataset: dataset.to_string(),
                    problem: "the clear fields of this feed exceed 4 GiB".into(),
                });
            }
            for row in part.rows.iter_mut() {
                row.clear_off += base as u32;
            }
            acc.arena.extend_from_slice(&part.arena);
            acc.rows.append(&mut part.rows);
            acc.out_of_scope += part.out_of_scope;
            Ok(())
        })
    })?;
    acc.into_inner().map_err(|_| panicked())
}

/// The tokens of the last row tokenised, and what they were computed from.
struct Memo {
    id: Option<IdNumber>,
    token: IdToken,
    norms: [String; MAX_ATTRS],
    attrs: [AttrToken; MAX_ATTRS],
}

/// The rows of block `b`, whose body begins at byte `at` of the records
/// file (its own arena; offsets into it).
fn tokenise_block(
    plan: &Plan,
    key: Option<&EpochKey>,
    (b, at): (usize, u64),
    bytes: &[u8],
    records_path: &Path,
) -> Result<Rows, FeedStoreError> {
    let bad_block = |problem: String| FeedStoreError::Io {
        path: records_path.to_path_buf(),
        message: format!("block {b} does not decode: {problem}"),
    };
    let record_problem = |i: usize, problem: &str| FeedStoreError::Schema {
        dataset: String::new(),
        problem: format!("block {b} record {i}: {problem}"),
    };
    let mut cursor = BlockCursor::new(bytes).map_err(|e| bad_block(e.to_string()))?;
    if at + bytes.len() as u64 >= 1 << OFFSET_BITS {
        return Err(FeedStoreError::Io {
            path: records_path.to_path_buf(),
            message: format!(
                "block {b} lies past the {} bytes a feed's index addresses",
                1u64 << OFFSET_BITS
            ),
        });
    }
    let mut out = Rows {
        rows: Vec::with_capacity(cursor.remaining() as usize),
        arena: Vec::new(),
        out_of_scope: 0,
    };
    let mut norm = String::new();
    let mut memo = Memo {
        id: None,
        token: IdToken([0; 16]),
        norms: Default::default(),
        attrs: [AttrToken([0; 8]); MAX_ATTRS],
    };
    let mut values = Vec::with_capacity(plan.used.len());
    let mut i = 0usize;
    loop {
        let start = cursor.offset_in(bytes) as u64;
        let Some(id) = cursor
            .next_record(|c| plan.used.get(c).copied().unwrap_or(false), &mut values)
            .map_err(|e| bad_block(e.to_string()))?
        else {
            break;
        };
        // A record is at most `MAX_ROW_BYTES` (< 2^23) long.
        let len = cursor.offset_in(bytes) as u64 - start;
        let record_at = (len << OFFSET_BITS) | (at + start);
        let rec = &RecordRef {
            id,
            values: &values,
        };
        i += 1;
        if !plan.in_scope(rec) {
            out.out_of_scope += 1;
            continue;
        }
        // Exports list a person's rows together (one per insurance type):
        // the tokens of the previous row are reused while the ID and the
        // attribute values repeat, which saves most HMACs of such feeds.
        let same_id = memo.id == Some(rec.id);
        let mut attrs = [AttrToken([0; 8]); MAX_ATTRS];
        for (j, (slot, (field, src))) in attrs.iter_mut().zip(&plan.attrs).enumerate() {
            normalise_attr_into(value(rec, src), &mut norm);
            if same_id && memo.norms[j] == norm {
                *slot = memo.attrs[j];
                continue;
            }
            if let Some(k) = key {
                *slot = k.attr_token(field, &rec.id, &norm);
            }
            memo.norms[j].clone_from(&norm);
            memo.attrs[j] = *slot;
        }
        if !same_id {
            memo.id = Some(rec.id);
            memo.token = match key {
                Some(k) => k.id_token(&rec.id),
                None => dxmesh_protocol::token::clear_id_key(&rec.id),
            };
        }
        let off = out.arena.len() as u64;
        for (k, src) in plan.clear.iter().enumerate() {
            if k > 0 {
                out.arena.push(0x1F);
            }
            let v = value(rec, src).as_bytes();
            if v.contains(&0x1F) {
                return Err(record_problem(
                    i - 1,
                    "a clear value holds the control character U+001F",
                ));
            }
            out.arena.extend_from_slice(v);
        }
        let clear_len = u16::try_from(out.arena.len() as u64 - off)
            .map_err(|_| record_problem(i - 1, "clear values longer than 64 KiB"))?;
        out.rows.push(Row {
            token: memo.token,
            attrs,
            at: record_at,
            clear_len,
            clear_off: off as u32,
        });
    }
    Ok(out)
}

/// The rows of a feed in their final order, with what building chunks needs.
struct Sorted<'a> {
    rows: &'a [Row],
    arena: &'a [u8],
    n_attrs: usize,
    n_clear: usize,
}

impl<'a> Sorted<'a> {
    /// Sorts by token (then attributes, clear values, record) and drops rows a
    /// projection made identical (e.g. two insurance rows that differ only in
    /// fields outside the feed): a feed holds each once.
    fn new(all: &'a mut Rows, n_attrs: usize, n_clear: usize) -> Sorted<'a> {
        let arena = &all.arena;
        let clear_of =
            |r: &Row| &arena[r.clear_off as usize..r.clear_off as usize + r.clear_len as usize];
        // Tokens and attribute tokens compare as big-endian integers (one
        // comparison each instead of a call to memcmp: the sort's hottest
        // lines; a person's several rows tie on the token).
        let token = |r: &Row| u128::from_be_bytes(r.token.0);
        let attrs = |a: &Row, b: &Row| {
            a.attrs[..n_attrs]
                .iter()
                .zip(&b.attrs[..n_attrs])
                .map(|(x, y)| u64::from_be_bytes(x.0).cmp(&u64::from_be_bytes(y.0)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        };
        // First by what the row holds, then the rows that tie (a person's
        // rows that differ in clear values only) by their clear values,
        // group by group: comparing clear values reads the arena, and a
        // group's values lie together there.
        all.rows.par_sort_unstable_by(|a, b| {
            token(a)
                .cmp(&token(b))
                .then_with(|| attrs(a, b))
                .then_with(|| a.at.cmp(&b.at))
        });
        all.rows
            .par_chunk_by_mut(|a, b| a.token == b.token && attrs(a, b).is_eq())
            .for_each(|group| {
                if group.len() > 1 {
                    group.sort_unstable_by(|a, b| {
                        clear_of(a).cmp(clear_of(b)).then_with(|| a.at.cmp(&b.at))
                    });
                }
            });
        all.rows.dedup_by(|b, a| {
            a.token == b.token && a.attrs == b.attrs && clear_of(a) == clear_of(b)
        });
        Sorted {
            rows: &all.rows,
            arena: &all.arena,
            n_attrs,
            n_clear,
        }
    }

    fn clear_of(&self, r: &Row) -> &'a [u8] {
        &self.arena[r.clear_off as usize..r.clear_off as usize + r.clear_len as usize]
    }

    /// Chunk boundaries and the number of distinct IDs: a chunk is cut,
    /// only between different tokens (a token never spans chunks), once it
    /// holds about `CHUNK_TARGET_BYTES` as `Chunk::approx_bytes` counts them.
    fn chunk_ranges(&self) -> (Vec<Range<usize>>, u64) {
        let row_bytes = |r: &Row| {
            16 + 8 * self.n_attrs
                + if self.n_clear == 0 {
                    0
                } else {
                    // values without their separators, plus 4 bytes of end offset each
                    r.clear_len as usize + 1 + 3 * self.n_clear
                }
        };
        let mut starts = Vec::new();
        let mut distinct_ids = 0u64;
        let mut in_chunk = 0usize;
        let mut prev: Option<IdToken> = None;
        for (i, r) in self.rows.iter().enumerate() {
            if prev != Some(r.token) {
                distinct_ids += 1;
                if starts.is_empty() || in_chunk >= CHUNK_TARGET_BYTES {
                    starts.push(i);
                    in_chunk = 0;
                }
            }
            in_chunk += row_bytes(r);
            prev = Some(r.token);
        }
        let ranges = starts
            .iter()
            .enumerate()
            .map(|(c, &start)| start..starts.get(c + 1).copied().unwrap_or(self.rows.len()))
            .collect();
        (ranges, distinct_ids)
    }

    /// Builds chunk `c` of `range`, writes it to `dir` and returns its leaf
    /// hash and first token.
    fn write_chunk(
        &self,
        dir: &Path,
        schema: &[FieldTerm],
        scratch: &mut Vec<u8>,
        (c, range): (usize, &Range<usize>),
    ) -> Result<(Hash, IdToken), FeedStoreError> {
        let mut chunk = Chunk::new(c as u32, schema);
        chunk.ids.reserve(range.len() * 16);
        for col in chunk.attrs.iter_mut() {
            col.reserve(range.len() * 8);
        }
        // One buffer of clear values for every row (no allocation per row).
        let mut clear: Vec<&str> = Vec::with_capacity(self.n_clear);
        for (k, r) in self.rows[range.clone()].iter().enumerate() {
            // Sorted by token, the rows' clear values lie all over the arena:
            // touch those of the next window of rows first, independently, so
            // that their cache misses overlap instead of costing one memory
            // latency each (software prefetching without `unsafe`; the same
            // trick as the import's duplicate table).
            if self.n_clear > 0 && k % PREFETCH_ROWS == 0 {
                let window =
                    &self.rows[range.start + k..(range.start + k + PREFETCH_ROWS).min(range.end)];
                let touched = window.iter().fold(0u8, |acc, w| {
                    acc ^ self.arena.get(w.clear_off as usize).copied().unwrap_or(0)
                });
                std::hint::black_box(touched);
            }
            clear.clear();
            if self.n_clear > 0 {
                clear.extend(
                    self.clear_of(r)
                        .split(|b| *b == 0x1F)
                        .map(|v| std::str::from_utf8(v).unwrap_or("")),
                );
            }
            chunk.push(&r.token, &r.attrs[..self.n_attrs], &clear);
        }
        let bytes = codec::encode(&chunk).map_err(|e| FeedStoreError::Io {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = dir.join(format!("chunk-{c:05}.bin"));
        crate::base::fsutil::write_direct(&path, &bytes, scratch).map_err(io_err(&path))?;
        Ok((merkle::leaf_hash(&bytes), chunk.id(0)))
    }
}

/// Width of an entry of the private index: the token, the record's byte
/// offset in `records.bin` and its length.
pub(crate) const INDEX_ENTRY: usize = 16 + 8 + 4;

/// The private index (a [`SortedFile`](crate::dataset::sorted::SortedFile)
/// whose meta is the dataset generation): `(token, offset, length)` of
/// every row's record, in token order. Written with `O_DIRECT` like the
/// chunks: a disclosure reads its tokens' groups in token order, so the
/// kernel's read-ahead serves them from the disk as a near-sequential pass.
fn write_index(path: &Path, generation: u64, rows: &[Row]) -> Result<(), FeedStoreError> {
    let mut index = SortedWriter::create(path, INDEX_ENTRY, 16, true)?;
    let mut entry = [0u8; INDEX_ENTRY];
    for r in rows {
        entry[..16].copy_from_slice(&r.token.0);
        entry[16..24].copy_from_slice(&(r.at & ((1 << OFFSET_BITS) - 1)).to_be_bytes());
        entry[24..].copy_from_slice(&((r.at >> OFFSET_BITS) as u32).to_be_bytes());
        index.push(&entry)?;
    }
    index.finish(&generation.to_be_bytes())?;
    Ok(())
}

/// Writes every chunk (in parallel) and the index (beside them) into `dir`
/// and syncs them; returns the chunks' leaf hashes and first tokens.
fn write_files(
    dir: &Path,
    sorted: &Sorted<'_>,
    ranges: &[Range<usize>],
    schema: &[FieldTerm],
    generation: u64,
) -> Result<(Vec<Hash>, Vec<IdToken>), FeedStoreError> {
    let index_path = dir.join(INDEX_FILE);
    let (index, written) = std::thread::scope(|scope| {
        let index = scope.spawn(|| write_index(&index_path, generation, sorted.rows));
        let written: Result<Vec<(Hash, IdToken)>, FeedStoreError> = ranges
            .par_iter()
            .enumerate()
            .map_init(Vec::new, |scratch, c| {
                sorted.write_chunk(dir, schema, scratch, c)
            })
            .collect();
        let index = index.join().unwrap_or_else(|_| {
            Err(FeedStoreError::Io {
                path: index_path.clone(),
                message: "the index writer panicked".into(),
            })
        });
        (index, written)
    });
    index?;
    let written = written?;
    // Every chunk reaches the disk before the manifest is signed (fsyncs in
    // parallel let the filesystem batch them).
    let chunk_files: Vec<PathBuf> = (0..written.len())
        .map(|i| dir.join(format!("chunk-{i:05}.bin")))
        .collect();
    chunk_files.par_iter().try_for_each(|p| {
        std::fs::File::open(p)
            .and_then(|f| f.sync_data())
            .map_err(io_err(p))
    })?;
    Ok(written.into_iter().unzip())
}

/// Signs `manifest`, writes it beside the chunks in `tmp`, syncs and moves
/// the directory to `dir` (and syncs `parent`).
fn install(
    tmp: tempfile::TempDir,
    dir: &Path,
    parent: &Path,
    identity: &Identity,
    manifest: &Manifest,
) -> Result<Signed<Manifest>, FeedStoreError> {
    let signed = Signed::sign(identity, manifest).map_err(|e| FeedStoreError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mpath = tmp.path().join(crate::base::layout::MANIFEST_FILE);
    let bytes = codec::encode(&signed).map_err(|e| FeedStoreError::Io {
        path: mpath.clone(),
        message: e.to_string(),
    })?;
    let mut f = std::fs::File::create(&mpath).map_err(io_err(&mpath))?;
    f.write_all(&bytes).map_err(io_err(&mpath))?;
    f.sync_data().map_err(io_err(&mpath))?;
    std::fs::File::open(tmp.path())
        .and_then(|d| d.sync_all())
        .map_err(io_err(tmp.path()))?;
    let tmp_path = tmp.keep();
    // A republished feed: the one it supersedes is set aside, then erased
    // (a node stopped in between removes it when it starts).
    let aside = dir.with_file_name(format!(
        "{SUPERSEDED_PREFIX}{}",
        dir.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let replaced = dir.exists();
    if replaced {
        std::fs::rename(dir, &aside).map_err(io_err(dir))?;
    }
    std::fs::rename(&tmp_path, dir).map_err(io_err(dir))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io_err(parent))?;
    if replaced && let Err(e) = std::fs::remove_dir_all(&aside) {
        tracing::warn!(dir = %aside.display(), error = %e, "cannot remove a superseded feed");
    }
    Ok(signed)
}

/// The name prefix of a superseded feed set aside before it is erased.
pub const SUPERSEDED_PREFIX: &str = ".superseded-";
