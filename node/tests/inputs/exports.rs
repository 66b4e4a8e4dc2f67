//! Department exports from random fields, written by the `csv` crate (and
//! as JSON Lines and `.xlsx`), and the import run on them as
//! `dxmesh dataset import` runs it.

use dxmesh_node::dataset::{DatasetReader, ImportError, ImportOptions, ImportReport, import};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::check_character;
use proptest::prelude::*;

/// The non-key columns of every export.
const COLUMNS: [&str; 3] = ["name", "address", "note"];

/// Kept records: the ID and the other columns' values.
pub type Rows = Vec<(String, Vec<String>)>;

/// An export: its rows (ID and the other columns' values) and its bytes.
#[derive(Debug, Clone)]
pub struct Export {
    pub delimiter: u8,
    pub rows: Vec<(String, [String; 3])>,
    pub bytes: Vec<u8>,
}

/// A valid ID number, distinct for each `n` below 1000.
fn id_number(birth: Date, n: usize) -> String {
    let body = format!(
        "440105{:04}{:02}{:02}{n:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let check = check_character(body.as_bytes()) as char;
    format!("{body}{check}")
}

/// A field of an export: quotes, every delimiter, line breaks, Chinese
/// text, ideographic and ordinary spaces.
fn fields() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,8}",
        "[a-z张伟王芳广州 ,\t;|\"\r\n\u{3000}]{0,10}",
    ]
}

/// CSV exports of 1 to 12 rows, any delimiter, CRLF or LF line ends.
pub fn csv_exports() -> impl Strategy<Value = Export> {
    let row = (0..34_000i64, [fields(), fields(), fields()]);
    (
        prop::sample::select(vec![b',', b'\t', b';', b'|']),
        any::<bool>(),
        prop::collection::vec(row, 1..12),
    )
        .prop_map(|(delimiter, crlf, rows)| {
            let rows: Vec<(String, [String; 3])> = rows
                .into_iter()
                .enumerate()
                .map(|(n, (day, values))| {
                    let birth = Date::new(1930, 1, 1).unwrap().add_days(day).unwrap();
                    (id_number(birth, n), values)
                })
                .collect();
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(if crlf {
                    csv::Terminator::CRLF
                } else {
                    csv::Terminator::Any(b'\n')
                })
                .from_writer(Vec::new());
            w.write_record(std::iter::once("id_number").chain(COLUMNS))
                .unwrap();
            for (id, values) in &rows {
                w.write_record(
                    std::iter::once(id.as_str()).chain(values.iter().map(String::as_str)),
                )
                .unwrap();
            }
            Export {
                delimiter,
                bytes: w.into_inner().unwrap(),
                rows,
            }
        })
}

/// Values as an import keeps them: trimmed of whitespace and BOMs.
fn clean(s: &str) -> String {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
        .to_string()
}

impl Export {
    /// The records an import of the export must keep, sorted.
    pub fn expected(&self) -> Rows {
        let mut v: Rows = self
            .rows
            .iter()
            .map(|(id, values)| (id.clone(), values.iter().map(|s| clean(s)).collect()))
            .collect();
        v.sort();
        v
    }

    /// The same rows as JSON Lines.
    pub fn jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, values) in &self.rows {
            let mut o = serde_json::Map::new();
            o.insert("id_number".into(), id.clone().into());
            for (c, v) in COLUMNS.iter().zip(values) {
                o.insert((*c).into(), v.clone().into());
            }
            out.extend(serde_json::to_vec(&o).unwrap());
            out.push(b'\n');
        }
        out
    }

    /// The same rows as an `.xlsx` workbook, every cell text.
    pub fn xlsx(&self) -> Vec<u8> {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in std::iter::once("id_number").chain(COLUMNS).enumerate() {
            ws.write(0, c as u16, h).unwrap();
        }
        for (r, (id, values)) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            ws.write(r, 0, id.as_str()).unwrap();
            for (c, v) in values.iter().enumerate() {
                if !v.is_empty() {
                    ws.write(r, c as u16 + 1, v.as_str()).unwrap();
                }
            }
        }
        wb.save_to_buffer().unwrap()
    }
}

/// Imports `bytes` as an export with extension `ext`; the report and the
/// records kept (ID and values, in the columns' order above), sorted.
pub fn import_rows(
    bytes: &[u8],
    ext: &str,
    delimiter: Option<u8>,
) -> Result<(ImportReport, Rows), ImportError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("export.{ext}"));
    std::fs::write(&file, bytes).unwrap();
    let data = dir.path().join("data");
    let opts = ImportOptions {
        dataset: "d".into(),
        file,
        mapping: None,
        format: None,
        reference: Date::new(2026, 11, 27).unwrap(),
        encoding: None,
        delimiter,
        sheet: None,
        accept_shrink: false,
        memory: dxmesh_node::base::config::LimitsConfig::default().sort_bytes(),
    };
    let report = import(&data, &opts)?;
    let reader = DatasetReader::open(&data, "d")?;
    let columns = reader.columns().to_vec();
    let mut rows = Vec::new();
    for block in reader.blocks() {
        for r in block? {
            // In the order of COLUMNS, whatever order the reader keeps.
            let values = COLUMNS
                .iter()
                .filter_map(|c| columns.iter().position(|x| x == c))
                .map(|i| r.values[i].clone())
                .collect();
            rows.push((r.id.as_str().to_string(), values));
        }
    }
    rows.sort();
    Ok((report, rows))
}

/// An import of `bytes` fails with an error that can be shown, or
/// accounts for every row it read and keeps what it says.
pub fn import_fails_or_accounts(bytes: &[u8], ext: &str, delimiter: Option<u8>) {
    match import_rows(bytes, ext, delimiter) {
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
        Ok((r, rows)) => {
            assert_eq!(
                r.rows_read,
                r.rows_kept + r.rows_quarantined + r.duplicate_rows,
                "{r:?}"
            );
            assert_eq!(rows.len() as u64, r.rows_kept, "{r:?}");
        }
    }
}
