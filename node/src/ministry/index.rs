//! The national index on disk: every record of the ministry's national
//! dataset as a 12-byte entry (the ID's 8-byte key, [`IdNumber::key`], and
//! the code of its values) in a [`SortedFile`], sorted by ID, with the
//! distinct value combinations (province, insurance type: a few hundred)
//! in its meta. Built once per dataset generation (`national.idx` in the
//! generation's directory) by an external sort with bounded memory;
//! answered by fence lookups, so a query of `q` IDs costs `O(q log n)`
//! positioned reads of 768 bytes, however large the index.

use super::error::MinistryError;
use crate::dataset::extsort::{Sorter, Width};
use crate::dataset::sorted::{SortedError, SortedFile, SortedWriter};
use crate::dataset::{BlockCursor, DatasetReader, RawBlocks};
use dxmesh_protocol::codec;
use dxmesh_protocol::id::IdNumber;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The index file in a generation directory of the national dataset.
pub const INDEX_FILE: &str = "national.idx";

/// Entry: the ID key (8 bytes, big-endian) then the value code (4).
const ENTRY_LEN: usize = 12;
const KEY_LEN: usize = 8;

/// At most this many distinct value combinations (the index is for the
/// national index's few low-cardinality columns).
pub const MAX_COMBINATIONS: usize = 1 << 20;

/// Keys looked up per parallel task.
const LOOKUP_TASK: usize = 4096;

/// What the index holds besides its entries.
#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    /// The dataset generation it was built from.
    generation: u64,
    /// The dataset's value columns.
    columns: Vec<String>,
    /// Every distinct combination of values, by code.
    combinations: Vec<Vec<String>>,
}

/// An open national index.
pub struct NationalIndex {
    file: SortedFile,
    meta: Meta,
}

impl std::fmt::Debug for NationalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NationalIndex")
            .field("path", &self.file.path())
            .field("entries", &self.file.len())
            .field("generation", &self.meta.generation)
            .finish()
    }
}

/// A record found: its ID and the values asked for.
type Found = (IdNumber, Vec<String>);

/// The national indexes a node has open and is building: a handle the
/// daemon owns and hands to the ministry queries it answers (clones share
/// it). A query opens the index once per dataset generation; concurrent
/// first queries wait for one build.
#[derive(Debug, Clone)]
pub struct Indexes {
    /// Memory a build may use (bytes).
    memory: usize,
    /// The index last opened or built.
    open: Arc<Mutex<Option<Arc<NationalIndex>>>>,
    /// Index files being built by [`Indexes::prepare`] now.
    building: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl Indexes {
    /// No index open yet; a build keeps to `memory` bytes.
    pub fn new(memory: usize) -> Indexes {
        Indexes {
            memory,
            open: Arc::default(),
            building: Arc::default(),
        }
    }

    /// The index of the current generation of `dataset`: the open one, or
    /// the one on disk, or one built now (and kept on disk).
    pub fn for_dataset(
        &self,
        data_dir: &Path,
        dataset: &str,
    ) -> Result<Arc<NationalIndex>, MinistryError> {
        let reader = DatasetReader::open(data_dir, dataset)?;
        let path = reader.dir().join(INDEX_FILE);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(index) = open.as_ref().filter(|i| i.file.path() == path) {
            return Ok(index.clone());
        }
        let generation = reader.report().generation;
        let index = if path.exists() {
            let index = NationalIndex::open(&path)?;
            if index.meta.generation != generation {
                return Err(MinistryError::Index(SortedError::Damaged {
                    path,
                    problem: format!(
                        "built from generation {}, found in generation {generation}",
                        index.meta.generation
                    ),
                }));
            }
            index
        } else {
            build(&reader, &path, self.memory)?
        };
        let index = Arc::new(index);
        *open = Some(index.clone());
        Ok(index)
    }

    /// Builds the index of the current generation of `dataset` on a thread
    /// of its own, unless it is built or being built (the daemon calls
    /// this on every tick for the datasets ministry queries read).
    pub fn prepare(&self, data_dir: &Path, dataset: &str) {
        let Ok(dir) = crate::dataset::current_dir(data_dir, dataset) else {
            return;
        };
        let path = dir.join(INDEX_FILE);
        if path.exists() {
            return;
        }
        if !self
            .building
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.clone())
        {
            return;
        }
        let (data_dir, dataset, indexes) =
            (data_dir.to_path_buf(), dataset.to_string(), self.clone());
        std::thread::spawn(move || {
            if let Err(e) = indexes.for_dataset(&data_dir, &dataset) {
                tracing::error!(dataset, error = %e, "cannot build the national index");
            }
            indexes
                .building
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&path);
        });
    }
}

impl NationalIndex {
    /// Opens an index file.
    pub fn open(path: &Path) -> Result<NationalIndex, MinistryError> {
        let file = SortedFile::open(path)?;
        let meta: Meta = codec::decode(file.meta()).map_err(|e| SortedError::Damaged {
            path: path.to_path_buf(),
            problem: format!("meta: {e}"),
        })?;
        let width = meta.columns.len();
        if meta.combinations.iter().any(|c| c.len() != width) {
            return Err(MinistryError::Index(SortedError::Damaged {
                path: path.to_path_buf(),
                problem: "a value combination of another width than the columns".into(),
            }));
        }
        Ok(NationalIndex { file, meta })
    }

    /// Entries (records) in the index.
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    /// Whether the index has no records.
    pub fn is_empty(&self) -> bool {
        self.file.is_empty()
    }

    /// The dataset's value columns.
    pub fn columns(&self) -> &[String] {
        &self.meta.columns
    }

    /// Every record of the IDs in `ids` (any order, repeats allowed), with
    /// the values of `fields`, sorted by ID then values.
    pub fn lookup(&self, ids: &[IdNumber], fields: &[String]) -> Result<Vec<Found>, MinistryError> {
        let cols: Vec<usize> = fields
            .iter()
            .map(|f| {
                self.meta
                    .columns
                    .iter()
                    .position(|c| c == f)
                    .ok_or_else(|| MinistryError::NoColumn(f.clone()))
            })
            .collect::<Result<_, _>>()?;
        let mut keys: Vec<[u8; KEY_LEN]> = ids.iter().map(|id| id.key().to_be_bytes()).collect();
        keys.par_sort_unstable();
        keys.dedup();
        let path = self.file.path();
        let parts: Vec<Result<Vec<Found>, MinistryError>> = keys
            .par_chunks(LOOKUP_TASK)
            .map(|task| {
                let mut out = Vec::new();
                let mut bad = None;
                self.file.lookup(task, |i, entry| {
                    let code = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
                    let Some(values) = self.meta.combinations.get(code as usize) else {
                        bad.get_or_insert(format!("an entry names value combination {code}"));
                        return;
                    };
                    let id = ids_key(&task[i]);
                    match id {
                        Ok(id) => out.push((id, cols.iter().map(|c| values[*c].clone()).collect())),
                        Err(e) => {
                            bad.get_or_insert(format!("an entry's key is no ID: {e}"));
                        }
                    }
                })?;
                match bad {
                    Some(problem) => Err(MinistryError::Index(SortedError::Damaged {
                        path: path.to_path_buf(),
                        problem,
                    })),
                    None => Ok(out),
                }
            })
            .collect();
        let mut found = Vec::new();
        for p in parts {
            found.extend(p?);
        }
        found.sort();
        Ok(found)
    }
}

fn ids_key(key: &[u8; KEY_LEN]) -> Result<IdNumber, dxmesh_protocol::id::IdError> {
    IdNumber::from_key(u64::from_be_bytes(*key))
}

/// Builds the index of `reader`'s generation at `path` (through a
/// temporary file, synced and renamed).
fn build(
    reader: &DatasetReader,
    path: &Path,
    memory: usize,
) -> Result<NationalIndex, MinistryError> {
    let started = std::time::Instant::now();
    let dir = path.parent().unwrap_or(Path::new("."));
    let records = reader.report().rows_kept;
    crate::dataset::extsort::ensure_space(
        dir,
        records.saturating_mul(2 * ENTRY_LEN as u64),
        "building the national index",
    )?;
    let mut builder = IndexBuilder::new(dir, reader.columns().to_vec(), memory)?;
    let mut raw = RawBlocks::open(reader, false)?;
    let all = |_: usize| true;
    while let Some(block) = raw.next_block()? {
        let mut values = Vec::new();
        let mut cursor = BlockCursor::new(&block)?;
        while let Some(id) = cursor.next_record(all, &mut values)? {
            builder.push(&id, &values)?;
        }
    }
    let index = builder.finish(reader.report().generation, path)?;
    tracing::info!(
        entries = index.len(),
        secs = started.elapsed().as_secs_f64(),
        path = %path.display(),
        "national index built"
    );
    Ok(index)
}

/// The order of index entries: their bytes.
type ByBytes = fn(&[u8], &[u8]) -> std::cmp::Ordering;

/// Builds an index from records in any order, within `memory` bytes: the
/// entries go through the node's external sort
/// ([`crate::dataset::extsort`]), its runs beside the target.
pub struct IndexBuilder {
    dir: PathBuf,
    columns: Vec<String>,
    codes: HashMap<Vec<u8>, u32>,
    combinations: Vec<Vec<String>>,
    scratch: Vec<u8>,
    sorter: Sorter<ByBytes>,
}

impl IndexBuilder {
    /// A builder whose temporary files go to `dir` (beside the index) and
    /// that keeps about `memory` bytes of entries in memory.
    pub fn new(
        dir: &Path,
        columns: Vec<String>,
        memory: usize,
    ) -> Result<IndexBuilder, MinistryError> {
        let by_bytes: ByBytes = |a, b| a.cmp(b);
        Ok(IndexBuilder {
            dir: dir.to_path_buf(),
            columns,
            codes: HashMap::new(),
            combinations: Vec::new(),
            scratch: Vec::new(),
            sorter: Sorter::new(dir, "national", memory, Width::Fixed(ENTRY_LEN), by_bytes)
                .sorting_runs_in_parallel(),
        })
    }

    /// Adds a record: its ID and one value per column.
    pub fn push<S: AsRef<str>>(
        &mut self,
        id: &IdNumber,
        values: &[S],
    ) -> Result<(), MinistryError> {
        if values.len() != self.columns.len() {
            return Err(MinistryError::Build(format!(
                "a record of {id} has {} values for {} columns",
                values.len(),
                self.columns.len()
            )));
        }
        self.scratch.clear();
        for v in values {
            let v = v.as_ref().as_bytes();
            self.scratch
                .extend_from_slice(&(v.len() as u32).to_be_bytes());
            self.scratch.extend_from_slice(v);
        }
        let code = match self.codes.get(&self.scratch[..]) {
            Some(code) => *code,
            None => {
                if self.combinations.len() >= MAX_COMBINATIONS {
                    return Err(MinistryError::Build(format!(
                        "more than {MAX_COMBINATIONS} distinct combinations of {:?}: the national index keeps low-cardinality columns only (import the columns the ministry answers with)",
                        self.columns
                    )));
                }
                let code = self.combinations.len() as u32;
                self.codes.insert(self.scratch.clone(), code);
                self.combinations
                    .push(values.iter().map(|v| v.as_ref().to_string()).collect());
                code
            }
        };
        let mut entry = [0u8; ENTRY_LEN];
        entry[..KEY_LEN].copy_from_slice(&id.key().to_be_bytes());
        entry[KEY_LEN..].copy_from_slice(&code.to_be_bytes());
        self.sorter.push(&entry)?;
        Ok(())
    }

    /// Writes the index of generation `generation` to `path` (atomically:
    /// a temporary file, synced, renamed, the directory synced) and opens it.
    pub fn finish(mut self, generation: u64, path: &Path) -> Result<NationalIndex, MinistryError> {
        let meta = codec::encode(&Meta {
            generation,
            columns: std::mem::take(&mut self.columns),
            combinations: std::mem::take(&mut self.combinations),
        })
        .map_err(|e| MinistryError::Build(format!("cannot encode the index's values: {e}")))?;
        if meta.len() > codec::MAX_DECODE_BYTES {
            return Err(MinistryError::Build(format!(
                "the distinct value combinations take {} bytes, more than the {} an index keeps",
                meta.len(),
                codec::MAX_DECODE_BYTES
            )));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".national-idx-")
            .tempfile_in(&self.dir)
            .map_err(|e| io(&self.dir, e))?;
        let mut w = SortedWriter::create(tmp.path(), ENTRY_LEN, KEY_LEN, false)?;
        let mut sorted = self.sorter.finish()?;
        while let Some(entry) = sorted.next()? {
            w.push(entry)?;
        }
        drop(sorted);
        w.finish(&meta)?;
        tmp.persist(path).map_err(|e| io(path, e.error))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(&self.dir, e))?;
        NationalIndex::open(path)
    }
}

fn io(path: &Path, e: std::io::Error) -> MinistryError {
    MinistryError::Index(SortedError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxmesh_protocol::id::check_character;

    fn id(n: u64) -> IdNumber {
        born("19900101", n)
    }

    fn born(day: &str, n: u64) -> IdNumber {
        let mut b = format!("110105{day}{n:03}").into_bytes();
        b.push(check_character(&b));
        IdNumber::from_normalised(&b).unwrap()
    }

    #[test]
    fn finds_every_record_of_each_id_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let cols = vec!["province_code".to_string(), "insurance_type".to_string()];
        // The least memory: every entry past the first run's spills.
        let mut b = IndexBuilder::new(dir.path(), cols, 0).unwrap();
        // Insert in reverse order, ID 7 twice (two insurance types).
        for n in (0..50u64).rev() {
            b.push(
                &id(n),
                &["11", if n % 2 == 0 { "pension" } else { "medical" }],
            )
            .unwrap();
        }
        b.push(&id(7), &["12", "pension"]).unwrap();
        // Others, born on other days, so that the entries make several runs
        // (about 1,800 entries each in the least memory).
        for day in 2..=9 {
            for n in 0..1000 {
                b.push(&born(&format!("1990010{day}"), n), &["11", "pension"])
                    .unwrap();
            }
        }
        assert!(b.sorter.runs() >= 4, "{} runs", b.sorter.runs());
        b.push(&id(60), &["13", "medical"]).unwrap();
        let path = dir.path().join(INDEX_FILE);
        let index = b.finish(3, &path).unwrap();
        assert_eq!(index.len(), 8052);
        let again = NationalIndex::open(&path).unwrap();
        let asked = [id(7), id(60), id(999), id(7), id(0), born("19900109", 999)];
        let found = again
            .lookup(&asked, &["insurance_type".to_string()])
            .unwrap();
        assert_eq!(
            found,
            vec![
                (id(0), vec!["pension".to_string()]),
                (id(7), vec!["medical".to_string()]),
                (id(7), vec!["pension".to_string()]),
                (id(60), vec!["medical".to_string()]),
                (born("19900109", 999), vec!["pension".to_string()]),
            ]
        );
        assert!(matches!(
            again.lookup(&asked, &["name".to_string()]),
            Err(MinistryError::NoColumn(_))
        ));
        assert!(matches!(
            IndexBuilder::new(dir.path(), vec!["a".into()], 0)
                .unwrap()
                .push(&id(1), &["x", "y"]),
            Err(MinistryError::Build(_))
        ));
    }
}
