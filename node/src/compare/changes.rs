//! What changed since the previous cycle: for every result whose file
//! names people (its first column `id_number`), who is new, who left and
//! who stayed, against the same result of a previous comparison's output;
//! each with what this cycle's results honestly say about why (a person
//! who left one result and is in another now), and plainly nothing where
//! they cannot (a person who left every result may have been insured, died,
//! moved out or been corrected at the source: the comparator does not
//! know). Results of tokens only cannot be matched across cycles (their
//! tokens change every epoch) and are named as such. Written as
//! `changes/<result>.csv` (`id_number,change,note`) and in `summary.json`.
//! A leaf module: it reads and writes files, it takes no step of the cycle.

use crate::compare::error::CycleError;
use crate::compare::files::write_csv;
use crate::compare::summary::{Changes, ResultChanges};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The folder of the change lists in a comparison's output.
pub const CHANGES_DIR: &str = "changes";

/// The ID numbers of a result file whose first column is `id_number`
/// (`None` for a file of tokens, or none).
fn ids_of(file: &Path) -> Result<Option<BTreeSet<String>>, CycleError> {
    let Ok(mut rd) = csv::Reader::from_path(file) else {
        return Ok(None);
    };
    let names = rd.headers().map_err(|source| CycleError::Csv {
        path: file.to_path_buf(),
        source,
    })?;
    if names.get(0) != Some("id_number") {
        return Ok(None);
    }
    let mut ids = BTreeSet::new();
    for rec in rd.records() {
        let rec = rec.map_err(|source| CycleError::Csv {
            path: file.to_path_buf(),
            source,
        })?;
        if let Some(id) = rec.get(0) {
            ids.insert(id.to_string());
        }
    }
    Ok(Some(ids))
}

/// The people of every result of the comparison in `dir`, by result, from
/// its `summary.json`'s result names (`<name>.csv` in `dir`).
fn people(dir: &Path, names: impl Iterator<Item = String>) -> Result<Sets, CycleError> {
    let mut sets = Sets::new();
    for name in names {
        if let Some(ids) = ids_of(&dir.join(format!("{name}.csv")))? {
            sets.insert(name, ids);
        }
    }
    Ok(sets)
}

type Sets = BTreeMap<String, BTreeSet<String>>;

/// The first other result of `sets` (not `name`) that holds `id`.
fn elsewhere<'a>(sets: &'a Sets, name: &str, id: &str) -> Option<&'a str> {
    sets.iter()
        .find(|(n, ids)| n.as_str() != name && ids.contains(id))
        .map(|(n, _)| n.as_str())
}

/// Compares this cycle's results (`results`, named, each `<name>.csv` in
/// `out`) with those of the comparison in `previous`, and writes the
/// change lists.
pub(crate) fn between(
    previous: &Path,
    out: &Path,
    results: &[String],
) -> Result<Changes, CycleError> {
    let summary_path = previous.join("summary.json");
    let prev: serde_json::Value = std::fs::read(&summary_path)
        .map_err(|source| CycleError::Io {
            path: summary_path.clone(),
            source,
        })
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| CycleError::Io {
                path: summary_path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })
        })?;
    let prev_names: Vec<String> = prev["results"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let before = people(previous, prev_names.iter().cloned())?;
    let now = people(out, results.iter().cloned())?;
    let dir = out.join(CHANGES_DIR);
    let mut changes = Changes {
        previous: previous.display().to_string(),
        previous_epoch: prev["epoch"].as_u64(),
        results: BTreeMap::new(),
        not_compared: BTreeMap::new(),
    };
    for name in results {
        let (Some(cur), Some(old)) = (now.get(name), before.get(name)) else {
            let why = if !now.contains_key(name) {
                "not disclosed: a result of tokens cannot be matched across cycles (tokens change every epoch)"
            } else if prev_names.contains(name) {
                "not disclosed in the previous comparison: its people cannot be matched"
            } else {
                "not in the previous comparison's results"
            };
            changes.not_compared.insert(name.clone(), why.into());
            continue;
        };
        let mut rows: Vec<Vec<String>> = Vec::new();
        for id in cur.difference(old) {
            let note = elsewhere(&before, name, id)
                .map(|o| format!("in {o} last cycle"))
                .unwrap_or_default();
            rows.push(vec![id.clone(), "new".into(), note]);
        }
        for id in old.difference(cur) {
            let note = match elsewhere(&now, name, id) {
                Some(o) => format!("in {o} this cycle"),
                None => "in no result this cycle: insured, died, moved out or corrected at the source; this cycle's results do not say which".into(),
            };
            rows.push(vec![id.clone(), "left".into(), note]);
        }
        for id in cur.intersection(old) {
            rows.push(vec![id.clone(), "stayed".into(), String::new()]);
        }
        let count = |c: &str| rows.iter().filter(|r| r[1] == c).count() as u64;
        std::fs::create_dir_all(&dir).map_err(|source| CycleError::Io {
            path: dir.clone(),
            source,
        })?;
        let file = dir.join(format!("{name}.csv"));
        let header = ["id_number", "change", "note"].map(String::from);
        write_csv(&file, &header, &rows)?;
        changes.results.insert(
            name.clone(),
            ResultChanges {
                new: count("new"),
                left: count("left"),
                stayed: count("stayed"),
                file: file.display().to_string(),
            },
        );
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn new_left_and_stayed_with_what_this_cycle_says_of_why() {
        let (prev, cur) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(
            prev.path(),
            "summary.json",
            r#"{"epoch": 4, "results": {"uninsured": {}, "deceased_insured": {}, "tokens_only": {}}}"#,
        );
        write(
            prev.path(),
            "uninsured.csv",
            "id_number,name\nA,a\nB,b\nC,c\nC,c2\n",
        );
        write(prev.path(), "deceased_insured.csv", "id_number\nD\n");
        write(prev.path(), "tokens_only.csv", "token\n00\n");
        write(
            cur.path(),
            "uninsured.csv",
            "id_number,name\nB,b\nD,d\nE,e\n",
        );
        write(cur.path(), "deceased_insured.csv", "id_number\nA\n");
        write(cur.path(), "tokens_only.csv", "token\n01\n");
        write(cur.path(), "disabled_uninsured.csv", "id_number\nE\n");
        let results = [
            "uninsured",
            "deceased_insured",
            "tokens_only",
            "disabled_uninsured",
        ]
        .map(String::from);
        let c = between(prev.path(), cur.path(), &results).unwrap();
        assert_eq!(c.previous_epoch, Some(4));
        let u = &c.results["uninsured"];
        assert_eq!((u.new, u.left, u.stayed), (2, 2, 1), "C counted once");
        let text = std::fs::read_to_string(cur.path().join("changes/uninsured.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "id_number,change,note",
                "D,new,in deceased_insured last cycle",
                "E,new,",
                "A,left,in deceased_insured this cycle",
                "C,left,\"in no result this cycle: insured, died, moved out or corrected at the source; this cycle's results do not say which\"",
                "B,stayed,",
            ]
        );
        assert!(c.not_compared["tokens_only"].contains("tokens change every epoch"));
        assert!(c.not_compared["disabled_uninsured"].contains("not in the previous"));
        assert!(!cur.path().join("changes/tokens_only.csv").exists());
    }

    #[test]
    fn a_previous_folder_without_a_summary_is_named() {
        let (prev, cur) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let e = between(prev.path(), cur.path(), &[]).unwrap_err();
        assert!(e.to_string().contains("summary.json"), "{e}");
    }
}
