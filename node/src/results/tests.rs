//! The analyst export on a small compare output: Chinese names and
//! addresses, an ID number ending in X, a result that discloses nothing
//! (tokens), a refused one, coverage; each encoding, Chinese headers, the
//! workbook read back with calamine, and the errors.

use super::*;
use calamine::{Data, Reader, Xlsx, open_workbook};
use std::collections::BTreeMap;
use std::path::Path;

const ID_X: &str = "44010519800101123X";
const ID_DIGITS: &str = "440106199002021234";
const LONG: &str = "a_result_name_longer_than_thirty_one_characters";

/// A compare output in `dir`, as `dxmesh compare` writes it.
fn compare_output(dir: &Path) {
    let files = [
        (
            "uninsured.csv",
            format!(
                "id_number,name,address\n{ID_X},张伟,广州市越秀区中山路1号\n{ID_DIGITS},王芳,\"广州市天河区, 体育西路\"\n"
            ),
        ),
        (
            "deceased_insured.csv",
            format!("id_number,name,insurance_type\n{ID_DIGITS},王芳,城乡居民基本养老保险\n"),
        ),
        ("name_conflicts.csv", "token\nab12cd34\n".to_string()),
        (
            &format!("{LONG}.csv"),
            format!("id_number,address\n{ID_X},=HYPERLINK(\"x\")\n"),
        ),
        (
            "coverage.csv",
            "region_code,eligible,covered\n440105,8,7\n440106,0,0\n".to_string(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let summary = serde_json::json!({
        "epoch": 3,
        "reference_date": "2025-01-01",
        "results": {
            // Written elsewhere and moved since: only the file name counts.
            "uninsured": {"count": 2, "disclosed_records": 2, "file": "/gone/uninsured.csv"},
            "deceased_insured": {"count": 1, "disclosed_records": 1, "file": "./deceased_insured.csv"},
            "name_conflicts": {"count": 1, "disclosed_records": 0, "file": "name_conflicts.csv"},
            "disabled_uninsured": {"count": 4, "disclosed_records": 0, "file": "", "refused": "quota_exceeded"},
            LONG: {"count": 1, "disclosed_records": 1, "file": format!("{LONG}.csv")},
        },
        "inputs": {},
        "coverage": {"440105": {"eligible": 8, "covered": 7}, "440106": {"eligible": 0, "covered": 0}},
        "ministry": null,
        "timing_secs": {},
        "distinct_tokens_merged": 9,
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

fn options(from: &Path, out: &Path) -> ExportOptions {
    ExportOptions {
        from: from.to_path_buf(),
        out: out.to_path_buf(),
        encoding: Encoding::Utf8,
        xlsx: false,
        headers: Headers::En,
    }
}

/// The rows of a UTF-8 CSV text (header first).
fn rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn utf8_with_bom_reason_and_region_first_and_the_compare_output_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (from, out) = (dir.path().join("cmp"), dir.path().join("analyst"));
    std::fs::create_dir(&from).unwrap();
    compare_output(&from);
    let before = std::fs::read(from.join("uninsured.csv")).unwrap();
    let report = export(&options(&from, &out)).unwrap();

    let bytes = std::fs::read(out.join("uninsured.csv")).unwrap();
    assert!(bytes.starts_with(csvout::BOM));
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'));
    let t = rows(text);
    assert_eq!(
        t[0],
        strs(&["reason", "region", "id_number", "name", "address"])
    );
    assert_eq!(
        t[1],
        strs(&[
            "not insured",
            "440105",
            ID_X,
            "张伟",
            "广州市越秀区中山路1号"
        ])
    );
    assert_eq!(t[2][..3], strs(&["not insured", "440106", ID_DIGITS]));
    assert_eq!(t[2][4], "广州市天河区, 体育西路");

    let tokens = rows(&std::fs::read_to_string(out.join("name_conflicts.csv")).unwrap()[3..]);
    assert_eq!(tokens[0], strs(&["reason", "region", "token"]));
    assert_eq!(
        tokens[1],
        strs(&["name differs between departments", "", "ab12cd34"])
    );
    // A result without a built-in text has its name as the reason; a value
    // Excel would run as a formula is written after a '.
    let long = rows(&std::fs::read_to_string(out.join(format!("{LONG}.csv"))).unwrap()[3..]);
    assert_eq!(long[1], strs(&[LONG, "440105", ID_X, "'=HYPERLINK(\"x\")"]));

    let cov = rows(&std::fs::read_to_string(out.join("coverage.csv")).unwrap()[3..]);
    assert_eq!(
        cov,
        vec![
            strs(&["region_code", "eligible", "covered", "coverage_rate"]),
            strs(&["440105", "8", "7", "87.50%"]),
            strs(&["440106", "0", "0", ""]),
        ]
    );
    assert_eq!(std::fs::read(from.join("uninsured.csv")).unwrap(), before);
    let written: Vec<(String, u64)> = report
        .written
        .iter()
        .map(|w| (w.path.file_name().unwrap().to_string_lossy().into(), w.rows))
        .collect();
    assert_eq!(written.len(), 5);
    assert!(written.contains(&("uninsured.csv".into(), 2)));
    assert!(written.contains(&("coverage.csv".into(), 2)));
    assert_eq!(
        report.skipped,
        vec![(
            "disabled_uninsured".to_string(),
            "disclosure refused [quota_exceeded]".to_string()
        )]
    );
    assert!(!out.join("disabled_uninsured.csv").exists());
    // Nothing but the exported files is left (no temporary files).
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 5);
}

#[test]
fn gb18030_decodes_to_the_same_text_without_a_bom() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("cmp");
    std::fs::create_dir(&from).unwrap();
    compare_output(&from);
    export(&options(&from, &dir.path().join("utf8"))).unwrap();
    let mut gb = options(&from, &dir.path().join("gb"));
    gb.encoding = Encoding::Gb18030;
    export(&gb).unwrap();
    for f in ["uninsured.csv", "deceased_insured.csv", "coverage.csv"] {
        let bytes = std::fs::read(dir.path().join("gb").join(f)).unwrap();
        assert!(!bytes.starts_with(csvout::BOM), "{f}");
        let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
        assert!(!had_errors, "{f}");
        let utf8 = std::fs::read(dir.path().join("utf8").join(f)).unwrap();
        assert_eq!(text.as_bytes(), &utf8[3..], "{f}");
        // Chinese text really is GB18030 here, not UTF-8.
        assert!(
            f == "coverage.csv" || std::str::from_utf8(&bytes).is_err(),
            "{f}"
        );
    }
}

#[test]
fn chinese_headers_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let (from, out) = (dir.path().join("cmp"), dir.path().join("analyst"));
    std::fs::create_dir(&from).unwrap();
    compare_output(&from);
    let mut opts = options(&from, &out);
    opts.headers = Headers::Zh;
    export(&opts).unwrap();
    let read = |f: &str| rows(&std::fs::read_to_string(out.join(f)).unwrap()[3..]);
    let t = read("uninsured.csv");
    assert_eq!(
        t[0],
        strs(&["原因", "行政区划代码", "公民身份号码", "姓名", "住址"])
    );
    assert_eq!(t[1][..2], strs(&["未参保", "440105"]));
    assert_eq!(
        read("deceased_insured.csv")[..2],
        vec![
            strs(&["原因", "行政区划代码", "公民身份号码", "姓名", "险种"]),
            strs(&[
                "已死亡仍参保",
                "440106",
                ID_DIGITS,
                "王芳",
                "城乡居民基本养老保险"
            ]),
        ]
    );
    assert_eq!(
        read("name_conflicts.csv")[0],
        strs(&["原因", "行政区划代码", "令牌"])
    );
    assert_eq!(read("name_conflicts.csv")[1][0], "姓名不一致");
    assert_eq!(
        read("coverage.csv")[0],
        strs(&["行政区划代码", "应参保人数", "已参保人数", "参保率"])
    );
    assert_eq!(
        table::reason("disabled_uninsured", Headers::Zh),
        "残疾人未参保"
    );
}

/// The analysts' files with the workbook, from the compare output of
/// [`compare_output`] in `dir/cmp`, into `dir/analyst` (returned).
fn export_workbook(dir: &Path) -> (std::path::PathBuf, Report) {
    let (from, out) = (dir.join("cmp"), dir.join("analyst"));
    std::fs::create_dir(&from).unwrap();
    compare_output(&from);
    let mut opts = options(&from, &out);
    opts.xlsx = true;
    let report = export(&opts).unwrap();
    (out, report)
}

#[test]
fn the_workbook_keeps_id_numbers_and_region_codes_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = export_workbook(dir.path());
    let book = report.written.last().unwrap();
    assert_eq!(book.path, out.join(WORKBOOK));
    assert_eq!(book.rows, 2 + 1 + 1 + 1 + 2);
    let truncated: String = LONG.chars().take(31).collect();
    // In summary.json's order (by name), coverage last.
    let names = strs(&[
        &truncated,
        "deceased_insured",
        "name_conflicts",
        "uninsured",
        "coverage",
    ]);
    assert_eq!(book.sheets, names);

    let mut wb: Xlsx<_> = open_workbook(out.join(WORKBOOK)).unwrap();
    assert_eq!(wb.sheet_names(), names);
    let sheet = |wb: &mut Xlsx<_>, name: &str| -> Vec<Vec<Data>> {
        let r = wb.worksheet_range(name).unwrap();
        assert_eq!(r.start(), Some((0, 0)), "{name}");
        r.rows().map(<[Data]>::to_vec).collect()
    };
    let s = |v: &str| Data::String(v.to_string());
    let u = sheet(&mut wb, "uninsured");
    assert_eq!(
        u[0],
        vec![
            s("reason"),
            s("region"),
            s("id_number"),
            s("name"),
            s("address")
        ]
    );
    assert_eq!(
        u[1][..4],
        [s("not insured"), s("440105"), s(ID_X), s("张伟")]
    );
    assert_eq!(u[2][1..3], [s("440106"), s(ID_DIGITS)]);
    // In a cell, a value is text as it is: never a formula.
    assert_eq!(sheet(&mut wb, &truncated)[1][3], s("=HYPERLINK(\"x\")"));
    let c = sheet(&mut wb, "coverage");
    assert_eq!(
        c[1],
        vec![
            s("440105"),
            Data::Float(8.0),
            Data::Float(7.0),
            Data::Float(0.875)
        ]
    );
    assert_eq!(c[2][..3], [s("440106"), Data::Float(0.0), Data::Float(0.0)]);
    assert_eq!(sheet(&mut wb, "name_conflicts")[1][2], s("ab12cd34"));
    // Only the exported files are left: the sheets' temporary files are gone.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 6);
}

#[test]
fn a_table_longer_than_a_sheet_goes_on_in_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(WORKBOOK);
    // Three rows a sheet: the header and two.
    let mut book = workbook::Book::new(&path).unwrap().with_sheet_rows(3);
    book.begin("uninsured", &strs(&["region", "id_number"]))
        .unwrap();
    for i in 0..5 {
        let id = format!("44010519800101{i:03}X");
        let row = [table::Cell::Text("440105".into()), table::Cell::Text(id)];
        book.write_row(&row).unwrap();
    }
    let (rows, sheets) = book.save().unwrap();
    assert_eq!(rows, 5);
    assert_eq!(
        sheets,
        strs(&["uninsured", "uninsured (2)", "uninsured (3)"])
    );
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let last = wb.worksheet_range("uninsured (3)").unwrap();
    let last: Vec<Vec<Data>> = last.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(last[0][1], Data::String("id_number".into()));
    assert_eq!(last[1][1], Data::String("44010519800101004X".into()));
}

#[test]
fn a_malformed_or_missing_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (from, out) = (dir.path().join("cmp"), dir.path().join("analyst"));
    std::fs::create_dir(&from).unwrap();
    compare_output(&from);
    std::fs::write(
        from.join("uninsured.csv"),
        format!("id_number,name,address\n{ID_X},张伟,广州\n{ID_DIGITS},王芳\n"),
    )
    .unwrap();
    let e = export(&options(&from, &out)).unwrap_err().to_string();
    assert!(
        e.contains("uninsured.csv: line 3: 2 fields where the header has 3"),
        "{e}"
    );

    std::fs::write(
        from.join("coverage.csv"),
        "region_code,eligible\n440105,8\n",
    )
    .unwrap();
    std::fs::remove_file(from.join("uninsured.csv")).unwrap();
    let e = export(&options(&from, &out)).unwrap_err().to_string();
    assert!(e.contains("uninsured.csv: No such file"), "{e}");

    compare_output(&from);
    std::fs::write(
        from.join("coverage.csv"),
        "region_code,eligible,covered\n440105,8,x\n",
    )
    .unwrap();
    let e = export(&options(&from, &out)).unwrap_err().to_string();
    assert!(
        e.contains("coverage.csv: line 2: covered \"x\" is not a count"),
        "{e}"
    );

    std::fs::write(from.join("summary.json"), "{}").unwrap();
    let e = export(&options(&from, &out)).unwrap_err().to_string();
    assert!(
        e.contains("summary.json: not a dxmesh compare summary"),
        "{e}"
    );
}

#[test]
fn the_compare_output_itself_is_refused_as_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    compare_output(dir.path());
    let before = std::fs::read(dir.path().join("uninsured.csv")).unwrap();
    let e = export(&options(dir.path(), &dir.path().join(".")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("another directory than the compare output"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("uninsured.csv")).unwrap(),
        before
    );
}

#[test]
fn region_is_six_leading_digits_or_nothing() {
    assert_eq!(table::region_of(ID_X), "440105");
    assert_eq!(table::region_of("44010"), "");
    assert_eq!(table::region_of("X40105199001011234"), "");
    assert_eq!(table::region_of("4401é5"), "");
    assert_eq!(
        table::column_name("unknown_field", Headers::Zh),
        "unknown_field"
    );
}

#[test]
fn change_lists_are_exported_with_the_reason_region_and_notes_in_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let (from, out) = (dir.path().join("cmp"), dir.path().join("analyst"));
    std::fs::create_dir_all(from.join("changes")).unwrap();
    compare_output(&from);
    std::fs::write(
        from.join("changes/uninsured.csv"),
        format!(
            "id_number,change,note\n{ID_X},new,in deceased_insured last cycle\n{ID_DIGITS},left,\"in no result this cycle: insured, died, moved out or corrected at the source; this cycle's results do not say which\"\n"
        ),
    )
    .unwrap();
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(from.join("summary.json")).unwrap()).unwrap();
    summary["changes"] = serde_json::json!({
        "previous": "/results/2026-11",
        "previous_epoch": 2,
        "results": {"uninsured": {"new": 1, "left": 1, "stayed": 0, "file": "/gone/changes/uninsured.csv"}},
        "not_compared": {"name_conflicts": "not disclosed"},
    });
    std::fs::write(from.join("summary.json"), summary.to_string()).unwrap();
    let mut opts = options(&from, &out);
    opts.headers = Headers::Zh;
    opts.xlsx = true;
    let report = export(&opts).unwrap();
    let t = rows(&std::fs::read_to_string(out.join("changes_uninsured.csv")).unwrap()[3..]);
    assert_eq!(
        t[0],
        strs(&["原因", "行政区划代码", "公民身份号码", "变化", "说明"])
    );
    assert_eq!(
        t[1],
        strs(&["未参保", "440105", ID_X, "新增", "上期在“已死亡仍参保”中"])
    );
    assert_eq!(t[2][..4], strs(&["未参保", "440106", ID_DIGITS, "移出"]));
    assert!(t[2][4].starts_with("本期不在任何结果中"), "{}", t[2][4]);
    let book: Xlsx<_> = open_workbook(out.join(WORKBOOK)).unwrap();
    assert!(
        book.sheet_names()
            .contains(&"changes_uninsured".to_string())
    );
    assert!(
        report
            .written
            .iter()
            .any(|w| w.path.ends_with("changes_uninsured.csv") && w.rows == 2)
    );
}

/// The `<col>` widths of the sheets of an .xlsx file, by sheet XML file
/// name (`sheet1.xml`, ...) and column.
fn column_widths(book: &Path) -> BTreeMap<String, Vec<f64>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(book).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let full = f.name().unwrap().to_string();
        let Some(name) = full.strip_prefix("xl/worksheets/").map(String::from) else {
            continue;
        };
        let mut xml = String::new();
        std::io::Read::read_to_string(&mut f, &mut xml).unwrap();
        let widths = xml
            .split("<col ")
            .skip(1)
            .filter_map(|c| c.split("width=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        out.insert(name, widths);
    }
    out
}

#[test]
fn the_workbook_s_columns_are_as_wide_as_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = export_workbook(dir.path());
    let widths = column_widths(&out.join(WORKBOOK));
    // The uninsured sheet (the fourth): the reason "not insured", the ID
    // number's 18 characters, the address in Chinese the widest.
    let uninsured = &widths["sheet4.xml"];
    assert_eq!(uninsured.len(), 5, "{widths:?}");
    let (reason, region, id, address) = (uninsured[0], uninsured[1], uninsured[2], uninsured[4]);
    assert!((21.0..30.0).contains(&id), "id {id}");
    assert!(region >= 6.0 + 3.0 && region < id, "region {region}");
    assert!(address > region, "address {address}");
    assert!((reason - (11.0 + 3.0)).abs() < 1.0, "reason {reason}");
    // The deceased_insured sheet (the second): its reason is the longest.
    let deceased = widths["sheet2.xml"][0];
    assert!(
        deceased >= "deceased but still insured".len() as f64,
        "{deceased}"
    );
    // Every width within bounds.
    for w in widths.values().flatten() {
        assert!((8.0..=60.0).contains(w), "{widths:?}");
    }
}
