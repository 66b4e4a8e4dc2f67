//! Files written whole or not at all, streamed: a temporary file in the
//! target's directory (mode 0600: the rows are personal data), then fsync,
//! rename over the target and fsync the directory, as
//! [`crate::base::fsutil::write_atomic`] does for a file held in memory. A
//! leaf module.

use crate::results::error::ExportError;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tempfile::NamedTempFile;

/// A temporary file in `dir`, to be renamed over a file of `dir`.
pub(crate) fn temp_in(dir: &Path) -> Result<NamedTempFile, ExportError> {
    tempfile::Builder::new()
        .prefix(".dxmesh-tmp-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|error| ExportError::Io {
            path: dir.to_path_buf(),
            error,
        })
}

/// Syncs `tmp`, renames it to `path` and syncs `path`'s directory.
pub(crate) fn commit(tmp: NamedTempFile, path: &Path) -> Result<(), ExportError> {
    let io = |error| ExportError::Io {
        path: path.to_path_buf(),
        error,
    };
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| ExportError::Io {
            path: dir.to_path_buf(),
            error,
        })
}
