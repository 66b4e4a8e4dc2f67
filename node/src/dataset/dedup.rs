//! Duplicate detection and ID statistics, on the writer thread.
//!
//! A row's key is 128 bits: the high half is the row's ID number as an
//! integer (its first 17 digits determine it and fit in 57 bits) with a
//! marker bit, the low half a 64-bit XXH3 hash of the whole normalised row
//! (ID, value lengths and values). Two rows are taken as identical when
//! their keys are equal, so rows with different IDs never collide, and two
//! different rows of the same ID collide with probability 2^-64 per pair (an
//! ID has a handful of rows). XXH3 was chosen over keyed SipHash for speed
//! (about 10 ns per row); the input is a department's own export, so hash
//! flooding is outside the threat model, and a collision could only merge
//! two rows of the same person.
//!
//! The keys live in one open-addressing table with linear probing
//! ([`RowSet`], 16 bytes per slot, at most 3/4 full) whose home slot depends
//! on the ID only, so all rows of an ID lie between its home slot and the
//! next empty slot: one probe sequence tells whether the row is a duplicate
//! and how many rows its ID already has (for the distinct-ID counts), at the
//! cost of one memory access per row. An ID with [`HEAVY`] rows (a key
//! column mapped to the wrong column, say the clerk's own ID number) moves to
//! small side tables, so that many rows of one ID never make probing
//! quadratic. The table is sized up front from the file size and the first
//! rows' length (any size, not a power of two: about 21 bytes per distinct
//! row, 213 MB for a 10-million-row registry), so it rarely grows.
//! Rows are checked in windows of [`WINDOW`]: the home slots of a window are
//! loaded first, independently, so that their cache and TLB misses overlap
//! instead of costing one memory latency each (software prefetching without
//! `unsafe`).
//!
//! The table grows up to half the import's memory. A file with more
//! distinct rows than that holds goes on in `overflow`: the full table
//! still drops the duplicates of the rows it holds, and the later rows are
//! written and their keys sorted on disk; at the end, the later copies of
//! a row are found in the sorted keys and removed from `records.bin`, so
//! the dataset and its counts are those the table alone would give.

use super::model::ImportError;
use super::overflow::Overflow;
use dxmesh_protocol::id::IdNumber;
use std::path::{Path, PathBuf};

/// Rows checked against the tables at once.
const WINDOW: usize = 32;

/// The 128-bit key of a normalised row (see the module documentation).
pub(super) fn row_key(id: &IdNumber, hash: u64) -> u128 {
    let value = id.as_bytes()[..17]
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b.wrapping_sub(b'0')));
    (u128::from(value | OCCUPIED) << 64) | u128::from(hash)
}

fn id_of(key: u128) -> u64 {
    (key >> 64) as u64 & ID_BITS
}

/// `splitmix64`'s finaliser: spreads structured integers over the table.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const OCCUPIED: u64 = 1 << 63;
const ID_BITS: u64 = OCCUPIED - 1;
/// Rows of one ID kept in the main table; more go to the side tables.
pub(super) const HEAVY: usize = 16;

fn table_slots(rows: usize) -> usize {
    (rows.saturating_mul(4) / 3 + 1).max(1024)
}

/// The slot after `i` in a table of `size` slots (linear probing wraps).
fn next(i: usize, size: usize) -> usize {
    if i + 1 == size { 0 } else { i + 1 }
}

/// What inserting a row key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// The same row was there already.
    Duplicate,
    /// A new row of a new ID.
    FirstOfId,
    /// A new row of an ID that had exactly one.
    SecondOfId,
    /// A new row of an ID that had several.
    MoreOfId,
    /// A new row, but the table is as large as it may grow and full.
    Full,
}

/// An empty slot. Keys always have bit 127 set and an ID below 10^17, so no
/// key is all ones. The table is filled with it when allocated: a table of
/// zeros would be mapped to the shared zero page on the first read, and every
/// first write would then cost a copy-on-write fault with a TLB shootdown on
/// every CPU.
const EMPTY: u128 = u128::MAX;

/// Set of 128-bit row keys whose home slot depends on the ID only.
pub(super) struct RowSet {
    slots: Vec<u128>,
    len: usize,
    /// The most slots the table may have.
    max_slots: usize,
    /// IDs with [`HEAVY`] rows or more, and all their rows.
    heavy_ids: std::collections::HashSet<u64>,
    heavy_rows: std::collections::HashSet<u128>,
}

impl RowSet {
    /// A table of at most `max_slots` slots (16 bytes each).
    pub fn new(max_slots: usize) -> RowSet {
        let max_slots = max_slots.max(1024);
        RowSet {
            slots: vec![EMPTY; 1024],
            len: 0,
            max_slots,
            heavy_ids: Default::default(),
            heavy_rows: Default::default(),
        }
    }

    fn home(&self, key: u128) -> usize {
        // Any table size: the high bits of hash × size (Lemire's range reduction).
        ((u128::from(mix64(id_of(key))) * self.slots.len() as u128) >> 64) as usize
    }

    /// Loads the key's home slot (to overlap cache misses).
    fn peek(&self, key: u128) -> u64 {
        self.slots[self.home(key)] as u64
    }

    pub fn reserve(&mut self, rows: usize) {
        let slots = table_slots(rows).min(self.max_slots);
        if slots > self.slots.len() {
            self.rebuild(slots);
        }
    }

    /// Whether the table holds `key` (a row seen before).
    pub fn contains(&self, key: u128) -> bool {
        if !self.heavy_ids.is_empty() && self.heavy_ids.contains(&id_of(key)) {
            return self.heavy_rows.contains(&key);
        }
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                EMPTY => return false,
                slot if slot == key => return true,
                _ => i = next(i, self.slots.len()),
            }
        }
    }

    /// How many rows of ID `id` (as [`id_of`] gives it) the table holds:
    /// 0, 1, or 2 for several.
    pub fn rows_of(&self, id: u64) -> u8 {
        if !self.heavy_ids.is_empty() && self.heavy_ids.contains(&id) {
            return 2;
        }
        let mut i = ((u128::from(mix64(id)) * self.slots.len() as u128) >> 64) as usize;
        let mut n = 0;
        while self.slots[i] != EMPTY {
            if id_of(self.slots[i]) == id {
                n += 1;
                if n == 2 {
                    return 2;
                }
            }
            i = next(i, self.slots.len());
        }
        n
    }

    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        for key in old.into_iter().filter(|&k| k != EMPTY) {
            let mut i = self.home(key);
            while self.slots[i] != EMPTY {
                i = next(i, slots);
            }
            self.slots[i] = key;
        }
    }

    pub fn insert(&mut self, key: u128) -> Seen {
        let id = id_of(key);
        if !self.heavy_ids.is_empty() && self.heavy_ids.contains(&id) {
            return if self.heavy_rows.insert(key) {
                Seen::MoreOfId
            } else {
                Seen::Duplicate
            };
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            if self.slots.len() >= self.max_slots {
                return if self.contains(key) {
                    Seen::Duplicate
                } else {
                    Seen::Full
                };
            }
            self.rebuild((self.slots.len() * 2).min(self.max_slots));
        }
        let size = self.slots.len();
        let home = self.home(key);
        let mut i = home;
        let mut same = 0;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                break;
            }
            if slot == key {
                return Seen::Duplicate;
            }
            if id_of(slot) == id {
                same += 1;
            }
            i = next(i, size);
        }
        if same >= HEAVY {
            // Move the ID to the side tables: its rows so far stay here too,
            // unused from now on.
            self.heavy_ids.insert(id);
            let mut j = home;
            while self.slots[j] != EMPTY {
                if id_of(self.slots[j]) == id {
                    self.heavy_rows.insert(self.slots[j]);
                }
                j = next(j, size);
            }
            self.heavy_rows.insert(key);
            return Seen::MoreOfId;
        }
        self.slots[i] = key;
        self.len += 1;
        match same {
            0 => Seen::FirstOfId,
            1 => Seen::SecondOfId,
            _ => Seen::MoreOfId,
        }
    }
}

/// What the writer learned about the kept rows.
#[derive(Debug, Default, Clone)]
pub(super) struct DedupStats {
    pub rows_kept: u64,
    pub duplicate_rows: u64,
    pub distinct_ids: u64,
    pub ids_with_several_rows: u64,
}

/// The duplicate table with its counts, and the rows past it.
pub(super) struct Dedup {
    rows: RowSet,
    pub stats: DedupStats,
    /// Where the sort of the rows past the table writes its runs.
    dir: PathBuf,
    /// The import's memory (bytes): half for the table, half for the sort.
    memory: usize,
    /// The export's size in bytes, and about how many rows it has.
    export: (u64, usize),
    overflow: Option<Overflow>,
}

impl Dedup {
    /// A table for an import given `memory` bytes whose overflow, if any,
    /// sorts in `dir`; `export_bytes` is the export's size.
    pub fn new(dir: &Path, memory: usize, export_bytes: u64) -> Dedup {
        Dedup {
            rows: RowSet::new(memory / 2 / std::mem::size_of::<u128>()),
            stats: DedupStats::default(),
            dir: dir.to_path_buf(),
            memory,
            export: (export_bytes, 0),
            overflow: None,
        }
    }

    /// Starts sorting the rows past the table, once the disk has room for
    /// the sort's runs (two levels of them at most) and a copy of the
    /// records.
    fn overflow(&self) -> Result<Overflow, ImportError> {
        let rows = self.export.1.max(self.stats.rows_kept as usize * 2) as u64;
        super::extsort::ensure_space(
            &self.dir,
            rows.saturating_mul(48).saturating_add(self.export.0),
            "an import with more rows than its memory holds (`[limits] memory_mib`)",
        )?;
        Ok(Overflow::new(
            &self.dir,
            self.memory / 2,
            self.stats.rows_kept,
        ))
    }

    /// Whether the rows outgrew the table.
    #[cfg(test)]
    pub fn overflowed(&self) -> bool {
        self.overflow.is_some()
    }

    /// The counts of every row checked, once the file is written to
    /// `records` (from which the later copies of rows past the table are
    /// then removed).
    pub fn finish(mut self, records: &Path) -> Result<DedupStats, ImportError> {
        if let Some(overflow) = self.overflow.take() {
            let past = overflow.finish(id_of, |id| self.rows.rows_of(id), records)?;
            self.stats.rows_kept += past.rows_kept;
            self.stats.duplicate_rows += past.duplicate_rows;
            self.stats.distinct_ids += past.distinct_ids;
            self.stats.ids_with_several_rows += past.ids_with_several_rows;
        }
        Ok(self.stats)
    }

    /// Sizes the table for about `rows` rows.
    pub fn reserve(&mut self, rows: usize) {
        self.export.1 = rows;
        self.rows.reserve(rows);
    }

    /// Sets `keep[i]` to whether row `keys[i]` is new (past the table: not
    /// one it holds), and counts.
    pub fn check(&mut self, keys: &[u128], keep: &mut Vec<bool>) -> Result<(), ImportError> {
        keep.clear();
        if let Some(overflow) = self.overflow.as_mut() {
            for &key in keys {
                let new = !self.rows.contains(key);
                keep.push(new);
                if new {
                    overflow.push(key)?;
                } else {
                    self.stats.duplicate_rows += 1;
                }
            }
            return Ok(());
        }
        for (w, window) in keys.chunks(WINDOW).enumerate() {
            let mut touch = 0u64;
            for &key in window {
                touch ^= self.rows.peek(key);
            }
            std::hint::black_box(touch);
            for (k, &key) in window.iter().enumerate() {
                let seen = self.rows.insert(key);
                if seen == Seen::Full {
                    let mut overflow = self.overflow()?;
                    overflow.push(key)?;
                    keep.push(true);
                    self.overflow = Some(overflow);
                    let mut rest = Vec::new();
                    self.check(&keys[w * WINDOW + k + 1..], &mut rest)?;
                    keep.extend(rest);
                    return Ok(());
                }
                keep.push(seen != Seen::Duplicate);
                match seen {
                    Seen::Duplicate => self.stats.duplicate_rows += 1,
                    Seen::FirstOfId => self.stats.distinct_ids += 1,
                    Seen::SecondOfId => self.stats.ids_with_several_rows += 1,
                    Seen::MoreOfId | Seen::Full => {}
                }
                if seen != Seen::Duplicate {
                    self.stats.rows_kept += 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_grow_and_count() {
        let mut d = Dedup::new(Path::new("."), 1 << 30, 0);
        let keys: Vec<u128> = (0..10_000u64)
            .map(|i| (u128::from((i / 3) | OCCUPIED) << 64) | u128::from(mix64(i)))
            .collect();
        let mut keep = Vec::new();
        d.check(&keys, &mut keep).unwrap();
        d.check(&keys[..100], &mut keep).unwrap();
        assert!(keep.iter().all(|k| !k));
        assert_eq!(d.stats.rows_kept, 10_000);
        assert_eq!(d.stats.duplicate_rows, 100);
        assert_eq!(d.stats.distinct_ids, 3334);
        assert_eq!(d.stats.ids_with_several_rows, 3333);
    }

    #[test]
    fn a_full_table_counts_the_rows_past_it_as_a_larger_one_would() {
        // Three rows an ID, then the first 500 rows again: the smallest
        // table (768 rows) holds those, so it drops them itself, and no row
        // past it repeats (the file is not read: there is none here; the
        // import's tests cover repeats past the table).
        let keys: Vec<u128> = (0..30_000u64)
            .map(|i| (u128::from((i / 3) | OCCUPIED) << 64) | u128::from(mix64(i)))
            .chain(
                (0..500u64).map(|i| (u128::from((i / 3) | OCCUPIED) << 64) | u128::from(mix64(i))),
            )
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut large = Dedup::new(dir.path(), 1 << 30, 0);
        let mut small = Dedup::new(dir.path(), 0, 0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for part in keys.chunks(4096) {
            large.check(part, &mut a).unwrap();
            small.check(part, &mut b).unwrap();
            assert_eq!(a, b);
        }
        assert!(small.overflowed() && !large.overflowed());
        let missing = dir.path().join("none");
        let (large, small) = (
            large.finish(&missing).unwrap(),
            small.finish(&missing).unwrap(),
        );
        assert_eq!(large.rows_kept, 30_000);
        assert_eq!(large.duplicate_rows, 500);
        assert_eq!(large.distinct_ids, 10_000);
        assert_eq!(large.ids_with_several_rows, 10_000);
        assert_eq!(
            (
                small.rows_kept,
                small.duplicate_rows,
                small.distinct_ids,
                small.ids_with_several_rows
            ),
            (30_000, 500, 10_000, 10_000)
        );
    }

    #[test]
    fn many_rows_of_one_id_stay_linear() {
        let mut d = Dedup::new(Path::new("."), 1 << 30, 0);
        let keys: Vec<u128> = (0..200_000u64)
            .map(|i| (u128::from(42 | OCCUPIED) << 64) | u128::from(mix64(i)))
            .collect();
        let mut keep = Vec::new();
        d.check(&keys, &mut keep).unwrap();
        assert!(keep.iter().all(|&k| k));
        d.check(&keys[..HEAVY * 2], &mut keep).unwrap();
        assert!(keep.iter().all(|&k| !k));
        assert_eq!(d.stats.rows_kept, 200_000);
        assert_eq!(d.stats.duplicate_rows, HEAVY as u64 * 2);
        assert_eq!(d.stats.distinct_ids, 1);
        assert_eq!(d.stats.ids_with_several_rows, 1);
    }
}
