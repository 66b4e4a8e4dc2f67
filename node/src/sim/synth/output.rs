//! Writing CSV: one buffered output file ([`Out`], flushed with
//! `write_all`, counting rows and ID faults), what was written to it
//! ([`Written`]), and the byte formatters of names, numbers, dates and
//! addresses.

use super::ctx::Ctx;
use super::faults::{Copies, F_EXACT_DUP, F_NORM_DUP, FAULT_NAMES, put_id};
use super::ids::put_digits;
use super::model::{SynthError, io_err};
use super::people::{Address, Name};
use super::tables::COUNTIES;
use dxmesh_protocol::date::Date;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(super) fn put_name(buf: &mut Vec<u8>, n: &Name) {
    buf.extend_from_slice(n.surname.as_bytes());
    buf.extend_from_slice(n.gap.as_bytes());
    for g in &n.given[..usize::from(n.n_given)] {
        buf.extend_from_slice(g.as_bytes());
    }
}

pub(super) fn put_uint(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(super) fn put_date(buf: &mut Vec<u8>, d: Date) {
    let mut t = *b"0000-00-00";
    put_digits(&mut t[0..4], u32::from(d.year()));
    put_digits(&mut t[5..7], u32::from(d.month()));
    put_digits(&mut t[8..10], u32::from(d.day()));
    buf.extend_from_slice(&t);
}

pub(super) fn put_address(buf: &mut Vec<u8>, ctx: &Ctx, county: usize, a: &Address) {
    if ctx.district_names {
        buf.extend_from_slice(COUNTIES[county].1.as_bytes());
    }
    if a.rural {
        buf.extend_from_slice(ctx.villages[usize::from(a.place)].as_bytes());
        put_uint(buf, u64::from(a.number));
        buf.extend_from_slice("号".as_bytes());
    } else {
        buf.extend_from_slice(ctx.streets[usize::from(a.place)].as_bytes());
        put_uint(buf, u64::from(a.number));
        buf.extend_from_slice("号".as_bytes());
        if a.building > 0 {
            put_uint(buf, u64::from(a.building));
            buf.extend_from_slice("栋".as_bytes());
            put_uint(buf, u64::from(a.room));
            buf.extend_from_slice("房".as_bytes());
        }
    }
}

/// Flush threshold of the output buffers.
const FLUSH_AT: usize = 4 << 20;

/// One CSV being written: a large buffer flushed with `write_all`.
pub(super) struct Out {
    rel: &'static str,
    path: PathBuf,
    file: File,
    pub(super) buf: Vec<u8>,
    rows: u64,
    pub(super) faults: [u64; FAULT_NAMES.len()],
}

/// What was written to one file.
pub(super) struct Written {
    pub(super) rel: &'static str,
    pub(super) rows: u64,
    pub(super) faults: Option<[u64; FAULT_NAMES.len()]>,
}

impl Out {
    pub(super) fn create(
        dir: &Path,
        (rel, header): (&'static str, &'static str),
    ) -> Result<Out, SynthError> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut buf = Vec::with_capacity(FLUSH_AT + (64 << 10));
        buf.extend_from_slice(header.as_bytes());
        buf.push(b'\n');
        Ok(Out {
            rel,
            path,
            file,
            buf,
            rows: 0,
            faults: [0; FAULT_NAMES.len()],
        })
    }

    pub(super) fn end_row(&mut self) -> Result<(), SynthError> {
        self.buf.push(b'\n');
        self.rows += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SynthError> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| io_err(&self.path, e))?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the ID of copy `k` of a row and counts its faults.
    pub(super) fn id(&mut self, id: &[u8; 18], ids: &Copies, k: usize) {
        let f = ids.forms[k];
        put_id(&mut self.buf, id, f);
        if let Some(x) = f.fault() {
            self.faults[x] += 1;
        }
        if k == 1 {
            let d = if ids.forms[1] == ids.forms[0] {
                F_EXACT_DUP
            } else {
                F_NORM_DUP
            };
            self.faults[d] += 1;
        }
    }

    pub(super) fn finish(mut self, department: bool) -> Result<Written, SynthError> {
        self.flush()?;
        Ok(Written {
            rel: self.rel,
            rows: self.rows,
            faults: department.then_some(self.faults),
        })
    }
}
