//! Building the epoch's feed for an agreement from the imported dataset:
//! read, scope, project and tokenise every record ([`tokenise`]), sort the
//! rows in the node's memory budget ([`crate::dataset::extsort`]), drop
//! the rows a projection made identical and cut the rest into chunks as
//! they come out of the sort, write the chunks and the private index
//! ([`write_files`]), sign the manifest and move the feed into place
//! atomically ([`install`]).
//!
//! A reader thread keeps blocks read ahead into reused buffers; rayon
//! workers take them as they come and turn each record into a sort record
//! ([`Layout`]: the order they arrive in does not matter, the sort fixes
//! it). The sort's runs, if the rows do not fit in the memory given, go to
//! the feed's temporary directory. The merged rows are cut into chunks on
//! the calling thread; rayon workers encode, hash and write the chunks
//! while another thread writes the index, both with `O_DIRECT` (written
//! once, they need no page cache). Every file is fsynced before the
//! manifest is signed. The feed is the same, byte for byte, whatever the
//! memory given.

use super::plan::{Plan, RecordRef, value};
use super::store::{FeedStoreError, feed_dir, io_err, read_manifest};
use crate::dataset::extsort::{Merged, Sorter, Width};
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
use std::cmp::Ordering;
use std::io::Write;
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
    /// Bytes of memory the sort of the feed's rows keeps to.
    pub memory: usize,
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

/// At most this many attribute-token fields per feed.
const MAX_ATTRS: usize = 3;

/// A feed row as the sort holds it: the ID token (16 bytes), the attribute
/// tokens (8 bytes each), where the record lies in `records.bin` (8 bytes,
/// big-endian: its length in the high 24 bits, its offset in the low 40,
/// for the private index), then the clear values joined by 0x1F. Rows sort
/// by token, attribute tokens, clear values, then that place: a person's
/// rows that the projection made identical lie together, the first read
/// first.
#[derive(Debug, Clone, Copy)]
struct Layout {
    n_attrs: usize,
    n_clear: usize,
}

impl Layout {
    /// Bytes of the token and attribute tokens.
    fn tokens(self) -> usize {
        16 + 8 * self.n_attrs
    }

    /// Bytes before the clear values.
    fn fixed(self) -> usize {
        self.tokens() + 8
    }

    fn token(self, r: &[u8]) -> IdToken {
        let mut t = [0u8; 16];
        t.copy_from_slice(&r[..16]);
        IdToken(t)
    }

    fn attrs(self, r: &[u8], out: &mut [AttrToken; MAX_ATTRS]) {
        for (k, slot) in out.iter_mut().take(self.n_attrs).enumerate() {
            slot.0.copy_from_slice(&r[16 + 8 * k..24 + 8 * k]);
        }
    }

    fn at(self, r: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&r[self.tokens()..self.fixed()]);
        u64::from_be_bytes(b)
    }

    fn clear(self, r: &[u8]) -> &[u8] {
        &r[self.fixed()..]
    }

    fn cmp(self, a: &[u8], b: &[u8]) -> Ordering {
        let t = self.tokens();
        a[..t]
            .cmp(&b[..t])
            .then_with(|| self.clear(a).cmp(self.clear(b)))
            .then_with(|| self.at(a).cmp(&self.at(b)))
    }

    /// Whether two rows hold the same (differ in their place only).
    fn same(self, a: &[u8], b: &[u8]) -> bool {
        a[..self.tokens()] == b[..self.tokens()] && self.clear(a) == self.clear(b)
    }
}

/// Bits of a row's place that hold the offset.
const OFFSET_BITS: u32 = 40;

/// The sort records of a block's rows in scope, back to back, and how many
/// rows were out of scope.
struct Rows {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    out_of_scope: u64,
}

/// Blocks read ahead of the tokenising workers (bounds the buffers in flight).
const READ_AHEAD_BLOCKS: usize = 8;

/// Chunks built and waiting to be written (bounds the memory in flight).
const WRITE_AHEAD_CHUNKS: usize = 8;

/// Index entries handed to the index writer at once.
const INDEX_BATCH: usize = 1 << 15;

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
    let parent = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| input.data_dir.to_path_buf());
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let layout = Layout {
        n_attrs: plan.attrs.len(),
        n_clear: plan.clear.len(),
    };
    let report = reader.report();
    crate::dataset::extsort::ensure_space(
        &parent,
        disk_needed(reader, layout, input.memory),
        &format!("publishing {} for epoch {}", terms.dataset, input.epoch),
    )?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{}-", input.epoch))
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    // The sort's runs go to a directory of their own inside the feed's
    // temporary one, removed before the feed is put in place.
    let runs = tmp.path().join("runs");
    std::fs::create_dir(&runs).map_err(io_err(&runs))?;
    let sorter = Sorter::new(
        &runs,
        "feed",
        input.memory,
        Width::Variable(layout.fixed()),
        move |a: &[u8], b: &[u8]| layout.cmp(a, b),
    );
    let (sorter, out_of_scope) = tokenise(reader, &plan, input.key, sorter)?;
    let t_tokenised = started.elapsed();
    let spilled = sorter.runs();
    let mut merged = sorter.finish()?;
    let t_sorted = started.elapsed();
    let written = write_files(
        tmp.path(),
        &mut merged,
        layout,
        &terms.fields,
        report.generation,
    )?;
    drop(merged);
    std::fs::remove_dir_all(&runs).map_err(io_err(&runs))?;
    let t_written = started.elapsed();
    let manifest = Manifest {
        provider: input.identity.public(),
        agreement,
        consumer: terms.consumer,
        dataset: terms.dataset.clone(),
        epoch: input.epoch,
        reference_date: reference,
        schema: terms.fields.clone(),
        records: written.records,
        root: merkle::root(&written.hashes),
        chunk_hashes: written.hashes,
        first_tokens: written.first_tokens,
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
            rows_out_of_scope: out_of_scope,
            distinct_ids: written.distinct_ids,
        },
        created_at: input.now,
        previous: input.previous,
    };
    let signed = install(tmp, &dir, &parent, input.identity, &manifest)?;
    let generation = report.generation;
    tracing::debug!(
        records = manifest.records,
        runs = spilled,
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

/// The disk a feed build may need beside the feed itself: nothing if its
/// rows fit in `memory`, else their sort records once (the runs), bounded
/// by the rows' fixed part and the dataset's records (which hold every
/// clear value); and the feed (chunks and index), bounded the same way.
fn disk_needed(reader: &DatasetReader, layout: Layout, memory: usize) -> u64 {
    use crate::dataset::extsort::{ENTRY_BYTES, MAX_FAN_IN, effective_memory};
    let rows = reader.report().rows_kept;
    let records =
        std::fs::metadata(reader.dir().join(crate::dataset::RECORDS_FILE)).map_or(0, |m| m.len());
    // Each record in a run also has its 4-byte length.
    let sorted = rows
        .saturating_mul(layout.fixed() as u64 + 4)
        .saturating_add(records);
    let feed = rows
        .saturating_mul((layout.tokens() + INDEX_ENTRY) as u64)
        .saturating_add(records);
    let memory = effective_memory(memory) as u64;
    let in_memory = rows.saturating_mul(ENTRY_BYTES as u64) + sorted;
    if in_memory <= memory {
        return feed;
    }
    // More runs than one merge takes: a second level of runs is written
    // before the first is removed.
    let levels = if in_memory / memory.max(1) >= MAX_FAN_IN as u64 {
        2
    } else {
        1
    };
    feed.saturating_add(sorted.saturating_mul(levels))
}

/// Reads every block of the dataset, keeps the records in scope and hands
/// each to the sort (a reader thread ahead, rayon workers behind it);
/// returns the sort and the number of rows out of scope.
fn tokenise<C>(
    reader: &DatasetReader,
    plan: &Plan,
    key: Option<&EpochKey>,
    sorter: Sorter<C>,
) -> Result<(Sorter<C>, u64), FeedStoreError>
where
    C: Fn(&[u8], &[u8]) -> Ordering + Sync + Send,
{
    let mut raw = RawBlocks::open(reader, true)?;
    let records_path = reader.dir().join(crate::dataset::RECORDS_FILE);
    let acc = std::sync::Mutex::new((sorter, 0u64));
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
            let part = tokenise_block(plan, key, (b, at), &bytes, &records_path)?;
            let _ = spent_tx.send(bytes);
            let mut acc = acc.lock().map_err(|_| panicked())?;
            let mut start = 0usize;
            for &end in &part.ends {
                acc.0.push(&part.bytes[start..end as usize])?;
                start = end as usize;
            }
            acc.1 += part.out_of_scope;
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
        bytes: Vec::with_capacity(bytes.len()),
        ends: Vec::with_capacity(cursor.remaining() as usize),
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
        out.bytes.extend_from_slice(&memo.token.0);
        for a in &attrs[..plan.attrs.len()] {
            out.bytes.extend_from_slice(&a.0);
        }
        out.bytes.extend_from_slice(&record_at.to_be_bytes());
        let off = out.bytes.len();
        for (k, src) in plan.clear.iter().enumerate() {
            if k > 0 {
                out.bytes.push(0x1F);
            }
            let v = value(rec, src).as_bytes();
            if v.contains(&0x1F) {
                return Err(record_problem(
                    i - 1,
                    "a clear value holds the control character U+001F",
                ));
            }
            out.bytes.extend_from_slice(v);
        }
        if out.bytes.len() - off > usize::from(u16::MAX) {
            return Err(record_problem(i - 1, "clear values longer than 64 KiB"));
        }
        let end = u32::try_from(out.bytes.len())
            .map_err(|_| bad_block("more than 4 GiB of rows in one block".into()))?;
        out.ends.push(end);
    }
    Ok(out)
}

/// What writing a feed's files found.
struct Written {
    hashes: Vec<Hash>,
    first_tokens: Vec<IdToken>,
    records: u64,
    distinct_ids: u64,
}

/// Cuts the sorted rows into chunks (dropping rows a projection made
/// identical: a feed holds each once) and hands each chunk to `chunks`
/// and every row's index entry to `index`, in batches; returns the rows
/// kept and the distinct IDs. A chunk is cut, only between different
/// tokens (a token never spans chunks), once it holds about
/// `CHUNK_TARGET_BYTES` as `Chunk::approx_bytes` counts them.
fn cut_chunks<C: Fn(&[u8], &[u8]) -> Ordering>(
    merged: &mut Merged<C>,
    layout: Layout,
    schema: &[FieldTerm],
    chunks: &std::sync::mpsc::SyncSender<Chunk>,
    index: &std::sync::mpsc::SyncSender<Vec<u8>>,
) -> Result<(u64, u64), FeedStoreError> {
    let stopped = || FeedStoreError::Io {
        path: PathBuf::from(INDEX_FILE),
        message: "the feed's writers stopped".into(),
    };
    let mut prev: Vec<u8> = Vec::new();
    let (mut records, mut distinct_ids) = (0u64, 0u64);
    let mut chunk: Option<Chunk> = None;
    let mut batch = Vec::with_capacity(INDEX_BATCH * INDEX_ENTRY);
    let mut attrs = [AttrToken([0; 8]); MAX_ATTRS];
    let mut spare: Vec<&str> = Vec::new();
    let mut next_chunk = 0u32;
    while let Some(r) = merged.next()? {
        let new_token = prev.len() < 16 || prev[..16] != r[..16];
        if !new_token && layout.same(&prev, r) {
            continue;
        }
        if new_token {
            distinct_ids += 1;
            if chunk
                .as_ref()
                .is_none_or(|c| c.approx_bytes() >= CHUNK_TARGET_BYTES)
            {
                if let Some(full) = chunk.take() {
                    chunks.send(full).map_err(|_| stopped())?;
                }
                chunk = Some(Chunk::new(next_chunk, schema));
                next_chunk += 1;
            }
        }
        let token = layout.token(r);
        layout.attrs(r, &mut attrs);
        // The buffer of the last row's values, reused (no allocation a row).
        let mut clear = recycle(std::mem::take(&mut spare));
        let values = layout.clear(r);
        if layout.n_clear > 0 {
            clear.extend(
                values
                    .split(|b| *b == 0x1F)
                    .map(|v| std::str::from_utf8(v).unwrap_or("")),
            );
        }
        if let Some(c) = chunk.as_mut() {
            c.push(&token, &attrs[..layout.n_attrs], &clear);
        }
        spare = recycle(clear);
        let at = layout.at(r);
        batch.extend_from_slice(&token.0);
        batch.extend_from_slice(&(at & ((1 << OFFSET_BITS) - 1)).to_be_bytes());
        batch.extend_from_slice(&((at >> OFFSET_BITS) as u32).to_be_bytes());
        if batch.len() >= INDEX_BATCH * INDEX_ENTRY {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(INDEX_BATCH * INDEX_ENTRY));
            index.send(full).map_err(|_| stopped())?;
        }
        records += 1;
        prev.clear();
        prev.extend_from_slice(r);
    }
    if let Some(last) = chunk {
        chunks.send(last).map_err(|_| stopped())?;
    }
    if !batch.is_empty() {
        index.send(batch).map_err(|_| stopped())?;
    }
    Ok((records, distinct_ids))
}

/// An empty vector of string slices with the allocation of `v`, for
/// slices of another lifetime (the standard library collects in place).
fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// Encodes chunk `chunk`, writes it to `dir` and returns its number, leaf
/// hash and first token.
fn write_chunk(
    dir: &Path,
    scratch: &mut Vec<u8>,
    chunk: Chunk,
) -> Result<(u32, Hash, IdToken), FeedStoreError> {
    let bytes = codec::encode(&chunk).map_err(|e| FeedStoreError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let c = chunk.index;
    let path = dir.join(format!("chunk-{c:05}.bin"));
    crate::base::fsutil::write_direct(&path, &bytes, scratch).map_err(io_err(&path))?;
    Ok((c, merkle::leaf_hash(&bytes), chunk.id(0)))
}

/// Width of an entry of the private index: the token, the record's byte
/// offset in `records.bin` and its length.
pub(crate) const INDEX_ENTRY: usize = 16 + 8 + 4;

/// The private index (a [`SortedFile`](crate::dataset::sorted::SortedFile)
/// whose meta is the dataset generation): `(token, offset, length)` of
/// every row's record, in token order, from batches of entries. Written
/// with `O_DIRECT` like the chunks: a disclosure reads its tokens' groups
/// in token order, so the kernel's read-ahead serves them from the disk as
/// a near-sequential pass.
fn write_index(
    path: &Path,
    generation: u64,
    batches: std::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<(), FeedStoreError> {
    let mut index = SortedWriter::create(path, INDEX_ENTRY, 16, true)?;
    for batch in batches {
        for entry in batch.chunks_exact(INDEX_ENTRY) {
            index.push(entry)?;
        }
    }
    index.finish(&generation.to_be_bytes())?;
    Ok(())
}

/// Writes every chunk (rayon workers) and the index (a thread of its own)
/// into `dir` from the sorted rows and syncs them.
fn write_files<C: Fn(&[u8], &[u8]) -> Ordering>(
    dir: &Path,
    merged: &mut Merged<C>,
    layout: Layout,
    schema: &[FieldTerm],
    generation: u64,
) -> Result<Written, FeedStoreError> {
    let index_path = dir.join(INDEX_FILE);
    let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<Chunk>(WRITE_AHEAD_CHUNKS);
    let (index_tx, index_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(WRITE_AHEAD_CHUNKS);
    let (cut, index, written) = std::thread::scope(|scope| {
        let index = scope.spawn(|| write_index(&index_path, generation, index_rx));
        let chunks = scope.spawn(move || {
            chunk_rx
                .into_iter()
                .par_bridge()
                .map_init(Vec::new, |scratch, chunk| write_chunk(dir, scratch, chunk))
                .collect::<Result<Vec<_>, FeedStoreError>>()
        });
        let cut = cut_chunks(merged, layout, schema, &chunk_tx, &index_tx);
        drop((chunk_tx, index_tx));
        let panicked = |what: &str| FeedStoreError::Io {
            path: dir.to_path_buf(),
            message: format!("the {what} writer panicked"),
        };
        let index = index.join().unwrap_or_else(|_| Err(panicked("index")));
        let written = chunks.join().unwrap_or_else(|_| Err(panicked("chunk")));
        (cut, index, written)
    });
    // A writer's failure says more than the cutting's "writers stopped".
    index?;
    let mut written = written?;
    let (records, distinct_ids) = cut?;
    written.sort_unstable_by_key(|w| w.0);
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
    let (hashes, first_tokens) = written.into_iter().map(|(_, h, t)| (h, t)).unzip();
    Ok(Written {
        hashes,
        first_tokens,
        records,
        distinct_ids,
    })
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
