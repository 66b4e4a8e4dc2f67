//! The transfer of a pull: the chunks of a manifest that are not held yet
//! come over one one-directional libp2p stream, each verified as it
//! arrives (a bad chunk stops the pull at once, not at the end of a
//! multi-gigabyte transfer) and stored in the feed's chunk file; a pull
//! interrupted at any point resumes from the chunks it holds.
//!
//! Receiving, verifying and storing run side by side: the stream task keeps
//! the stream drained (so flow control never stalls the provider), a
//! blocking worker verifies each chunk and gives it its place in the chunk
//! file, and [`STORE_WORKERS`] more write the verified frames (in turn), so
//! that hashing never waits for the disk and the disk has more than one
//! write in flight. Every frame is received page-aligned and written past
//! the page cache from where it lies: a cycle's feeds are gigabytes, and
//! buffered, they left that much dirty page cache whose writeback halved
//! the next pulls. Buffers come back for reuse: no allocation and no
//! zeroing of a fresh megabyte per chunk.

use super::chunkfile;
use super::pulls::{PullError, PullSummary, forget_completion, held_chunks, io_err, pull_dir};
use crate::base::fsutil;
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::{ChunkRequest, FeedError, MAX_CHUNK_FRAME, Manifest};
use futures::{AsyncReadExt, AsyncWriteExt};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use tokio::task::JoinHandle;

/// Threads that store verified chunks during a pull.
const STORE_WORKERS: usize = 2;

/// A received chunk: its index, its buffer, where its frame starts there,
/// and its length.
type Received = (u32, Vec<u8>, usize, usize);
/// A verified chunk for a store worker: its offset in the chunk file, its
/// buffer, where its frame starts there, and its length.
type Placed = (u64, Vec<u8>, usize, usize);

/// Downloads the chunks of `m` that are not held yet over one stream,
/// verifying each as it arrives. Stops at the first bad chunk.
pub async fn download(
    control: libp2p_stream::Control,
    provider: libp2p::PeerId,
    data_dir: &Path,
    m: &Manifest,
    pull_id: [u8; 16],
    range: Option<Range<u32>>,
) -> Result<PullSummary, PullError> {
    let started = std::time::Instant::now();
    let dir = pull_dir(data_dir, &m.agreement, m.epoch);
    let wanted = range.unwrap_or(0..m.chunks());
    let file = dir.join(chunkfile::FILE);
    let (held, end) = held_chunks(&dir, m).map_err(io_err(&file))?;
    let missing: Vec<u32> = (0..m.chunks())
        .filter(|i| !held.contains_key(i) && wanted.contains(i))
        .collect();
    let mut summary = PullSummary {
        chunks: m.chunks(),
        records: m.records,
        ..Default::default()
    };
    if let (Some(&from), Some(&last)) = (missing.first(), missing.last()) {
        forget_completion(&dir)?;
        let transfer = Transfer {
            provider,
            dir: dir.clone(),
            manifest: m,
            missing: missing.iter().copied().collect(),
        };
        let stream = transfer.open(control, pull_id, from, last + 1).await?;
        let (received, bytes) = transfer.receive(stream, from, last, end).await?;
        summary.received = received;
        summary.bytes = bytes;
    }
    // Complete when every chunk is held: those received now were verified
    // as they arrived; those held before were re-hashed above. Chunks are
    // not fsynced one by one: every reader re-verifies them against the
    // signed manifest, so a chunk torn by a crash is caught and pulled again.
    let held_before = m.chunks() as usize - missing_chunks_count(&missing, &wanted, m.chunks());
    if held_before + summary.received as usize == m.chunks() as usize {
        mark_complete(&dir, &file)?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Every chunk on disk, then the `complete` mark (the frames were written
/// past the page cache, so this flushes no data; a feed of no chunks has an
/// empty chunk file).
fn mark_complete(dir: &Path, file: &Path) -> Result<(), PullError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|f| f.sync_all())
        .map_err(io_err(file))?;
    let path = dir.join(crate::base::layout::COMPLETE_MARK);
    fsutil::write_atomic(&path, b"", 0o644).map_err(io_err(&path))
}

/// One run of a pull: what it fetches from whom, into which directory.
struct Transfer<'a> {
    provider: libp2p::PeerId,
    dir: PathBuf,
    manifest: &'a Manifest,
    missing: BTreeSet<u32>,
}

impl Transfer<'_> {
    fn interrupted(&self, index: u32, message: String) -> PullError {
        PullError::Interrupted {
            provider: self.provider.to_string(),
            index,
            message,
        }
    }

    /// Opens the stream and sends the chunk request for `from..to`.
    async fn open(
        &self,
        mut control: libp2p_stream::Control,
        pull_id: [u8; 16],
        from: u32,
        to: u32,
    ) -> Result<libp2p::Stream, PullError> {
        let failed = |e: &dyn std::fmt::Display| self.interrupted(from, e.to_string());
        let mut stream = control
            .open_stream(
                self.provider,
                libp2p::StreamProtocol::new(dxmesh_protocol::feed::FEED_PROTOCOL),
            )
            .await
            .map_err(|e| failed(&e))?;
        let request = ChunkRequest {
            agreement: self.manifest.agreement,
            epoch: self.manifest.epoch,
            pull_id,
            from,
            to,
        };
        let body = codec::encode(&request).map_err(|e| failed(&e))?;
        stream
            .write_all(&(body.len() as u32).to_be_bytes())
            .await
            .map_err(|e| failed(&e))?;
        stream.write_all(&body).await.map_err(|e| failed(&e))?;
        // One direction at a time: our request is complete; from here on
        // only the provider writes (rust-libp2p #5410).
        stream.close().await.map_err(|e| failed(&e))?;
        Ok(stream)
    }

    /// Receives chunks `from..=last` and has them verified and stored from
    /// offset `end` of the chunk file; returns (chunks, bytes) stored. A bad
    /// chunk is reported before a store error or a transfer error that
    /// followed it.
    async fn receive(
        &self,
        mut stream: libp2p::Stream,
        from: u32,
        last: u32,
        end: u64,
    ) -> Result<(u32, u64), PullError> {
        let file = self.dir.join(chunkfile::FILE);
        let writer = Arc::new(chunkfile::Writer::open(&self.dir, end).map_err(io_err(&file))?);
        let (tx, rx) = sync_channel::<Received>(8);
        let (store_txs, store_rxs): (Vec<_>, Vec<_>) = (0..STORE_WORKERS)
            .map(|_| sync_channel::<Placed>(2))
            .unzip();
        let (back_tx, back_rx) = channel::<Vec<u8>>();
        let verifier = self.spawn_verifier(rx, store_txs, end);
        let storers: Vec<_> = store_rxs
            .into_iter()
            .map(|store_rx| spawn_storer(writer.clone(), store_rx, back_tx.clone()))
            .collect();
        let read_error = self
            .read_chunks(&mut stream, from, last, &tx, back_rx)
            .await
            .err();
        drop(tx);
        let failed = |what: &str, e: tokio::task::JoinError| PullError::Io {
            path: self.dir.clone(),
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
        match (verified, stored, read_error) {
            (Err(bad), _, _) => Err(bad),
            (Ok(()), Err(e), _) => Err(e),
            (Ok(()), Ok(_), Some(e)) => Err(e),
            (Ok(()), Ok(r), None) => Ok(r),
        }
    }

    /// Drains the stream: each chunk into its page-aligned frame, handed to
    /// the verifier if it is one this run fetches. Stops quietly when the
    /// verifier has stopped (it reports why).
    async fn read_chunks(
        &self,
        stream: &mut libp2p::Stream,
        from: u32,
        last: u32,
        tx: &SyncSender<Received>,
        back_rx: Receiver<Vec<u8>>,
    ) -> Result<(), PullError> {
        for index in from..=last {
            let mut header = [0u8; 4];
            stream
                .read_exact(&mut header)
                .await
                .map_err(|e| self.interrupted(index, e.to_string()))?;
            let len = u32::from_be_bytes(header) as usize;
            if len > MAX_CHUNK_FRAME {
                return Err(PullError::BadChunk {
                    provider: self.provider.to_string(),
                    index,
                    expected: dxmesh_protocol::hex(&self.manifest.chunk_hashes[index as usize]),
                    problem: format!(
                        "the provider announced {len} bytes, over the {MAX_CHUNK_FRAME}-byte limit"
                    ),
                });
            }
            // Received into its frame, which starts on a page boundary.
            let mut buf = back_rx.try_recv().unwrap_or_default();
            let Some(start) = fsutil::aligned(&mut buf, chunkfile::frame_len(len)) else {
                return Err(self.interrupted(index, "no page-aligned receive buffer".into()));
            };
            let chunk = start + chunkfile::HEADER..start + chunkfile::HEADER + len;
            stream
                .read_exact(&mut buf[chunk])
                .await
                .map_err(|e| self.interrupted(index, e.to_string()))?;
            if !self.missing.contains(&index) {
                continue;
            }
            if tx.send((index, buf, start, len)).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The verifier: hashes each received chunk against the manifest,
    /// stopping at the first bad one, seals its frame and places it at the
    /// next offset of the chunk file (from `end`), for a store worker.
    fn spawn_verifier(
        &self,
        rx: Receiver<Received>,
        store_txs: Vec<SyncSender<Placed>>,
        end: u64,
    ) -> JoinHandle<Result<(), PullError>> {
        let manifest = self.manifest.clone();
        let provider = self.provider.to_string();
        tokio::task::spawn_blocking(move || {
            let mut next = end;
            for (index, mut buf, start, len) in rx {
                let frame = &mut buf[start..start + chunkfile::frame_len(len)];
                let chunk = &frame[chunkfile::HEADER..chunkfile::HEADER + len];
                if let Err(e) = manifest.verify_chunk_hash(index, chunk) {
                    return Err(PullError::BadChunk {
                        provider,
                        index,
                        expected: dxmesh_protocol::hex(&manifest.chunk_hashes[index as usize]),
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
                // A store worker stopped: its error is reported by the caller.
                let to = &store_txs[index as usize % STORE_WORKERS];
                if to.send((offset, buf, start, len)).is_err() {
                    break;
                }
            }
            Ok(())
        })
    }
}

/// A store worker: writes verified frames where the verifier placed them
/// and sends each buffer back; returns (chunks, bytes) written.
fn spawn_storer(
    writer: Arc<chunkfile::Writer>,
    store_rx: Receiver<Placed>,
    back_tx: Sender<Vec<u8>>,
) -> JoinHandle<Result<(u32, u64), PullError>> {
    tokio::task::spawn_blocking(move || {
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
