//! The chunk file of a pulled feed, `chunks.bin`: every verified chunk the
//! consumer holds, in one append-only file rather than one file per chunk
//! (creating a file per megabyte cost the comparator about a fifth of a
//! CPU-second per GB pulled, more than everything else but the hashing).
//!
//! ## Format
//!
//! A sequence of frames, each starting on a 4 KiB boundary:
//!
//! ```text
//! "DXC1"  chunk index (u32 BE)  chunk length (u32 BE)  chunk bytes  zeros to the next 4 KiB
//! ```
//!
//! Frames are written whole, page-aligned, with `O_DIRECT` where the file
//! system allows it (ordinary writes elsewhere), by several writers at
//! offsets handed out in order by the pull, and not fsynced one by one (the
//! pull syncs the file once, before it marks the feed complete): a reader
//! re-verifies every chunk against the signed manifest anyway. After
//! a crash, [`scan`] keeps every whole frame before the first one that is not
//! (a frame not yet written reads as zeros), and the next writer cuts the
//! file there. A chunk pulled again (its stored copy failed verification)
//! is appended; the last frame of an index is the one that counts.

use crate::base::fsutil::{self, DIRECT_ALIGN};
use dxmesh_protocol::feed::MAX_CHUNK_FRAME;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file's name in a pulled feed's directory.
pub const FILE: &str = "chunks.bin";
const MAGIC: [u8; 4] = *b"DXC1";
/// Bytes before a frame's chunk: magic, index, length.
pub const HEADER: usize = 12;

/// Bytes a frame of a `len`-byte chunk occupies (header, chunk, padding).
pub fn frame_len(len: usize) -> usize {
    (HEADER + len).div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN
}

/// Where a held chunk lies: its frame's offset and the chunk's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame (its header) in the file.
    pub offset: u64,
    /// Length of the chunk.
    pub len: u32,
}

/// The frames of a chunk file.
#[derive(Debug, Default)]
pub struct Frames {
    /// The last whole frame of each chunk index.
    pub held: BTreeMap<u32, Frame>,
    /// The end of the last whole frame: where the next one goes.
    pub end: u64,
}

/// Reads the frame headers of `dir`'s chunk file (none if it does not exist).
pub fn scan(dir: &Path) -> io::Result<Frames> {
    let path = dir.join(FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Frames::default()),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let mut frames = Frames::default();
    let mut header = [0u8; HEADER];
    while frames.end + HEADER as u64 <= size {
        file.read_exact_at(&mut header, frames.end)?;
        let field = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let (index, len) = (field(4), field(8));
        let next = frames.end + frame_len(len as usize) as u64;
        if header[..4] != MAGIC || len as usize > MAX_CHUNK_FRAME || next > size {
            break;
        }
        frames.held.insert(
            index,
            Frame {
                offset: frames.end,
                len,
            },
        );
        frames.end = next;
    }
    Ok(frames)
}

/// Writes the header and the zero padding of a frame whose chunk (`len`
/// bytes) is already at `frame[HEADER..HEADER + len]`; `frame` is exactly
/// [`frame_len`]`(len)` bytes.
pub fn seal(frame: &mut [u8], index: u32, len: usize) {
    frame[..4].copy_from_slice(&MAGIC);
    frame[4..8].copy_from_slice(&index.to_be_bytes());
    frame[8..12].copy_from_slice(&(len as u32).to_be_bytes());
    frame[HEADER + len..].fill(0);
}

/// Appends frames to a chunk file; shared by the threads that store them.
#[derive(Debug)]
pub struct Writer {
    file: fsutil::DirectFile,
}

impl Writer {
    /// Opens (or creates) `dir`'s chunk file and cuts it at `end` (the end
    /// of its last whole frame, from [`scan`]).
    pub fn open(dir: &Path, end: u64) -> io::Result<Writer> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        let file = fsutil::DirectFile::open(&dir.join(FILE), &options)?;
        if file.plain().metadata()?.len() != end {
            file.plain().set_len(end)?;
        }
        Ok(Writer { file })
    }

    /// Writes a sealed frame (see [`seal`]) at `offset`. Page-aligned frames
    /// in page-aligned memory bypass the page cache.
    pub fn write(&self, offset: u64, frame: &[u8]) -> io::Result<()> {
        self.file.either(|f| f.write_all_at(frame, offset))
    }

    /// The file's path (for errors).
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Reads chunks back from a chunk file.
#[derive(Debug)]
pub struct Reader {
    file: fsutil::DirectFile,
}

impl Reader {
    /// Opens `dir`'s chunk file.
    pub fn open(dir: &Path) -> io::Result<Reader> {
        let mut options = OpenOptions::new();
        options.read(true);
        Ok(Reader {
            file: fsutil::DirectFile::open(&dir.join(FILE), &options)?,
        })
    }

    /// Reads `frame` into `scratch` (reused between calls; the whole frame,
    /// page-aligned, past the page cache where allowed) and returns where in
    /// `scratch` the chunk's bytes are.
    pub fn read(&self, frame: Frame, scratch: &mut Vec<u8>) -> io::Result<Range<usize>> {
        let whole = frame_len(frame.len as usize);
        let start = fsutil::aligned(scratch, whole)
            .ok_or_else(|| io::Error::other("no page-aligned read buffer"))?;
        self.file
            .either(|f| f.read_exact_at(&mut scratch[start..start + whole], frame.offset))?;
        let header = &scratch[start..start + HEADER];
        if header[..4] != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: no frame at byte {}",
                    self.file.path().display(),
                    frame.offset
                ),
            ));
        }
        Ok(start + HEADER..start + HEADER + frame.len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(index: u32, chunk: &[u8]) -> (Vec<u8>, usize) {
        let mut buf = Vec::new();
        let start = fsutil::aligned(&mut buf, frame_len(chunk.len())).unwrap();
        let f = &mut buf[start..start + frame_len(chunk.len())];
        f[HEADER..HEADER + chunk.len()].copy_from_slice(chunk);
        seal(f, index, chunk.len());
        (buf, start)
    }

    #[test]
    fn frames_are_written_in_any_order_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<Vec<u8>> = [5000usize, 4096 - HEADER, 1, 70_000]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let w = Writer::open(dir.path(), 0).unwrap();
        let mut offsets = Vec::new();
        let mut next = 0u64;
        for c in &chunks {
            offsets.push(next);
            next += frame_len(c.len()) as u64;
        }
        // The second storer may finish first.
        for i in [1usize, 0, 3, 2] {
            let (buf, start) = frame(i as u32, &chunks[i]);
            w.write(offsets[i], &buf[start..start + frame_len(chunks[i].len())])
                .unwrap();
        }
        let frames = scan(dir.path()).unwrap();
        assert_eq!(frames.end, next);
        assert_eq!(frames.held.len(), 4);
        let r = Reader::open(dir.path()).unwrap();
        let mut scratch = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let f = frames.held[&(i as u32)];
            assert_eq!(f.offset, offsets[i]);
            let range = r.read(f, &mut scratch).unwrap();
            assert!(scratch[range] == c[..], "chunk {i}");
        }
    }

    #[test]
    fn a_torn_or_missing_frame_ends_the_file_and_the_last_copy_counts() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::open(dir.path(), 0).unwrap();
        let (a, sa) = frame(0, &[1; 100]);
        let (b, sb) = frame(1, &[2; 100]);
        let (c, sc) = frame(2, &[3; 100]);
        let page = DIRECT_ALIGN as u64;
        w.write(0, &a[sa..sa + DIRECT_ALIGN]).unwrap();
        // Frame 1 never reached the disk; frame 2 did, after a hole.
        w.write(2 * page, &c[sc..sc + DIRECT_ALIGN]).unwrap();
        let frames = scan(dir.path()).unwrap();
        assert_eq!(frames.held.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(frames.end, page);
        // The next writer cuts the file there and appends; a chunk written
        // again later counts over its earlier copy.
        let w = Writer::open(dir.path(), frames.end).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE)).unwrap().len(),
            page
        );
        w.write(page, &b[sb..sb + DIRECT_ALIGN]).unwrap();
        let (a2, sa2) = frame(0, &[9; 100]);
        w.write(2 * page, &a2[sa2..sa2 + DIRECT_ALIGN]).unwrap();
        let frames = scan(dir.path()).unwrap();
        assert_eq!(frames.held[&0].offset, 2 * page);
        assert_eq!(frames.held[&1].offset, page);
        // A file cut inside a frame keeps the frames before it.
        let f = OpenOptions::new()
            .write(true)
            .open(dir.path().join(FILE))
            .unwrap();
        f.set_len(2 * page + 50).unwrap();
        let frames = scan(dir.path()).unwrap();
        assert_eq!(frames.end, 2 * page);
        assert_eq!(frames.held[&0].offset, 0);
        assert!(scan(&dir.path().join("none")).unwrap().held.is_empty());
    }
}
