//! The comparisons a comparator node has run: `comparisons.json` in its
//! data directory, one entry per output directory (its number, its epoch,
//! where it went, when it started), oldest first, the last [`KEPT`] kept.
//! A comparison keeps its number for good (a page's address stays the
//! same cycle), also when it is run again into its directory. The
//! console's results pages list them, one page per cycle. Written
//! atomically, one writer at a time; the results themselves stay where
//! `compare --out` put them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file, in the data directory.
pub const FILE: &str = "comparisons.json";
/// Comparisons listed at most (twenty years of monthly cycles).
pub const KEPT: usize = 240;

/// One comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Its number on this node, from 1 (0 in a record not yet made).
    #[serde(default)]
    pub number: u64,
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

/// Records comparison `c` under the next number, or, run again into the
/// directory of an earlier one, under that one's number and place.
pub fn record(data_dir: &Path, mut c: Comparison) -> std::io::Result<()> {
    static ONE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _writing = ONE_WRITER.lock().unwrap_or_else(|p| p.into_inner());
    let mut all = list(data_dir);
    match all.iter_mut().find(|old| old.out == c.out) {
        Some(old) => {
            c.number = old.number;
            *old = c;
        }
        None => {
            c.number = all.iter().map(|o| o.number).max().unwrap_or(0) + 1;
            all.push(c);
        }
    }
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
            number: 0,
            epoch,
            out: PathBuf::from(out),
            started: format!("2026-12-0{}T00:00:00Z", epoch + 1),
        };
        record(dir.path(), c(0, "/r/2026-11")).unwrap();
        record(dir.path(), c(1, "/r/2026-12")).unwrap();
        // Compared again into the same directory: one entry, the newer, with
        // its number and place.
        record(dir.path(), c(2, "/r/2026-11")).unwrap();
        let numbered = |n: u64, x: Comparison| Comparison { number: n, ..x };
        assert_eq!(
            list(dir.path()),
            [
                numbered(1, c(2, "/r/2026-11")),
                numbered(2, c(1, "/r/2026-12"))
            ]
        );
        for k in 0..KEPT as u64 + 5 {
            record(dir.path(), c(k, &format!("/r/{k}"))).unwrap();
        }
        let all = list(dir.path());
        assert_eq!(all.len(), KEPT);
        // The oldest dropped; the others keep their numbers.
        let last = all.last().unwrap();
        assert_eq!(last.out, PathBuf::from(format!("/r/{}", KEPT + 4)));
        assert_eq!(last.number, KEPT as u64 + 7);
        assert_eq!(all[0].number, 8);
    }
}
