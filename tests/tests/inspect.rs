//! `dxmesh dataset inspect` on a GB18030 export with Chinese headers, as an
//! operator runs it before the first import: the encoding found, each
//! column's canonical name under `deploy/mappings/zh-headers.toml`, every
//! row accounted for, the rows as they would be stored and the quarantined
//! values with line and reason; an unknown `--encoding` is refused. A
//! workbook's sheet is chosen by name, and a tab-separated export's
//! delimiter is found; a wrong `--delimiter` or `--sheet` is refused.

use dxmesh_tests::{Dxmesh, make_id};

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn inspect_shows_what_an_import_would_do_without_doing_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_id("440105", "19800101", 1);
    let b = make_id("440105", "19900202", 2);
    let text = format!(
        "公民身份号码,姓名,死亡日期\r\n{a},张伟,2025年\r\n{b},王芳,20250102\r\n{b},王芳,20250102\r\n4401051990020200,李娜,2025-01-03\r\n"
    );
    let (gb, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable);
    let file = dir.path().join("deaths.csv");
    std::fs::write(&file, &gb).unwrap();
    let mapping =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mappings/zh-headers.toml");
    let dx = Dxmesh::new(BIN);
    let args = [
        "dataset",
        "inspect",
        "--file",
        file.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
    ];
    let out = dx.ok(dir.path(), &args);
    for needle in [
        "encoding gb18030",
        "公民身份号码",
        "-> id_number",
        "-> death_date",
        "4 read = 1 kept + 2 quarantined + 1 duplicates",
        "王芳 | 2025-01-02",
        "line 2, 死亡日期: \"2025年\" (invalid_date)",
        "line 5, 公民身份号码",
    ] {
        assert!(
            out.contains(needle),
            "inspect output lacks {needle:?}:\n{out}"
        );
    }
    // Nothing was written next to the export.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
    let mut bad = args.to_vec();
    bad.extend(["--encoding", "klingon"]);
    let e = dx.fails(dir.path(), &bad);
    assert!(
        e.contains("--encoding \"klingon\": not an encoding name"),
        "{e}"
    );
}

#[test]
fn inspect_reads_a_named_sheet_of_a_workbook_and_a_tab_separated_export() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_id("440105", "19800101", 1);
    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet().set_name("说明").unwrap();
    let ws = wb.add_worksheet();
    ws.set_name("人员").unwrap();
    for (c, h) in ["公民身份号码", "姓名", "出生日期"].iter().enumerate() {
        ws.write(0, c as u16, *h).unwrap();
    }
    ws.write(1, 0, a.as_str()).unwrap();
    ws.write(1, 1, "张伟").unwrap();
    ws.write(1, 2, 29221.0).unwrap();
    ws.write(2, 0, 440105198001010010.0).unwrap();
    ws.write(2, 1, "王芳").unwrap();
    let xlsx = dir.path().join("registry.xlsx");
    wb.save(&xlsx).unwrap();
    let mapping =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mappings/zh-headers.toml");
    let dx = Dxmesh::new(BIN);
    let args = [
        "dataset",
        "inspect",
        "--file",
        xlsx.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--sheet",
        "人员",
    ];
    let out = dx.ok(dir.path(), &args);
    for needle in [
        "xlsx, sheet \"人员\"",
        "-> birth_date",
        "2 read = 1 kept + 1 quarantined + 0 duplicates",
        "张伟 | 1980-01-01",
        "line 3, 公民身份号码: \"440105198001010000\" (number_precision_lost)",
    ] {
        assert!(
            out.contains(needle),
            "inspect output lacks {needle:?}:\n{out}"
        );
    }
    let mut bad = args.to_vec();
    bad[7] = "Sheet1";
    let e = dx.fails(dir.path(), &bad);
    assert!(
        e.contains("no sheet named \"Sheet1\"; its sheets: 说明, 人员"),
        "{e}"
    );

    let tsv = dir.path().join("registry.tsv");
    std::fs::write(&tsv, format!("id_number\tname\n{a}\t张伟\n")).unwrap();
    let args = ["dataset", "inspect", "--file", tsv.to_str().unwrap()];
    let out = dx.ok(dir.path(), &args);
    assert!(out.contains("csv, encoding UTF-8, delimiter tab"), "{out}");
    assert!(out.contains("1 read = 1 kept"), "{out}");
    let mut bad = args.to_vec();
    bad.extend(["--delimiter", "colon"]);
    let e = dx.fails(dir.path(), &bad);
    assert!(e.contains("--delimiter \"colon\": not a delimiter"), "{e}");
}

#[test]
fn the_import_and_its_quarantine_report_account_for_every_row() {
    let mut mesh = dxmesh_tests::Mesh::new(BIN);
    mesh.init("node", "health", "provider");
    let a = make_id("440105", "19800101", 1);
    let text = format!(
        "id_number|death_date\n{a}|2025-01-02\n{a}|2025-01-02\n{a}|2025-13-01\n4401051980010100|2025-01-03\n"
    );
    std::fs::write(mesh.path().join("deaths.txt"), text).unwrap();
    let out = mesh.import("node", "deaths", "deaths.txt");
    for needle in [
        "(csv, encoding UTF-8, delimiter pipe)",
        "4 read = 1 kept + 2 quarantined + 1 duplicates",
        "dxmesh dataset quarantine --dir node deaths",
    ] {
        assert!(
            out.contains(needle),
            "import output lacks {needle:?}:\n{out}"
        );
    }
    let dx = Dxmesh::new(BIN);
    let out = dx.ok(
        mesh.path(),
        &["dataset", "quarantine", "--dir", "node", "deaths"],
    );
    for needle in [
        "rows: 4 read = 1 kept + 2 quarantined + 1 duplicates",
        "invalid_date",
        "line 4, death_date: \"2025-13-01\" (invalid_date)",
        "line 5, id_number: \"4401051980010100\"",
    ] {
        assert!(
            out.contains(needle),
            "quarantine report lacks {needle:?}:\n{out}"
        );
    }
    let e = dx.fails(
        mesh.path(),
        &["dataset", "quarantine", "--dir", "node", "births"],
    );
    assert!(e.contains("births"), "{e}");
}
