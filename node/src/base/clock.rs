//! The node's clock and its stop signal: the current time as a protocol
//! timestamp (the protocol crate has no clock of its own) and the future
//! that resolves when the operator asks the process to stop.
//!
//! A local mesh (the demo, tests of many cycles) may share a clock set
//! ahead of the system's: the file named by [`CLOCK_FILE_ENV`] holds the
//! seconds to add (`2592000` runs a month ahead). Only the operator who
//! starts a process can point it at one, and it is taken only from a file
//! of the process's own user that nobody else may write; a file that is
//! not that, or does not hold a number, stops the process at start
//! ([`check`]). Read again at most once a second, so that whoever moves it
//! moves every process of the mesh.

use dxmesh_protocol::time::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The environment variable that names a shared clock file.
pub const CLOCK_FILE_ENV: &str = "DXMESH_CLOCK_FILE";

/// Why a shared clock file is refused.
#[derive(Debug, thiserror::Error)]
#[error("{CLOCK_FILE_ENV}={}: {problem}", path.display())]
pub struct ClockError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

/// The seconds the clock file at `path` adds to the system clock, if it is
/// this user's, writable by no one else, and holds a whole number.
pub fn read_offset(path: &Path) -> Result<i64, ClockError> {
    use std::os::unix::fs::MetadataExt;
    let bad = |problem: String| ClockError {
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    // This process's user: the owner of its own /proc entry.
    let me = std::fs::metadata("/proc/self")
        .map_err(|e| bad(format!("cannot tell this process's user: {e}")))?
        .uid();
    if meta.uid() != me {
        return Err(bad(format!(
            "owned by user {}, not by this process's user {me}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "writable by others (mode {:o}); make it 0600 or 0644",
            meta.mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    text.trim().parse::<i64>().map_err(|_| {
        bad(format!(
            "{:?} is not a whole number of seconds",
            text.trim()
        ))
    })
}

/// Checks the shared clock file, if the environment names one: a process
/// refuses to start with a clock it cannot trust.
pub fn check() -> Result<(), ClockError> {
    match std::env::var_os(CLOCK_FILE_ENV) {
        Some(path) => read_offset(Path::new(&path)).map(|_| ()),
        None => Ok(()),
    }
}

/// The last offset read, and when.
static OFFSET: Mutex<Option<(Instant, i64)>> = Mutex::new(None);

/// The clock file the environment names, looked up once.
fn clock_file() -> Option<&'static Path> {
    static FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| std::env::var_os(CLOCK_FILE_ENV).map(PathBuf::from))
        .as_deref()
}

/// The seconds to add to the system clock: none without a clock file; the
/// last good value if the file turns bad (the process checked it at start).
fn offset() -> i64 {
    let Some(path) = clock_file() else {
        return 0;
    };
    let mut cached = OFFSET.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, secs)) = *cached
        && at.elapsed() < Duration::from_secs(1)
    {
        return secs;
    }
    let last = cached.map_or(0, |(_, s)| s);
    let secs = read_offset(path).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the shared clock file cannot be read; keeping the last offset");
        last
    });
    *cached = Some((Instant::now(), secs));
    secs
}

/// The current time as a protocol timestamp.
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp(secs.saturating_add_signed(offset()))
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; only Ctrl-C will stop the node");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_clock_file_is_taken_only_if_it_is_ours_and_a_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        std::fs::write(&path, "2592000\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_offset(&path).unwrap(), 30 * 86_400);
        std::fs::write(&path, "-60").unwrap();
        assert_eq!(read_offset(&path).unwrap(), -60);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_offset(&path).unwrap_err();
        assert!(e.to_string().contains("writable by others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, "a month").unwrap();
        let e = read_offset(&path).unwrap_err();
        assert!(
            e.to_string().starts_with(CLOCK_FILE_ENV)
                && e.to_string().contains("not a whole number"),
            "{e}"
        );
        assert!(read_offset(&dir.path().join("none")).is_err());
    }
}
