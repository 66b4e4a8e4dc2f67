//! Files written whole or not at all, streamed, with the export's errors:
//! [`crate::base::fsutil`]'s atomic temporary file (mode 0600: the rows
//! are personal data), committed once every row is written. A leaf module.

use crate::base::fsutil;
use crate::results::error::ExportError;
use std::path::Path;
use tempfile::NamedTempFile;

/// A temporary file to be renamed over `path`.
pub(crate) fn temp_for(path: &Path) -> Result<NamedTempFile, ExportError> {
    fsutil::atomic_temp_for(path, 0o600).map_err(|error| ExportError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Syncs `tmp`, renames it to `path` and syncs `path`'s directory.
pub(crate) fn commit(tmp: NamedTempFile, path: &Path) -> Result<(), ExportError> {
    fsutil::commit_atomic(tmp, path).map_err(|error| ExportError::Io {
        path: path.to_path_buf(),
        error,
    })
}
