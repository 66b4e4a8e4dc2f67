//! Generations kept for the feeds built from them. A published feed's
//! private index points into the generation it was built from, and its
//! disclosures read that generation; an import replaces the current
//! generation but removes only older ones no feed pins. A pin is a file
//! `pins/<holder>` (the holder names the feed, `<agreement hex>-<epoch>`)
//! holding the generation; it is written and read under the dataset's
//! lock, so an import in progress and a pin never cross: a generation is
//! either pinned before the import looks, or already gone when the pin is
//! asked for (and the pin fails).

use super::model::{ImportError, dataset_dir, generation_dir, io_err, lock_file, validate_name};
use std::collections::BTreeSet;
use std::path::Path;

/// The folder of a dataset's pins.
pub const PINS_DIR: &str = "pins";

/// Runs `f` holding the lock of dataset `name` (waiting for an import in
/// progress to end).
fn locked<T>(
    data_dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> Result<T, ImportError>,
) -> Result<T, ImportError> {
    validate_name(name)?;
    let ds = dataset_dir(data_dir, name);
    let (file, path) = lock_file(&ds)?;
    file.lock().map_err(io_err(&path))?;
    f(&ds)
}

/// Pins `generation` of dataset `name` for `holder`, replacing the
/// generation it pinned before (a feed rebuilt from a newer import). Fails
/// with [`ImportError::GenerationGone`] if that generation is no longer
/// held.
pub fn pin(data_dir: &Path, name: &str, holder: &str, generation: u64) -> Result<(), ImportError> {
    locked(data_dir, name, |ds| {
        if !generation_dir(ds, generation).is_dir() {
            return Err(ImportError::GenerationGone {
                dataset: name.to_string(),
                generation,
            });
        }
        let dir = ds.join(PINS_DIR);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(holder);
        crate::base::fsutil::write_atomic(&path, format!("{generation}\n").as_bytes(), 0o600)
            .map_err(io_err(&path))
    })
}

/// Removes `holder`'s pin (none is fine); the generation goes with the
/// next import if nothing else pins it.
pub fn unpin(data_dir: &Path, name: &str, holder: &str) -> Result<(), ImportError> {
    locked(data_dir, name, |ds| {
        let path = ds.join(PINS_DIR).join(holder);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    })
}

/// The feeds that pin a generation of dataset `name` older than
/// `generation` (built before that import), by holder
/// (`<agreement hex>-<epoch>`), with the generation each reads.
pub fn older_pins(data_dir: &Path, name: &str, generation: u64) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dataset_dir(data_dir, name).join(PINS_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|e| {
            let holder = e.file_name().to_str()?.to_string();
            let g = std::fs::read_to_string(e.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (!holder.ends_with(".building") && g < generation).then_some((holder, g))
        })
        .collect();
    out.sort();
    out
}

/// The generations pinned in the dataset directory `ds` (the caller holds
/// its lock). A pin that cannot be read keeps nothing and is reported.
pub(super) fn pinned(ds: &Path) -> BTreeSet<u64> {
    let Ok(entries) = std::fs::read_dir(ds.join(PINS_DIR)) else {
        return BTreeSet::new();
    };
    let mut kept = BTreeSet::new();
    for entry in entries.flatten() {
        match std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            Some(g) => {
                kept.insert(g);
            }
            None => tracing::warn!(pin = %entry.path().display(), "a pin that names no generation"),
        }
    }
    kept
}
