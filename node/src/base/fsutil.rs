//! Durable file writes: temp file in the same directory, fsync, rename over
//! the target, fsync the directory. A crash leaves the old or the new file,
//! never a torn one. Also whole-file writes and reads that bypass the page
//! cache (`O_DIRECT`) for bulk files written or read once: on these virtual
//! machines filling fresh page cache is the dearest part of moving a file.

use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Alignment `O_DIRECT` needs (address, length and offset).
pub(crate) const DIRECT_ALIGN: usize = 4096;

/// The aligned start of a region of `len` bytes in `scratch`, grown as
/// needed (no `unsafe`: the slack absorbs any alignment).
pub(crate) fn aligned(scratch: &mut Vec<u8>, len: usize) -> Option<usize> {
    if scratch.len() < len + DIRECT_ALIGN {
        scratch.resize(len + DIRECT_ALIGN, 0);
    }
    let start = scratch.as_ptr().align_offset(DIRECT_ALIGN);
    (start < DIRECT_ALIGN).then_some(start)
}

/// Two descriptors of one file: one with `O_DIRECT` (if the file system
/// takes it) and an ordinary one, for when it refuses an operation and for
/// what is not page-aligned. The one way bulk files are written past the
/// page cache.
#[derive(Debug)]
pub struct DirectFile {
    path: PathBuf,
    direct: Option<std::fs::File>,
    plain: std::fs::File,
}

impl DirectFile {
    /// Opens `path` with `options`, twice.
    pub fn open(path: &Path, options: &std::fs::OpenOptions) -> std::io::Result<DirectFile> {
        let plain = options.open(path)?;
        let mut direct = options.clone();
        // The file exists now: the direct descriptor must not truncate it again.
        direct.truncate(false).create(false);
        let direct = direct.custom_flags(libc::O_DIRECT).open(path).ok();
        Ok(DirectFile {
            path: path.to_path_buf(),
            direct,
            plain,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ordinary descriptor.
    pub fn plain(&self) -> &std::fs::File {
        &self.plain
    }

    /// Runs `op` on the direct descriptor, or on the ordinary one if there
    /// is none or it refuses the request (`EINVAL`: alignment or file
    /// system).
    pub fn either<T>(
        &self,
        mut op: impl FnMut(&std::fs::File) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        if let Some(direct) = &self.direct {
            match op(direct) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                other => return other,
            }
        }
        op(&self.plain)
    }

    /// The ordinary descriptor, for the caller to sync and keep.
    pub fn into_plain(self) -> std::fs::File {
        self.plain
    }
}

/// Creates `path` holding `bytes`: the whole pages with `O_DIRECT` (copied
/// through `scratch`, reused between calls), the last partial page through
/// an ordinary descriptor; ordinary writes throughout where `O_DIRECT` is
/// refused. Not synced: the caller syncs the returned file.
pub fn write_direct(
    path: &Path,
    bytes: &[u8],
    scratch: &mut Vec<u8>,
) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    let file = DirectFile::open(path, &options)?;
    let whole = bytes.len() / DIRECT_ALIGN * DIRECT_ALIGN;
    let mut done = 0;
    if whole > 0
        && let Some(start) = aligned(scratch, whole)
    {
        scratch[start..start + whole].copy_from_slice(&bytes[..whole]);
        file.either(|f| f.write_all_at(&scratch[start..start + whole], 0))?;
        done = whole;
    }
    file.plain().write_all_at(&bytes[done..], done as u64)?;
    Ok(file.into_plain())
}

/// Reads the whole file at `path` into `scratch` (reused between calls),
/// preferably with `O_DIRECT`, else ordinarily, and returns where in
/// `scratch` its bytes are: no copy after the read.
pub fn read_direct_in_place(
    path: &Path,
    scratch: &mut Vec<u8>,
) -> std::io::Result<std::ops::Range<usize>> {
    use std::io::Read;
    if let Ok(direct) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        let len = direct.metadata()?.len() as usize;
        let padded = len.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        if let Some(start) = aligned(scratch, padded) {
            let mut got = 0;
            let outcome = loop {
                if got >= len {
                    break Ok(());
                }
                // Whole pages from an aligned offset; the last read is short.
                match direct.read_at(&mut scratch[start + got..start + padded], got as u64) {
                    Ok(0) => break Ok(()),
                    Ok(n) if n % DIRECT_ALIGN == 0 || got + n >= len => got += n,
                    Ok(n) => {
                        got += n;
                        break Ok(());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            match outcome {
                Ok(()) if got == len => return Ok(start..start + len),
                Ok(()) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{}: read {got} of {len} bytes", path.display()),
                    ));
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    scratch.clear();
    std::fs::File::open(path)?.read_to_end(scratch)?;
    Ok(0..scratch.len())
}

/// A byte count as people read it: `512 B`, `3.4 MiB`, `12.0 GiB`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The name prefix of [`write_atomic`]'s temporary files.
pub const ATOMIC_TMP_PREFIX: &str = ".dxmesh-tmp-";

/// Removes what writes killed before they finished left under `root`:
/// every file or directory whose name starts with one of `prefixes`, down
/// to `depth` levels below `root` (temporary files are only ever created
/// by a write in progress, so the caller must know none is). Returns what
/// it removed; a part it cannot read or remove is skipped with a warning.
pub fn remove_leftovers(root: &Path, prefixes: &[&str], depth: usize) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if name
            .to_str()
            .is_some_and(|n| prefixes.iter().any(|p| n.starts_with(p)))
        {
            let gone = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match gone {
                Ok(()) => removed.push(path),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a leftover temporary file")
                }
            }
        } else if is_dir && depth > 0 {
            removed.extend(remove_leftovers(&path, prefixes, depth - 1));
        }
    }
    removed
}

/// Atomically replaces (or creates) `path` with `contents`, mode `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp = atomic_temp_for(path, mode)?;
    tmp.write_all(contents)?;
    commit_atomic(tmp, path)
}

/// The streamed form of [`write_atomic`]: a temporary file (mode `mode`)
/// in `path`'s directory, to be written and then given to
/// [`commit_atomic`].
pub fn atomic_temp_for(path: &Path, mode: u32) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(ATOMIC_TMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(parent_dir(path))
}

/// Syncs `tmp`, renames it over `path` and syncs the directory.
pub fn commit_atomic(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(parent_dir(path))?.sync_all()
}

/// The directory a file is in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_removed_to_the_depth_asked_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mk = |p: &str| {
            let path = r.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        };
        mk("a/.tmp-0-abc/chunk-00000.bin");
        mk("a/1/.dxmesh-tmp-xyz");
        mk("a/1/manifest.bin");
        mk("a/1/deep/deeper/.dxmesh-tmp-far");
        mk("b/keep.tmp-0");
        let mut removed = remove_leftovers(r, &[".tmp-", ATOMIC_TMP_PREFIX], 2);
        removed.sort();
        assert_eq!(
            removed,
            [r.join("a/.tmp-0-abc"), r.join("a/1/.dxmesh-tmp-xyz")]
        );
        assert!(r.join("a/1/manifest.bin").exists());
        assert!(r.join("b/keep.tmp-0").exists());
        // Deeper than asked: left.
        assert!(r.join("a/1/deep/deeper/.dxmesh-tmp-far").exists());
        assert!(remove_leftovers(&r.join("missing"), &[".tmp-"], 3).is_empty());
    }

    #[test]
    fn direct_writes_and_reads_return_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wscratch, mut rscratch) = (Vec::new(), Vec::new());
        for size in [0usize, 1, 4095, 4096, 4097, 1_048_576 + 17, 3 * 4096] {
            let p = dir.path().join(format!("f{size}"));
            let want: Vec<u8> = (0..size).map(|i| (i * 31 % 253) as u8).collect();
            let f = write_direct(&p, &want, &mut wscratch).unwrap();
            f.sync_all().unwrap();
            assert!(std::fs::read(&p).unwrap() == want, "written {size}");
            let range = read_direct_in_place(&p, &mut rscratch).unwrap();
            assert_eq!(range.len(), size);
            assert!(rscratch[range] == want[..], "read {size}");
        }
        assert!(read_direct_in_place(&dir.path().join("missing"), &mut rscratch).is_err());
    }

    #[test]
    fn replaces_contents_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        super::write_atomic(&p, b"one", 0o644).unwrap();
        super::write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
