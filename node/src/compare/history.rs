//! The comparisons a comparator node has run: `comparisons.json` in its
//! data directory, one entry per output directory (its epoch, where it
//! went, when it started), oldest first, the last [`KEPT`] kept. The
//! console's results pages list them, one page per cycle. Written
//! atomically; the results themselves stay where `compare --out` put them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file, in the data directory.
pub const FILE: &str = "comparisons.json";
/// Comparisons listed at most (twenty years of monthly cycles).
pub const KEPT: usize = 240;

/// One comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The epoch compared.
    pub epoch: u64,
    /// Its output directory.
    pub out: PathBuf,
    /// When it started (RFC 3339).
    pub started: String,
}

/// Every comparison recorded, oldest first (none if the file is missing or
/// unreadable: the list is a convenience, the results are in their
/// directories).
pub fn list(data_dir: &Path) -> Vec<Comparison> {
    std::fs::read(data_dir.join(FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records comparison `c`, replacing an earlier one into the same
/// directory.
pub fn record(data_dir: &Path, c: Comparison) -> std::io::Result<()> {
    let mut all = list(data_dir);
    all.retain(|old| old.out != c.out);
    all.push(c);
    let excess = all.len().saturating_sub(KEPT);
    all.drain(..excess);
    let bytes = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    crate::base::fsutil::write_atomic(&data_dir.join(FILE), &bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_are_listed_oldest_first_one_per_directory_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).is_empty());
        let c = |epoch: u64, out: &str| Comparison {
            epoch,
            out: PathBuf::from(out),
            started: format!("2026-12-0{}T00:00:00Z", epoch + 1),
        };
        record(dir.path(), c(0, "/r/2026-11")).unwrap();
        record(dir.path(), c(1, "/r/2026-12")).unwrap();
        // Compared again into the same directory: one entry, the newer.
        record(dir.path(), c(2, "/r/2026-11")).unwrap();
        assert_eq!(list(dir.path()), [c(1, "/r/2026-12"), c(2, "/r/2026-11")]);
        for k in 0..KEPT as u64 + 5 {
            record(dir.path(), c(k, &format!("/r/{k}"))).unwrap();
        }
        let all = list(dir.path());
        assert_eq!(all.len(), KEPT);
        assert_eq!(
            all.last().unwrap().out,
            PathBuf::from(format!("/r/{}", KEPT + 4))
        );
    }
}
