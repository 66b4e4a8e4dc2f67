//! Node identity files on disk: writing a new seed (PKCS#8 PEM, mode 0600,
//! atomically, never over an existing file) and reading one back, refusing
//! a file that other users could read.

use dxmesh_protocol::identity::{Identity, KeyError};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why an identity file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The target exists; identities are never overwritten.
    #[error("{0}: already exists; refusing to overwrite an identity")]
    Exists(PathBuf),
    /// The file is readable or writable by group or others.
    #[error("{path}: permissions {mode:04o} are too open; run `chmod 600 {path}`", path = .path.display())]
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold an Ed25519 PKCS#8 PEM key.
    #[error("{path}: not a dxmesh identity (Ed25519 PKCS#8 PEM): {source}", path = .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: KeyError,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `contents` to `path` atomically (temp file in the same directory,
/// fsync, link into place, fsync the directory) with mode `mode`, failing if
/// `path` exists.
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".dxmesh-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(io(path))?;
    tmp.write_all(contents).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(path.to_path_buf())
        } else {
            KeyFileError::Io {
                path: path.to_path_buf(),
                source: e.error,
            }
        }
    })?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&dir))?;
    Ok(())
}

/// Writes `identity`'s seed to a new file at `path` (mode 0600).
pub fn write_identity(path: &Path, identity: &Identity) -> Result<(), KeyFileError> {
    write_new_file(path, identity.to_pkcs8_pem().as_bytes(), 0o600)
}

/// Reads an identity, refusing files that group or others may read or write.
pub fn read_identity(path: &Path) -> Result<Identity, KeyFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::LoosePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    Identity::from_pkcs8_pem(&text).map_err(|source| KeyFileError::Format {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.key");
        let id = Identity::from_seed([2; 32]).unwrap();
        write_identity(&p, &id).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_identity(&p).unwrap().public(), id.public());
        assert!(matches!(
            write_identity(&p, &id),
            Err(KeyFileError::Exists(_))
        ));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_identity(&p),
            Err(KeyFileError::LoosePermissions { mode: 0o644, .. })
        ));
        let bad = dir.path().join("bad.key");
        write_new_file(&bad, b"garbage", 0o600).unwrap();
        assert!(matches!(
            read_identity(&bad),
            Err(KeyFileError::Format { .. })
        ));
        assert!(matches!(
            read_identity(&dir.path().join("missing.key")),
            Err(KeyFileError::Io { .. })
        ));
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
