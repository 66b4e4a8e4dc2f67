//! Result rows on their way to a result file, in the node's memory budget:
//! a result's disclosed records (sorted by their values, then the
//! person's token) and `verified_registrations.csv` (by ID number, then
//! finding) go through the node's external sort
//! ([`crate::dataset::extsort`]) instead of a vector of every row, and are
//! written to the file as they come out of it, repeats dropped. A row is
//! its fields one after the other, each with its 0x00 bytes written as
//! 0x00 0x01 and ended by 0x00 0x00, so that comparing two rows' bytes
//! compares their fields in turn. The sort's runs go to a temporary
//! directory under `commitments/` (removed with the sort, and by the
//! node's start-up clean when a node was killed).

use crate::compare::error::CycleError;
use crate::dataset::extsort::{Sorter, Width};
use dxmesh_protocol::token::IdToken;
use std::io::Write;
use std::path::Path;

/// The order of encoded rows: their bytes.
type ByBytes = fn(&[u8], &[u8]) -> std::cmp::Ordering;

fn io(path: &Path) -> impl Fn(std::io::Error) -> CycleError + '_ {
    move |source| CycleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends `field` to `out` in the order-keeping form above.
fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    for &b in field {
        out.push(b);
        if b == 0 {
            out.push(1);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The fields of an encoded row, into `fields` (cleared first).
fn fields_of(mut row: &[u8], fields: &mut Vec<Vec<u8>>) {
    let mut n = 0;
    while !row.is_empty() {
        if fields.len() == n {
            fields.push(Vec::new());
        }
        let f = &mut fields[n];
        f.clear();
        let mut i = 0;
        while i < row.len() {
            if row[i] == 0 {
                if row.get(i + 1) == Some(&0) {
                    break;
                }
                f.push(0);
                i += 2;
            } else {
                f.push(row[i]);
                i += 1;
            }
        }
        row = row.get(i + 2..).unwrap_or(&[]);
        n += 1;
    }
    fields.truncate(n);
}

/// Rows of a result file, sorted on disk beyond the memory given.
pub(crate) struct RowSort {
    sorter: Sorter<ByBytes>,
    /// Where the runs go; removed when the sort is.
    _runs: tempfile::TempDir,
    scratch: Vec<u8>,
}

impl RowSort {
    /// A sort in `memory` bytes whose runs go under `data_dir`.
    pub(crate) fn new(data_dir: &Path, memory: usize) -> Result<RowSort, CycleError> {
        let parent = data_dir.join(crate::base::layout::COMMITMENTS);
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let runs = tempfile::Builder::new()
            .prefix(crate::base::fsutil::ATOMIC_TMP_PREFIX)
            .tempdir_in(&parent)
            .map_err(io(&parent))?;
        let by_bytes: ByBytes = |a, b| a.cmp(b);
        Ok(RowSort {
            sorter: Sorter::new(runs.path(), "rows", memory, Width::Variable(0), by_bytes),
            _runs: runs,
            scratch: Vec::new(),
        })
    }

    /// Adds a row.
    pub(crate) fn push<F: AsRef<[u8]>>(&mut self, fields: &[F]) -> Result<(), CycleError> {
        self.scratch.clear();
        for f in fields {
            put_field(&mut self.scratch, f.as_ref());
        }
        Ok(self.sorter.push(&self.scratch)?)
    }

    /// Hands every row, in order and each once, to `each` (its fields);
    /// returns how many there were.
    pub(crate) fn for_each(
        self,
        mut each: impl FnMut(&[Vec<u8>]) -> Result<(), CycleError>,
    ) -> Result<u64, CycleError> {
        let mut merged = self.sorter.finish()?;
        let mut rows = 0u64;
        let mut fields = Vec::new();
        let mut last: Vec<u8> = Vec::new();
        while let Some(r) = merged.next()? {
            if rows > 0 && r == &last[..] {
                continue;
            }
            last.clear();
            last.extend_from_slice(r);
            fields_of(r, &mut fields);
            each(&fields)?;
            rows += 1;
        }
        Ok(rows)
    }

    /// Writes `header` and then fields `keep` of every row, in order and
    /// each once, to the CSV file `path` (atomically); returns the rows
    /// written.
    pub(crate) fn write_csv(
        self,
        path: &Path,
        header: &[String],
        keep: std::ops::Range<usize>,
    ) -> Result<u64, CycleError> {
        let mut rows = 0;
        write_csv_with(path, header, |w| {
            rows = self.for_each(|fields| {
                w.write_record(&fields[keep.clone()])
                    .map_err(|source| CycleError::Csv {
                        path: path.to_path_buf(),
                        source,
                    })
            })?;
            Ok(())
        })?;
        Ok(rows)
    }
}

/// A batch of disclosed records: each with its person's token.
pub(crate) type Records = Vec<(IdToken, Vec<String>)>;

/// Who a result's disclosed records are of.
#[derive(Default)]
pub(crate) struct Persons {
    /// People with at least one record.
    pub(crate) persons: u64,
    /// People with more than one.
    pub(crate) several: u64,
}

/// Adds a batch of disclosed records (every record of its tokens) to the
/// result's rows (values, then the token) and counts its people; a record
/// repeated for a person is kept once.
pub(crate) fn add_batch(
    (rows, width): (&mut RowSort, usize),
    persons: &mut Persons,
    mut batch: Records,
) -> Result<(), CycleError> {
    if let Some((token, values)) = batch.iter().find(|(_, v)| v.len() != width) {
        return Err(CycleError::Disclosure(format!(
            "a record of token {token} holds {} values for the {width} fields asked",
            values.len()
        )));
    }
    batch.sort();
    batch.dedup();
    for group in batch.chunk_by(|a, b| a.0 == b.0) {
        persons.persons += 1;
        persons.several += u64::from(group.len() > 1);
        for (token, values) in group {
            let mut fields: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
            fields.push(&token.0);
            rows.push(&fields)?;
        }
    }
    Ok(())
}

/// Writes a CSV file atomically: `header`, then what `rows` writes, to a
/// temporary file beside `path`, synced and renamed over it.
pub(crate) fn write_csv_with(
    path: &Path,
    header: &[String],
    rows: impl FnOnce(&mut csv::Writer<std::io::BufWriter<&std::fs::File>>) -> Result<(), CycleError>,
) -> Result<(), CycleError> {
    let csv_error = |source| CycleError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let tmp = crate::base::fsutil::atomic_temp_for(path, 0o600).map_err(io(path))?;
    {
        let mut w =
            csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, tmp.as_file()));
        w.write_record(header).map_err(csv_error)?;
        rows(&mut w)?;
        let mut inner = w.into_inner().map_err(|e| io(path)(e.into_error()))?;
        inner.flush().map_err(io(path))?;
    }
    crate::base::fsutil::commit_atomic(tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disclosed_record_with_another_number_of_values_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = RowSort::new(dir.path(), 0).unwrap();
        let mut persons = Persons::default();
        let t = |b: u8| IdToken([b; 16]);
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // Two people, one with two rows and a repeat: counted once each.
        add_batch(
            (&mut rows, 2),
            &mut persons,
            vec![
                (t(1), v(&["a", "x"])),
                (t(2), v(&["b", "y"])),
                (t(2), v(&["b", "z"])),
                (t(2), v(&["b", "y"])),
            ],
        )
        .unwrap();
        assert_eq!((persons.persons, persons.several), (2, 1));
        for short_or_long in [v(&["c"]), v(&["c", "d", "e"])] {
            let e =
                add_batch((&mut rows, 2), &mut persons, vec![(t(3), short_or_long)]).unwrap_err();
            assert!(matches!(e, CycleError::Disclosure(_)), "{e}");
        }
        let path = dir.path().join("r.csv");
        let n = rows
            .write_csv(&path, &["a".into(), "b".into()], 0..2)
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a,b\na,x\nb,y\nb,z\n"
        );
    }

    #[test]
    fn rows_come_out_by_fields_in_turn_each_once_whatever_the_memory() {
        let dir = tempfile::tempdir().unwrap();
        // Fields that are prefixes of others, hold 0x00 and 0x01, repeat.
        let rows: Vec<Vec<Vec<u8>>> = (0..20_000u32)
            .map(|i| {
                let a = match i % 5 {
                    0 => b"ab".to_vec(),
                    1 => b"a".to_vec(),
                    2 => b"a\0".to_vec(),
                    3 => b"a\0\x01".to_vec(),
                    _ => format!("n{}", i % 97).into_bytes(),
                };
                vec![
                    a,
                    format!("{}", i % 13).into_bytes(),
                    (i % 7).to_be_bytes().to_vec(),
                ]
            })
            .collect();
        let mut want = rows.clone();
        want.sort();
        want.dedup();
        let mut texts = Vec::new();
        for memory in [1 << 30, 0] {
            let mut s = RowSort::new(dir.path(), memory).unwrap();
            for r in &rows {
                s.push(r).unwrap();
            }
            let path = dir.path().join(format!("out-{memory}.csv"));
            let n = s.write_csv(&path, &["a".into(), "b".into()], 0..2).unwrap();
            assert_eq!(n as usize, want.len());
            let mut rd = csv::ReaderBuilder::new().from_path(&path).unwrap();
            let got: Vec<Vec<Vec<u8>>> = rd
                .byte_records()
                .map(|r| r.unwrap().iter().map(|f| f.to_vec()).collect())
                .collect();
            let expect: Vec<Vec<Vec<u8>>> = want.iter().map(|r| r[..2].to_vec()).collect();
            assert_eq!(got, expect);
            texts.push(std::fs::read(&path).unwrap());
        }
        assert!(texts[0] == texts[1]);
        // The runs are gone with the sorts.
        let left = std::fs::read_dir(dir.path().join(crate::base::layout::COMMITMENTS))
            .unwrap()
            .count();
        assert_eq!(left, 0);
    }
}
