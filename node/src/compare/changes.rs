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
use crate::compare::rows::RowSort;
use crate::compare::summary::{Changes, ResultChanges};
use std::collections::BTreeMap;
use std::path::Path;

/// The folder of the change lists in a comparison's output.
pub const CHANGES_DIR: &str = "changes";

/// Whether a result file names people (its first column is `id_number`).
fn names_people(file: &Path) -> bool {
    csv::Reader::from_path(file)
        .ok()
        .and_then(|mut rd| rd.headers().ok().map(|h| h.get(0) == Some("id_number")))
        .unwrap_or(false)
}

/// Adds `(id, side, result)` for every row of a result file that names
/// people.
fn add_people(ids: &mut RowSort, file: &Path, side: &[u8], name: &str) -> Result<(), CycleError> {
    let csv_error = |source| CycleError::Csv {
        path: file.to_path_buf(),
        source,
    };
    let mut rd = csv::Reader::from_path(file).map_err(csv_error)?;
    for rec in rd.byte_records() {
        let rec = rec.map_err(csv_error)?;
        if let Some(id) = rec.get(0) {
            ids.push(&[id, side, name.as_bytes()])?;
        }
    }
    Ok(())
}

/// Which side of the comparison a row of the ID sort is from.
const BEFORE: &[u8] = b"0";
const NOW: &[u8] = b"1";

/// The change lists being written: per compared result, its rows
/// (`(rank, id, change, note)`, so that new, left and stayed follow each
/// other) and its counts.
type Lists = BTreeMap<String, (RowSort, [u64; 3])>;

/// One person's results on both sides, in name order: their rows in each
/// compared result's list.
fn list_person(
    lists: &mut Lists,
    id: &[u8],
    before: &[String],
    now: &[String],
) -> Result<(), CycleError> {
    let first_other = |side: &[String], name: &str| side.iter().find(|n| *n != name).cloned();
    for (name, (rows, counts)) in lists.iter_mut() {
        let (was, is) = (before.contains(name), now.contains(name));
        let (rank, change, note) = match (was, is) {
            (false, true) => (
                0,
                "new",
                first_other(before, name)
                    .map(|o| format!("in {o} last cycle"))
                    .unwrap_or_default(),
            ),
            (true, false) => (
                1,
                "left",
                match first_other(now, name) {
                    Some(o) => format!("in {o} this cycle"),
                    None => "in no result this cycle: insured, died, moved out or corrected at the source; this cycle's results do not say which".into(),
                },
            ),
            (true, true) => (2, "stayed", String::new()),
            (false, false) => continue,
        };
        counts[rank] += 1;
        rows.push(&[
            rank.to_string().as_bytes(),
            id,
            change.as_bytes(),
            note.as_bytes(),
        ])?;
    }
    Ok(())
}

/// Compares this cycle's results (`results`, named, each `<name>.csv` in
/// `out`) with those of the comparison in `previous`, and writes the
/// change lists. The people of both are sorted by ID on disk in `memory`
/// bytes (runs under `data_dir`), and each person's results on both sides
/// read together.
pub(crate) fn between(
    previous: &Path,
    out: &Path,
    results: &[String],
    (data_dir, memory): (&Path, usize),
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
    let file_of = |dir: &Path, name: &str| dir.join(format!("{name}.csv"));
    let before: Vec<&String> = prev_names
        .iter()
        .filter(|n| names_people(&file_of(previous, n)))
        .collect();
    let now: Vec<&String> = results
        .iter()
        .filter(|n| names_people(&file_of(out, n)))
        .collect();
    let dir = out.join(CHANGES_DIR);
    let mut changes = Changes {
        previous: previous.display().to_string(),
        previous_epoch: prev["epoch"].as_u64(),
        results: BTreeMap::new(),
        not_compared: BTreeMap::new(),
    };
    let mut compared = Vec::new();
    for name in results {
        if now.contains(&name) && before.contains(&name) {
            compared.push(name.clone());
            continue;
        }
        let why = if !now.contains(&name) {
            "not disclosed: a result of tokens cannot be matched across cycles (tokens change every epoch)"
        } else if prev_names.contains(name) {
            "not disclosed in the previous comparison: its people cannot be matched"
        } else {
            "not in the previous comparison's results"
        };
        changes.not_compared.insert(name.clone(), why.into());
    }
    let share = memory / (compared.len() + 1);
    let mut ids = RowSort::new(data_dir, share)?;
    for name in &before {
        add_people(&mut ids, &file_of(previous, name), BEFORE, name)?;
    }
    for name in &now {
        add_people(&mut ids, &file_of(out, name), NOW, name)?;
    }
    let mut lists = Lists::new();
    for name in &compared {
        lists.insert(name.clone(), (RowSort::new(data_dir, share)?, [0; 3]));
    }
    let mut person: Vec<u8> = Vec::new();
    let (mut was, mut is): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    ids.for_each(|row| {
        let [id, side, name] = row else {
            return Ok(());
        };
        if *id != person {
            list_person(&mut lists, &person, &was, &is)?;
            person.clone_from(id);
            was.clear();
            is.clear();
        }
        let name = String::from_utf8_lossy(name).into_owned();
        if side == BEFORE {
            was.push(name)
        } else {
            is.push(name)
        }
        Ok(())
    })?;
    list_person(&mut lists, &person, &was, &is)?;
    if !lists.is_empty() {
        std::fs::create_dir_all(&dir).map_err(|source| CycleError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    for (name, (rows, [new, left, stayed])) in lists {
        let file = dir.join(format!("{name}.csv"));
        let header = ["id_number", "change", "note"].map(String::from);
        rows.write_csv(&file, &header, 1..4)?;
        changes.results.insert(
            name,
            ResultChanges {
                new,
                left,
                stayed,
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
        let c = between(prev.path(), cur.path(), &results, (prev.path(), 0)).unwrap();
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
        let e = between(prev.path(), cur.path(), &[], (prev.path(), 0)).unwrap_err();
        assert!(e.to_string().contains("summary.json"), "{e}");
    }
}
