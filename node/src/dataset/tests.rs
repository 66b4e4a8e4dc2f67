//! What a department's IT operator relies on when importing an export.

use super::*;
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::check_character;
use std::path::{Path, PathBuf};

fn reference() -> Date {
    Date::new(2026, 11, 27).unwrap()
}

/// A valid 18-character ID from its first 17 digits.
pub(super) fn id18(first17: &str) -> String {
    assert_eq!(first17.len(), 17);
    let mut s = first17.to_string();
    s.push(check_character(first17.as_bytes()) as char);
    s
}

/// The `n`th valid test ID (born 1950-1990, region 440105).
pub(super) fn nth_id(n: u64) -> String {
    let year = 1950 + n % 40;
    let month = 1 + (n / 40) % 12;
    let day = 1 + (n / 480) % 28;
    let seq = (n / 13_440) % 1000;
    id18(&format!("440105{year:04}{month:02}{day:02}{seq:03}"))
}

pub(super) struct Env {
    pub(super) dir: tempfile::TempDir,
}

impl Env {
    pub(super) fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub(super) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub(super) fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
    pub(super) fn opts(&self, dataset: &str, file: &Path) -> ImportOptions {
        ImportOptions {
            dataset: dataset.into(),
            file: file.to_path_buf(),
            mapping: None,
            format: None,
            reference: reference(),
            encoding: None,
            delimiter: None,
            sheet: None,
            accept_shrink: false,
            memory: crate::base::config::LimitsConfig::default().sort_bytes(),
        }
    }
    pub(super) fn import(&self, dataset: &str, file: &Path) -> Result<ImportReport, ImportError> {
        import(&self.data(), &self.opts(dataset, file))
    }
    pub(super) fn records(&self, dataset: &str) -> Vec<Record> {
        let reader = DatasetReader::open(&self.data(), dataset).unwrap();
        reader.blocks().flat_map(|b| b.unwrap()).collect()
    }
    pub(super) fn quarantine(&self, dataset: &str) -> Vec<Vec<String>> {
        let path = current_dir(&self.data(), dataset)
            .unwrap()
            .join(QUARANTINE_FILE);
        let mut rdr = csv::Reader::from_path(path).unwrap();
        assert_eq!(
            rdr.headers().unwrap().iter().collect::<Vec<_>>(),
            ["file", "line", "column", "raw_value", "reason"]
        );
        rdr.records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }
}

/// The error's file, line and problem, for a malformed input.
fn malformed(e: ImportError) -> (PathBuf, u64, Problem) {
    match e {
        ImportError::Malformed {
            file,
            line,
            problem,
        } => (file, line, problem),
        other => panic!("expected a malformed-input error, got {other:?}"),
    }
}

#[test]
fn dirty_id_forms_are_normalised_and_counted_by_fix() {
    let env = Env::new();
    let ids: Vec<String> = (0..7).map(nth_id).collect();
    let full_width: String = ids[1]
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
            'X' => 'Ｘ',
            c => c,
        })
        .collect();
    // A valid ID ending in X, written with a lowercase x.
    let x_id = (100..).map(nth_id).find(|id| id.ends_with('X')).unwrap();
    let lower = x_id.to_lowercase();
    let spaced = format!(
        " {} {}\u{3000}{} ",
        &ids[3][..6],
        &ids[3][6..14],
        &ids[3][14..]
    );
    let separated = format!("{}-{}-{}", &ids[4][..6], &ids[4][6..14], &ids[4][14..]);
    // Legacy 15 digits: no century, no check character.
    let legacy_full = id18("44010519551103123");
    let legacy = format!("{}{}", &legacy_full[..6], &legacy_full[8..17]);
    let csv = format!(
        "id_number,name,birth_date\n\
         {},Plain,1950-01-01\n\
         {full_width},Full,19510101\n\
         {lower},Lower,1952/01/01\n\
         \"{spaced}\",Spaced,1953.01.01\n\
         {separated},Sep,\n\
         {legacy},Legacy,1955-11-03\n",
        ids[0]
    );
    let file = env.file("registry.csv", csv);
    let report = env.import("registry", &file).unwrap();
    assert_eq!(report.rows_read, 6);
    assert_eq!(report.rows_kept, 6);
    assert_eq!(report.rows_quarantined, 0);
    let fixes: Vec<(&str, u64)> = report.fixes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        fixes,
        [
            ("full_width", 1),
            ("legacy_15", 1),
            ("lowercase_x", 1),
            ("separator", 1),
            ("whitespace", 1)
        ]
    );
    let records = env.records("registry");
    let got: Vec<(String, Vec<String>)> = records
        .iter()
        .map(|r| (r.id.to_string(), r.values.clone()))
        .collect();
    let want = [
        (ids[0].clone(), ["Plain", "1950-01-01"]),
        (ids[1].clone(), ["Full", "1951-01-01"]),
        (x_id.clone(), ["Lower", "1952-01-01"]),
        (ids[3].clone(), ["Spaced", "1953-01-01"]),
        (ids[4].clone(), ["Sep", ""]),
        (legacy_full.clone(), ["Legacy", "1955-11-03"]),
    ];
    let want: Vec<(String, Vec<String>)> = want
        .iter()
        .map(|(id, v)| (id.clone(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(report.distinct_ids, 6);
    assert_eq!(report.format, Format::Csv);
    assert_eq!(report.columns, ["id_number", "name", "birth_date"]);
    assert_eq!(report.generation, 1);
    assert_eq!(report.source_sha256.len(), 64);
}

#[test]
fn values_that_cannot_be_normalised_are_quarantined_with_file_line_column_reason() {
    let env = Env::new();
    let good = nth_id(1);
    let mut wrong_check = nth_id(2);
    let last = wrong_check.pop().unwrap();
    wrong_check.push(if last == '0' { '1' } else { '0' });
    let impossible = id18("44010519490231002");
    let future = id18("44010520300101002");
    let short = &nth_id(3)[..17];
    let csv = format!(
        "id_number,name,death_date\n\
         {good},Good,2020-01-05\n\
         {wrong_check},Wrong check,\n\
         {impossible},No such day,\n\
         {future},Unborn,\n\
         {short},Short,\n\
         {},Bad death date,2020-02-30\n",
        nth_id(4)
    );
    let file = env.file("deaths.csv", &csv);
    let report = env.import("deaths", &file).unwrap();
    assert_eq!(report.rows_read, 6);
    assert_eq!(report.rows_kept, 1);
    assert_eq!(report.rows_quarantined, 5);
    let counts: Vec<(&str, u64)> = report
        .quarantined
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        counts,
        [
            ("check_character", 1),
            ("future_birth_date", 1),
            ("invalid_birth_date", 1),
            ("invalid_date", 1),
            ("length", 1)
        ]
    );
    let f = file.display().to_string();
    let row = |line: &str, column: &str, raw: &str, reason: &str| {
        vec![
            f.clone(),
            line.to_string(),
            column.to_string(),
            raw.to_string(),
            reason.to_string(),
        ]
    };
    assert_eq!(
        env.quarantine("deaths"),
        [
            row("3", "id_number", &wrong_check, "check_character"),
            row("4", "id_number", &impossible, "invalid_birth_date"),
            row("5", "id_number", &future, "future_birth_date"),
            row("6", "id_number", short, "length"),
            row("7", "death_date", "2020-02-30", "invalid_date"),
        ]
    );
    assert_eq!(env.records("deaths").len(), 1);
}

#[test]
fn quarantine_lines_are_physical_lines_with_crlf_blank_lines_and_multiline_fields() {
    let env = Env::new();
    let csv = format!(
        "\u{FEFF}id_number,address\r\n\
         \r\n\
         {},\"two\r\nlines\"\r\n\
         bad,x\r\n\
         \r\n\
         {},\"a, b\"\r\n\
         12345,y",
        nth_id(1),
        nth_id(2)
    );
    let file = env.file("crlf.csv", csv);
    let report = env.import("crlf", &file).unwrap();
    assert_eq!(report.rows_kept, 2);
    let q = env.quarantine("crlf");
    assert_eq!(q.len(), 2);
    assert_eq!((q[0][1].as_str(), q[0][3].as_str()), ("5", "bad"));
    assert_eq!(q[0][4], "invalid_character");
    assert_eq!((q[1][1].as_str(), q[1][3].as_str()), ("8", "12345"));
    assert_eq!(q[1][4], "length");
    let records = env.records("crlf");
    assert_eq!(records[0].values, ["two\r\nlines"]);
    assert_eq!(records[1].values, ["a, b"]);
}

#[test]
fn exact_duplicates_collapse_and_are_counted() {
    let env = Env::new();
    let a = nth_id(10);
    let b = nth_id(11);
    let csv = format!(
        "id_number,name,status\n\
         {a},Li Na,active\n\
         {b},Wang Fang,active\n\
         {a},Li Na,active\n\
         {a} , Li Na ,active\n\
         {a},Li Na,moved_out\n\
         {b},Wang Fang,active\n"
    );
    let file = env.file("dups.csv", csv);
    let report = env.import("registry", &file).unwrap();
    assert_eq!(report.rows_read, 6);
    assert_eq!(report.duplicate_rows, 3);
    assert_eq!(report.rows_kept, 3);
    assert_eq!(report.distinct_ids, 2);
    assert_eq!(report.ids_with_several_rows, 1);
    let records = env.records("registry");
    let got: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.id.to_string(), r.values[1].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (a.clone(), "active".to_string()),
            (b.clone(), "active".to_string()),
            (a.clone(), "moved_out".to_string())
        ]
    );
}

#[test]
fn one_id_with_several_rows_is_kept_and_counted() {
    let env = Env::new();
    let a = nth_id(20);
    let b = nth_id(21);
    let csv = format!(
        "id_number,name,insurance_type,status,since\n\
         {a},Zhao Min,enterprise_pension,active,2010-03-01\n\
         {a},Zhao Min,employee_medical,active,2010-03-01\n\
         {a},Zhao Min,unemployment,active,2012-07-01\n\
         {b},Huang Qiang,resident_medical,active,20200101\n"
    );
    let file = env.file("insured.csv", csv);
    let report = env.import("insured", &file).unwrap();
    assert_eq!(report.rows_kept, 4);
    assert_eq!(report.duplicate_rows, 0);
    assert_eq!(report.distinct_ids, 2);
    assert_eq!(report.ids_with_several_rows, 1);
    let records = env.records("insured");
    assert_eq!(records[3].values[3], "2020-01-01");
}

#[test]
fn mapping_renames_chinese_headers_and_translates_values() {
    let env = Env::new();
    let a = nth_id(30);
    let mother = nth_id(31);
    let csv = format!(
        "身份证号,姓名,状态,出生日期,母亲身份证号,备注\n\
         {a},张伟,正常,1990-05-06,{},无\n\
         {},李娜,迁出,19910607,,\n",
        mother.to_lowercase(),
        nth_id(32)
    );
    let file = env.file("户籍.csv", csv);
    let mapping = env.file(
        "mapping.toml",
        "id_column = \"id_number\"\n\
         [columns]\n\
         \"身份证号\" = \"id_number\"\n\
         \"姓名\" = \"name\"\n\
         \"状态\" = \"status\"\n\
         \"出生日期\" = \"birth_date\"\n\
         \"母亲身份证号\" = \"mother_id_number\"\n\
         [values.status]\n\
         \"正常\" = \"active\"\n\
         \"迁出\" = \"moved_out\"\n",
    );
    let mut opts = env.opts("registry", &file);
    opts.mapping = Some(mapping);
    let report = import(&env.data(), &opts).unwrap();
    assert_eq!(
        report.columns,
        [
            "id_number",
            "name",
            "status",
            "birth_date",
            "mother_id_number",
            "备注"
        ]
    );
    assert_eq!(
        report.fixes["lowercase_x"],
        u64::from(mother.ends_with('X'))
    );
    let reader = DatasetReader::open(&env.data(), "registry").unwrap();
    assert_eq!(reader.id_column(), "id_number");
    assert_eq!(
        reader.columns(),
        ["name", "status", "birth_date", "mother_id_number", "备注"]
    );
    let records = env.records("registry");
    assert_eq!(
        records[0].values,
        ["张伟", "active", "1990-05-06", mother.as_str(), "无"]
    );
    assert_eq!(
        records[1].values,
        ["李娜", "moved_out", "1991-06-07", "", ""]
    );
}

#[test]
fn mapping_errors_name_the_mapping_file_and_line() {
    let env = Env::new();
    let file = env.file("r.csv", format!("id,name\n{},x\n", nth_id(1)));
    let cases = [
        (
            "[columns]\n\"id\" = \"id_number\"\n\"名\" = \"nmae\"\n",
            3,
            "not a canonical column",
        ),
        ("id_column = \"name\"\n", 1, "not an ID column"),
        ("[columns]\nid = \n", 2, ""),
        ("\n\nunknown = 1\n", 3, "unknown"),
    ];
    for (text, line, needle) in cases {
        let mapping = env.file("m.toml", text);
        let mut opts = env.opts("r", &file);
        opts.mapping = Some(mapping.clone());
        match import(&env.data(), &opts) {
            Err(ImportError::Mapping {
                file: f,
                line: l,
                message,
            }) => {
                assert_eq!(f, mapping);
                assert_eq!(l, line, "{text:?}: {message}");
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn json_lines_are_imported_and_a_non_object_line_is_an_error_with_its_line() {
    let env = Env::new();
    let a = nth_id(40);
    let b = nth_id(41);
    let jsonl = format!(
        "{{\"id_number\":\"{a}\",\"name\":\"Chen Jing\",\"level\":2,\"category\":null,\"certificate_date\":\"2019-04-01\"}}\n\
         \n\
         {{\"name\":\"Yang Lei\",\"id_number\":\"{b}\",\"level\":true}}\n"
    );
    let file = env.file("disabled.jsonl", jsonl);
    let report = env.import("disability", &file).unwrap();
    assert_eq!(report.format, Format::JsonLines);
    assert_eq!(
        report.columns,
        ["id_number", "name", "level", "category", "certificate_date"]
    );
    let records = env.records("disability");
    assert_eq!(records[0].values, ["Chen Jing", "2", "", "2019-04-01"]);
    assert_eq!(records[1].id.to_string(), b);
    assert_eq!(records[1].values, ["Yang Lei", "true", "", ""]);

    let bad = env.file(
        "bad.ndjson",
        format!("{{\"id_number\":\"{a}\"}}\n{{\"id_number\":\"{b}\"}}\n[1,2]\n"),
    );
    let (f, line, problem) = malformed(env.import("disability", &bad).unwrap_err());
    assert_eq!((f, line, problem), (bad.clone(), 3, Problem::NotAnObject));
    let bad = env.file(
        "bad2.jsonl",
        format!("{{\"id_number\":\"{a}\"}}\n{{\"id_number\":\n"),
    );
    let (_, line, problem) = malformed(env.import("disability", &bad).unwrap_err());
    assert_eq!(line, 2);
    assert!(matches!(problem, Problem::InvalidJson(_)));
    let bad = env.file(
        "bad3.jsonl",
        format!("{{\"id_number\":\"{a}\"}}\n{{\"other\":1}}\n"),
    );
    let (_, line, problem) = malformed(env.import("disability", &bad).unwrap_err());
    assert_eq!(
        (line, problem),
        (
            2,
            Problem::UnknownJsonKey {
                key: "other".into()
            }
        )
    );
    // The failed imports left the first one in place.
    assert_eq!(env.records("disability").len(), 2);
}

#[test]
fn malformed_csv_stops_with_file_line_and_problem() {
    let env = Env::new();
    let a = nth_id(50);
    let b = nth_id(51);
    let cases: Vec<(&str, Vec<u8>, u64, Problem)> = vec![
        (
            "unterminated",
            format!("id_number,name\n{a},x\n{b},\"never closed\n{a},z\n").into_bytes(),
            3,
            Problem::UnterminatedQuote,
        ),
        (
            "quote-inside",
            format!("id_number,name\n{a},x\n\n{b},ab\"c\n").into_bytes(),
            4,
            Problem::QuoteInUnquotedField,
        ),
        (
            "after-closing",
            format!("id_number,name\n{a},\"x\"y\n").into_bytes(),
            2,
            Problem::TextAfterClosingQuote,
        ),
        (
            "utf8",
            [
                format!("id_number,name\n{a},x\n{b},").into_bytes(),
                vec![0xE5, 0xBC],
                b"\n".to_vec(),
            ]
            .concat(),
            3,
            Problem::InvalidUtf8 {
                column: Some("name".into()),
            },
        ),
        ("empty", Vec::new(), 1, Problem::Empty),
        ("blank", b"\n\n".to_vec(), 1, Problem::Empty),
        (
            "missing-id",
            format!("name,status\nx,{a}\n").into_bytes(),
            1,
            Problem::MissingIdColumn {
                column: "id_number".into(),
                found: vec!["name".into(), "status".into()],
                accepted: vec!["id_number".into()],
            },
        ),
        (
            "duplicate-header",
            format!("id_number,Name,name \n{a},x,y\n").into_bytes(),
            1,
            Problem::DuplicateColumn {
                name: "name".into(),
                first: "Name".into(),
                second: "name".into(),
            },
        ),
        (
            "empty-header",
            format!("id_number,,name\n{a},x,y\n").into_bytes(),
            1,
            Problem::EmptyColumnName { position: 2 },
        ),
    ];
    for (name, content, line, problem) in cases {
        let file = env.file(&format!("{name}.csv"), &content);
        let err = env.import("registry", &file).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}:{line}: ", file.display())),
            "{name}: {text}"
        );
        assert_eq!(malformed(err), (file, line, problem), "{name}");
        assert!(
            current_dir(&env.data(), "registry").is_err(),
            "{name}: nothing became visible"
        );
    }
    let empty = env.data().join(DATASETS_DIR).join("registry");
    let leftovers: Vec<_> = std::fs::read_dir(&empty)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.iter().all(|n| n == "LOCK"), "{leftovers:?}");
}

#[test]
fn a_failed_import_leaves_the_previous_generation_readable_and_unchanged() {
    let env = Env::new();
    let good = env.file(
        "good.csv",
        format!("id_number,name\n{},One\n{},Two\n", nth_id(60), nth_id(61)),
    );
    let first = env.import("registry", &good).unwrap();
    let before = env.records("registry");
    let dir = current_dir(&env.data(), "registry").unwrap();
    let records_before = std::fs::read(dir.join(RECORDS_FILE)).unwrap();
    // Many rows, then a ragged one far into the file: blocks were written.
    let mut text = String::from("id_number,name\n");
    for n in 0..100_000 {
        text.push_str(&format!("{},Row {n}\n", nth_id(n)));
    }
    text.push_str("broken\"row,x,y\n");
    let bad = env.file("bad.csv", text);
    let err = env.import("registry", &bad).unwrap_err();
    assert_eq!(malformed(err).1, 100_002);
    assert_eq!(current_dir(&env.data(), "registry").unwrap(), dir);
    assert_eq!(
        std::fs::read(dir.join(RECORDS_FILE)).unwrap(),
        records_before
    );
    assert_eq!(env.records("registry"), before);
    let reader = DatasetReader::open(&env.data(), "registry").unwrap();
    assert_eq!(reader.report(), &first);
    let generations: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
        .collect();
    assert_eq!(generations.len(), 1);
    // The next good import becomes generation 2 and removes generation 1.
    let second = env.import("registry", &good).unwrap();
    assert_eq!(second.generation, 2);
    assert!(!dir.exists());
    assert_eq!(list(&env.data()).unwrap(), [second]);
}

#[test]
fn ragged_rows_are_quarantined_with_their_line_and_every_row_is_accounted_for() {
    let env = Env::new();
    let (a, b, c) = (nth_id(70), nth_id(71), nth_id(72));
    let file = env.file(
        "ragged.csv",
        format!("id_number,name\n{a},x\n{b},y,extra\n{c}\n{a},x\n{c},z\n"),
    );
    let r = env.import("registry", &file).unwrap();
    assert_eq!(r.rows_read, 5);
    assert_eq!(
        (r.rows_kept, r.rows_quarantined, r.duplicate_rows),
        (2, 2, 1)
    );
    assert_eq!(
        r.rows_read,
        r.rows_kept + r.rows_quarantined + r.duplicate_rows
    );
    assert_eq!(r.quarantined.get("ragged_row"), Some(&2));
    let q = env.quarantine("registry");
    let file_name = file.display().to_string();
    assert_eq!(
        q,
        [
            [
                &file_name,
                "3",
                "(3 fields; the header has 2)",
                &format!("{b},y,extra"),
                "ragged_row"
            ],
            [
                &file_name,
                "4",
                "(1 fields; the header has 2)",
                &c,
                "ragged_row"
            ],
        ]
        .map(|r| r.map(str::to_string).to_vec())
    );
}

#[test]
fn reader_round_trips_every_kept_record_across_block_boundaries() {
    let env = Env::new();
    let rows = 200_000u64;
    let mut text = String::from("id_number,name,birth_date,address\n");
    let mut want = Vec::new();
    for n in 0..rows {
        let id = nth_id(n);
        let name = format!("姓名{n}");
        let address = format!("广东省广州市人民路{}号", n % 977);
        text.push_str(&format!("{id},{name},{},{address}\n", &id[6..14]));
        let birth = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
        want.push(Record {
            id: dxmesh_protocol::id::normalise(&id, reference()).unwrap(),
            values: vec![name, birth, address],
        });
    }
    let file = env.file("big.csv", text);
    let report = env.import("big", &file).unwrap();
    assert_eq!(report.rows_kept, rows);
    assert_eq!(report.distinct_ids, rows);
    let reader = DatasetReader::open(&env.data(), "big").unwrap();
    let blocks: Vec<Vec<Record>> = reader.blocks().map(|b| b.unwrap()).collect();
    let sizes: Vec<usize> = blocks.iter().map(Vec::len).collect();
    assert_eq!(sizes, [65_536, 65_536, 65_536, 3_392]);
    let got: Vec<Record> = blocks.into_iter().flatten().collect();
    assert_eq!(got, want);
}

#[test]
fn blocks_are_cut_before_8_mib_and_long_values_round_trip() {
    let env = Env::new();
    let mut text = String::from("id_number,address\n");
    let mut want = Vec::new();
    // Lengths around the codec's variable-length integer steps.
    let lengths = [0usize, 1, 250, 251, 252, 65_535, 65_536, 70_000];
    for n in 0..400u64 {
        let len = if n < 8 { lengths[n as usize] } else { 30_000 };
        let value = "地".repeat(len / 3) + &"a".repeat(len % 3);
        text.push_str(&format!("{},{value}\n", nth_id(n)));
        want.push(value);
    }
    let file = env.file("long.csv", text);
    env.import("long", &file).unwrap();
    let reader = DatasetReader::open(&env.data(), "long").unwrap();
    let mut got = Vec::new();
    let mut blocks = 0;
    for block in reader.blocks() {
        let block = block.unwrap();
        let bytes = dxmesh_protocol::codec::encode(&block).unwrap().len();
        assert!(bytes <= BLOCK_SOFT_LIMIT, "{bytes}");
        blocks += 1;
        got.extend(block.into_iter().map(|r| r.values[0].clone()));
    }
    assert_eq!(blocks, 2);
    assert_eq!(got, want);
}

#[test]
fn records_file_holds_exactly_the_codec_encoding() {
    let env = Env::new();
    let file = env.file(
        "r.csv",
        format!(
            "name,id_number,death_date\n甲,{},2001-02-03\n,{},\n",
            nth_id(1),
            nth_id(2)
        ),
    );
    env.import("deaths", &file).unwrap();
    let records = env.records("deaths");
    let body = dxmesh_protocol::codec::encode(&records).unwrap();
    let mut want = (body.len() as u32).to_be_bytes().to_vec();
    want.extend_from_slice(&body);
    let dir = current_dir(&env.data(), "deaths").unwrap();
    assert_eq!(std::fs::read(dir.join(RECORDS_FILE)).unwrap(), want);
    assert_eq!(records[0].values, ["甲", "2001-02-03"]);
}

#[test]
fn a_corrupt_block_is_an_error_naming_file_and_offset() {
    let env = Env::new();
    let file = env.file("r.csv", format!("id_number,name\n{},x\n", nth_id(1)));
    env.import("r", &file).unwrap();
    let path = current_dir(&env.data(), "r").unwrap().join(RECORDS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[len - 1] = 0xFF;
    bytes.extend_from_slice(&[0, 0]);
    std::fs::write(&path, &bytes).unwrap();
    let reader = DatasetReader::open(&env.data(), "r").unwrap();
    let results: Vec<_> = reader.blocks().collect();
    assert_eq!(results.len(), 1);
    match &results[0] {
        Err(ImportError::CorruptBlock { file, offset, .. }) => {
            assert_eq!(file, &path);
            assert_eq!(*offset, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_formats_locks_and_listing() {
    let env = Env::new();
    let file = env.file("r.csv", format!("id_number\n{}\n", nth_id(1)));
    for bad in ["", "Registry", "a-b", "../x", &"a".repeat(65)] {
        assert!(matches!(
            env.import(bad, &file),
            Err(ImportError::InvalidName(_))
        ));
    }
    let txt = env.file("r.dat", "id_number\n");
    assert!(matches!(
        env.import("r", &txt),
        Err(ImportError::UnknownFormat { .. })
    ));
    let mut opts = env.opts("r", &txt);
    opts.format = Some(Format::Csv);
    import(&env.data(), &opts).unwrap();
    assert!(matches!(
        DatasetReader::open(&env.data(), "none"),
        Err(ImportError::NotFound(_))
    ));
    // Another import holds the lock.
    let lock = std::fs::File::open(env.data().join(DATASETS_DIR).join("r").join("LOCK")).unwrap();
    lock.lock().unwrap();
    assert!(matches!(env.import("r", &file), Err(ImportError::Busy(_))));
    drop(lock);
    env.import("a_2", &file).unwrap();
    let names: Vec<String> = list(&env.data())
        .unwrap()
        .into_iter()
        .map(|r| r.dataset)
        .collect();
    assert_eq!(names, ["a_2", "r"]);
    // Only the key column.
    assert!(env.records("a_2")[0].values.is_empty());
}
