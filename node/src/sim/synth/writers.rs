//! The two generator threads' work: each regenerates every person and
//! writes its own department files, row by row. [`gen_population`] writes
//! the registry, the death and disability registers, the ministry index
//! and the expected results; [`gen_insurance`] the HR file (the largest).

use super::ctx::Ctx;
use super::expected::Expected;
use super::faults::{F_NAME_CONFLICT, F_NAME_SPACING};
use super::model::{
    CIVIL_DEATHS, COVERAGE, DECEASED_INSURED, DISABILITY, DISABLED_UNINSURED, ExpectedCounts,
    HEALTH_DEATHS, HR, NAME_CONFLICTS, NATIONAL, REGISTRY, SynthError, UNINSURED,
};
use super::output::{Out, Written, put_address, put_date, put_name, put_uint};
use super::people::{HrName, person};
use super::tables::{DISABILITY_CATEGORIES, HR_STATUS, INSURANCE_TYPES, REG_STATUS};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Persons between checks of the stop flag.
const STOP_CHECK: u64 = 1 << 16;

/// Registry, death registers, disability register, ministry index and the expected results.
pub(super) fn gen_population(
    ctx: &Ctx,
    slots: &[u16],
    dir: &Path,
    stop: &AtomicBool,
) -> Result<(Vec<Written>, ExpectedCounts), SynthError> {
    let mut reg = Out::create(dir, REGISTRY)?;
    let mut civil = Out::create(dir, CIVIL_DEATHS)?;
    let mut health = Out::create(dir, HEALTH_DEATHS)?;
    let mut dis = Out::create(dir, DISABILITY)?;
    let mut nat = Out::create(dir, NATIONAL)?;
    let mut exp = Expected::default();
    for (i, &slot) in slots.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(STOP_CHECK) && stop.load(Ordering::Relaxed) {
            return Err(SynthError::Panicked);
        }
        let p = person(ctx, i, slot);
        for r in p.regs.as_slice() {
            for k in 0..usize::from(r.ids.n) {
                reg.id(&p.id, &r.ids, k);
                let b = &mut reg.buf;
                b.push(b',');
                put_name(b, &p.name);
                b.extend_from_slice(if p.male { b",male," } else { b",female," });
                put_date(b, p.birth);
                b.push(b',');
                b.extend_from_slice(&ctx.counties[usize::from(r.county)]);
                b.push(b',');
                put_address(b, ctx, usize::from(r.county), &r.address);
                b.push(b',');
                b.extend_from_slice(REG_STATUS[usize::from(r.status)].as_bytes());
                reg.end_row()?;
            }
        }
        if let Some(d) = &p.civil {
            for k in 0..usize::from(d.ids.n) {
                civil.id(&p.id, &d.ids, k);
                civil.buf.push(b',');
                put_name(&mut civil.buf, &p.name);
                civil.buf.push(b',');
                put_date(&mut civil.buf, d.date);
                civil.end_row()?;
            }
        }
        if let Some(d) = &p.health {
            for k in 0..usize::from(d.ids.n) {
                health.id(&p.id, &d.ids, k);
                health.buf.push(b',');
                put_date(&mut health.buf, d.date);
                health.end_row()?;
            }
        }
        if let Some(d) = &p.disability {
            for k in 0..usize::from(d.ids.n) {
                dis.id(&p.id, &d.ids, k);
                let b = &mut dis.buf;
                b.push(b',');
                put_name(b, &p.name);
                b.push(b',');
                b.extend_from_slice(DISABILITY_CATEGORIES[usize::from(d.category)].0.as_bytes());
                b.push(b',');
                b.push(b'0' + d.level);
                b.push(b',');
                put_date(b, d.date);
                dis.end_row()?;
            }
        }
        for r in p.national.as_slice() {
            for k in 0..usize::from(r.ids.n) {
                nat.id(&p.id, &r.ids, k);
                let b = &mut nat.buf;
                b.push(b',');
                b.extend_from_slice(&r.province);
                b.push(b',');
                b.extend_from_slice(INSURANCE_TYPES[usize::from(r.ty)].as_bytes());
                nat.end_row()?;
            }
        }
        exp.add(ctx, &p);
    }
    let mut written = vec![
        reg.finish(true)?,
        civil.finish(true)?,
        health.finish(true)?,
        dis.finish(true)?,
        nat.finish(true)?,
    ];
    written.push(exp.uninsured.write(dir, UNINSURED)?);
    written.push(exp.deceased_insured.write(dir, DECEASED_INSURED)?);
    written.push(exp.disabled_uninsured.write(dir, DISABLED_UNINSURED)?);
    written.push(exp.name_conflicts.write(dir, NAME_CONFLICTS)?);
    let mut cov = Out::create(dir, COVERAGE)?;
    let mut order: Vec<usize> = (0..ctx.counties.len()).collect();
    order.sort_by_key(|&k| ctx.counties[k]);
    for k in order {
        let Some(&(scope, eligible, covered)) = exp.coverage.get(k) else {
            continue;
        };
        if scope == 0 {
            continue;
        }
        cov.buf.extend_from_slice(&ctx.counties[k]);
        cov.buf.push(b',');
        put_uint(&mut cov.buf, eligible);
        cov.buf.push(b',');
        put_uint(&mut cov.buf, covered);
        cov.end_row()?;
    }
    written.push(cov.finish(false)?);
    Ok((written, exp.counts))
}

/// HR.
pub(super) fn gen_insurance(
    ctx: &Ctx,
    slots: &[u16],
    dir: &Path,
    stop: &AtomicBool,
) -> Result<Vec<Written>, SynthError> {
    let mut hr = Out::create(dir, HR)?;
    for (i, &slot) in slots.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(STOP_CHECK) && stop.load(Ordering::Relaxed) {
            return Err(SynthError::Panicked);
        }
        let p = person(ctx, i, slot);
        let name_fault = match p.hr_variant {
            HrName::Same => None,
            HrName::Conflict => Some(F_NAME_CONFLICT),
            HrName::Spaced => Some(F_NAME_SPACING),
        };
        for r in p.hr.as_slice() {
            for k in 0..usize::from(r.ids.n) {
                hr.id(&p.id, &r.ids, k);
                let b = &mut hr.buf;
                b.push(b',');
                put_name(b, &p.hr_name);
                b.push(b',');
                b.extend_from_slice(INSURANCE_TYPES[usize::from(r.ty)].as_bytes());
                b.push(b',');
                b.extend_from_slice(HR_STATUS[usize::from(r.status)].as_bytes());
                b.push(b',');
                put_date(b, r.since);
                if let Some(f) = name_fault {
                    hr.faults[f] += 1;
                }
                hr.end_row()?;
            }
        }
    }
    Ok(vec![hr.finish(true)?])
}
