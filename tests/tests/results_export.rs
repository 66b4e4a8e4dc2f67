//! `dxmesh results export` as an analyst runs it on a compare output:
//! each file written is printed with its rows (and a result's with its
//! persons, and why rows outnumber them), the CSV files start with the
//! UTF-8 byte-order mark and their reason and region columns, the workbook
//! is written, a refused result is named; a malformed result file stops
//! the export with its name and line.

use dxmesh_tests::Dxmesh;

const BIN: &str = env!("CARGO_BIN_EXE_dxmesh-under-test");

#[test]
fn export_prints_each_file_and_names_a_malformed_one() {
    let dir = tempfile::tempdir().unwrap();
    let cmp = dir.path().join("cmp");
    std::fs::create_dir(&cmp).unwrap();
    let write = |f: &str, text: &str| std::fs::write(cmp.join(f), text).unwrap();
    write(
        "uninsured.csv",
        "id_number,name,address\n44010519800101123X,张伟,广州市越秀区\n44010519800101123X,张伟,广州市海珠区\n440106199002021234,王芳,广州市天河区\n",
    );
    write("coverage.csv", "region_code,eligible,covered\n440105,4,3\n");
    write(
        "summary.json",
        r#"{"epoch":1,"reference_date":"2025-01-01","results":{
            "uninsured":{"count":2,"disclosed_records":3,"persons_with_several_rows":1,"file":"cmp/uninsured.csv"},
            "deceased_insured":{"count":1,"disclosed_records":0,"file":"","refused":"quota_exceeded"}},
            "coverage":{"440105":{"eligible":4,"covered":3}}}"#,
    );
    let dx = Dxmesh::new(BIN);
    let args = [
        "results",
        "export",
        "--from",
        "cmp",
        "--out",
        "analyst",
        "--xlsx",
        "--headers",
        "zh",
    ];
    let out = dx.ok(dir.path(), &args);
    for needle in [
        "wrote analyst/uninsured.csv (3 rows, 2 persons; 1 person has more than one row)",
        "wrote analyst/coverage.csv (1 row)",
        "wrote analyst/results.xlsx (4 rows; sheets: uninsured, coverage)",
        "result deceased_insured: not exported (disclosure refused [quota_exceeded])",
    ] {
        assert!(
            out.contains(needle),
            "export output lacks {needle:?}:\n{out}"
        );
    }
    let csv = std::fs::read_to_string(dir.path().join("analyst/uninsured.csv")).unwrap();
    assert!(
        csv.starts_with("\u{feff}原因,行政区划代码,公民身份号码,姓名,住址\r\n未参保,440105,44010519800101123X,张伟,"),
        "{csv}"
    );

    write(
        "uninsured.csv",
        "id_number,name,address\n44010519800101123X,张伟\n",
    );
    let e = dx.fails(dir.path(), &args);
    assert!(
        e.contains("cmp/uninsured.csv: line 2: 2 fields where the header has 3"),
        "{e}"
    );
}
