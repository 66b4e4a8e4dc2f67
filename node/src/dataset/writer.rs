//! The writer thread of an import: duplicate detection (`dedup`) and the
//! `records.bin` writes, past the page cache with `O_DIRECT` where the file
//! system allows it ([`DirectWriter`] is also used by publishing), with a
//! background `fdatasync` every so often and one at the end.

use super::dedup::{Dedup, DedupStats};
use super::model::{ImportError, io_err};
use super::records::{Block, block_body, check_body, kept_runs};
use crate::base::fsutil::DIRECT_ALIGN;
use dxmesh_protocol::codec::{MAX_DECODE_BYTES, put_varint};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};

/// Bytes written between background `fdatasync` calls.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// Bytes gathered before an `O_DIRECT` write.
const DIRECT_CHUNK: usize = 4 * 1024 * 1024;

/// Where the records go.
///
/// Preferably `O_DIRECT`: the blocks are written straight from an aligned
/// buffer to the device, bypassing the page cache. That saves the copy into
/// the page cache (on virtual machines whose freed guest memory goes back to
/// the host, filling a gigabyte of new page cache is the most expensive part
/// of an import) and leaves nothing for the final `fsync` to write. The
/// unaligned tail goes through an ordinary descriptor. Where `O_DIRECT` is
/// refused (tmpfs, some network file systems), ordinary writes with a helper
/// thread calling `fdatasync` every [`SYNC_EVERY`] bytes, so that the final
/// `fsync` has little left to do.
enum Sink {
    Direct {
        direct: File,
        buf: Vec<u8>,
        /// Aligned start of the data in `buf`.
        start: usize,
        len: usize,
        /// File offset of `buf[start]`.
        offset: u64,
    },
    Buffered {
        unsynced: u64,
        sync_tx: Option<std::sync::mpsc::Sender<()>>,
        syncer: Option<std::thread::JoinHandle<io::Result<()>>>,
    },
}

impl Sink {
    fn open(file: &File, path: &Path) -> Result<Sink, ImportError> {
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        if let Ok(direct) = direct {
            let buf = vec![0u8; DIRECT_CHUNK + 2 * DIRECT_ALIGN];
            let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
            if start < DIRECT_ALIGN {
                return Ok(Sink::Direct {
                    direct,
                    buf,
                    start,
                    len: 0,
                    offset: 0,
                });
            }
        }
        Sink::buffered(file, path, 0)
    }

    fn buffered(file: &File, path: &Path, unsynced: u64) -> Result<Sink, ImportError> {
        let syncer_file = file.try_clone().map_err(io_err(path))?;
        let (sync_tx, sync_rx) = std::sync::mpsc::channel::<()>();
        let syncer = std::thread::Builder::new()
            .name("dataset-sync".into())
            .spawn(move || -> io::Result<()> {
                while sync_rx.recv().is_ok() {
                    while sync_rx.try_recv().is_ok() {}
                    syncer_file.sync_data()?;
                }
                Ok(())
            })
            .map_err(|e| ImportError::Internal(format!("cannot start sync thread: {e}")))?;
        Ok(Sink::Buffered {
            unsynced,
            sync_tx: Some(sync_tx),
            syncer: Some(syncer),
        })
    }

    fn write(&mut self, file: &mut File, path: &Path, mut bytes: &[u8]) -> Result<(), ImportError> {
        while !bytes.is_empty() {
            let full = match self {
                Sink::Buffered {
                    unsynced, sync_tx, ..
                } => {
                    file.write_all(bytes).map_err(io_err(path))?;
                    *unsynced += bytes.len() as u64;
                    if *unsynced >= SYNC_EVERY {
                        *unsynced = 0;
                        if let Some(tx) = sync_tx {
                            let _ = tx.send(());
                        }
                    }
                    return Ok(());
                }
                Sink::Direct {
                    buf, start, len, ..
                } => {
                    let n = (DIRECT_CHUNK + DIRECT_ALIGN - *len).min(bytes.len());
                    let at = *start + *len;
                    buf[at..at + n].copy_from_slice(&bytes[..n]);
                    *len += n;
                    bytes = &bytes[n..];
                    *len >= DIRECT_CHUNK
                }
            };
            if full {
                self.flush_aligned(file, path)?;
            }
        }
        Ok(())
    }

    /// Writes the aligned part of the direct buffer; on a refusal, switches
    /// to ordinary writes.
    fn flush_aligned(&mut self, file: &mut File, path: &Path) -> Result<(), ImportError> {
        let Sink::Direct {
            direct,
            buf,
            start,
            len,
            offset,
        } = self
        else {
            return Ok(());
        };
        let aligned = *len / DIRECT_ALIGN * DIRECT_ALIGN;
        if aligned == 0 {
            return Ok(());
        }
        match direct.write_all_at(&buf[*start..*start + aligned], *offset) {
            Ok(()) => {
                buf.copy_within(*start + aligned..*start + *len, *start);
                *len -= aligned;
                *offset += aligned as u64;
                Ok(())
            }
            // The device wants another alignment: write ordinarily.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.fall_back(file, path),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Switches from `O_DIRECT` to ordinary writes, writing what is buffered.
    fn fall_back(&mut self, file: &mut File, path: &Path) -> Result<(), ImportError> {
        let Sink::Direct {
            buf,
            start,
            len,
            offset,
            ..
        } = self
        else {
            return Ok(());
        };
        let end = *offset + *len as u64;
        file.write_all_at(&buf[*start..*start + *len], *offset)
            .map_err(io_err(path))?;
        use std::io::Seek;
        file.seek(io::SeekFrom::Start(end)).map_err(io_err(path))?;
        *self = Sink::buffered(file, path, 0)?;
        Ok(())
    }

    /// Writes what is left and makes the file durable.
    fn finish(mut self, file: &mut File, path: &Path) -> Result<(), ImportError> {
        self.flush_aligned(file, path)?;
        match self {
            Sink::Direct {
                buf,
                start,
                len,
                offset,
                ..
            } => {
                file.write_all_at(&buf[start..start + len], offset)
                    .map_err(io_err(path))?;
            }
            Sink::Buffered {
                mut sync_tx,
                mut syncer,
                ..
            } => {
                drop(sync_tx.take());
                if let Some(syncer) = syncer.take() {
                    syncer
                        .join()
                        .map_err(|_| ImportError::Internal("sync thread panicked".into()))?
                        .map_err(io_err(path))?;
                }
            }
        }
        file.sync_all().map_err(io_err(path))
    }
}

/// A large file written front to back like `records.bin` (see [`Sink`]):
/// with `O_DIRECT` where allowed. Used for a feed's private index.
pub(crate) struct DirectWriter {
    file: File,
    path: PathBuf,
    sink: Sink,
}

impl DirectWriter {
    /// Creates `path`.
    pub(crate) fn create(path: &Path) -> Result<DirectWriter, ImportError> {
        let file = File::create(path).map_err(io_err(path))?;
        let sink = Sink::open(&file, path)?;
        Ok(DirectWriter {
            file,
            path: path.to_path_buf(),
            sink,
        })
    }

    /// Appends `bytes`.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), ImportError> {
        self.sink.write(&mut self.file, &self.path, bytes)
    }

    /// Writes what is buffered and syncs the file.
    pub(crate) fn finish(self) -> Result<File, ImportError> {
        let DirectWriter {
            mut file,
            path,
            sink,
        } = self;
        sink.finish(&mut file, &path)?;
        Ok(file)
    }
}

/// The writer thread: drops duplicate rows (see `dedup`), appends the
/// blocks (see [`Sink`]), and hands the emptied blocks back for reuse.
pub(super) fn write_blocks(
    mut file: File,
    path: &Path,
    blocks: Receiver<Block>,
    spare: Sender<Block>,
    mut dedup: Dedup,
) -> Result<DedupStats, ImportError> {
    let mut sink = Sink::open(&file, path)?;
    let mut first = true;
    let mut head = Vec::with_capacity(16);
    for mut block in blocks {
        if block.estimated_rows > 0 {
            dedup.reserve(block.estimated_rows);
        }
        let mut keep = std::mem::take(&mut block.keep);
        dedup.check(&block.keys, &mut keep)?;
        block.keep = keep;
        let (count, runs) = kept_runs(&block);
        if count > 0 {
            if first {
                first = false;
                check_body(&block_body(&block))?;
            }
            let mut count_bytes = Vec::with_capacity(9);
            put_varint(&mut count_bytes, count as u64);
            let len = count_bytes.len() + runs.iter().map(|r| r.len()).sum::<usize>();
            if len > MAX_DECODE_BYTES {
                return Err(ImportError::Internal(format!(
                    "block of {len} bytes exceeds the decode limit"
                )));
            }
            head.clear();
            head.extend_from_slice(&(len as u32).to_be_bytes());
            head.extend_from_slice(&count_bytes);
            sink.write(&mut file, path, &head)?;
            for run in runs {
                sink.write(&mut file, path, &block.data[run])?;
            }
        }
        block.clear();
        let _ = spare.send(block);
    }
    sink.finish(&mut file, path)?;
    drop(file);
    dedup.finish(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn sinks_write_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let pieces = [
            bytes(10, 1),
            bytes(DIRECT_CHUNK + 5000, 2),
            bytes(3, 3),
            bytes(2 * DIRECT_CHUNK, 4),
            bytes(4096, 5),
        ];
        let want = pieces.concat();
        for mode in ["direct", "buffered", "fall back"] {
            let path = dir.path().join(mode);
            let mut file = File::create(&path).unwrap();
            let mut sink = match mode {
                "buffered" => Sink::buffered(&file, &path, 0).unwrap(),
                _ => Sink::open(&file, &path).unwrap(),
            };
            for (i, piece) in pieces.iter().enumerate() {
                sink.write(&mut file, &path, piece).unwrap();
                if mode == "fall back" && i == 1 {
                    sink.fall_back(&mut file, &path).unwrap();
                    assert!(matches!(sink, Sink::Buffered { .. }));
                }
            }
            sink.finish(&mut file, &path).unwrap();
            assert!(std::fs::read(&path).unwrap() == want, "{mode}");
        }
    }
}
