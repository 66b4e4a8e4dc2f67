//! An export with more distinct rows than the duplicate table may hold in
//! the import's memory: imported with the least memory there is, the
//! dataset is the one a table holding every row gives, byte for byte, with
//! the same counts, whether a repeated row comes before the table filled
//! or after it, next to its first copy or far from it.

use super::tests::{Env, nth_id};
use super::*;

/// `people` people with two rows each (two insurance types); every 5th
/// row written again right after it, and every 3rd row of the first tenth
/// again at the end.
fn export(people: u64) -> String {
    let mut rows = Vec::new();
    for p in 0..people {
        for kind in ["pension", "medical"] {
            rows.push(format!("{},name{p},{kind}", nth_id(p)));
        }
    }
    let mut text = String::from("id_number,name,insurance_type\n");
    for (i, r) in rows.iter().enumerate() {
        text.push_str(r);
        text.push('\n');
        if i % 5 == 0 {
            text.push_str(r);
            text.push('\n');
        }
    }
    for r in rows.iter().take(rows.len() / 10).step_by(3) {
        text.push_str(r);
        text.push('\n');
    }
    text
}

fn import_with(memory: usize, csv: &str) -> (ImportReport, Vec<u8>, Env) {
    let env = Env::new();
    let file = env.file("insured.csv", csv);
    let report = import(
        &env.data(),
        &ImportOptions {
            memory,
            ..env.opts("insured", &file)
        },
    )
    .unwrap();
    let records = std::fs::read(
        current_dir(&env.data(), "insured")
            .unwrap()
            .join(RECORDS_FILE),
    )
    .unwrap();
    (report, records, env)
}

#[test]
fn rows_past_a_full_duplicate_table_are_deduplicated_as_a_table_of_them_all_would() {
    let csv = export(20_000);
    let (whole, whole_records, _a) = import_with(1 << 30, &csv);
    let (least, least_records, b) = import_with(0, &csv);
    assert_eq!(whole.rows_kept, 40_000);
    assert_eq!(whole.distinct_ids, 20_000);
    assert_eq!(whole.ids_with_several_rows, 20_000);
    assert_eq!(whole.duplicate_rows, 8_000 + 1_334);
    for (name, x, y) in [
        ("rows read", whole.rows_read, least.rows_read),
        ("rows kept", whole.rows_kept, least.rows_kept),
        ("duplicates", whole.duplicate_rows, least.duplicate_rows),
        ("distinct IDs", whole.distinct_ids, least.distinct_ids),
        (
            "IDs with several rows",
            whole.ids_with_several_rows,
            least.ids_with_several_rows,
        ),
    ] {
        assert_eq!(x, y, "{name}");
    }
    assert!(
        whole_records == least_records,
        "the same records, byte for byte"
    );
    // Nothing of the sort or the copy is left in the generation.
    let gen_dir = current_dir(&b.data(), "insured").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&gen_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["quarantine.csv", "records.bin", "report.json"]);
}
