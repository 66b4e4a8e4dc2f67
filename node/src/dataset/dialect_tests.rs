//! Exports as departments' systems write them besides comma-separated
//! UTF-8: other delimiters (found from the header line or named), and
//! workbooks (`.xlsx` made here with `rust_xlsxwriter`): sheets, number
//! cells holding ID numbers, date cells, serial and text dates, values
//! outside the table, and every row accounted for; and an `.xls` fixture
//! (`node/tests/fixtures/registry.xls`, made by the script beside it).

use super::tests::{Env, id18};
use super::*;
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};
use std::path::{Path, PathBuf};

const ID_A: &str = "44010519800101001";
const ID_B: &str = "44010519900202002";
const ID_C: &str = "11010519491231002";

/// (ID, values) of every kept row of dataset `d`.
fn rows(env: &Env) -> Vec<(String, Vec<String>)> {
    env.records("d")
        .into_iter()
        .map(|r| (r.id.as_str().to_string(), r.values))
        .collect()
}

/// (line, column, raw value, reason) of each quarantined value of `d`.
fn quarantine(env: &Env) -> Vec<(String, String, String, String)> {
    env.quarantine("d")
        .into_iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()))
        .collect()
}

/// Every row read is kept, quarantined or a duplicate.
fn accounted(r: &ImportReport) {
    assert_eq!(
        r.rows_read,
        r.rows_kept + r.rows_quarantined + r.duplicate_rows,
        "{r:?}"
    );
}

/// The same registry rows in a CSV dialect: a quoted field holding the
/// delimiter and a line break, CRLF line ends.
fn dialect_export(d: char) -> String {
    format!(
        "id_number{d}name{d}address\r\n{}{d}张伟{d}\"广州市{d}人民路1号\"\r\n{}{d}\"王芳\"{d}\"深圳市\r\n中山北路2号\"\r\n",
        id18(ID_A),
        id18(ID_B)
    )
}

#[test]
fn tab_semicolon_and_pipe_exports_import_like_comma_ones() {
    for (d, name, file) in [
        (',', "comma", "x.csv"),
        ('\t', "tab", "x.tsv"),
        (';', "semicolon", "x.csv"),
        ('|', "pipe", "x.txt"),
    ] {
        let env = Env::new();
        let path = env.dir.path().join(file);
        std::fs::write(&path, dialect_export(d)).unwrap();
        // Found from the header line, and named.
        for named in [None, Some(d as u8)] {
            let mut opts = env.opts("d", &path);
            opts.delimiter = named;
            let r = import(&env.data(), &opts).unwrap();
            assert_eq!(r.delimiter.as_deref(), Some(name));
            assert_eq!((r.rows_read, r.rows_kept), (2, 2), "{name}");
            let want = vec![
                (
                    id18(ID_A),
                    vec!["张伟".into(), format!("广州市{d}人民路1号")],
                ),
                (
                    id18(ID_B),
                    vec!["王芳".into(), "深圳市\r\n中山北路2号".into()],
                ),
            ];
            assert_eq!(rows(&env), want, "{name}");
        }
    }
}

#[test]
fn a_wrong_delimiter_reads_one_column_and_says_which_key_is_missing() {
    let env = Env::new();
    let path = env.dir.path().join("x.csv");
    std::fs::write(&path, dialect_export(';')).unwrap();
    let mut opts = env.opts("d", &path);
    opts.delimiter = Some(b'|');
    match import(&env.data(), &opts) {
        Err(ImportError::Malformed {
            line: 1,
            problem: Problem::MissingIdColumn { found, .. },
            ..
        }) => assert_eq!(found, ["id_number;name;address"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_quote_after_a_tab_opens_a_quoted_field_and_bad_quoting_names_its_line() {
    let env = Env::new();
    let path = env.dir.path().join("x.tsv");
    std::fs::write(&path, format!("id_number\tname\n{}\tab\"c\n", id18(ID_A))).unwrap();
    let e = env.import("d", &path).unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Malformed {
                line: 2,
                problem: Problem::QuoteInUnquotedField,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_header_only_export_imports_no_rows() {
    let env = Env::new();
    let path = env.dir.path().join("x.csv");
    std::fs::write(&path, "id_number;name\r\n").unwrap();
    let r = env.import("d", &path).unwrap();
    assert_eq!((r.rows_read, r.rows_kept), (0, 0));
    assert_eq!(r.columns, ["id_number", "name"]);
    assert_eq!(r.delimiter.as_deref(), Some("semicolon"));
}

/// A registry workbook: a first sheet of notes, then `人员` with Chinese
/// headers (mapped by deploy/mappings/zh-headers.toml), ID numbers as
/// text, as a 15-digit number and as an 18-digit number, birth dates as a
/// date cell, a serial number and text, a blank row and a value outside
/// the table.
fn registry_workbook(path: &Path) {
    let mut wb = Workbook::new();
    let notes = wb.add_worksheet();
    notes.set_name("说明").unwrap();
    notes.write(0, 0, "导出说明").unwrap();
    let ws = wb.add_worksheet();
    ws.set_name("人员").unwrap();
    let date = CellFormat::new().set_num_format("yyyy-mm-dd");
    for (c, h) in ["公民身份号码", "姓名", "出生日期"].iter().enumerate() {
        ws.write(0, c as u16, *h).unwrap();
    }
    // Row 2: text ID with a lowercase x, a date cell.
    let x_id = id18(ID_C).to_lowercase();
    ws.write(1, 0, x_id.as_str()).unwrap();
    ws.write(1, 1, "张伟").unwrap();
    let born = ExcelDateTime::from_ymd(1949, 12, 31).unwrap();
    ws.write_with_format(1, 2, &born, &date).unwrap();
    // Row 3: a 15-digit ID typed as a number, birth date as a serial.
    ws.write(2, 0, 440105800101001.0).unwrap();
    ws.write(2, 1, "王芳").unwrap();
    ws.write(2, 2, 29221.0).unwrap(); // 1980-01-01
    // Row 4: an 18-digit ID typed as a number (Excel keeps 15 digits).
    ws.write(3, 0, 440105199002020020.0).unwrap();
    ws.write(3, 1, "李娜").unwrap();
    ws.write(3, 2, "1990-02-02").unwrap();
    // Row 5 is blank; row 6: text date, full-width digits.
    let full: String = id18(ID_B)
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c))
        .collect();
    ws.write(5, 0, full.as_str()).unwrap();
    ws.write(5, 1, "赵敏").unwrap();
    ws.write(5, 2, "19900202").unwrap();
    // Row 7: a value outside the header's columns.
    ws.write(6, 0, id18(ID_A).as_str()).unwrap();
    ws.write(6, 3, "多余").unwrap();
    // Row 8: the same person as row 6 again, born at a time of day (a
    // date cell with a time: its date is kept, so a duplicate).
    ws.write(7, 0, full.as_str()).unwrap();
    ws.write(7, 1, "赵敏").unwrap();
    let at = ExcelDateTime::from_ymd(1990, 2, 2)
        .unwrap()
        .and_hms(6, 30, 0)
        .unwrap();
    let datetime = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    ws.write_with_format(7, 2, &at, &datetime).unwrap();
    wb.save(path).unwrap();
}

fn zh_mapping() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mappings/zh-headers.toml")
}

#[test]
fn an_xlsx_sheet_imports_with_ids_typed_as_numbers_checked_and_excel_dates_read() {
    let env = Env::new();
    let path = env.dir.path().join("registry.xlsx");
    registry_workbook(&path);
    let mut opts = env.opts("d", &path);
    opts.mapping = Some(zh_mapping());
    opts.sheet = Some("人员".into());
    let r = import(&env.data(), &opts).unwrap();
    accounted(&r);
    assert_eq!(r.format, Format::Xlsx);
    assert_eq!(r.sheet.as_deref(), Some("人员"));
    assert_eq!(r.columns, ["id_number", "name", "birth_date"]);
    assert_eq!(r.source_columns, ["公民身份号码", "姓名", "出生日期"]);
    assert_eq!(
        (
            r.rows_read,
            r.rows_kept,
            r.rows_quarantined,
            r.duplicate_rows
        ),
        (6, 3, 2, 1)
    );
    assert_eq!(r.fixes["lowercase_x"], 1);
    assert_eq!(r.fixes["legacy_15"], 1);
    assert_eq!(r.fixes["full_width"], 2);
    let mut rows = rows(&env);
    rows.sort();
    let mut want = vec![
        (
            id18(ID_C),
            vec!["张伟".to_string(), "1949-12-31".to_string()],
        ),
        (id18(ID_A), vec!["王芳".into(), "1980-01-01".into()]),
        (id18(ID_B), vec!["赵敏".into(), "1990-02-02".into()]),
    ];
    want.sort();
    assert_eq!(rows, want);
    // Quarantined with their Excel row numbers.
    let q = quarantine(&env);
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(
        q[0],
        (
            "4".into(),
            "公民身份号码".into(),
            "440105199002020000".into(),
            "number_precision_lost".into()
        )
    );
    assert_eq!((q[1].0.as_str(), q[1].3.as_str()), ("7", "ragged_row"));
    assert_eq!(r.quarantined["number_precision_lost"], 1);
}

#[test]
fn the_first_sheet_is_the_default_and_an_unknown_sheet_lists_the_sheets() {
    let env = Env::new();
    let path = env.dir.path().join("registry.xlsx");
    registry_workbook(&path);
    // The first sheet holds notes, not an ID column.
    match env.import("d", &path) {
        Err(ImportError::Malformed {
            line: 1,
            problem: Problem::MissingIdColumn { found, .. },
            ..
        }) => assert_eq!(found, ["导出说明"]),
        other => panic!("{other:?}"),
    }
    let mut opts = env.opts("d", &path);
    opts.sheet = Some("Sheet9".into());
    match import(&env.data(), &opts) {
        Err(ImportError::NoSuchSheet { sheet, sheets, .. }) => {
            assert_eq!(sheet, "Sheet9");
            assert_eq!(sheets, ["说明", "人员"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_or_empty_workbook_is_an_error_naming_the_file() {
    let env = Env::new();
    let bad = env.dir.path().join("bad.xlsx");
    std::fs::write(&bad, b"PK\x03\x04 not really a zip").unwrap();
    match env.import("d", &bad) {
        Err(ImportError::Workbook { file, .. }) => assert_eq!(file, bad),
        other => panic!("{other:?}"),
    }
    let empty = env.dir.path().join("empty.xlsx");
    let mut wb = Workbook::new();
    wb.add_worksheet();
    wb.save(&empty).unwrap();
    match env.import("d", &empty) {
        Err(ImportError::Malformed {
            problem: Problem::Empty,
            file,
            ..
        }) => assert_eq!(file, empty),
        other => panic!("{other:?}"),
    }
    assert!(DatasetReader::open(&env.data(), "d").is_err());
}

#[test]
fn an_xls_workbook_is_read_like_an_xlsx_one() {
    // Made by node/tests/fixtures/make_registry_xls.py (no Rust crate writes .xls).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry.xls");
    let env = Env::new();
    let mut opts = env.opts("d", &path);
    opts.mapping = Some(zh_mapping());
    opts.sheet = Some("人员".into());
    let r = import(&env.data(), &opts).unwrap();
    accounted(&r);
    assert_eq!((r.format, r.sheet.as_deref()), (Format::Xls, Some("人员")));
    assert_eq!((r.rows_read, r.rows_kept, r.rows_quarantined), (3, 2, 1));
    assert_eq!((r.fixes["lowercase_x"], r.fixes["legacy_15"]), (1, 1));
    assert_eq!(
        rows(&env),
        [
            (
                "44010519800101008X".to_string(),
                vec!["张伟".to_string(), "1980-01-01".to_string()]
            ),
            (id18(ID_B), vec!["王芳".into(), "1990-02-02".into()]),
        ]
    );
    let q = quarantine(&env);
    assert_eq!(
        q,
        [(
            "4".into(),
            "公民身份号码".into(),
            "440105199002020000".into(),
            "number_precision_lost".into()
        )]
    );
}

#[test]
fn a_truncated_workbook_is_named_as_damaged_or_truncated() {
    let env = Env::new();
    let whole = env.dir.path().join("whole.xlsx");
    registry_workbook(&whole);
    let xls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry.xls");
    for (source, name) in [(whole, "cut.xlsx"), (xls, "cut.xls")] {
        let bytes = std::fs::read(&source).unwrap();
        let cut = env.dir.path().join(name);
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = import(&env.data(), &env.opts("d", &cut))
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
        assert!(e.contains("damaged or truncated"), "{e}");
    }
    // A whole workbook with no such sheet is not called damaged.
    let whole = env.dir.path().join("whole.xlsx");
    let mut opts = env.opts("d", &whole);
    opts.sheet = Some("no such".into());
    let e = import(&env.data(), &opts).unwrap_err().to_string();
    assert!(!e.contains("damaged"), "{e}");
}

#[test]
fn an_unmapped_chinese_key_column_lists_the_file_s_names_and_the_mapping_s() {
    let env = Env::new();
    let path = env.dir.path().join("deaths.csv");
    std::fs::write(
        &path,
        format!("身份证,死亡日期\n{},2025-01-02\n", id18(ID_A)),
    )
    .unwrap();
    let mut opts = env.opts("d", &path);
    opts.mapping = Some(zh_mapping());
    let e = import(&env.data(), &opts).unwrap_err().to_string();
    // What the file has, as it has it (not 死亡日期's canonical name) ...
    assert!(
        e.contains("the file's columns are 身份证, 死亡日期;"),
        "{e}"
    );
    // ... and what the mapping would read as the key column.
    assert!(e.contains("named id_number or "), "{e}");
    assert!(e.contains("身份证号"), "{e}");
    assert!(e.contains("公民身份号码"), "{e}");
    // Without a mapping, the hint names one.
    let e = env.import("d", &path).unwrap_err().to_string();
    assert!(
        e.contains("named id_number (a mapping file, --mapping"),
        "{e}"
    );
}
