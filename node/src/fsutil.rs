//! Durable file writes: temp file in the same directory, fsync, rename over
//! the target, fsync the directory. A crash leaves the old or the new file,
//! never a torn one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Atomically replaces (or creates) `path` with `contents`, mode `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".dxmesh-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
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
