//! Generations as an operator relies on them: a truncated export must not
//! wipe a dataset, and a generation a published feed reads is kept until
//! no feed needs it.

use super::tests::{Env, nth_id};
use super::*;

/// A registry export of `rows` residents.
fn export(env: &Env, name: &str, rows: u64) -> std::path::PathBuf {
    let mut text = String::from("id_number,name\n");
    for n in 0..rows {
        text.push_str(&format!("{},resident {n}\n", nth_id(n)));
    }
    env.file(name, text)
}

fn generations(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.data().join(DATASETS_DIR).join("registry"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_header_only_export_is_refused_and_the_dataset_kept() {
    let env = Env::new();
    let full = export(&env, "full.csv", 10);
    env.import("registry", &full).unwrap();
    let empty = export(&env, "empty.csv", 0);
    let e = env.import("registry", &empty).unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Shrinking {
                rows: 0,
                current: 10,
                generation: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.starts_with(&empty.display().to_string()), "{text}");
    assert!(text.contains("--accept-shrink"), "{text}");
    assert_eq!(
        env.records("registry").len(),
        10,
        "the good generation stays"
    );
    assert_eq!(
        generations(&env),
        ["gen-1"],
        "nothing of the refused import is left"
    );
    assert!(
        receipts(&env.data()).iter().all(|(_, r)| r.generation == 1),
        "the refused import leaves no receipt for the daemon"
    );
}

#[test]
fn an_export_under_half_the_rows_is_refused_unless_accepted() {
    let env = Env::new();
    env.import("registry", &export(&env, "full.csv", 10))
        .unwrap();
    let cut = export(&env, "cut.csv", 4);
    let e = env.import("registry", &cut).unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Shrinking {
                rows: 4,
                current: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(env.records("registry").len(), 10);
    let mut opts = env.opts("registry", &cut);
    opts.accept_shrink = true;
    let report = import(&env.data(), &opts).unwrap();
    assert_eq!((report.generation, report.rows_kept), (2, 4));
    assert_eq!(env.records("registry").len(), 4);
}

#[test]
fn half_the_rows_or_more_imports_and_so_does_a_first_empty_export() {
    let env = Env::new();
    env.import("registry", &export(&env, "none.csv", 0))
        .unwrap();
    env.import("registry", &export(&env, "full.csv", 10))
        .unwrap();
    let report = env
        .import("registry", &export(&env, "half.csv", 5))
        .unwrap();
    assert_eq!((report.generation, report.rows_kept), (3, 5));
}

#[test]
fn a_pinned_generation_outlives_imports_until_unpinned() {
    let env = Env::new();
    env.import("registry", &export(&env, "a.csv", 10)).unwrap();
    pin(&env.data(), "registry", "feed-1", 1).unwrap();
    env.import("registry", &export(&env, "b.csv", 10)).unwrap();
    env.import("registry", &export(&env, "c.csv", 10)).unwrap();
    assert_eq!(
        generations(&env),
        ["gen-1", "gen-3"],
        "gen-2 went, gen-1 is pinned"
    );
    let old = DatasetReader::open_at(&env.data(), "registry", 1).unwrap();
    assert_eq!(old.report().generation, 1);
    // The same holder moves to the current generation: gen-1 goes next.
    pin(&env.data(), "registry", "feed-1", 3).unwrap();
    env.import("registry", &export(&env, "d.csv", 10)).unwrap();
    assert_eq!(generations(&env), ["gen-3", "gen-4"]);
    unpin(&env.data(), "registry", "feed-1").unwrap();
    env.import("registry", &export(&env, "e.csv", 10)).unwrap();
    assert_eq!(generations(&env), ["gen-5"]);
    let gone = pin(&env.data(), "registry", "feed-2", 3).unwrap_err();
    assert!(
        matches!(gone, ImportError::GenerationGone { generation: 3, .. }),
        "{gone:?}"
    );
    assert!(matches!(
        DatasetReader::open_at(&env.data(), "registry", 3),
        Err(ImportError::GenerationGone { .. })
    ));
}

#[test]
fn an_export_larger_than_the_free_disk_is_refused_before_anything_is_written() {
    let env = Env::new();
    let full = export(&env, "full.csv", 10);
    env.import("registry", &full).unwrap();
    // An export as large as the disk is free, and more (sparse: it takes no
    // room itself; its first rows are real, the rest never read).
    let huge = export(&env, "huge.csv", 10);
    let free = super::extsort::available_space(env.dir.path()).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(free + (1 << 30))
        .unwrap();
    let e = env.import("registry", &huge).unwrap_err();
    assert!(
        matches!(
            &e,
            ImportError::Sort(super::sorted::SortedError::NoSpace { needed, available, .. })
                if needed > available
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("importing this export"), "{e}");
    assert_eq!(generations(&env), ["gen-1"], "nothing of it is left");
    assert_eq!(env.records("registry").len(), 10, "the dataset stays");
}
