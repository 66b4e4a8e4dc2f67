//! Feeds at the consumer: verifying a provider's signed manifest against
//! the agreement, downloading chunks over a one-directional libp2p stream
//! and verifying each as it arrives, storing only verified chunks, and
//! resuming an interrupted pull from the first chunk it does not hold.
//!
//! Layout: `pulls/<agreement hex>/<epoch>/` holds `pull_id` (this pull
//! session's id, so a resume is not counted as a new pull), `manifest.bin`,
//! the verified `chunk-00000.bin` ... and `complete` once every chunk is
//! held. What a consumer keeps is the tokenised feed it is entitled to:
//! tokens and the agreement's clear fields, never raw identifiers.

use crate::fsutil;
use dxmesh_protocol::agreement::{AgreementId, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{Chunk, ChunkRequest, FeedError, MAX_CHUNK_FRAME, Manifest};
use dxmesh_protocol::signed::Signed;
use futures::{AsyncReadExt, AsyncWriteExt};
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

fn chunk_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("chunk-{index:05}.bin"))
}

/// Chunks of `m` not held intact, in order. A stored chunk counts only if
/// its bytes still hash to the manifest's value, so a chunk torn by a crash
/// (chunks are not fsynced one by one) is fetched again.
pub fn missing_chunks(data_dir: &Path, m: &Manifest) -> Vec<u32> {
    let dir = pull_dir(data_dir, &m.agreement, m.epoch);
    (0..m.chunks())
        .filter(|i| {
            with_chunk_file(&chunk_path(&dir, *i), |bytes| {
                dxmesh_protocol::merkle::leaf_hash(bytes) != m.chunk_hashes[*i as usize]
            })
            .unwrap_or(true)
        })
        .collect()
}

/// Writes a verified chunk: temp file and rename, without an fsync (every
/// reader re-verifies chunks against the signed manifest). The whole pages
/// bypass the page cache (`O_DIRECT`, see [`fsutil::write_direct`]): a
/// pulled feed is written once and read once per comparison, and buffered
/// writes of a cycle's feeds (gigabytes) would leave that much dirty page
/// cache for the kernel to write back while the next pulls run, which
/// halved their rate in the feeds benchmark.
fn store_chunk(path: &Path, bytes: &[u8], scratch: &mut Vec<u8>) -> std::io::Result<()> {
    let tmp = path.with_extension("part");
    drop(fsutil::write_direct(&tmp, bytes, scratch)?);
    std::fs::rename(&tmp, path)
}

/// Runs `f` on the bytes of the stored chunk at `path`, read past the page
/// cache as it was written (see [`store_chunk`]) into a buffer kept per
/// thread.
fn with_chunk_file<T>(path: &Path, f: impl FnOnce(&[u8]) -> T) -> std::io::Result<T> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        let range = fsutil::read_direct_in_place(path, scratch)?;
        Ok(f(&scratch[range]))
    })
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

/// Whether every chunk of the feed is held.
pub fn is_complete(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> bool {
    pull_dir(data_dir, agreement, epoch)
        .join("complete")
        .exists()
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
    let missing: Vec<u32> = missing_chunks(data_dir, m)
        .into_iter()
        .filter(|i| wanted.contains(i))
        .collect();
    let missing_set: std::collections::BTreeSet<u32> = missing.iter().copied().collect();
    let mut summary = PullSummary {
        chunks: m.chunks(),
        records: m.records,
        ..Default::default()
    };
    if let (Some(&from), Some(&last)) = (missing.first(), missing.last()) {
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
        // first bad one, and [`STORE_WORKERS`] more store the verified ones
        // (in turn), so that hashing never waits for the disk and the disk
        // has more than one write in flight.
        // A chunk travels as its buffer and where in it the chunk starts.
        type Received = (u32, Vec<u8>, usize);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Received>(8);
        let (store_txs, store_rxs): (Vec<_>, Vec<_>) = (0..STORE_WORKERS)
            .map(|_| std::sync::mpsc::sync_channel::<Received>(2))
            .unzip();
        // Stored chunks' buffers come back for reuse: no allocation and no
        // zeroing of a fresh megabyte per chunk.
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let worker_manifest = m.clone();
        let worker_provider = provider.to_string();
        let verifier = tokio::task::spawn_blocking(move || -> Result<(), PullError> {
            for (index, buf, start) in rx {
                if let Err(e) = worker_manifest.verify_chunk_hash(index, &buf[start..]) {
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
                // A store worker stopped: its error is reported below.
                let to = &store_txs[index as usize % STORE_WORKERS];
                if to.send((index, buf, start)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let storers: Vec<_> = store_rxs
            .into_iter()
            .map(|store_rx| {
                let (worker_dir, back_tx) = (dir.clone(), back_tx.clone());
                tokio::task::spawn_blocking(move || -> Result<(u32, u64), PullError> {
                    let (mut received, mut total) = (0u32, 0u64);
                    let mut scratch = Vec::new();
                    for (index, buf, start) in store_rx {
                        let path = chunk_path(&worker_dir, index);
                        store_chunk(&path, &buf[start..], &mut scratch).map_err(io_err(&path))?;
                        received += 1;
                        total += (buf.len() - start) as u64;
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
            // Received onto a page boundary, so that the store worker
            // writes it past the page cache from where it lies.
            let mut buf = back_rx.try_recv().unwrap_or_default();
            let Some(start) = fsutil::aligned(&mut buf, len) else {
                read_error = Some(interrupted(index, "no page-aligned receive buffer".into()));
                break;
            };
            buf.truncate(start + len);
            if let Err(e) = stream.read_exact(&mut buf[start..]).await {
                read_error = Some(interrupted(index, e.to_string()));
                break;
            }
            if !missing_set.contains(&index) {
                continue;
            }
            // The worker stopped: it found a bad chunk (its error is reported below).
            if tx.send((index, buf, start)).is_err() {
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
        let path = dir.join("complete");
        fsutil::write_atomic(&path, b"", 0o644).map_err(io_err(&path))?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Reads a pulled feed chunk by chunk (verified again on the way in).
pub struct FeedReader {
    dir: PathBuf,
    manifest: Manifest,
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
        Ok(FeedReader { dir, manifest })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Chunk `index`, verified against the manifest.
    pub fn chunk(&self, index: u32) -> Result<Chunk, PullError> {
        let path = chunk_path(&self.dir, index);
        with_chunk_file(&path, |bytes| self.manifest.verify_chunk(index, bytes))
            .map_err(io_err(&path))?
            .map_err(|e| PullError::BadChunk {
                provider: self.manifest.provider.peer_id().to_string(),
                index,
                expected: dxmesh_protocol::hex(&self.manifest.chunk_hashes[index as usize]),
                problem: format!("the stored copy fails verification: {e}"),
            })
    }
}
