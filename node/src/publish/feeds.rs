//! Feeds at the provider: building the epoch's feed for an agreement from
//! the imported dataset (scope, project, tokenise, sort, chunk, hash, sign),
//! storing it atomically, serving its manifest and chunks, and resolving
//! disclosure requests through the epoch's private token index.
//!
//! Layout under the data directory:
//! `feeds/<agreement hex>/<epoch>/` holds `manifest.bin` (the encoded
//! `Signed<Manifest>`), `chunk-00000.bin` ... (encoded chunks, exactly the
//! bytes whose hashes the manifest lists) and `index.bin` (private: the
//! dataset generation, then sorted `(ID token, row number)` pairs, used only
//! for disclosure; never sent). A feed is built in a temporary directory and
//! renamed into place, so a half-built feed is never visible.

use crate::dataset::{BlockCursor, DatasetReader, DirectWriter, ImportError, RecordsReader};
use dxmesh_protocol::agreement::{AgreementId, RowPredicate, Terms, Treatment};
use dxmesh_protocol::codec;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::{
    CHUNK_TARGET_BYTES, Chunk, DisclosedRecord, Disclosure, Manifest, Quality,
};
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::merkle::{self, Hash};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::token::{AttrField, AttrToken, EpochKey, IdToken, normalize_attr_into};
use rayon::prelude::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Why a feed could not be built, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedStoreError {
    /// The dataset is missing or unreadable.
    #[error(transparent)]
    Dataset(#[from] ImportError),
    /// The agreement's terms do not fit the dataset.
    #[error("dataset {dataset}: {problem}")]
    Schema {
        /// Dataset.
        dataset: String,
        /// What does not fit.
        problem: String,
    },
    /// File trouble.
    #[error("{path}: {message}", path = .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The epoch has no start date.
    #[error("epoch {0} is outside the cycle's calendar")]
    Epoch(u64),
    /// The dataset was re-imported since the feed was published.
    #[error(
        "dataset {dataset} was re-imported after epoch {epoch} was published; disclosure needs the generation the feed was built from ({generation})"
    )]
    GenerationGone {
        /// Dataset.
        dataset: String,
        /// Epoch.
        epoch: u64,
        /// Generation needed.
        generation: u64,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> FeedStoreError + '_ {
    move |e| FeedStoreError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Directory of the feed of `agreement` for `epoch`.
pub fn feed_dir(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> PathBuf {
    data_dir
        .join("feeds")
        .join(dxmesh_protocol::hex(agreement))
        .join(epoch.to_string())
}

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
}

/// How each feed field is read from a dataset record.
enum Source {
    /// The record's ID number.
    Id,
    /// Column `i` of `values`.
    Column(usize),
}

struct Plan {
    /// Columns the feed reads (scope, attribute tokens, clear values).
    used: Vec<bool>,
    attrs: Vec<(AttrField, Source)>,
    clear: Vec<Source>,
    rows: Vec<(RowPredicate, Option<usize>)>,
    reference: Date,
}

/// A dataset record read in place (see [`BlockCursor`]).
struct RecordRef<'a> {
    id: dxmesh_protocol::id::IdNumber,
    values: &'a [&'a str],
}

/// Rows are addressed as (block << ROW_BITS) | index within the block.
const ROW_BITS: u32 = 17;

fn value<'r>(rec: &'r RecordRef<'_>, src: &Source) -> &'r str {
    match src {
        Source::Id => rec.id.as_str(),
        Source::Column(i) => rec.values.get(*i).copied().unwrap_or(""),
    }
}

impl Plan {
    fn new(reader: &DatasetReader, terms: &Terms, reference: Date) -> Result<Plan, FeedStoreError> {
        let bad = |problem: String| FeedStoreError::Schema {
            dataset: terms.dataset.clone(),
            problem,
        };
        let column = |name: &str| -> Result<Source, FeedStoreError> {
            if name == reader.id_column() {
                return Ok(Source::Id);
            }
            reader
                .columns()
                .iter()
                .position(|c| c == name)
                .map(Source::Column)
                .ok_or_else(|| {
                    bad(format!(
                        "has no column {name:?} (columns: {})",
                        reader.columns().join(", ")
                    ))
                })
        };
        let mut attrs = Vec::new();
        let mut clear = Vec::new();
        for f in &terms.fields {
            match f.treatment {
                Treatment::Token => {
                    if f.name != reader.id_column() {
                        return Err(bad(format!(
                            "the token field {:?} is not the dataset's ID column {:?}",
                            f.name,
                            reader.id_column()
                        )));
                    }
                }
                Treatment::AttrToken => {
                    let field = AttrField::new(&f.name).map_err(|e| bad(e.to_string()))?;
                    attrs.push((field, column(&f.name)?));
                }
                Treatment::Clear => clear.push(column(&f.name)?),
            }
        }
        let mut rows = Vec::new();
        for p in &terms.rows {
            let col = match p {
                RowPredicate::Equals { field, .. }
                | RowPredicate::In { field, .. }
                | RowPredicate::WithinDays { field, .. } => match column(field)? {
                    Source::Column(i) => Some(i),
                    Source::Id => None,
                },
                RowPredicate::AgeAtLeast { .. } | RowPredicate::AgeAtMost { .. } => None,
            };
            rows.push((p.clone(), col));
        }
        let mut used = vec![false; reader.columns().len()];
        let columns = attrs
            .iter()
            .map(|(_, src)| src)
            .chain(&clear)
            .filter_map(|src| match src {
                Source::Column(i) => Some(*i),
                Source::Id => None,
            })
            .chain(rows.iter().filter_map(|(_, col)| *col));
        for i in columns {
            used[i] = true;
        }
        Ok(Plan {
            used,
            attrs,
            clear,
            rows,
            reference,
        })
    }

    fn in_scope(&self, rec: &RecordRef<'_>) -> bool {
        self.rows.iter().all(|(p, col)| {
            let v = |c: &Option<usize>| match c {
                Some(i) => rec.values.get(*i).copied().unwrap_or(""),
                None => rec.id.as_str(),
            };
            match p {
                RowPredicate::Equals { value, .. } => v(col) == value,
                RowPredicate::In { values, .. } => values.iter().any(|x| x == v(col)),
                RowPredicate::AgeAtLeast { years } => {
                    rec.id.birth_date().age_on(self.reference) >= *years
                }
                RowPredicate::AgeAtMost { years } => {
                    rec.id.birth_date().age_on(self.reference) <= *years
                }
                RowPredicate::WithinDays { days, .. } => match Date::parse(v(col)) {
                    Ok(d) => {
                        let age = self.reference.days_since_epoch() - d.days_since_epoch();
                        (0..=i64::from(*days)).contains(&age)
                    }
                    Err(_) => false,
                },
            }
        })
    }
}

/// One projected, tokenised record before sorting.
/// At most this many attribute-token fields per feed (rows are fixed-size).
const MAX_ATTRS: usize = 3;

/// One projected, tokenised record, fixed-size: clear values live in an
/// arena (joined by 0x1F) so that sorting moves no heap data.
#[derive(Clone, Copy)]
struct Row {
    token: IdToken,
    attrs: [AttrToken; MAX_ATTRS],
    row: u32,
    clear_len: u16,
    clear_off: u32,
}

/// Rows of one block, its clear-value arena, and rows out of scope.
type BlockRows = (Vec<Row>, Vec<u8>, u64);

/// Rows whose clear values are loaded together when chunks are built.
const PREFETCH_ROWS: usize = 32;

/// Blocks read ahead of the tokenising workers (bounds the buffers in flight).
const READ_AHEAD_BLOCKS: usize = 16;

/// Reads raw blocks of a dataset's records file one at a time (a block is a
/// 4-byte big-endian length and the encoded `Vec<Record>`; see `dataset`).
pub(crate) struct RawBlocks {
    path: PathBuf,
    file: RecordsReader,
}

impl RawBlocks {
    /// Opens the dataset's records for one pass from start to end.
    /// `once`: the caller reads them once (publishing), so they bypass the
    /// page cache; otherwise (a lookup repeated per request) they go
    /// through it and later passes read memory.
    pub(crate) fn open(reader: &DatasetReader, once: bool) -> Result<RawBlocks, FeedStoreError> {
        let path = reader.dir().join("records.bin");
        let file = RecordsReader::open(&path, once).map_err(io_err(&path))?;
        Ok(RawBlocks { path, file })
    }

    pub(crate) fn next_block(&mut self) -> Result<Option<Vec<u8>>, FeedStoreError> {
        let mut buf = Vec::new();
        Ok(self.next_block_into(&mut buf)?.then_some(buf))
    }

    /// Reads the next block into `buf` (reusing its memory); false at the end.
    pub(crate) fn next_block_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, FeedStoreError> {
        let mut header = [0u8; 4];
        match self.file.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(io_err(&self.path)(e)),
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > codec::MAX_DECODE_BYTES {
            return Err(FeedStoreError::Io {
                path: self.path.clone(),
                message: format!("a block claims {len} bytes"),
            });
        }
        // Only growth is zeroed; a reused buffer is overwritten in place.
        buf.resize(len, 0);
        self.file.read_exact(buf).map_err(io_err(&self.path))?;
        Ok(true)
    }
}

/// Builds, signs and stores the feed; returns the signed manifest. If the
/// feed already exists, returns the stored manifest unchanged.
pub fn publish(input: &PublishInput<'_>) -> Result<Signed<Manifest>, FeedStoreError> {
    let terms = input.terms;
    let agreement = terms.id();
    let dir = feed_dir(input.data_dir, &agreement, input.epoch);
    if dir.join("manifest.bin").exists() {
        return read_manifest(input.data_dir, &agreement, input.epoch)?.ok_or(FeedStoreError::Io {
            path: dir,
            message: "manifest vanished".into(),
        });
    }
    let reference = terms
        .cycle
        .epoch_start(input.epoch)
        .ok_or(FeedStoreError::Epoch(input.epoch))?;
    let reader = DatasetReader::open(input.data_dir, &terms.dataset)?;
    let plan = Plan::new(&reader, terms, reference)?;
    if plan.attrs.len() > MAX_ATTRS {
        return Err(FeedStoreError::Schema {
            dataset: terms.dataset.clone(),
            problem: format!("at most {MAX_ATTRS} attribute-token fields per feed"),
        });
    }
    let started = std::time::Instant::now();
    let mut raw = RawBlocks::open(&reader, true)?;
    let records_path = reader.dir().join("records.bin");
    let key = input.key;
    // Sized once from the import report: growing by doubling would briefly
    // need twice the memory.
    let rows: Vec<Row> = Vec::with_capacity(reader.report().rows_kept as usize);
    let arena: Vec<u8> = Vec::new();
    // A reader thread keeps blocks read ahead into reused buffers; the
    // workers take them as they come (no barrier between groups), read,
    // scope, project and tokenise each, and append its compact rows. The
    // order rows arrive in does not matter: the sort below fixes it.
    let (block_tx, block_rx) = std::sync::mpsc::sync_channel::<
        Result<(usize, Vec<u8>), FeedStoreError>,
    >(READ_AHEAD_BLOCKS);
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let acc = std::sync::Mutex::new((rows, arena, 0u64));
    std::thread::scope(|scope| -> Result<(), FeedStoreError> {
        scope.spawn(move || {
            for b in 0usize.. {
                let mut buf = spent_rx.try_recv().unwrap_or_default();
                let message = match raw.next_block_into(&mut buf) {
                    Ok(true) => Ok((b, buf)),
                    Ok(false) => return,
                    Err(e) => Err(e),
                };
                let failed = message.is_err();
                if block_tx.send(message).is_err() || failed {
                    return;
                }
            }
        });
        let tokenise = |b: &usize, bytes: &Vec<u8>| -> Result<BlockRows, FeedStoreError> {
            let bad_block = |problem: String| FeedStoreError::Io {
                path: records_path.clone(),
                message: format!("block {b} does not decode: {problem}"),
            };
            let mut cursor = BlockCursor::new(bytes).map_err(bad_block)?;
            if cursor.remaining() >= 1 << ROW_BITS || *b >= 1 << (32 - ROW_BITS) {
                return Err(FeedStoreError::Io {
                    path: records_path.clone(),
                    message: format!("block {b} is larger than a dataset block may be"),
                });
            }
            let mut rows = Vec::with_capacity(cursor.remaining() as usize);
            let mut local = Vec::new();
            let mut out_of_scope = 0u64;
            let mut norm = String::new();
            let mut values = Vec::with_capacity(plan.used.len());
            let mut next = 0usize;
            while let Some(id) = cursor
                .next_record(|c| plan.used.get(c).copied().unwrap_or(false), &mut values)
                .map_err(bad_block)?
            {
                let rec = &RecordRef {
                    id,
                    values: &values,
                };
                let i = next;
                next += 1;
                if !plan.in_scope(rec) {
                    out_of_scope += 1;
                    continue;
                }
                let mut attrs = [AttrToken([0; 8]); MAX_ATTRS];
                for (slot, (field, src)) in attrs.iter_mut().zip(&plan.attrs) {
                    normalize_attr_into(value(rec, src), &mut norm);
                    if let Some(k) = key {
                        *slot = k.attr_token(field, &rec.id, &norm);
                    }
                }
                let off = local.len() as u64;
                for (k, src) in plan.clear.iter().enumerate() {
                    if k > 0 {
                        local.push(0x1F);
                    }
                    let v = value(rec, src).as_bytes();
                    if v.contains(&0x1F) {
                        return Err(FeedStoreError::Schema {
                            dataset: String::new(),
                            problem: format!(
                                "block {b} record {i}: a clear value holds the control character U+001F"
                            ),
                        });
                    }
                    local.extend_from_slice(v);
                }
                rows.push(Row {
                    token: match key {
                        Some(k) => k.id_token(&rec.id),
                        None => dxmesh_protocol::token::clear_id_key(&rec.id),
                    },
                    attrs,
                    row: ((*b as u32) << ROW_BITS) | i as u32,
                    clear_len: u16::try_from(local.len() as u64 - off).map_err(|_| {
                        FeedStoreError::Schema {
                            dataset: String::new(),
                            problem: format!(
                                "block {b} record {i}: clear values longer than 64 KiB"
                            ),
                        }
                    })?,
                    clear_off: off as u32,
                });
            }
            Ok((rows, local, out_of_scope))
        };
        block_rx.into_iter().par_bridge().try_for_each(|message| {
            let (b, bytes) = message?;
            let (mut part, local, o) = tokenise(&b, &bytes)?;
            let _ = spent_tx.send(bytes);
            let mut acc = acc.lock().map_err(|_| FeedStoreError::Io {
                path: records_path.clone(),
                message: "a tokenising worker panicked".into(),
            })?;
            let (rows, arena, out_of_scope) = &mut *acc;
            let base = arena.len() as u64;
            if base + local.len() as u64 > u64::from(u32::MAX) {
                return Err(FeedStoreError::Schema {
                    dataset: terms.dataset.clone(),
                    problem: "the clear fields of this feed exceed 4 GiB".into(),
                });
            }
            for row in part.iter_mut() {
                row.clear_off += base as u32;
            }
            arena.extend_from_slice(&local);
            rows.append(&mut part);
            *out_of_scope += o;
            Ok(())
        })
    })?;
    let (mut rows, arena, rows_out_of_scope) =
        acc.into_inner().map_err(|_| FeedStoreError::Io {
            path: records_path.clone(),
            message: "a tokenising worker panicked".into(),
        })?;
    let t_tokenised = started.elapsed();
    let n_attrs = plan.attrs.len();
    let clear_of =
        |r: &Row| &arena[r.clear_off as usize..r.clear_off as usize + r.clear_len as usize];
    rows.par_sort_unstable_by(|a, b| {
        a.token
            .cmp(&b.token)
            .then_with(|| a.attrs[..n_attrs].cmp(&b.attrs[..n_attrs]))
            .then_with(|| clear_of(a).cmp(clear_of(b)))
            .then_with(|| a.row.cmp(&b.row))
    });
    // A projection can make rows identical (e.g. two insurance rows that
    // differ only in fields outside the feed): a feed holds each once.
    rows.dedup_by(|b, a| a.token == b.token && a.attrs == b.attrs && clear_of(a) == clear_of(b));
    let t_sorted = started.elapsed();
    let report = reader.report().clone();
    let generation = report.generation;

    // Write chunks and the private index into a temporary directory.
    let parent = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| input.data_dir.to_path_buf());
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{}-", input.epoch))
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    let schema = terms.fields.clone();
    // Chunk boundaries first: a chunk is cut, only between different tokens
    // (a token never spans chunks), once it holds about CHUNK_TARGET_BYTES
    // as `Chunk::approx_bytes` counts them. Then the chunks are built,
    // encoded, hashed and written in parallel while another thread writes
    // the private index.
    let n_clear = plan.clear.len();
    let row_bytes = |r: &Row| {
        16 + 8 * n_attrs
            + if n_clear == 0 {
                0
            } else {
                // values without their separators, plus 4 bytes of end offset each
                r.clear_len as usize + 1 + 3 * n_clear
            }
    };
    let mut starts = Vec::new();
    let mut distinct_ids = 0u64;
    let mut in_chunk = 0usize;
    let mut prev: Option<IdToken> = None;
    for (i, r) in rows.iter().enumerate() {
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
    let ranges: Vec<std::ops::Range<usize>> = starts
        .iter()
        .enumerate()
        .map(|(c, &start)| start..starts.get(c + 1).copied().unwrap_or(rows.len()))
        .collect();
    let index_path = tmp.path().join("index.bin");
    // The chunks and the index bypass the page cache (written once; a pull
    // and a disclosure read them back the same way).
    let write_index = || -> Result<std::fs::File, FeedStoreError> {
        let mut index = DirectWriter::create(&index_path)?;
        let mut staged = Vec::with_capacity(1 << 20);
        staged.extend_from_slice(&generation.to_be_bytes());
        for r in &rows {
            staged.extend_from_slice(&r.token.0);
            staged.extend_from_slice(&r.row.to_be_bytes());
            if staged.len() >= 1 << 20 {
                index.write(&staged)?;
                staged.clear();
            }
        }
        index.write(&staged)?;
        Ok(index.finish()?)
    };
    let write_chunk = |scratch: &mut Vec<u8>,
                       (c, range): (usize, &std::ops::Range<usize>)|
     -> Result<(Hash, IdToken), FeedStoreError> {
        let mut chunk = Chunk::new(c as u32, &schema);
        chunk.ids.reserve(range.len() * 16);
        for col in chunk.attrs.iter_mut() {
            col.reserve(range.len() * 8);
        }
        // One buffer of clear values for every row (no allocation per row).
        let mut clear: Vec<&str> = Vec::with_capacity(n_clear);
        for (k, r) in rows[range.clone()].iter().enumerate() {
            // Sorted by token, the rows' clear values lie all over the arena:
            // touch those of the next window of rows first, independently, so
            // that their cache misses overlap instead of costing one memory
            // latency each (software prefetching without `unsafe`; the same
            // trick as the import's duplicate table).
            if n_clear > 0 && k % PREFETCH_ROWS == 0 {
                let window =
                    &rows[range.start + k..(range.start + k + PREFETCH_ROWS).min(range.end)];
                let touched = window.iter().fold(0u8, |acc, w| {
                    acc ^ arena.get(w.clear_off as usize).copied().unwrap_or(0)
                });
                std::hint::black_box(touched);
            }
            clear.clear();
            if n_clear > 0 {
                clear.extend(
                    clear_of(r)
                        .split(|b| *b == 0x1F)
                        .map(|v| std::str::from_utf8(v).unwrap_or("")),
                );
            }
            chunk.push(&r.token, &r.attrs[..n_attrs], &clear);
        }
        let bytes = codec::encode(&chunk).map_err(|e| FeedStoreError::Io {
            path: tmp.path().to_path_buf(),
            message: e.to_string(),
        })?;
        let path = tmp.path().join(format!("chunk-{c:05}.bin"));
        crate::base::fsutil::write_direct(&path, &bytes, scratch).map_err(io_err(&path))?;
        Ok((merkle::leaf_hash(&bytes), chunk.id(0)))
    };
    let (index_file, written) = std::thread::scope(|scope| {
        let index = scope.spawn(write_index);
        let written: Result<Vec<(Hash, IdToken)>, FeedStoreError> = ranges
            .par_iter()
            .enumerate()
            .map_init(Vec::new, write_chunk)
            .collect();
        let index = index.join().unwrap_or_else(|_| {
            Err(FeedStoreError::Io {
                path: index_path.clone(),
                message: "the index writer panicked".into(),
            })
        });
        (index, written)
    });
    let (index_file, written) = (index_file?, written?);
    let (chunk_hashes, first_tokens): (Vec<Hash>, Vec<IdToken>) = written.into_iter().unzip();
    let t_written = started.elapsed();
    index_file.sync_data().map_err(io_err(&index_path))?;
    // Every chunk reaches the disk before the manifest is signed (fsyncs in
    // parallel let the filesystem batch them).
    let chunk_files: Vec<PathBuf> = (0..chunk_hashes.len())
        .map(|i| tmp.path().join(format!("chunk-{i:05}.bin")))
        .collect();
    chunk_files.par_iter().try_for_each(|p| {
        std::fs::File::open(p)
            .and_then(|f| f.sync_data())
            .map_err(io_err(p))
    })?;
    let manifest = Manifest {
        provider: input.identity.public(),
        agreement,
        dataset: terms.dataset.clone(),
        epoch: input.epoch,
        reference_date: reference,
        schema,
        records: rows.len() as u64,
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
            rows_out_of_scope,
            distinct_ids,
        },
        created_at: input.now,
        previous: input.previous,
    };
    let signed = Signed::sign(input.identity, &manifest).map_err(|e| FeedStoreError::Io {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    let mpath = tmp.path().join("manifest.bin");
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
    std::fs::rename(&tmp_path, &dir).map_err(io_err(&dir))?;
    std::fs::File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&parent))?;
    tracing::debug!(
        records = rows.len(),
        tokenise_ms = t_tokenised.as_millis() as u64,
        sort_ms = (t_sorted - t_tokenised).as_millis() as u64,
        write_ms = (t_written - t_sorted).as_millis() as u64,
        sync_sign_ms = (started.elapsed() - t_written).as_millis() as u64,
        "feed built"
    );
    Ok(signed)
}

/// The stored signed manifest of a feed, if published.
pub fn read_manifest(
    data_dir: &Path,
    agreement: &AgreementId,
    epoch: u64,
) -> Result<Option<Signed<Manifest>>, FeedStoreError> {
    let path = feed_dir(data_dir, agreement, epoch).join("manifest.bin");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    codec::decode(&bytes)
        .map(Some)
        .map_err(|e| FeedStoreError::Io {
            path,
            message: format!("does not decode: {e}"),
        })
}

/// The stored bytes of chunk `index` (exactly what was hashed).
pub fn read_chunk(
    data_dir: &Path,
    agreement: &AgreementId,
    epoch: u64,
    index: u32,
) -> Result<Vec<u8>, FeedStoreError> {
    let path = feed_dir(data_dir, agreement, epoch).join(format!("chunk-{index:05}.bin"));
    std::fs::read(&path).map_err(io_err(&path))
}

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
            let mut cursor = BlockCursor::new(buf).map_err(bad_block)?;
            let mut values = Vec::new();
            let mut out = Vec::with_capacity(rows.len());
            let mut next = rows.iter().peekable();
            let mut i = 0u32;
            while next.peek().is_some() {
                let wanted = |c: usize| sources.contains(&Some(c));
                let Some(id) = cursor.next_record(wanted, &mut values).map_err(bad_block)? else {
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
