//! Import throughput: `dxmesh_node::dataset::import` of a household-registry
//! CSV (`id_number,name,gender,birth_date,region_code,address,status`,
//! about 100 bytes a row).
//!
//! `cargo bench -p dxmesh-node --bench import` generates
//! `DXMESH_BENCH_ROWS` rows (default 1,000,000) into a temporary directory:
//! valid ID numbers (check characters computed), with a few dirty forms
//! (full-width digits, lowercase `x`, spaces, separators), wrong check
//! characters and exact duplicates sprinkled in; then measures repeated
//! imports of it into one data directory (each a new generation that
//! replaces the previous one, as a department's re-import does), reporting
//! rows per second; then the same export encoded in GB18030 (target: at
//! least 1 M rows/s); then the same rows as an `.xlsx` workbook (every cell
//! text, strings shared, as Excel saves them; `DXMESH_BENCH_XLSX_ROWS`,
//! default 500,000; target: at least 200 k rows/s). Run as a test (without
//! `--bench`, e.g. by `cargo test --all-targets`) it imports 20,000 rows of
//! each once.

use criterion::{Criterion, Throughput};
use dxmesh_node::dataset::{ImportOptions, import};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::check_character;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const NAMES: [&str; 8] = [
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强",
];
const STREETS: [&str; 5] = ["人民路", "解放大道", "中山北路", "建设街", "和平里"];

/// Writes `rows` registry rows to `path`; returns the file size.
fn generate(path: &Path, rows: u64) -> u64 {
    let file = std::fs::File::create(path).expect("create the CSV");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(
        w,
        "id_number,name,gender,birth_date,region_code,address,status"
    )
    .expect("write");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut previous = String::new();
    for i in 0..rows {
        if i % 5_000 == 4_999 {
            // An exact duplicate of the previous row.
            w.write_all(previous.as_bytes()).expect("write");
            continue;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let year = 1930 + x % 90;
        let month = 1 + (x >> 8) % 12;
        let day = 1 + (x >> 16) % 28;
        let region = 440_100 + (x >> 24) % 100;
        let seq = i % 1000;
        let mut id = format!("{region}{year:04}{month:02}{day:02}{seq:03}");
        let check = check_character(id.as_bytes());
        id.push(char::from(check));
        let id = match i % 10_000 {
            // A wrong check character (quarantined).
            1_234 => format!("{}{}", &id[..17], if check == b'0' { '1' } else { '0' }),
            // Dirty but fixable forms.
            1_000 | 6_000 => id
                .chars()
                .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c))
                .collect(),
            2_000 | 7_000 => format!("{} {}\u{3000}{}", &id[..6], &id[6..14], &id[14..]),
            3_000 | 8_000 => format!("{}-{}-{}", &id[..6], &id[6..14], &id[14..]),
            _ if i % 100 == 0 => id.replace('X', "x"),
            _ => id,
        };
        let gender = if seq % 2 == 1 { "male" } else { "female" };
        let name = NAMES[(x >> 32) as usize % NAMES.len()];
        let street = STREETS[(x >> 40) as usize % STREETS.len()];
        previous = format!(
            "{id},{name},{gender},{year:04}-{month:02}-{day:02},{region},广东省广州市{street}{}号{}栋{}室,active\n",
            (x >> 44) % 999,
            (x >> 50) % 30,
            (x >> 55) % 20
        );
        w.write_all(previous.as_bytes()).expect("write");
    }
    w.flush().expect("flush");
    std::fs::metadata(path).expect("stat").len()
}

/// Writes the first `rows` data rows of the CSV at `csv` as the first
/// sheet of an `.xlsx` workbook at `path`, every cell text.
fn to_xlsx(csv: &Path, path: &Path, rows: u64) {
    let mut rdr = csv::Reader::from_path(csv).expect("read the CSV");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet_with_low_memory().expect("a sheet");
    let header = rdr.headers().expect("a header").clone();
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, h).expect("write");
    }
    for (r, rec) in rdr.records().take(rows as usize).enumerate() {
        for (c, v) in rec.expect("a row").iter().enumerate() {
            ws.write_string(r as u32 + 1, c as u16, v).expect("write");
        }
    }
    wb.save(path).expect("save the workbook");
}

/// Rows kept by importing `opts` (again).
fn report_kept(data: &Path, opts: &ImportOptions) -> u64 {
    import(data, opts).expect("import").rows_kept
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rows: u64 = if bench {
        std::env::var("DXMESH_BENCH_ROWS")
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or(1_000_000)
    } else {
        20_000
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("registry.csv");
    let bytes = generate(&csv, rows);
    let data = dir.path().join("data");
    let opts = ImportOptions {
        dataset: "registry".into(),
        file: csv,
        mapping: None,
        format: None,
        reference: Date::new(2026, 11, 27).expect("a date"),
        encoding: None,
        delimiter: None,
        sheet: None,
        accept_shrink: false,
        memory: dxmesh_node::base::config::LimitsConfig::default().sort_bytes(),
    };
    // The same export in GB18030, as many departments' systems write it
    // (its encoding found by the import, decoded as it streams).
    let gb = dir.path().join("registry-gb18030.csv");
    let text = std::fs::read_to_string(&opts.file).expect("read the CSV");
    let (encoded, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable, "every character has a GB18030 form");
    std::fs::write(&gb, &encoded).expect("write the GB18030 CSV");
    drop(text);
    let gb_opts = ImportOptions {
        file: gb,
        ..opts.clone()
    };
    let gb_report = import(&data, &gb_opts).expect("import GB18030");
    assert_eq!(gb_report.encoding, "gb18030");
    assert_eq!(gb_report.rows_kept, report_kept(&data, &opts));
    let xlsx_rows: u64 = if bench {
        std::env::var("DXMESH_BENCH_XLSX_ROWS")
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or(500_000)
            .min(rows)
    } else {
        rows
    };
    let xlsx = dir.path().join("registry.xlsx");
    to_xlsx(&opts.file, &xlsx, xlsx_rows);
    let xlsx_opts = ImportOptions {
        file: xlsx,
        ..opts.clone()
    };
    let xlsx_report = import(&data, &xlsx_opts).expect("import the workbook");
    assert_eq!(xlsx_report.rows_read, xlsx_rows);
    let report = import(&data, &opts).expect("import");
    println!(
        "import bench: {rows} rows, {bytes} bytes; kept {}, duplicates {}, quarantined {}, fixes {:?}",
        report.rows_kept, report.duplicate_rows, report.rows_quarantined, report.fixes
    );
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(rows.div_ceil(400_000).max(5)));
    let mut group = c.benchmark_group("dataset");
    group.throughput(Throughput::Elements(rows));
    group.bench_function(format!("import_registry_{rows}_rows"), |b| {
        b.iter(|| import(&data, &opts).expect("import"))
    });
    group.bench_function(format!("import_registry_gb18030_{rows}_rows"), |b| {
        b.iter(|| import(&data, &gb_opts).expect("import"))
    });
    group.finish();
    let mut group = c.benchmark_group("dataset_xlsx");
    group.throughput(Throughput::Elements(xlsx_rows));
    group.bench_function(format!("import_registry_xlsx_{xlsx_rows}_rows"), |b| {
        b.iter(|| import(&data, &xlsx_opts).expect("import"))
    });
    group.finish();
    c.final_summary();
}
