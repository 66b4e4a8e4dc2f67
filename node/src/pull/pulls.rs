//! Feeds at the consumer: verifying a provider's signed manifest against
//! the agreement, downloading chunks over a one-directional libp2p stream
//! and verifying each as it arrives, storing only verified chunks, and
//! resuming an interrupted pull from the first chunk it does not hold.
//!
//! Layout: `pulls/<agreement hex>/<epoch>/` holds `pull_id` (this pull
//! session's id, so a resume is not counted as a new pull), `manifest.bin`,
//! the verified chunks in one append-only file, `chunks.bin` (see
//! [`crate::pull::chunkfile`]), and `complete` once every chunk is held. What a
//! consumer keeps is the tokenised feed it is entitled to: tokens and the
//! agreement's clear fields, never raw identifiers.

use crate::base::fsutil;
use crate::pull::chunkfile::{self, Frame};
use dxmesh_protocol::agreement::{AgreementId, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{Chunk, ChunkRequest, FeedError, MAX_CHUNK_FRAME, Manifest};
use dxmesh_protocol::signed::Signed;
use futures::{AsyncReadExt, AsyncWriteExt};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a pull failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The manifest is not acceptable.
    #[error("manifest from {provider} refused: {problem}")]
    Manifest {
        /// Provider.
        provider: String,
        /// What is wrong.
        problem: String,
    },
    /// A chunk failed verification; the pull stopped there.
    #[error(
        "chunk {index} from {provider} failed verification (expected hash {expected}): {problem}"
    )]
    BadChunk {
        /// Provider.
        provider: String,
        /// Chunk index.
        index: u32,
        /// Hash the manifest lists (hex).
        expected: String,
        /// What was wrong.
        problem: String,
    },
    /// The stream failed (the pull can be resumed).
    #[error("transfer from {provider} interrupted at chunk {index}: {message}")]
    Interrupted {
        /// Provider.
        provider: String,
        /// The chunk being received.
        index: u32,
        /// Cause.
        message: String,
    },
    /// Local file trouble.
    #[error("{path}: {message}", path = .path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        message: String,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PullError + '_ {
    move |e| PullError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Directory of a pulled feed.
pub fn pull_dir(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> PathBuf {
    data_dir
        .join("pulls")
        .join(dxmesh_protocol::hex(agreement))
        .join(epoch.to_string())
}

/// The pull session id for this feed, created and persisted on first use.
pub fn pull_id(
    data_dir: &Path,
    agreement: &AgreementId,
    epoch: u64,
) -> Result<[u8; 16], PullError> {
    let dir = pull_dir(data_dir, agreement, epoch);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join("pull_id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(bytes) = hex::decode(text.trim())
        && let Ok(id) = <[u8; 16]>::try_from(bytes.as_slice())
    {
        return Ok(id);
    }
    let mut id = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id).map_err(|_| {
        PullError::Io {
            path: path.clone(),
            message: "the system random source failed".into(),
        }
    })?;
    fsutil::write_atomic(&path, hex::encode(id).as_bytes(), 0o600).map_err(io_err(&path))?;
    Ok(id)
}

/// Checks a provider's signed manifest against our agreement and the epoch asked for.
pub fn verify_manifest(
    signed: &Signed<Manifest>,
    terms: &Terms,
    epoch: u64,
) -> Result<Manifest, PullError> {
    let provider = terms.provider.peer_id().to_string();
    let bad = |problem: String| PullError::Manifest {
        provider: provider.clone(),
        problem,
    };
    let m = signed
        .verify_by(&terms.provider)
        .map_err(|e| bad(e.to_string()))?;
    if m.agreement != terms.id() {
        return Err(bad("it names another agreement".into()));
    }
    if m.epoch != epoch {
        return Err(bad(format!("it is for epoch {}, not {epoch}", m.epoch)));
    }
    if m.provider != terms.provider {
        return Err(bad("it names another provider".into()));
    }
    if m.schema != terms.fields {
        return Err(bad("its fields are not the agreement's fields".into()));
    }
    if m.dataset != terms.dataset {
        return Err(bad("it names another dataset".into()));
    }
    m.check().map_err(|e| bad(e.to_string()))?;
    Ok(m)
}

/// Stores the verified manifest (atomically).
pub fn store_manifest(
    data_dir: &Path,
    signed: &Signed<Manifest>,
    m: &Manifest,
) -> Result<(), PullError> {
    let dir = pull_dir(data_dir, &m.agreement, m.epoch);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join("manifest.bin");
    let bytes = codec::encode(signed).map_err(|e| PullError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    fsutil::write_atomic(&path, &bytes, 0o644).map_err(io_err(&path))
}

/// The stored manifest of a pulled feed, if any.
pub fn stored_manifest(
    data_dir: &Path,
    agreement: &AgreementId,
    epoch: u64,
) -> Option<Signed<Manifest>> {
    let bytes = std::fs::read(pull_dir(data_dir, agreement, epoch).join("manifest.bin")).ok()?;
    codec::decode(&bytes).ok()
}

/// Threads that store verified chunks during a pull.
const STORE_WORKERS: usize = 2;

thread_local! {
    /// Page-aligned buffer for reading stored chunks, one per thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The chunks of `m` held intact in the feed directory `dir`, and where the
/// next one goes. A stored chunk counts only if its bytes still hash to the
/// manifest's value, so a chunk torn by a crash (chunks are not fsynced one
/// by one) is fetched again.
fn held_chunks(dir: &Path, m: &Manifest) -> std::io::Result<(BTreeMap<u32, Frame>, u64)> {
    let frames = chunkfile::scan(dir)?;
    if frames.held.is_empty() {
        return Ok((BTreeMap::new(), frames.end));
    }
    let reader = chunkfile::Reader::open(dir)?;
    let held = SCRATCH.with_borrow_mut(|scratch| {
        frames
            .held
            .into_iter()
            .filter(|(index, frame)| {
                m.chunk_hashes.get(*index as usize).is_some_and(|want| {
                    reader.read(*frame, scratch).is_ok_and(|range| {
                        dxmesh_protocol::merkle::leaf_hash(&scratch[range]) == *want
                    })
                })
            })
            .collect()
    });
    Ok((held, frames.end))
}

/// The stored bytes of chunk `index` in the pulled feed directory `dir`, as
/// they are on disk (not verified), with their offset in the chunk file;
/// `None` if the chunk is not stored. For tests and inspection tools.
pub fn stored_chunk(dir: &Path, index: u32) -> Option<(u64, Vec<u8>)> {
    let frame = *chunkfile::scan(dir).ok()?.held.get(&index)?;
    let reader = chunkfile::Reader::open(dir).ok()?;
    let mut scratch = Vec::new();
    let range = reader.read(frame, &mut scratch).ok()?;
    Some((
        frame.offset + chunkfile::HEADER as u64,
        scratch[range].to_vec(),
    ))
}

/// Chunks of the whole feed that were missing when the pull started
/// (those outside the requested range count as missing if they were).
fn missing_chunks_count(
    missing_in_range: &[u32],
    wanted: &std::ops::Range<u32>,
    chunks: u32,
) -> usize {
    // Outside the range nothing was fetched: count it as missing unless
    // the range is the whole feed.
    if wanted.start == 0 && wanted.end >= chunks {
        missing_in_range.len()
    } else {
        chunks as usize
    }
}

/// Whether every chunk of the feed is held. A feed pulled by a version
/// that kept one file per chunk has no chunk file and counts as incomplete,
/// so it is pulled again (as the same pull session).
pub fn is_complete(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> bool {
    let dir = pull_dir(data_dir, agreement, epoch);
    dir.join("complete").exists() && dir.join(chunkfile::FILE).exists()
}

/// Before a pull writes anything: removes a `complete` mark that no longer
/// holds (one left by a version that kept one file per chunk, whose chunk
/// files go too), so that a pull interrupted from here on is resumed rather
/// than taken for complete.
fn forget_completion(dir: &Path) -> Result<(), PullError> {
    let mark = dir.join("complete");
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    let mut removed = false;
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let legacy =
            name.starts_with("chunk-") && (name.ends_with(".bin") || name.ends_with(".part"));
        if path == mark || legacy {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            removed = true;
        }
    }
    if removed {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// What a finished pull moved.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PullSummary {
    /// Chunks in the feed.
    pub chunks: u32,
    /// Chunks received in this run (the rest were held already).
    pub received: u32,
    /// Bytes received in this run.
    pub bytes: u64,
    /// Records in the feed.
    pub records: u64,
    /// Seconds this run took.
    pub seconds: f64,
}

/// Downloads the chunks of `m` that are not held yet over one stream,
/// verifying each as it arrives. Stops at the first bad chunk.
pub async fn download(
    mut control: libp2p_stream::Control,
    provider: libp2p::PeerId,
    data_dir: &Path,
    m: &Manifest,
    pull_id: [u8; 16],
    range: Option<std::ops::Range<u32>>,
) -> Result<PullSummary, PullError> {
    let started = std::time::Instant::now();
    let dir = pull_dir(data_dir, &m.agreement, m.epoch);
    let wanted = range.unwrap_or(0..m.chunks());
    let file = dir.join(chunkfile::FILE);
    let (held, end) = held_chunks(&dir, m).map_err(io_err(&file))?;
    let missing: Vec<u32> = (0..m.chunks())
        .filter(|i| !held.contains_key(i) && wanted.contains(i))
        .collect();
    let missing_set: std::collections::BTreeSet<u32> = missing.iter().copied().collect();
    let mut summary = PullSummary {
        chunks: m.chunks(),
        records: m.records,
        ..Default::default()
    };
    if let (Some(&from), Some(&last)) = (missing.first(), missing.last()) {
        forget_completion(&dir)?;
        let interrupted = |index: u32, message: String| PullError::Interrupted {
            provider: provider.to_string(),
            index,
            message,
        };
        let mut stream = control
            .open_stream(
                provider,
                libp2p::StreamProtocol::new(dxmesh_protocol::feed::FEED_PROTOCOL),
            )
            .await
            .map_err(|e| interrupted(from, e.to_string()))?;
        let request = ChunkRequest {
            agreement: m.agreement,
            epoch: m.epoch,
            pull_id,
            from,
            to: last + 1,
        };
        let body = codec::encode(&request).map_err(|e| interrupted(from, e.to_string()))?;
        stream
            .write_all(&(body.len() as u32).to_be_bytes())
            .await
            .map_err(|e| interrupted(from, e.to_string()))?;
        stream
            .write_all(&body)
            .await
            .map_err(|e| interrupted(from, e.to_string()))?;
        // One direction at a time: our request is complete; from here on
        // only the provider writes (rust-libp2p #5410).
        stream
            .close()
            .await
            .map_err(|e| interrupted(from, e.to_string()))?;
        // Receiving, verifying and storing run side by side: this task keeps
        // the stream drained (so flow control never stalls the provider), a
        // blocking worker verifies each chunk as it arrives, stopping at the
        // first bad one, and gives it its place in the chunk file, and
        // [`STORE_WORKERS`] more write the verified frames (in turn), so that
        // hashing never waits for the disk and the disk has more than one
        // write in flight. Every frame is received page-aligned, so it is
        // written past the page cache from where it lies: a cycle's feeds
        // are gigabytes, and buffered, they left that much dirty page cache
        // whose writeback halved the next pulls.
        // A chunk travels as its buffer, where its frame starts there, and
        // its length; to a store worker also with its offset in the file.
        type Received = (u32, Vec<u8>, usize, usize);
        type Placed = (u64, Vec<u8>, usize, usize);
        let writer =
            std::sync::Arc::new(chunkfile::Writer::open(&dir, end).map_err(io_err(&file))?);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Received>(8);
        let (store_txs, store_rxs): (Vec<_>, Vec<_>) = (0..STORE_WORKERS)
            .map(|_| std::sync::mpsc::sync_channel::<Placed>(2))
            .unzip();
        // Stored chunks' buffers come back for reuse: no allocation and no
        // zeroing of a fresh megabyte per chunk.
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let worker_manifest = m.clone();
        let worker_provider = provider.to_string();
        let verifier = tokio::task::spawn_blocking(move || -> Result<(), PullError> {
            let mut next = end;
            for (index, mut buf, start, len) in rx {
                let frame = &mut buf[start..start + chunkfile::frame_len(len)];
                let chunk = &frame[chunkfile::HEADER..chunkfile::HEADER + len];
                if let Err(e) = worker_manifest.verify_chunk_hash(index, chunk) {
                    return Err(PullError::BadChunk {
                        provider: worker_provider,
                        index,
                        expected: dxmesh_protocol::hex(
                            &worker_manifest.chunk_hashes[index as usize],
                        ),
                        problem: match e {
                            FeedError::ChunkHash { actual, .. } => {
                                format!("received bytes hash to {actual}")
                            }
                            other => other.to_string(),
                        },
                    });
                }
                chunkfile::seal(frame, index, len);
                let offset = next;
                next += frame.len() as u64;
                // A store worker stopped: its error is reported below.
                let to = &store_txs[index as usize % STORE_WORKERS];
                if to.send((offset, buf, start, len)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let storers: Vec<_> = store_rxs
            .into_iter()
            .map(|store_rx| {
                let (writer, back_tx) = (writer.clone(), back_tx.clone());
                tokio::task::spawn_blocking(move || -> Result<(u32, u64), PullError> {
                    let (mut received, mut total) = (0u32, 0u64);
                    for (offset, buf, start, len) in store_rx {
                        writer
                            .write(offset, &buf[start..start + chunkfile::frame_len(len)])
                            .map_err(io_err(writer.path()))?;
                        received += 1;
                        total += len as u64;
                        let _ = back_tx.send(buf);
                    }
                    Ok((received, total))
                })
            })
            .collect();
        let mut read_error = None;
        for index in from..=last {
            let mut header = [0u8; 4];
            if let Err(e) = stream.read_exact(&mut header).await {
                read_error = Some(interrupted(index, e.to_string()));
                break;
            }
            let len = u32::from_be_bytes(header) as usize;
            if len > MAX_CHUNK_FRAME {
                read_error = Some(PullError::BadChunk {
                    provider: provider.to_string(),
                    index,
                    expected: dxmesh_protocol::hex(&m.chunk_hashes[index as usize]),
                    problem: format!(
                        "the provider announced {len} bytes, over the {MAX_CHUNK_FRAME}-byte limit"
                    ),
                });
                break;
            }
            // Received into its frame, which starts on a page boundary.
            let mut buf = back_rx.try_recv().unwrap_or_default();
            let Some(start) = fsutil::aligned(&mut buf, chunkfile::frame_len(len)) else {
                read_error = Some(interrupted(index, "no page-aligned receive buffer".into()));
                break;
            };
            let chunk = start + chunkfile::HEADER..start + chunkfile::HEADER + len;
            if let Err(e) = stream.read_exact(&mut buf[chunk]).await {
                read_error = Some(interrupted(index, e.to_string()));
                break;
            }
            if !missing_set.contains(&index) {
                continue;
            }
            // The worker stopped: it found a bad chunk (its error is reported below).
            if tx.send((index, buf, start, len)).is_err() {
                break;
            }
        }
        drop(tx);
        let failed = |what: &str, e: tokio::task::JoinError| PullError::Io {
            path: dir.clone(),
            message: format!("the {what} worker failed: {e}"),
        };
        let verified = verifier.await.map_err(|e| failed("verifying", e))?;
        let mut stored = Ok((0u32, 0u64));
        for storer in storers {
            let one = storer.await.map_err(|e| failed("storing", e))?;
            stored = match (stored, one) {
                (Ok((r, b)), Ok((r2, b2))) => Ok((r + r2, b + b2)),
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
        }
        // A bad chunk is reported before a store error or a transfer error
        // that followed it.
        let (received, bytes) = match (verified, stored, read_error) {
            (Err(bad), _, _) => return Err(bad),
            (Ok(()), Err(e), _) => return Err(e),
            (Ok(()), Ok(_), Some(e)) => return Err(e),
            (Ok(()), Ok(r), None) => r,
        };
        summary.received = received;
        summary.bytes = bytes;
    }
    // Complete when every chunk is held: those received now were verified
    // as they arrived; those held before were re-hashed above. Chunks are
    // not fsynced one by one: every reader re-verifies them against the
    // signed manifest, so a chunk torn by a crash is caught and pulled again.
    let held_before = m.chunks() as usize - missing_chunks_count(&missing, &wanted, m.chunks());
    if held_before + summary.received as usize == m.chunks() as usize {
        // Every chunk on disk before the mark (the frames were written past
        // the page cache, so this flushes no data; a feed of no chunks has
        // an empty chunk file).
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&file))?;
        let path = dir.join("complete");
        fsutil::write_atomic(&path, b"", 0o644).map_err(io_err(&path))?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Reads a pulled feed chunk by chunk (verified again on the way in).
pub struct FeedReader {
    file: PathBuf,
    manifest: Manifest,
    frames: BTreeMap<u32, Frame>,
    reader: chunkfile::Reader,
}

impl FeedReader {
    /// Opens the complete pulled feed of `agreement` for `epoch`; the
    /// manifest is re-verified against `terms`.
    pub fn open(data_dir: &Path, terms: &Terms, epoch: u64) -> Result<FeedReader, PullError> {
        let agreement = terms.id();
        let dir = pull_dir(data_dir, &agreement, epoch);
        let signed = stored_manifest(data_dir, &agreement, epoch).ok_or_else(|| PullError::Io {
            path: dir.join("manifest.bin"),
            message: "no pulled feed".into(),
        })?;
        let manifest = verify_manifest(&signed, terms, epoch)?;
        let file = dir.join(chunkfile::FILE);
        let frames = chunkfile::scan(&dir).map_err(io_err(&file))?.held;
        let reader = chunkfile::Reader::open(&dir).map_err(io_err(&file))?;
        Ok(FeedReader {
            file,
            manifest,
            frames,
            reader,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Chunk `index`, verified against the manifest.
    pub fn chunk(&self, index: u32) -> Result<Chunk, PullError> {
        let frame = *self.frames.get(&index).ok_or_else(|| PullError::Io {
            path: self.file.clone(),
            message: format!("chunk {index} is not held"),
        })?;
        SCRATCH
            .with_borrow_mut(|scratch| {
                let range = self.reader.read(frame, scratch)?;
                Ok(self.manifest.verify_chunk(index, &scratch[range]))
            })
            .map_err(io_err(&self.file))?
            .map_err(|e| PullError::BadChunk {
                provider: self.manifest.provider.peer_id().to_string(),
                index,
                expected: dxmesh_protocol::hex(&self.manifest.chunk_hashes[index as usize]),
                problem: format!("the stored copy fails verification: {e}"),
            })
    }
}
