//! Sorted files of fixed-width entries with a sparse fence index: the
//! shape of the lookup tables a node answers requests from (a feed's
//! private token index at the provider, the ministry's national index).
//! [`SortedWriter`] writes one front to back in key order; [`SortedFile`]
//! keeps the key of every [`FENCE_EVERY`]-th entry in memory and answers a
//! sorted batch of keys with one small positioned read per group of
//! entries it touches: a lookup of `q` keys costs `O(q log n)` and reads
//! about `q · FENCE_EVERY` entries, never the whole file.
//!
//! Layout: the entries; the fences (the keys of entries `0, F, 2F, ...`);
//! an opaque `meta` blob (its owner's: a dataset generation, a value
//! dictionary); a footer of [`FOOTER_LEN`] bytes: magic, entry width, key
//! width, entry count, fence interval, meta length, and the SHA-256 of the
//! fences, the meta and those fields. Opening checks the footer, the digest
//! and the file's length; writing checks the order.

use super::model::ImportError;
use super::writer::DirectWriter;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Entries per fence: a lookup reads one group of this many entries.
pub const FENCE_EVERY: usize = 64;

const MAGIC: &[u8; 8] = b"DXSORTv1";
/// Magic, entry width, key width, count, fence interval, meta length, digest.
const FOOTER_LEN: usize = 8 + 4 + 4 + 8 + 4 + 8 + 32;

pub use super::sorted_error::SortedError;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SortedError + '_ {
    move |e| SortedError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

enum Out {
    /// Written once and read back rarely: past the page cache.
    Direct(DirectWriter),
    /// Read back soon and often: through it.
    Cached(BufWriter<File>),
}

/// Writes a sorted file front to back; see the module documentation.
pub struct SortedWriter {
    path: PathBuf,
    out: Out,
    entry_len: usize,
    key_len: usize,
    count: u64,
    fences: Vec<u8>,
    last: Vec<u8>,
    staged: Vec<u8>,
}

impl SortedWriter {
    /// Creates `path` for entries of `entry_len` bytes whose first
    /// `key_len` bytes are the key; with `O_DIRECT` if `direct` (and the
    /// file system allows it).
    pub fn create(
        path: &Path,
        entry_len: usize,
        key_len: usize,
        direct: bool,
    ) -> Result<SortedWriter, SortedError> {
        if key_len == 0 || key_len > entry_len {
            return Err(SortedError::Misuse {
                path: path.to_path_buf(),
                problem: format!("a key of {key_len} bytes in entries of {entry_len}"),
            });
        }
        let out = if direct {
            Out::Direct(DirectWriter::create(path).map_err(|e| import_err(path, e))?)
        } else {
            Out::Cached(BufWriter::with_capacity(
                1 << 20,
                File::create(path).map_err(io_err(path))?,
            ))
        };
        Ok(SortedWriter {
            path: path.to_path_buf(),
            out,
            entry_len,
            key_len,
            count: 0,
            fences: Vec::new(),
            last: Vec::new(),
            staged: Vec::with_capacity(1 << 20),
        })
    }

    /// Appends one entry; its key must not be below the previous one.
    pub fn push(&mut self, entry: &[u8]) -> Result<(), SortedError> {
        if entry.len() != self.entry_len {
            return Err(self.misuse(format!(
                "an entry of {} bytes, not {}",
                entry.len(),
                self.entry_len
            )));
        }
        let key = &entry[..self.key_len];
        if self.count > 0 && key < &self.last[..] {
            return Err(self.misuse(format!("entry {} is out of key order", self.count)));
        }
        self.last.clear();
        self.last.extend_from_slice(key);
        if self.count.is_multiple_of(FENCE_EVERY as u64) {
            self.fences.extend_from_slice(key);
        }
        self.count += 1;
        self.staged.extend_from_slice(entry);
        if self.staged.len() >= 1 << 20 {
            self.flush_staged()?;
        }
        Ok(())
    }

    /// Entries pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the fences, `meta` and the footer, and syncs the file.
    pub fn finish(mut self, meta: &[u8]) -> Result<(), SortedError> {
        let fences = std::mem::take(&mut self.fences);
        self.staged.extend_from_slice(&fences);
        self.staged.extend_from_slice(meta);
        let footer = footer((self.entry_len, self.key_len, self.count), &fences, meta);
        self.staged.extend_from_slice(&footer);
        self.flush_staged()?;
        let path = self.path.clone();
        match self.out {
            Out::Direct(w) => {
                w.finish().map_err(|e| import_err(&path, e))?;
            }
            Out::Cached(w) => {
                let file = w.into_inner().map_err(|e| io_err(&path)(e.into_error()))?;
                file.sync_all().map_err(io_err(&path))?;
            }
        }
        Ok(())
    }

    fn flush_staged(&mut self) -> Result<(), SortedError> {
        match &mut self.out {
            Out::Direct(w) => w
                .write(&self.staged)
                .map_err(|e| import_err(&self.path, e))?,
            Out::Cached(w) => w.write_all(&self.staged).map_err(io_err(&self.path))?,
        }
        self.staged.clear();
        Ok(())
    }

    fn misuse(&self, problem: String) -> SortedError {
        SortedError::Misuse {
            path: self.path.clone(),
            problem,
        }
    }
}

fn import_err(path: &Path, e: ImportError) -> SortedError {
    SortedError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The footer of a file of `count` entries of `entry_len` bytes (keys of
/// `key_len`) with these fences and meta.
fn footer((entry_len, key_len, count): (usize, usize, u64), fences: &[u8], meta: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(FOOTER_LEN);
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&(entry_len as u32).to_be_bytes());
    f.extend_from_slice(&(key_len as u32).to_be_bytes());
    f.extend_from_slice(&count.to_be_bytes());
    f.extend_from_slice(&(FENCE_EVERY as u32).to_be_bytes());
    f.extend_from_slice(&(meta.len() as u64).to_be_bytes());
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(fences);
    ctx.update(meta);
    ctx.update(&f);
    f.extend_from_slice(ctx.finish().as_ref());
    f
}

/// An open sorted file: its fences and meta in memory, its entries read
/// on demand. Shared between threads (reads are positioned).
#[derive(Debug)]
pub struct SortedFile {
    path: PathBuf,
    file: File,
    entry_len: usize,
    key_len: usize,
    count: u64,
    fences: Vec<u8>,
    meta: Vec<u8>,
}

impl SortedFile {
    /// Opens `path` and checks its footer, digest and length.
    pub fn open(path: &Path) -> Result<SortedFile, SortedError> {
        let file = File::open(path).map_err(io_err(path))?;
        let damaged = |problem: String| SortedError::Damaged {
            path: path.to_path_buf(),
            problem,
        };
        let len = file.metadata().map_err(io_err(path))?.len();
        if len < FOOTER_LEN as u64 {
            return Err(damaged(format!("{len} bytes is shorter than a footer")));
        }
        let mut f = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut f, len - FOOTER_LEN as u64)
            .map_err(io_err(path))?;
        if &f[..8] != MAGIC {
            return Err(damaged("no sorted-file footer".into()));
        }
        let u32_at = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]) as u64;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&f[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let (entry_len, key_len, count) = (u32_at(8), u32_at(12), u64_at(16));
        let (fence_every, meta_len) = (u32_at(24), u64_at(28));
        if fence_every != FENCE_EVERY as u64 || key_len == 0 || key_len > entry_len {
            return Err(damaged(format!(
                "entries of {entry_len} bytes, keys of {key_len}, a fence every {fence_every}"
            )));
        }
        let fences_len = count.div_ceil(fence_every) * key_len;
        let expected = count
            .checked_mul(entry_len)
            .and_then(|e| e.checked_add(fences_len))
            .and_then(|e| e.checked_add(meta_len))
            .and_then(|e| e.checked_add(FOOTER_LEN as u64));
        if expected != Some(len) {
            return Err(damaged(format!(
                "{len} bytes; {count} entries of {entry_len} bytes, their fences and {meta_len} bytes of meta need {}",
                expected.map_or("more than 2^64".to_string(), |e| e.to_string())
            )));
        }
        let mut tail = vec![0u8; (fences_len + meta_len) as usize];
        file.read_exact_at(&mut tail, count * entry_len)
            .map_err(io_err(path))?;
        let meta = tail.split_off(fences_len as usize);
        let (entry_len, key_len) = (entry_len as usize, key_len as usize);
        if footer((entry_len, key_len, count), &tail, &meta) != f {
            return Err(damaged("the footer's digest does not match".into()));
        }
        Ok(SortedFile {
            path: path.to_path_buf(),
            file,
            entry_len,
            key_len,
            count,
            fences: tail,
            meta,
        })
    }

    /// The owner's meta blob.
    pub fn meta(&self) -> &[u8] {
        &self.meta
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the file has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fence(&self, g: usize) -> &[u8] {
        &self.fences[g * self.key_len..(g + 1) * self.key_len]
    }

    fn groups(&self) -> usize {
        self.fences.len() / self.key_len
    }

    /// Reads group `g`'s entries into `buf`.
    fn read_group(&self, g: usize, buf: &mut Vec<u8>) -> Result<(), SortedError> {
        let first = (g * FENCE_EVERY) as u64;
        let n = (self.count - first).min(FENCE_EVERY as u64) as usize;
        buf.resize(n * self.entry_len, 0);
        self.file
            .read_exact_at(buf, first * self.entry_len as u64)
            .map_err(io_err(&self.path))
    }

    /// Calls `found(i, entry)` for every entry whose key is `keys[i]`, for
    /// each `i` in order. `keys` must be sorted (ascending) and each of the
    /// key width; a group read for one key serves the next keys in it.
    pub fn lookup<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        mut found: impl FnMut(usize, &[u8]),
    ) -> Result<(), SortedError> {
        let mut buf = Vec::new();
        let mut loaded: Option<usize> = None;
        let mut previous: Option<&[u8]> = None;
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_ref();
            if key.len() != self.key_len || previous.is_some_and(|p| key < p) {
                return Err(SortedError::Misuse {
                    path: self.path.clone(),
                    problem: format!("lookup key {i} is of another width or out of order"),
                });
            }
            previous = Some(key);
            let groups = self.groups();
            // The last group whose first key is below `key` holds its first
            // entry, if any (or the first group).
            let mut g = partition(groups, |g| self.fence(g) < key).saturating_sub(1);
            while g < groups {
                if loaded != Some(g) {
                    self.read_group(g, &mut buf)?;
                    loaded = Some(g);
                }
                let width = self.entry_len;
                let n = buf.len() / width;
                let key_of = |e: usize| &buf[e * width..e * width + self.key_len];
                let mut e = partition(n, |e| key_of(e) < key);
                while e < n && key_of(e) == key {
                    found(i, &buf[e * width..(e + 1) * width]);
                    e += 1;
                }
                // Equal keys may continue in the next group.
                if e == n && g + 1 < groups && self.fence(g + 1) == key {
                    g += 1;
                } else {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// First index in `0..n` where `pred` is false (pred is true then false).
pub(crate) fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u32, value: u32) -> [u8; 8] {
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&key.to_be_bytes());
        e[4..].copy_from_slice(&value.to_be_bytes());
        e
    }

    /// Keys 0, 3, 6, ... each once, and key 300 repeated across several
    /// groups (with values 0, 1, 2, ...).
    fn write(path: &Path, direct: bool) -> Vec<[u8; 8]> {
        let mut all = Vec::new();
        for k in 0..100u32 {
            all.push(entry(k * 3, k));
        }
        for v in 0..200u32 {
            all.push(entry(300, v));
        }
        for k in 101..1000u32 {
            all.push(entry(k * 3, k));
        }
        let mut w = SortedWriter::create(path, 8, 4, direct).unwrap();
        for e in &all {
            w.push(e).unwrap();
        }
        w.finish(b"meta!").unwrap();
        all
    }

    #[test]
    fn finds_every_entry_of_every_key_and_nothing_else() {
        for direct in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.bin");
            let all = write(&path, direct);
            let f = SortedFile::open(&path).unwrap();
            assert_eq!((f.len(), f.meta()), (all.len() as u64, &b"meta!"[..]));
            let keys: Vec<[u8; 4]> = [0u32, 1, 2, 3, 299, 300, 301, 2997, 2998, 5000]
                .iter()
                .map(|k| k.to_be_bytes())
                .collect();
            let mut got: Vec<(usize, [u8; 8])> = Vec::new();
            f.lookup(&keys, |i, e| got.push((i, e.try_into().unwrap())))
                .unwrap();
            let mut want = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                for e in all.iter().filter(|e| &e[..4] == k) {
                    want.push((i, *e));
                }
            }
            assert_eq!(got, want);
            assert_eq!(got.iter().filter(|(i, _)| *i == 5).count(), 200);
        }
    }

    #[test]
    fn an_empty_file_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        SortedWriter::create(&path, 8, 4, false)
            .unwrap()
            .finish(&[])
            .unwrap();
        let f = SortedFile::open(&path).unwrap();
        assert!(f.is_empty());
        f.lookup(&[[0u8; 4]], |_, _| panic!("found in an empty file"))
            .unwrap();
    }

    #[test]
    fn refuses_misuse_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        let mut w = SortedWriter::create(&path, 8, 4, false).unwrap();
        w.push(&entry(5, 0)).unwrap();
        assert!(matches!(
            w.push(&entry(4, 0)),
            Err(SortedError::Misuse { .. })
        ));
        assert!(matches!(w.push(&[0u8; 7]), Err(SortedError::Misuse { .. })));

        write(&path, false);
        let f = SortedFile::open(&path).unwrap();
        let unsorted = [5u32.to_be_bytes(), 4u32.to_be_bytes()];
        assert!(matches!(
            f.lookup(&unsorted, |_, _| {}),
            Err(SortedError::Misuse { .. })
        ));
        // A changed fence, a changed meta byte, a cut file: each refused.
        let bytes = std::fs::read(&path).unwrap();
        let entries = (100 + 200 + 899) * 8;
        for at in [entries, bytes.len() - FOOTER_LEN - 1, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(SortedFile::open(&path), Err(SortedError::Damaged { .. })),
                "byte {at}"
            );
        }
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        assert!(matches!(
            SortedFile::open(&path),
            Err(SortedError::Damaged { .. })
        ));
    }
}
