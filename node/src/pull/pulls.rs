//! Feeds at the consumer: verifying a provider's signed manifest against
//! the agreement, the state of a pull on disk (its session id, the chunks
//! held, the completion mark), and reading a pulled feed back, verified
//! again. The transfer itself is [`crate::pull::download`].
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
use dxmesh_protocol::feed::{Chunk, Manifest};
use dxmesh_protocol::signed::Signed;
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

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PullError + '_ {
    move |e| PullError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Directory of a pulled feed.
pub fn pull_dir(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> PathBuf {
    crate::base::layout::epoch_dir(data_dir, crate::base::layout::PULLS, agreement, epoch)
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
    if m.consumer != terms.consumer {
        return Err(bad("it names another consumer".into()));
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
    let path = dir.join(crate::base::layout::MANIFEST_FILE);
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
    let bytes = std::fs::read(
        pull_dir(data_dir, agreement, epoch).join(crate::base::layout::MANIFEST_FILE),
    )
    .ok()?;
    codec::decode(&bytes).ok()
}

thread_local! {
    /// Page-aligned buffer for reading stored chunks, one per thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The chunks of `m` held intact in the feed directory `dir`, and where the
/// next one goes. A stored chunk counts only if its bytes still hash to the
/// manifest's value, so a chunk torn by a crash (chunks are not fsynced one
/// by one) is fetched again.
pub(super) fn held_chunks(
    dir: &Path,
    m: &Manifest,
) -> std::io::Result<(BTreeMap<u32, Frame>, u64)> {
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

/// Whether every chunk of the feed is held. A feed pulled by a version
/// that kept one file per chunk has no chunk file and counts as incomplete,
/// so it is pulled again (as the same pull session).
pub fn is_complete(data_dir: &Path, agreement: &AgreementId, epoch: u64) -> bool {
    let dir = pull_dir(data_dir, agreement, epoch);
    dir.join(crate::base::layout::COMPLETE_MARK).exists() && dir.join(chunkfile::FILE).exists()
}

/// Before a pull writes anything: removes a `complete` mark that no longer
/// holds (one left by a version that kept one file per chunk, whose chunk
/// files go too), so that a pull interrupted from here on is resumed rather
/// than taken for complete.
pub(super) fn forget_completion(dir: &Path) -> Result<(), PullError> {
    let mark = dir.join(crate::base::layout::COMPLETE_MARK);
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
            path: dir.join(crate::base::layout::MANIFEST_FILE),
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
