//! The external sort every large job of a node sorts with, in bounded
//! memory: the national index build, a feed's rows at publishing, and the
//! jobs that follow them. Records (byte strings) are pushed in any order;
//! while they fit in the memory given, they are kept in one arena with a
//! 24-byte entry each (the record's first 16 bytes as two integers, its
//! place in the arena); once the arena is full, the entries are sorted
//! (on the pushing thread, see [`Sorter::push`]) and the run is written
//! to a temporary file beside the job's output. Records that all fit are
//! sorted on the rayon pool when the sort finishes. [`Sorter::finish`] hands back the records in order: straight from
//! memory if no run was written, else by a k-way merge of the runs (with an
//! intermediate merge first when there are more than [`MAX_FAN_IN`], so a
//! merge's buffers stay within the budget however large the input).
//!
//! The order is the caller's comparison, which must agree with the byte
//! order of the records' first 16 bytes (zero-padded): the entries compare
//! those as integers first and call the comparison only on a tie. Records
//! that compare equal come out in an unspecified order.
//!
//! A run file holds each record as its length (4 bytes, big-endian) and
//! its bytes, or only its bytes when every record has one fixed width; it
//! is a `tempfile` (removed when dropped, and by the node's start-up clean
//! of temporary files when a node was killed).

use super::sorted_error::SortedError;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Runs merged at once; more are merged into fewer runs first.
pub const MAX_FAN_IN: usize = 64;

/// The least memory a sorter works with, whatever it is given.
pub const MIN_MEMORY: usize = 64 << 10;

/// Records whose bytes are loaded together when sorted records are read
/// from memory.
const PREFETCH: usize = 32;

/// The memory a sorter given `memory` bytes works with.
pub fn effective_memory(memory: usize) -> usize {
    memory.clamp(MIN_MEMORY, u32::MAX as usize)
}

/// Bytes of memory a record takes in a run besides its own bytes.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// A record's place in the arena and its leading bytes as integers.
#[derive(Clone, Copy)]
struct Entry {
    key: [u64; 2],
    off: u32,
    len: u32,
}

/// The records' widths: all the same, or each its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Every record has this many bytes.
    Fixed(usize),
    /// Records differ in length; at least this many bytes each.
    Variable(usize),
}

impl Width {
    fn least(self) -> usize {
        match self {
            Width::Fixed(n) | Width::Variable(n) => n,
        }
    }
}

fn key_of(record: &[u8]) -> [u64; 2] {
    let mut k = [0u8; 16];
    let n = record.len().min(16);
    k[..n].copy_from_slice(&record[..n]);
    let (hi, lo) = k.split_at(8);
    [
        u64::from_be_bytes(hi.try_into().unwrap_or_default()),
        u64::from_be_bytes(lo.try_into().unwrap_or_default()),
    ]
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SortedError + '_ {
    move |e| SortedError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Bytes free for an unprivileged writer on the filesystem holding `dir`.
pub fn available_space(dir: &Path) -> Result<u64, SortedError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| SortedError::Io {
        path: dir.to_path_buf(),
        message: format!("cannot read the free space: {e}"),
    })?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Refuses to start a job that needs `needed` bytes of disk in `dir` when
/// the filesystem has less free (`what` names the job in the message).
pub fn ensure_space(dir: &Path, needed: u64, what: &str) -> Result<(), SortedError> {
    let available = available_space(dir)?;
    if available < needed {
        return Err(SortedError::NoSpace {
            path: dir.to_path_buf(),
            what: what.to_string(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Sorts records in bounded memory; see the module documentation.
pub struct Sorter<C> {
    dir: PathBuf,
    label: String,
    memory: usize,
    width: Width,
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// The run files written (by path: no descriptor is held open until
    /// the merge, so thousands of runs do not exhaust the process's files).
    runs: Vec<tempfile::TempPath>,
    cmp: C,
    records: u64,
    /// Whether a run is sorted on the rayon pool.
    parallel: bool,
}

impl<C> Sorter<C>
where
    C: Fn(&[u8], &[u8]) -> Ordering + Sync,
{
    /// A sorter that keeps at most about `memory` bytes of records (and
    /// their entries) in memory and writes its runs to `dir`, named after
    /// `label`.
    pub fn new(dir: &Path, label: &str, memory: usize, width: Width, cmp: C) -> Sorter<C> {
        let memory = effective_memory(memory);
        Sorter {
            dir: dir.to_path_buf(),
            label: label.to_string(),
            memory,
            width,
            // Reserved, not touched: pages are used as records arrive.
            arena: Vec::with_capacity(memory),
            entries: Vec::with_capacity(memory / (ENTRY_BYTES + width.least().max(1))),
            runs: Vec::new(),
            cmp,
            records: 0,
            parallel: false,
        }
    }

    /// Sorts each run on the rayon pool: for a caller that never pushes
    /// from a rayon worker (a plain thread of its own), where a worker
    /// waiting on the sort cannot take up another push.
    pub fn sorting_runs_in_parallel(mut self) -> Sorter<C> {
        self.parallel = true;
        self
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Run files written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds a record; when the memory is used, first sorts the records
    /// held and writes them as a run (on this thread, unless
    /// [`Sorter::sorting_runs_in_parallel`]: callers may push from rayon
    /// workers that hold a lock on the sorter).
    pub fn push(&mut self, record: &[u8]) -> Result<(), SortedError> {
        let fits_width = match self.width {
            Width::Fixed(n) => record.len() == n,
            Width::Variable(n) => record.len() >= n,
        };
        if !fits_width || record.len() > (u32::MAX / 2) as usize {
            return Err(SortedError::Misuse {
                path: self.dir.clone(),
                problem: format!(
                    "a record of {} bytes given to the {} sort ({:?})",
                    record.len(),
                    self.label,
                    self.width
                ),
            });
        }
        // A record larger than the memory given makes a run of its own.
        let used = self.arena.len() + (self.entries.len() + 1) * ENTRY_BYTES;
        if used + record.len() > self.memory && !self.entries.is_empty() {
            self.spill()?;
        }
        self.entries.push(Entry {
            key: key_of(record),
            off: self.arena.len() as u32,
            len: record.len() as u32,
        });
        self.arena.extend_from_slice(record);
        self.records += 1;
        Ok(())
    }

    /// Sorts the entries in memory: on the calling thread, or on the rayon
    /// pool if `parallel`.
    ///
    /// First by the leading bytes held in the entries (and the place in
    /// the arena), which reads no record; then each group of entries that
    /// tie on them by the caller's order. Records pushed together lie
    /// together in the arena, so a group's comparisons read memory that is
    /// close (a person's several rows, say).
    fn sort_entries(&mut self, parallel: bool) {
        let (arena, cmp) = (&self.arena, &self.cmp);
        let bytes = |e: &Entry| &arena[e.off as usize..(e.off + e.len) as usize];
        let inline = |a: &Entry, b: &Entry| a.key.cmp(&b.key).then(a.off.cmp(&b.off));
        let tie = |a: &Entry, b: &Entry| a.key == b.key;
        let group = |g: &mut [Entry]| {
            if g.len() > 1 {
                g.sort_unstable_by(|a, b| cmp(bytes(a), bytes(b)));
            }
        };
        if parallel {
            self.entries.par_sort_unstable_by(inline);
            self.entries.par_chunk_by_mut(tie).for_each(group);
        } else {
            self.entries.sort_unstable_by(inline);
            self.entries.chunk_by_mut(tie).for_each(group);
        }
    }

    /// Sorts the records in memory and writes them to a new run file. On
    /// the calling thread unless told otherwise: [`Sorter::push`] may be
    /// called from rayon workers that hold a lock on the sorter, and a
    /// parallel sort there could have a worker waiting on the sort take up
    /// another push, which would wait on the lock it holds.
    fn spill(&mut self) -> Result<(), SortedError> {
        self.sort_entries(self.parallel);
        let mut run = tempfile::Builder::new()
            .prefix(&format!(".{}-run-", self.label))
            .tempfile_in(&self.dir)
            .map_err(io_err(&self.dir))?;
        let path = run.path().to_path_buf();
        let mut w = BufWriter::with_capacity(1 << 20, run.as_file_mut());
        for e in &self.entries {
            let bytes = &self.arena[e.off as usize..(e.off + e.len) as usize];
            if let Width::Variable(_) = self.width {
                w.write_all(&e.len.to_be_bytes()).map_err(io_err(&path))?;
            }
            w.write_all(bytes).map_err(io_err(&path))?;
        }
        w.flush().map_err(io_err(&path))?;
        drop(w);
        self.arena.clear();
        self.entries.clear();
        self.runs.push(run.into_temp_path());
        Ok(())
    }

    /// Every record pushed, in order.
    pub fn finish(mut self) -> Result<Merged<C>, SortedError> {
        if self.runs.is_empty() {
            self.sort_entries(true);
            return Ok(Merged {
                source: Source::Memory {
                    arena: self.arena,
                    entries: self.entries,
                    next: 0,
                },
                cmp: self.cmp,
                width: self.width,
                records: self.records,
            });
        }
        if !self.entries.is_empty() {
            self.spill()?;
        }
        // The buffers of the spilled run are not needed any more.
        self.arena = Vec::new();
        self.entries = Vec::new();
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > MAX_FAN_IN {
            let mut fewer = Vec::with_capacity(runs.len() / MAX_FAN_IN + 1);
            for group in runs.chunks(MAX_FAN_IN) {
                fewer.push(self.merge_to_run(group)?);
            }
            runs = fewer;
        }
        let heads = open_heads(&runs, self.memory)?;
        let mut merged = Merged {
            source: Source::Runs {
                _runs: runs,
                heads,
                heap: Vec::new(),
                last: Vec::new(),
            },
            cmp: self.cmp,
            width: self.width,
            records: self.records,
        };
        merged.start()?;
        Ok(merged)
    }

    /// Merges `group` into one new run file.
    fn merge_to_run(
        &self,
        group: &[tempfile::TempPath],
    ) -> Result<tempfile::TempPath, SortedError> {
        let mut run = tempfile::Builder::new()
            .prefix(&format!(".{}-run-", self.label))
            .tempfile_in(&self.dir)
            .map_err(io_err(&self.dir))?;
        let path = run.path().to_path_buf();
        let heads = open_heads(group, self.memory / 2)?;
        let mut merged = Merged {
            source: Source::Runs {
                _runs: Vec::new(),
                heads,
                heap: Vec::new(),
                last: Vec::new(),
            },
            cmp: &self.cmp,
            width: self.width,
            records: 0,
        };
        merged.start()?;
        let mut w = BufWriter::with_capacity(1 << 20, run.as_file_mut());
        while let Some(r) = merged.next()? {
            if let Width::Variable(_) = self.width {
                w.write_all(&(r.len() as u32).to_be_bytes())
                    .map_err(io_err(&path))?;
            }
            w.write_all(r).map_err(io_err(&path))?;
        }
        w.flush().map_err(io_err(&path))?;
        drop(w);
        Ok(run.into_temp_path())
    }
}

/// The next record of one run file.
struct Head {
    reader: BufReader<File>,
    path: PathBuf,
    record: Vec<u8>,
    key: [u64; 2],
}

impl Head {
    /// Reads the run's next record; false at its end.
    fn advance(&mut self, width: Width) -> Result<bool, SortedError> {
        let len = match width {
            Width::Fixed(n) => n,
            Width::Variable(_) => {
                let mut len = [0u8; 4];
                match self.reader.read_exact(&mut len) {
                    Ok(()) => u32::from_be_bytes(len) as usize,
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(io_err(&self.path)(e)),
                }
            }
        };
        self.record.resize(len, 0);
        match self.reader.read_exact(&mut self.record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                if let Width::Fixed(_) = width {
                    return Ok(false);
                }
                return Err(SortedError::Damaged {
                    path: self.path.clone(),
                    problem: "a run file ends inside a record".into(),
                });
            }
            Err(e) => return Err(io_err(&self.path)(e)),
        }
        self.key = key_of(&self.record);
        Ok(true)
    }
}

/// Opens a reader on every run with buffers that share `memory` between
/// them.
fn open_heads(runs: &[tempfile::TempPath], memory: usize) -> Result<Vec<Head>, SortedError> {
    let buffer = (memory / 2 / runs.len().max(1)).clamp(64 << 10, 4 << 20);
    runs.iter()
        .map(|r| {
            let file = File::open(r).map_err(io_err(r))?;
            Ok(Head {
                reader: BufReader::with_capacity(buffer, file),
                path: r.to_path_buf(),
                record: Vec::new(),
                key: [0; 2],
            })
        })
        .collect()
}

enum Source {
    /// Everything fitted in memory: the sorted entries.
    Memory {
        arena: Vec<u8>,
        entries: Vec<Entry>,
        next: usize,
    },
    /// Runs on disk, merged through a binary heap of run numbers.
    Runs {
        /// Kept so that the files live as long as the merge.
        _runs: Vec<tempfile::TempPath>,
        heads: Vec<Head>,
        heap: Vec<usize>,
        /// The record last handed out.
        last: Vec<u8>,
    },
}

/// The sorted records of a [`Sorter`], handed out one at a time.
pub struct Merged<C> {
    source: Source,
    cmp: C,
    width: Width,
    records: u64,
}

impl<C> Merged<C>
where
    C: Fn(&[u8], &[u8]) -> Ordering,
{
    /// How many records the sort holds.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Whether the records were merged from run files (did not fit in the
    /// memory given).
    pub fn spilled(&self) -> bool {
        matches!(self.source, Source::Runs { .. })
    }

    /// Reads every run's first record and builds the heap.
    fn start(&mut self) -> Result<(), SortedError> {
        let Source::Runs { heads, heap, .. } = &mut self.source else {
            return Ok(());
        };
        for (i, h) in heads.iter_mut().enumerate() {
            if h.advance(self.width)? {
                heap.push(i);
            }
        }
        let n = heap.len();
        for i in (0..n / 2).rev() {
            sift_down(heap, heads, &self.cmp, i);
        }
        Ok(())
    }

    /// The next record in order, or `None` after the last.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&[u8]>, SortedError> {
        match &mut self.source {
            Source::Memory {
                arena,
                entries,
                next,
            } => {
                let Some(e) = entries.get(*next) else {
                    return Ok(None);
                };
                // Sorted, the records lie all over the arena: touch those
                // of the next window first, independently, so that their
                // cache misses overlap instead of costing one memory
                // latency each (prefetching without `unsafe`).
                if *next % PREFETCH == 0 {
                    let window = &entries[*next..(*next + PREFETCH).min(entries.len())];
                    let touched = window.iter().fold(0u8, |acc, w| {
                        acc ^ arena.get(w.off as usize).copied().unwrap_or(0)
                            ^ arena
                                .get((w.off + w.len).saturating_sub(1) as usize)
                                .copied()
                                .unwrap_or(0)
                    });
                    std::hint::black_box(touched);
                }
                *next += 1;
                Ok(Some(&arena[e.off as usize..(e.off + e.len) as usize]))
            }
            Source::Runs {
                heads, heap, last, ..
            } => {
                let Some(&top) = heap.first() else {
                    return Ok(None);
                };
                std::mem::swap(last, &mut heads[top].record);
                if !heads[top].advance(self.width)? {
                    let end = heap.len() - 1;
                    heap.swap(0, end);
                    heap.pop();
                }
                if !heap.is_empty() {
                    sift_down(heap, heads, &self.cmp, 0);
                }
                Ok(Some(last))
            }
        }
    }
}

fn head_less<C: Fn(&[u8], &[u8]) -> Ordering>(heads: &[Head], cmp: &C, a: usize, b: usize) -> bool {
    let (x, y) = (&heads[a], &heads[b]);
    x.key
        .cmp(&y.key)
        .then_with(|| cmp(&x.record, &y.record))
        .then(a.cmp(&b))
        .is_lt()
}

fn sift_down<C: Fn(&[u8], &[u8]) -> Ordering>(
    heap: &mut [usize],
    heads: &[Head],
    cmp: &C,
    mut i: usize,
) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut least = i;
        if l < heap.len() && head_less(heads, cmp, heap[l], heap[least]) {
            least = l;
        }
        if r < heap.len() && head_less(heads, cmp, heap[r], heap[least]) {
            least = r;
        }
        if least == i {
            return;
        }
        heap.swap(i, least);
        i = least;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of varying length in a scrambled order; by bytes.
    fn records(n: u32) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let x = i.wrapping_mul(2_654_435_761) % 1000;
                let mut r = x.to_be_bytes().to_vec();
                r.extend(std::iter::repeat_n(b'a' + (i % 7) as u8, (i % 23) as usize));
                r
            })
            .collect()
    }

    fn sorted_by(memory: usize, width: Width, input: &[Vec<u8>]) -> (Vec<Vec<u8>>, bool, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sorter::new(dir.path(), "test", memory, width, |a: &[u8], b: &[u8]| {
            a.cmp(b)
        });
        for r in input {
            s.push(r).unwrap();
        }
        let runs = s.runs();
        let mut m = s.finish().unwrap();
        let spilled = m.spilled();
        let mut out = Vec::new();
        while let Some(r) = m.next().unwrap() {
            out.push(r.to_vec());
        }
        drop(m);
        // The run files are gone once the merge is dropped.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        (out, spilled, runs)
    }

    #[test]
    fn in_memory_and_spilled_sorts_give_the_same_order() {
        let input = records(300_000);
        let mut expected = input.clone();
        expected.sort();
        let (fits, spilled, _) = sorted_by(256 << 20, Width::Variable(4), &input);
        assert!(!spilled);
        assert_eq!(fits, expected);
        // The least memory: several runs, merged.
        let (merged, spilled, runs) = sorted_by(0, Width::Variable(4), &input);
        assert!(spilled && runs > 1, "{runs} runs");
        assert_eq!(merged, expected);
    }

    #[test]
    fn more_runs_than_the_fan_in_are_merged_in_two_levels() {
        // Fixed-width 12-byte records, runs of the least memory (about
        // 1,800 records): 200,000 records make more than 64 runs.
        let n = 200_000u64;
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sorter::new(
            dir.path(),
            "wide",
            0,
            Width::Fixed(12),
            |a: &[u8], b: &[u8]| a.cmp(b),
        );
        let mut r = [0u8; 12];
        for i in 0..n {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            r[..8].copy_from_slice(&x.to_be_bytes());
            r[8..].copy_from_slice(&(i as u32).to_be_bytes());
            s.push(&r).unwrap();
        }
        assert!(s.runs() > MAX_FAN_IN, "{} runs", s.runs());
        let mut m = s.finish().unwrap();
        let (mut count, mut prev) = (0u64, [0u8; 12]);
        while let Some(r) = m.next().unwrap() {
            assert!(
                count == 0 || prev.as_slice() <= r,
                "out of order at {count}"
            );
            prev.copy_from_slice(r);
            count += 1;
        }
        assert_eq!(count, n);
    }

    #[test]
    fn a_record_larger_than_the_memory_makes_a_run_of_its_own() {
        let mut input = records(10_000);
        input.push(vec![7u8; 3 * MIN_MEMORY]);
        input.push(vec![6u8; MIN_MEMORY]);
        let mut expected = input.clone();
        expected.sort();
        let (out, spilled, _) = sorted_by(0, Width::Variable(4), &input);
        assert!(spilled);
        assert_eq!(out, expected);
    }

    #[test]
    fn a_record_of_the_wrong_width_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sorter::new(
            dir.path(),
            "t",
            0,
            Width::Fixed(12),
            |a: &[u8], b: &[u8]| a.cmp(b),
        );
        assert!(matches!(s.push(&[0; 11]), Err(SortedError::Misuse { .. })));
        let mut v = Sorter::new(
            dir.path(),
            "t",
            0,
            Width::Variable(4),
            |a: &[u8], b: &[u8]| a.cmp(b),
        );
        assert!(matches!(v.push(&[0; 3]), Err(SortedError::Misuse { .. })));
    }

    #[test]
    fn a_job_needing_more_disk_than_is_free_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let free = available_space(dir.path()).unwrap();
        assert!(ensure_space(dir.path(), 1, "the test").is_ok());
        let err = ensure_space(dir.path(), free + (1 << 40), "publishing hr").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("publishing hr"), "{text}");
        assert!(
            matches!(err, SortedError::NoSpace { needed, available, .. } if needed > available)
        );
    }
}
