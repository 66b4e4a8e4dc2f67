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

use dxmesh_protocol::id::IdNumber;

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
    /// IDs with [`HEAVY`] rows or more, and all their rows.
    heavy_ids: std::collections::HashSet<u64>,
    heavy_rows: std::collections::HashSet<u128>,
}

impl RowSet {
    pub fn new() -> RowSet {
        RowSet {
            slots: vec![EMPTY; 1024],
            len: 0,
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
        if table_slots(rows) > self.slots.len() {
            self.rebuild(table_slots(rows));
        }
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
            self.rebuild(self.slots.len() * 2);
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

/// The duplicate table with its counts.
pub(super) struct Dedup {
    rows: RowSet,
    pub stats: DedupStats,
}

impl Dedup {
    pub fn new() -> Dedup {
        Dedup {
            rows: RowSet::new(),
            stats: DedupStats::default(),
        }
    }

    /// Sizes the table for about `rows` rows.
    pub fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
    }

    /// Sets `keep[i]` to whether row `keys[i]` is new, and counts.
    pub fn check(&mut self, keys: &[u128], keep: &mut Vec<bool>) {
        keep.clear();
        for window in keys.chunks(WINDOW) {
            let mut touch = 0u64;
            for &key in window {
                touch ^= self.rows.peek(key);
            }
            std::hint::black_box(touch);
            for &key in window {
                let seen = self.rows.insert(key);
                keep.push(seen != Seen::Duplicate);
                match seen {
                    Seen::Duplicate => self.stats.duplicate_rows += 1,
                    Seen::FirstOfId => self.stats.distinct_ids += 1,
                    Seen::SecondOfId => self.stats.ids_with_several_rows += 1,
                    Seen::MoreOfId => {}
                }
                if seen != Seen::Duplicate {
                    self.stats.rows_kept += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_grow_and_count() {
        let mut d = Dedup::new();
        let keys: Vec<u128> = (0..10_000u64)
            .map(|i| (u128::from((i / 3) | OCCUPIED) << 64) | u128::from(mix64(i)))
            .collect();
        let mut keep = Vec::new();
        d.check(&keys, &mut keep);
        d.check(&keys[..100], &mut keep);
        assert!(keep.iter().all(|k| !k));
        assert_eq!(d.stats.rows_kept, 10_000);
        assert_eq!(d.stats.duplicate_rows, 100);
        assert_eq!(d.stats.distinct_ids, 3334);
        assert_eq!(d.stats.ids_with_several_rows, 3333);
    }

    #[test]
    fn many_rows_of_one_id_stay_linear() {
        let mut d = Dedup::new();
        let keys: Vec<u128> = (0..200_000u64)
            .map(|i| (u128::from(42 | OCCUPIED) << 64) | u128::from(mix64(i)))
            .collect();
        let mut keep = Vec::new();
        d.check(&keys, &mut keep);
        assert!(keep.iter().all(|&k| k));
        d.check(&keys[..HEAVY * 2], &mut keep);
        assert!(keep.iter().all(|&k| !k));
        assert_eq!(d.stats.rows_kept, 200_000);
        assert_eq!(d.stats.duplicate_rows, HEAVY as u64 * 2);
        assert_eq!(d.stats.distinct_ids, 1);
        assert_eq!(d.stats.ids_with_several_rows, 1);
    }
}
