//! The expected results: each person's contribution to the counts, the
//! expected lists (uninsured, deceased but insured, disabled and
//! uninsured, name conflicts) and coverage by county, computed from the
//! ground truth with the comparison rules of the module documentation.

use super::ctx::Ctx;
use super::model::{ExpectedCounts, SynthError};
use super::output::{Out, Written, put_address, put_name};
use super::people::{HrRow, Name, Person, RegRow};
use super::tables::{ACTIVE, INSURANCE_TYPES, is_pension};
use dxmesh_protocol::token::normalise_attr;
use std::path::Path;

/// Lines of one expected list, in one arena.
#[derive(Default)]
pub(super) struct Lines {
    text: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Lines {
    /// Keeps the line started at `start` unless it repeats one since span `first`.
    fn close(&mut self, first: usize, start: usize) {
        let line = &self.text[start..];
        if self.spans[first..]
            .iter()
            .any(|&(s, e)| &self.text[s..e] == line)
        {
            self.text.truncate(start);
        } else {
            self.spans.push((start, self.text.len()));
        }
    }

    pub(super) fn write(
        mut self,
        dir: &Path,
        file: (&'static str, &'static str),
    ) -> Result<Written, SynthError> {
        let text = &self.text;
        self.spans
            .sort_unstable_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
        let mut out = Out::create(dir, file)?;
        for &(s, e) in &self.spans {
            out.buf.extend_from_slice(&text[s..e]);
            out.end_row()?;
        }
        out.finish(false)
    }
}

#[derive(Default)]
pub(super) struct Expected {
    pub(super) counts: ExpectedCounts,
    pub(super) uninsured: Lines,
    pub(super) deceased_insured: Lines,
    pub(super) disabled_uninsured: Lines,
    pub(super) name_conflicts: Lines,
    /// Per county: (scope IDs, eligible, covered).
    pub(super) coverage: Vec<(u64, u64, u64)>,
}

impl Expected {
    pub(super) fn add(&mut self, ctx: &Ctx, p: &Person) {
        let home = ctx.home;
        let deceased =
            p.civil.is_some_and(|d| d.ids.valid()) || p.health.is_some_and(|d| d.ids.valid());
        let hr_ok = |r: &&HrRow| r.status == ACTIVE && r.ids.valid();
        let pension =
            p.hr.as_slice()
                .iter()
                .filter(hr_ok)
                .any(|r| is_pension(r.ty));
        let hr_active = p.hr.as_slice().iter().any(|r| hr_ok(&r));
        let other = p
            .national
            .as_slice()
            .iter()
            .any(|r| r.province != home && is_pension(r.ty) && r.ids.valid());
        let disabled = p.disability.is_some_and(|d| d.ids.valid());
        let active = |r: &&RegRow| r.status == ACTIVE && r.ids.valid();
        let scope =
            p.regs.as_slice().iter().any(|r| active(&r)) && p.birth.age_on(ctx.current) >= 16;

        let c = &mut self.counts;
        c.registry_scope += u64::from(scope);
        c.deceased += u64::from(deceased);
        c.pension_insured += u64::from(pension);
        c.other_province += u64::from(other);
        let base = scope && !pension && !deceased;
        c.removed_other_province += u64::from(base && other);
        let uninsured = base && !other;
        if uninsured {
            c.uninsured += 1;
            reg_lines(&mut self.uninsured, ctx, p);
            if disabled {
                c.disabled_uninsured += 1;
                reg_lines(&mut self.disabled_uninsured, ctx, p);
            }
        }
        if pension && deceased {
            c.deceased_insured += 1;
            let l = &mut self.deceased_insured;
            let first = l.spans.len();
            for r in
                p.hr.as_slice()
                    .iter()
                    .filter(hr_ok)
                    .filter(|r| is_pension(r.ty))
            {
                let start = l.text.len();
                l.text.extend_from_slice(&p.id);
                l.text.push(b',');
                put_name(&mut l.text, &p.hr_name);
                l.text.push(b',');
                l.text
                    .extend_from_slice(INSURANCE_TYPES[usize::from(r.ty)].as_bytes());
                l.close(first, start);
            }
        }
        if scope && hr_active && p.hr_name != p.name && !same_after_normalising(&p.name, &p.hr_name)
        {
            c.name_conflicts += 1;
            let l = &mut self.name_conflicts;
            let first = l.spans.len();
            for _ in p.regs.as_slice().iter().filter(active) {
                let start = l.text.len();
                l.text.extend_from_slice(&p.id);
                l.text.push(b',');
                put_name(&mut l.text, &p.name);
                l.close(first, start);
            }
        }
        if scope {
            if self.coverage.is_empty() {
                self.coverage = vec![(0, 0, 0); ctx.counties.len()];
            }
            let regs = p.regs.as_slice();
            for (k, r) in regs.iter().enumerate() {
                if !active(&r) || regs[..k].iter().any(|q| active(&q) && q.county == r.county) {
                    continue;
                }
                let cov = &mut self.coverage[usize::from(r.county)];
                cov.0 += 1;
                if !deceased {
                    cov.1 += 1;
                    cov.2 += u64::from(!uninsured);
                }
            }
        }
    }
}

fn same_after_normalising(a: &Name, b: &Name) -> bool {
    let mut x = Vec::with_capacity(16);
    let mut y = Vec::with_capacity(16);
    put_name(&mut x, a);
    put_name(&mut y, b);
    normalise_attr(&String::from_utf8_lossy(&x)) == normalise_attr(&String::from_utf8_lossy(&y))
}

/// One line per distinct (name, address) of the person's valid active registry rows.
pub(super) fn reg_lines(l: &mut Lines, ctx: &Ctx, p: &Person) {
    let first = l.spans.len();
    for r in p.regs.as_slice() {
        if r.status != ACTIVE || !r.ids.valid() {
            continue;
        }
        let start = l.text.len();
        l.text.extend_from_slice(&p.id);
        l.text.push(b',');
        put_name(&mut l.text, &p.name);
        l.text.push(b',');
        put_address(&mut l.text, ctx, usize::from(r.county), &r.address);
        l.close(first, start);
    }
}
