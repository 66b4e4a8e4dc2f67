//! Retention of feeds, at both ends: a feed (pulled by the consumer, under
//! `pulls/`, or published by the provider, under `feeds/`) may be kept for
//! its agreement's `retention_days` after the epoch's reference date; on
//! the first daemon tick after that it is erased, and the erasure is
//! written to the audit log first and its signed manifest kept as evidence
//! ([`keep_evidence`]).
//! A feed is renamed aside (`.erasing-<epoch>`) before it is removed, so a
//! node killed halfway never reads half a feed as a feed; the next tick
//! finishes the removal.
//!
//! Result files that `dxmesh compare --out DIR` wrote are outside the node's
//! directory; the operator guide says who deletes them.

use dxmesh_protocol::agreement::{AgreementId, Terms};
use dxmesh_protocol::date::Date;
use std::path::{Path, PathBuf};

/// A feed past its retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Agreement.
    pub agreement: AgreementId,
    /// Epoch.
    pub epoch: u64,
    /// The last day it could be kept.
    pub kept_until: Date,
    /// Its directory.
    pub dir: PathBuf,
}

/// The last day a feed of `epoch` under `terms` may be kept, if the epoch
/// has a reference date.
pub fn kept_until(terms: &Terms, epoch: u64) -> Option<Date> {
    terms
        .cycle
        .epoch_start(epoch)?
        .add_days(i64::from(terms.retention_days))
}

/// The feeds under `root` (`pulls` or `feeds`) of `agreements` that must
/// be gone on `today`. Directories that are not epochs are left alone.
pub fn expired<'a>(
    data_dir: &Path,
    root: &str,
    agreements: impl IntoIterator<Item = &'a Terms>,
    today: Date,
) -> Vec<Expired> {
    let mut out = Vec::new();
    for terms in agreements {
        let agreement = terms.id();
        let parent = data_dir.join(root).join(dxmesh_protocol::hex(&agreement));
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(epoch) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(kept_until) = kept_until(terms, epoch)
                && today > kept_until
            {
                out.push(Expired {
                    agreement,
                    epoch,
                    kept_until,
                    dir: entry.path(),
                });
            }
        }
    }
    out.sort_by_key(|e| (e.agreement, e.epoch));
    out
}

/// Where the signed manifest of an erased feed under `root` is kept:
/// `DATA_DIR/evidence/<root>/<agreement>/<epoch>/manifest.bin`. Erasure
/// removes the personal data and tokens; the manifest (digests, counts,
/// the provider's signature) stays as evidence, so that a bundle exported
/// after retention still verifies and names what was compared.
pub fn evidence_dir(data_dir: &Path, root: &str, agreement: &AgreementId, epoch: u64) -> PathBuf {
    crate::base::layout::epoch_dir(
        &data_dir.join(crate::base::layout::EVIDENCE),
        root,
        agreement,
        epoch,
    )
}

/// Copies the signed manifest of the pulled feed in `dir` (of `agreement`
/// and `epoch`) into the evidence kept after erasure (atomically); a feed
/// without a manifest has nothing to keep.
pub fn keep_evidence(
    data_dir: &Path,
    root: &str,
    agreement: &AgreementId,
    epoch: u64,
    dir: &Path,
) -> std::io::Result<()> {
    let Some(bytes) = manifest_bytes(dir)? else {
        return Ok(());
    };
    let to = evidence_dir(data_dir, root, agreement, epoch);
    std::fs::create_dir_all(&to)?;
    crate::base::fsutil::write_atomic(&to.join(crate::base::layout::MANIFEST_FILE), &bytes, 0o600)
}

/// Keeps the signed manifest of the pulled feed in `dir`, which a
/// republished one supersedes, as evidence beside the epoch's:
/// `superseded-<digest>.bin` (commitments made from that feed name it).
pub fn keep_superseded(
    data_dir: &Path,
    agreement: &AgreementId,
    epoch: u64,
    dir: &Path,
) -> std::io::Result<()> {
    let Some(bytes) = manifest_bytes(dir)? else {
        return Ok(());
    };
    let digest = dxmesh_protocol::codec::decode::<
        dxmesh_protocol::signed::Signed<dxmesh_protocol::feed::Manifest>,
    >(&bytes)
    .map(|s| dxmesh_protocol::hex(&s.digest()))
    .unwrap_or_else(|_| "undecodable".into());
    let to = evidence_dir(data_dir, crate::base::layout::PULLS, agreement, epoch);
    std::fs::create_dir_all(&to)?;
    crate::base::fsutil::write_atomic(&to.join(format!("superseded-{digest}.bin")), &bytes, 0o600)
}

/// The signed manifest file of the feed in `dir`, if it has one.
fn manifest_bytes(dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(crate::base::layout::MANIFEST_FILE)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Erases the feed in `dir`: renamed aside first, then removed.
pub fn erase(dir: &Path) -> std::io::Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let aside = dir.with_file_name(format!(".erasing-{name}"));
    std::fs::rename(dir, &aside)?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    std::fs::remove_dir_all(&aside)
}

/// Finishes erasures a stopped node left behind (`.erasing-*` directories
/// under `root`, `pulls/` or `feeds/`). Returns how many it removed.
pub fn finish_interrupted(data_dir: &Path, root: &str) -> std::io::Result<usize> {
    let pulls = data_dir.join(root);
    let Ok(agreements) = std::fs::read_dir(&pulls) else {
        return Ok(0);
    };
    let mut removed = 0;
    for agreement in agreements.flatten() {
        let Ok(entries) = std::fs::read_dir(agreement.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".erasing-") {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::layout::PULLS;
    use crate::pull::pulls::pull_dir;

    fn terms(retention_days: u32) -> Terms {
        let text = format!(
            r#"dataset = "registry"
token_group = "registration"
purpose_code = "registration/uninsured-outreach"
purpose = "test"
not_before = "2026-01-01"
not_after = "2027-01-01"
retention_days = {retention_days}
fields = [ {{ name = "id_number", treatment = "token" }} ]
rows = []
[cycle]
period = "monthly"
anchor = "2026-01-01"
window = "P7D"
max_pulls = 1
[disclosure]
fields = []
max_records_per_epoch = 0
"#
        );
        let file: crate::agreements::terms_file::TermsFile = toml::from_str(&text).unwrap();
        let key = |b: u8| {
            dxmesh_protocol::identity::Identity::from_seed([b; 32])
                .unwrap()
                .public()
        };
        file.to_terms(Path::new("terms.toml"), Some(key(1)), Some(key(2)))
            .unwrap()
    }

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn feeds_go_the_day_after_their_retention_and_only_they() {
        let dir = tempfile::tempdir().unwrap();
        let t = terms(30);
        let id = t.id();
        // Epoch 0 starts 2026-01-01, epoch 2 on 2026-03-01.
        for epoch in [0u64, 2] {
            let d = pull_dir(dir.path(), &id, epoch);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(crate::pull::chunkfile::FILE), b"tokens").unwrap();
        }
        std::fs::create_dir_all(pull_dir(dir.path(), &id, 0).with_file_name("notes")).unwrap();
        assert_eq!(kept_until(&t, 0), Some(date("2026-01-31")));
        assert!(expired(dir.path(), PULLS, [&t], date("2026-01-31")).is_empty());
        let gone = expired(dir.path(), PULLS, [&t], date("2026-02-01"));
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].epoch, gone[0].kept_until), (0, date("2026-01-31")));
        assert_eq!(
            expired(dir.path(), PULLS, [&t], date("2026-04-01"))
                .iter()
                .map(|e| e.epoch)
                .collect::<Vec<_>>(),
            [0, 2]
        );
        // An agreement that keeps longer keeps its feeds.
        assert!(expired(dir.path(), PULLS, [&terms(365)], date("2026-04-01")).is_empty());

        erase(&gone[0].dir).unwrap();
        assert!(!gone[0].dir.exists());
        assert!(pull_dir(dir.path(), &id, 2).exists());
        assert!(expired(dir.path(), PULLS, [&t], date("2026-02-01")).is_empty());
    }

    #[test]
    fn an_interrupted_erasure_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let t = terms(0);
        let d = pull_dir(dir.path(), &t.id(), 0);
        std::fs::create_dir_all(&d).unwrap();
        let aside = d.with_file_name(".erasing-0");
        std::fs::rename(&d, &aside).unwrap();
        std::fs::write(aside.join(crate::pull::chunkfile::FILE), b"tokens").unwrap();
        assert_eq!(finish_interrupted(dir.path(), PULLS).unwrap(), 1);
        assert!(!aside.exists());
        assert_eq!(finish_interrupted(dir.path(), PULLS).unwrap(), 0);
        // The aside directory is no epoch.
        assert!(expired(dir.path(), PULLS, [&t], date("2030-01-01")).is_empty());
    }
}
