//! The optional TOML mapping file: export column names to canonical names,
//! the key column, and value translations.
//!
//! ```toml
//! id_column = "id_number"          # canonical name of the key column (default "id_number")
//! [columns]                        # export name = canonical name
//! "身份证号" = "id_number"
//! [values.status]                  # value translation for a (canonical) column
//! "正常" = "active"
//! ```
//!
//! Export names are matched trimmed and lowercased. Every target must be a
//! canonical column name; the key column must be an ID column. Errors name
//! the mapping file and line.

use super::model::{CANONICAL_COLUMNS, ID_COLUMNS, ImportError, io_err};
use super::text::clean;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use toml::Spanned;

/// A parsed, checked mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mapping {
    /// Canonical name of the key column.
    pub id_column: String,
    /// Export name (trimmed, lowercased) to canonical name.
    pub columns: HashMap<String, String>,
    /// Canonical column to (trimmed source value to replacement).
    pub values: HashMap<String, HashMap<String, String>>,
}

impl Default for Mapping {
    fn default() -> Mapping {
        Mapping {
            id_column: "id_number".to_string(),
            columns: HashMap::new(),
            values: HashMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    id_column: Option<Spanned<String>>,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    values: BTreeMap<String, Spanned<BTreeMap<String, String>>>,
}

/// Trims (Unicode whitespace, including U+3000, and a stray BOM) and lowercases a column name.
pub(super) fn column_key(name: &str) -> String {
    name.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
        .to_lowercase()
}

fn line_of(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, ImportError> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let err = |line: u64, message: String| ImportError::Mapping {
            file: path.to_path_buf(),
            line,
            message,
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                return Err(err(line, "invalid UTF-8".into()));
            }
        };
        let file: MappingFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            err(line, e.message().trim().to_string())
        })?;

        let mut mapping = Mapping::default();
        if let Some(id) = file.id_column {
            let line = line_of(text, id.span().start);
            let name = id.into_inner();
            if !ID_COLUMNS.contains(&name.as_str()) {
                return Err(err(
                    line,
                    format!(
                        "id_column {name:?} is not an ID column; expected one of {}",
                        ID_COLUMNS.join(", ")
                    ),
                ));
            }
            mapping.id_column = name;
        }
        for (export, target) in file.columns {
            let line = line_of(text, target.span().start);
            let target = target.into_inner();
            if !CANONICAL_COLUMNS.contains(&target.as_str()) {
                return Err(err(
                    line,
                    format!(
                        "{target:?} is not a canonical column name; expected one of {}",
                        CANONICAL_COLUMNS.join(", ")
                    ),
                ));
            }
            let key = column_key(&export);
            if key.is_empty() {
                return Err(err(line, "empty export column name".into()));
            }
            if let Some(previous) = mapping.columns.insert(key.clone(), target.clone())
                && previous != target
            {
                return Err(err(
                    line,
                    format!(
                        "export column {key:?} is mapped twice ({previous:?} and {target:?}) once trimmed and lowercased"
                    ),
                ));
            }
        }
        for (column, table) in file.values {
            let line = line_of(text, table.span().start);
            let column = column_key(&column);
            if column.is_empty() {
                return Err(err(line, "empty column name in [values]".into()));
            }
            let table = table.into_inner();
            let mut translated = HashMap::with_capacity(table.len());
            for (from, to) in table {
                let from = clean(&from).to_string();
                if let Some(previous) = translated.insert(from.clone(), to.clone())
                    && previous != to
                {
                    return Err(err(
                        line,
                        format!(
                            "value {from:?} of column {column:?} is translated twice once trimmed"
                        ),
                    ));
                }
            }
            mapping.values.insert(column, translated);
        }
        Ok(mapping)
    }
}
