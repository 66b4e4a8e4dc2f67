//! A feed within a node's memory budget: the same registry published with
//! its rows sorted in memory and with the least memory there is (the rows
//! spilled to more run files than one merge takes, merged in two levels)
//! gives the same feed byte for byte: chunks, private index, root, record
//! and ID counts, with the rows a projection made identical dropped in
//! both and the rows that differ in a clear value kept; the sort's run
//! files are gone afterwards.

use dxmesh_node::dataset::{ImportOptions, import};
use dxmesh_node::publish::build::{PublishInput, publish};
use dxmesh_node::publish::store::feed_dir;
use dxmesh_protocol::agreement::Terms;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::identity::Identity;
use dxmesh_protocol::token::EpochKey;
use dxmesh_tests::{registry_csv, registry_feed_terms, registry_rows};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file of a feed directory but its manifest, by name.
fn feed_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "manifest.bin")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn publish_with(
    data: &Path,
    terms: &Terms,
    provider: &Identity,
    memory: usize,
    republish: bool,
) -> Manifest {
    let key = EpochKey::from_bytes([7; 32]);
    let published = publish(&PublishInput {
        data_dir: data,
        terms,
        epoch: 0,
        key: Some(&key),
        identity: provider,
        previous: None,
        now: dxmesh_node::base::clock::now(),
        republish,
        memory,
    })
    .unwrap();
    published.manifest.verify_by(&provider.public()).unwrap()
}

#[test]
fn a_feed_sorted_in_the_least_memory_is_the_feed_sorted_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut rows = registry_rows(100_000);
    // A person's second row that differs in the address only (outside the
    // feed: the feed holds the person once) and one in another region (a
    // clear field of the feed: both rows are kept).
    let moved: Vec<_> = rows[..2_000]
        .iter()
        .filter(|r| r.in_scope())
        .cloned()
        .collect();
    let (same, other) = moved.split_at(moved.len() / 2);
    for r in same {
        let mut r = r.clone();
        r.address.push_str("（旧址）");
        rows.push(r);
    }
    for r in other {
        let mut r = r.clone();
        r.region = "440199".into();
        rows.push(r);
    }
    let csv = dir.path().join("registry.csv");
    std::fs::write(&csv, registry_csv(&rows)).unwrap();
    import(
        &data,
        &ImportOptions {
            dataset: "registry".into(),
            file: csv,
            mapping: None,
            format: None,
            reference: Date::parse(&dxmesh_tests::day(0)).unwrap(),
            encoding: None,
            delimiter: None,
            sheet: None,
            accept_shrink: false,
            memory: dxmesh_node::base::config::LimitsConfig::default().sort_bytes(),
        },
    )
    .unwrap();
    let provider = Identity::from_seed([1; 32]).unwrap();
    let consumer = Identity::from_seed([2; 32]).unwrap();
    let terms = registry_feed_terms(dir.path(), &provider, &consumer);

    let in_memory = publish_with(&data, &terms, &provider, 1 << 30, false);
    let feed = feed_dir(&data, &terms.id(), 0);
    let files = feed_files(&feed);
    let people = rows[..100_000].iter().filter(|r| r.in_scope()).count() as u64;
    assert_eq!(in_memory.quality.distinct_ids, people);
    assert_eq!(in_memory.records, people + other.len() as u64);
    assert_eq!(
        in_memory.quality.rows_kept,
        rows.len() as u64,
        "the import kept every row (none is an exact duplicate)"
    );

    let spilled = publish_with(&data, &terms, &provider, 0, true);
    assert_eq!(spilled.root, in_memory.root);
    assert_eq!(spilled.records, in_memory.records);
    assert_eq!(spilled.quality.distinct_ids, in_memory.quality.distinct_ids);
    assert_eq!(spilled.first_tokens, in_memory.first_tokens);
    let again = feed_files(&feed);
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    assert!(again == files, "the same chunks and index, byte for byte");
    // Nothing of the sort is left beside the feeds.
    let parent = feed.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
