//! What a feed takes from each dataset record: which columns become
//! attribute tokens or clear values, which rows the agreement's row scope
//! keeps (checked per record), read from the record where it lies.

use super::store::FeedStoreError;
use crate::dataset::DatasetReader;
use dxmesh_protocol::agreement::{RowPredicate, Terms, Treatment};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::token::AttrField;

/// How each feed field is read from a dataset record.
pub(super) enum Source {
    /// The record's ID number.
    Id,
    /// Column `i` of `values`.
    Column(usize),
}

/// How a feed is read from the records of a dataset.
pub(super) struct Plan {
    /// Columns the feed reads (scope, attribute tokens, clear values).
    pub(super) used: Vec<bool>,
    pub(super) attrs: Vec<(AttrField, Source)>,
    pub(super) clear: Vec<Source>,
    pub(super) rows: Vec<(RowPredicate, Option<usize>)>,
    pub(super) reference: Date,
}

/// A dataset record read in place (see [`BlockCursor`]).
pub(super) struct RecordRef<'a> {
    pub(super) id: dxmesh_protocol::id::IdNumber,
    pub(super) values: &'a [&'a str],
}

/// The text of `src` in a record.
pub(super) fn value<'r>(rec: &'r RecordRef<'_>, src: &Source) -> &'r str {
    match src {
        Source::Id => rec.id.as_str(),
        Source::Column(i) => rec.values.get(*i).copied().unwrap_or(""),
    }
}

impl Plan {
    pub(super) fn new(
        reader: &DatasetReader,
        terms: &Terms,
        reference: Date,
    ) -> Result<Plan, FeedStoreError> {
        let bad = |problem: String| FeedStoreError::Schema {
            dataset: terms.dataset.clone(),
            problem,
        };
        let column = |name: &str| -> Result<Source, FeedStoreError> {
            if name == reader.id_column() {
                return Ok(Source::Id);
            }
            reader
                .columns()
                .iter()
                .position(|c| c == name)
                .map(Source::Column)
                .ok_or_else(|| {
                    bad(format!(
                        "has no column {name:?} (columns: {})",
                        reader.columns().join(", ")
                    ))
                })
        };
        let mut attrs = Vec::new();
        let mut clear = Vec::new();
        for f in &terms.fields {
            match f.treatment {
                Treatment::Token => {
                    if f.name != reader.id_column() {
                        return Err(bad(format!(
                            "the token field {:?} is not the dataset's ID column {:?}",
                            f.name,
                            reader.id_column()
                        )));
                    }
                }
                Treatment::AttrToken => {
                    let field = AttrField::new(&f.name).map_err(|e| bad(e.to_string()))?;
                    attrs.push((field, column(&f.name)?));
                }
                Treatment::Clear => clear.push(column(&f.name)?),
            }
        }
        let mut rows = Vec::new();
        for p in &terms.rows {
            let col = match p {
                RowPredicate::Equals { field, .. }
                | RowPredicate::In { field, .. }
                | RowPredicate::WithinDays { field, .. } => match column(field)? {
                    Source::Column(i) => Some(i),
                    Source::Id => None,
                },
                RowPredicate::AgeAtLeast { .. } | RowPredicate::AgeAtMost { .. } => None,
            };
            rows.push((p.clone(), col));
        }
        let mut used = vec![false; reader.columns().len()];
        let columns = attrs
            .iter()
            .map(|(_, src)| src)
            .chain(&clear)
            .filter_map(|src| match src {
                Source::Column(i) => Some(*i),
                Source::Id => None,
            })
            .chain(rows.iter().filter_map(|(_, col)| *col));
        for i in columns {
            used[i] = true;
        }
        Ok(Plan {
            used,
            attrs,
            clear,
            rows,
            reference,
        })
    }

    pub(super) fn in_scope(&self, rec: &RecordRef<'_>) -> bool {
        self.rows.iter().all(|(p, col)| {
            let v = |c: &Option<usize>| match c {
                Some(i) => rec.values.get(*i).copied().unwrap_or(""),
                None => rec.id.as_str(),
            };
            match p {
                RowPredicate::Equals { value, .. } => v(col) == value,
                RowPredicate::In { values, .. } => values.iter().any(|x| x == v(col)),
                RowPredicate::AgeAtLeast { years } => {
                    rec.id.birth_date().age_on(self.reference) >= *years
                }
                RowPredicate::AgeAtMost { years } => {
                    rec.id.birth_date().age_on(self.reference) <= *years
                }
                RowPredicate::WithinDays { days, .. } => match Date::parse(v(col)) {
                    Ok(d) => {
                        let age = self.reference.days_since_epoch() - d.days_since_epoch();
                        (0..=i64::from(*days)).contains(&age)
                    }
                    Err(_) => false,
                },
            }
        })
    }
}
