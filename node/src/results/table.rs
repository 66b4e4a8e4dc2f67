//! Reading one canonical file of a compare output, row by row, as the rows
//! of an analyst table ([`TableReader`]): a result gets the `reason` and
//! `region` columns first (the finding in words, and the first six digits
//! of its `id_number`, the ID's region of issue: derived from a disclosed
//! field, so nothing more is disclosed), then its disclosed fields;
//! `coverage.csv` gets `coverage_rate`. Also the headers' Chinese names and
//! the reasons' texts.

use crate::results::error::ExportError;
use crate::results::options::Headers;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Chinese column headers of the canonical field names.
const ZH_HEADERS: [(&str, &str); 16] = [
    ("change", "变化"),
    ("note", "说明"),
    ("id_number", "公民身份号码"),
    ("name", "姓名"),
    ("address", "住址"),
    ("insurance_type", "险种"),
    ("region", "行政区划代码"),
    ("reason", "原因"),
    ("region_code", "行政区划代码"),
    ("birth_date", "出生日期"),
    ("death_date", "死亡日期"),
    ("gender", "性别"),
    ("eligible", "应参保人数"),
    ("covered", "已参保人数"),
    ("coverage_rate", "参保率"),
    ("token", "令牌"),
];

/// The reason texts of the standard results: (result, English, Chinese).
const REASONS: [(&str, &str, &str); 4] = [
    ("uninsured", "not insured", "未参保"),
    (
        "deceased_insured",
        "deceased but still insured",
        "已死亡仍参保",
    ),
    (
        "disabled_uninsured",
        "disabled and not insured",
        "残疾人未参保",
    ),
    (
        "name_conflicts",
        "name differs between departments",
        "姓名不一致",
    ),
];

/// A column's header in `lang` (a name without a Chinese one stays as it is).
pub(crate) fn column_name(name: &str, lang: Headers) -> String {
    match lang {
        Headers::En => name.to_string(),
        Headers::Zh => ZH_HEADERS
            .iter()
            .find(|(en, _)| *en == name)
            .map_or(name, |(_, zh)| zh)
            .to_string(),
    }
}

/// The reason text of result `name` in `lang` (the name itself for a
/// result without one).
pub(crate) fn reason(name: &str, lang: Headers) -> String {
    REASONS
        .iter()
        .find(|(r, _, _)| *r == name)
        .map_or(name, |(_, en, zh)| match lang {
            Headers::En => en,
            Headers::Zh => zh,
        })
        .to_string()
}

/// A change list's `change` value in `lang`.
fn change_value(v: &str, lang: Headers) -> String {
    match (lang, v) {
        (Headers::Zh, "new") => "新增".into(),
        (Headers::Zh, "left") => "移出".into(),
        (Headers::Zh, "stayed") => "仍在".into(),
        _ => v.to_string(),
    }
}

/// A change list's `note` in `lang` (the notes `compare` writes; other
/// text stays as it is).
fn change_note(note: &str, lang: Headers) -> String {
    if lang == Headers::En {
        return note.to_string();
    }
    if let Some(r) = note
        .strip_prefix("in ")
        .and_then(|n| n.strip_suffix(" this cycle"))
    {
        return format!("本期在“{}”中", reason(r, lang));
    }
    if let Some(r) = note
        .strip_prefix("in ")
        .and_then(|n| n.strip_suffix(" last cycle"))
    {
        return format!("上期在“{}”中", reason(r, lang));
    }
    if note.starts_with("in no result this cycle") {
        return "本期不在任何结果中：可能已参保、死亡、迁出或源数据已更正，本期结果无法区分".into();
    }
    note.to_string()
}

/// The region of issue of an ID number: its first six characters if they
/// are digits, else nothing.
pub(crate) fn region_of(id: &str) -> &str {
    match id.get(..6) {
        Some(r) if r.bytes().all(|b| b.is_ascii_digit()) => r,
        _ => "",
    }
}

/// One cell of an analyst table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// Text, written as text (ID numbers and region codes included).
    Text(String),
    /// A count.
    Count(u64),
    /// A share (0.875 is 87.50 %); none when nothing is eligible.
    Rate(Option<f64>),
}

/// What a table is made of.
enum Shape {
    /// A result: its reason, and where its `id_number` column is.
    Result { reason: String, id: Option<usize> },
    /// A result's change list (`id_number,change,note`): its reason, and
    /// the language its values are written in.
    Changes { reason: String, lang: Headers },
    /// `coverage.csv`: where its region, eligible and covered columns are.
    Coverage {
        region: usize,
        eligible: usize,
        covered: usize,
    },
}

/// A canonical CSV file, read as the rows of an analyst table.
pub(crate) struct TableReader {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    record: csv::StringRecord,
    shape: Shape,
    header: Vec<String>,
}

impl TableReader {
    /// Opens result `name`'s file and reads its header.
    pub(crate) fn result(path: &Path, name: &str, lang: Headers) -> Result<Self, ExportError> {
        let (reader, fields) = open(path)?;
        let id = fields.iter().position(|f| f == "id_number");
        let mut header = vec![column_name("reason", lang), column_name("region", lang)];
        header.extend(fields.iter().map(|f| column_name(f, lang)));
        Ok(TableReader {
            path: path.to_path_buf(),
            reader,
            record: csv::StringRecord::new(),
            shape: Shape::Result {
                reason: reason(name, lang),
                id,
            },
            header,
        })
    }

    /// Opens the change list of result `name` (`changes/<name>.csv`).
    pub(crate) fn changes(path: &Path, name: &str, lang: Headers) -> Result<Self, ExportError> {
        let (reader, fields) = open(path)?;
        if fields != ["id_number", "change", "note"] {
            return Err(ExportError::Malformed {
                path: path.to_path_buf(),
                line: 1,
                what: "not a change list (id_number,change,note)".into(),
            });
        }
        let shape = Shape::Changes {
            reason: reason(name, lang),
            lang,
        };
        let columns = ["reason", "region", "id_number", "change", "note"];
        Ok(TableReader::with(path, reader, shape, &columns, lang))
    }

    /// A table of `reader` (the file `path`) with the headers `columns`.
    fn with(
        path: &Path,
        reader: csv::Reader<BufReader<File>>,
        shape: Shape,
        columns: &[&str],
        lang: Headers,
    ) -> TableReader {
        TableReader {
            path: path.to_path_buf(),
            reader,
            record: csv::StringRecord::new(),
            shape,
            header: columns.iter().map(|c| column_name(c, lang)).collect(),
        }
    }

    /// Opens `coverage.csv` and reads its header.
    pub(crate) fn coverage(path: &Path, lang: Headers) -> Result<Self, ExportError> {
        let (reader, fields) = open(path)?;
        let column = |name: &str| {
            fields
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| ExportError::Malformed {
                    path: path.to_path_buf(),
                    line: 1,
                    what: format!("no {name} column"),
                })
        };
        let shape = Shape::Coverage {
            region: column("region_code")?,
            eligible: column("eligible")?,
            covered: column("covered")?,
        };
        let columns = ["region_code", "eligible", "covered", "coverage_rate"];
        Ok(TableReader::with(path, reader, shape, &columns, lang))
    }

    /// The table's header.
    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// The next row, or none at the end of the file.
    pub(crate) fn next_row(&mut self) -> Result<Option<Vec<Cell>>, ExportError> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => return Ok(None),
            Ok(true) => {}
            Err(e) => return Err(malformed(&self.path, &e)),
        }
        let r = &self.record;
        let line = r.position().map_or(0, csv::Position::line);
        Ok(Some(match &self.shape {
            Shape::Result { reason, id } => {
                let region = id.and_then(|i| r.get(i)).map_or("", region_of);
                let mut row = vec![Cell::Text(reason.clone()), Cell::Text(region.to_string())];
                row.extend(r.iter().map(|f| Cell::Text(f.to_string())));
                row
            }
            Shape::Changes { reason, lang } => {
                let id = r.get(0).unwrap_or_default();
                vec![
                    Cell::Text(reason.clone()),
                    Cell::Text(region_of(id).to_string()),
                    Cell::Text(id.to_string()),
                    Cell::Text(change_value(r.get(1).unwrap_or_default(), *lang)),
                    Cell::Text(change_note(r.get(2).unwrap_or_default(), *lang)),
                ]
            }
            Shape::Coverage {
                region,
                eligible,
                covered,
            } => {
                let count = |i: usize, name: &str| {
                    let v = r.get(i).unwrap_or_default();
                    v.parse::<u64>().map_err(|_| ExportError::Malformed {
                        path: self.path.clone(),
                        line,
                        what: format!("{name} {v:?} is not a count"),
                    })
                };
                let (e, c) = (count(*eligible, "eligible")?, count(*covered, "covered")?);
                vec![
                    Cell::Text(r.get(*region).unwrap_or_default().to_string()),
                    Cell::Count(e),
                    Cell::Count(c),
                    Cell::Rate((e > 0).then(|| c as f64 / e as f64)),
                ]
            }
        }))
    }
}

/// Opens a canonical CSV file and reads its header.
fn open(path: &Path) -> Result<(csv::Reader<BufReader<File>>, Vec<String>), ExportError> {
    let file = File::open(path).map_err(|error| ExportError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut reader = csv::ReaderBuilder::new().from_reader(BufReader::new(file));
    let fields: Vec<String> = reader
        .headers()
        .map_err(|e| malformed(path, &e))?
        .iter()
        .map(str::to_string)
        .collect();
    if fields.is_empty() || fields.iter().all(String::is_empty) {
        return Err(ExportError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            what: "no header".into(),
        });
    }
    Ok((reader, fields))
}

/// A CSV reader's error as the line of `path` it is about.
fn malformed(path: &Path, e: &csv::Error) -> ExportError {
    let at = |p: Option<&csv::Position>| p.map_or(1, csv::Position::line);
    let (line, what) = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => (
            at(pos.as_ref()),
            format!("{len} fields where the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { pos, err } => (
            at(pos.as_ref()),
            format!("field {} is not UTF-8", err.field() + 1),
        ),
        csv::ErrorKind::Io(io) => (1, format!("cannot be read: {io}")),
        _ => (1, e.to_string()),
    };
    ExportError::Malformed {
        path: path.to_path_buf(),
        line,
        what,
    }
}
