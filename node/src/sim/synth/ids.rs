//! The true ID numbers. A person's [`Core`] (kind, birth region, registry
//! county, birth date, gender: all that decides the ID's bucket), the
//! population pyramid it is drawn from, the sequential first pass that
//! gives everyone a unique slot ([`assign_slots`]) and the 18 characters
//! built from core and slot ([`make_id`]).

use super::ctx::Ctx;
use super::model::SynthError;
use super::rng::{GOLDEN, Rng, mix64};
use super::tables::{BUCKET, MAX_SHIFT};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::check_character;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Resident,
    /// A resident registered from the given cycle on (moved in).
    Newcomer(u32),
    Edge(u8),
    Worker,
    Showcase(u8),
}

/// What the first pass needs: everything that decides the ID's bucket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Core {
    pub(super) kind: Kind,
    /// Index into `Ctx::regions`.
    region: usize,
    /// Registry county (index into `Ctx::counties`).
    pub(super) county: usize,
    pub(super) birth_days: i64,
    pub(super) male: bool,
}

/// Population pyramid: age bands (inclusive years) and weights per mille.
const AGE_BANDS: [(i64, i64, u64); 7] = [
    (0, 15, 150),
    (16, 29, 170),
    (30, 44, 210),
    (45, 59, 240),
    (60, 74, 160),
    (75, 89, 60),
    (90, 104, 10),
];

pub(super) fn years_days(years: i64) -> i64 {
    years * 365 + years / 4
}

pub(super) fn core(ctx: &Ctx, i: u64, rng: &mut Rng) -> Core {
    if i < ctx.showcase {
        let j = i as usize;
        let birth = Date::new(1950, 1, 1)
            .expect("valid date")
            .days_since_epoch()
            + 41 * j as i64;
        return Core {
            kind: Kind::Showcase(j as u8),
            region: ctx.idx_showcase,
            county: j % ctx.counties.len(),
            birth_days: birth,
            male: j.is_multiple_of(2),
        };
    }
    let male = rng.next() & 1 == 1;
    let county = ctx.pick_county(rng);
    if i >= ctx.residents && i < ctx.newcomers {
        let r = rng.below(100);
        let region = if r < 3 && ctx.permit_start < ctx.regions.len() {
            ctx.permit_start + rng.below((ctx.regions.len() - ctx.permit_start) as u64) as usize
        } else {
            ctx.other_start + rng.below(ctx.other_len as u64) as usize
        };
        let birth_days = ctx.r_days - rng.range(years_days(18) + 1, years_days(60) - 1);
        return Core {
            kind: Kind::Worker,
            region,
            county,
            birth_days,
            male,
        };
    }
    let (kind, birth_days) = if i < ctx.showcase + ctx.edges {
        let k = (i - ctx.showcase) as u8;
        let sixteen = ctx
            .reference
            .add_months(-192)
            .expect("reference after 1980");
        let d = match k {
            0 => sixteen.days_since_epoch(),
            1 => sixteen.days_since_epoch() + 1,
            _ => {
                let mut y = ctx.reference.year() - 16;
                while !dxmesh_protocol::date::is_leap(y) {
                    y -= 1;
                }
                Date::new(y, 2, 29).expect("leap day").days_since_epoch()
            }
        };
        (Kind::Edge(k), d.min(ctx.r_days))
    } else {
        let mut x = rng.below(1000);
        let mut band = AGE_BANDS[AGE_BANDS.len() - 1];
        for b in AGE_BANDS {
            if x < b.2 {
                band = b;
                break;
            }
            x -= b.2;
        }
        let ago = rng.range(years_days(band.0), years_days(band.1 + 1) - 1);
        let kind = match i.checked_sub(ctx.newcomers) {
            Some(k) if ctx.per_cycle > 0 => Kind::Newcomer(1 + (k / ctx.per_cycle) as u32),
            _ => Kind::Resident,
        };
        (kind, ctx.r_days - ago)
    };
    let r = rng.below(1000);
    let old = ctx.date(birth_days).year() < 1983;
    let region = if r < 720 || (r >= 995 && !old) {
        county
    } else if r < 880 {
        ctx.other_county(rng, county)
    } else if r < 995 {
        ctx.other_start + rng.below(ctx.other_len as u64) as usize
    } else {
        ctx.idx_retired
    };
    Core {
        kind,
        region,
        county,
        birth_days,
        male,
    }
}

/// The first pass: a slot (sequence number index and birth-date shift) per person.
pub(super) fn assign_slots(ctx: &Ctx) -> Result<Vec<u16>, SynthError> {
    let mut counters = vec![0u16; ctx.n_buckets()];
    let mut slots = vec![0u16; ctx.total as usize];
    for (i, slot) in slots.iter_mut().enumerate() {
        let mut rng = ctx.rng(i as u64);
        let c = core(ctx, i as u64, &mut rng);
        if matches!(c.kind, Kind::Showcase(_)) {
            continue;
        }
        let mut found = false;
        for shift in 0..=MAX_SHIFT {
            let b = ctx
                .bucket(c.region, c.birth_days - i64::from(shift), c.male)
                .ok_or(SynthError::TooDense)?;
            if counters[b] < BUCKET {
                *slot = shift * BUCKET + counters[b];
                counters[b] += 1;
                found = true;
                break;
            }
        }
        if !found {
            return Err(SynthError::TooDense);
        }
    }
    Ok(slots)
}

pub(super) fn put_digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The true ID and the (possibly shifted) birth date.
pub(super) fn make_id(ctx: &Ctx, c: &Core, slot: u16) -> ([u8; 18], i64) {
    let mut id = [0u8; 18];
    id[..6].copy_from_slice(&ctx.regions[c.region]);
    let (days, seq) = if matches!(c.kind, Kind::Showcase(_)) {
        (c.birth_days, None)
    } else {
        let shift = slot / BUCKET;
        let k = slot % BUCKET;
        let days = c.birth_days - i64::from(shift);
        let b = ctx.bucket(c.region, days, c.male).unwrap_or(0);
        let h = mix64(ctx.seed_key ^ (b as u64).wrapping_mul(GOLDEN)) % u64::from(BUCKET);
        let s = ((h as u32 + u32::from(k)) % u32::from(BUCKET)) * 2 + u32::from(c.male);
        (days, Some(s))
    };
    let birth = ctx.date(days);
    put_digits(&mut id[6..10], u32::from(birth.year()));
    put_digits(&mut id[10..12], u32::from(birth.month()));
    put_digits(&mut id[12..14], u32::from(birth.day()));
    match seq {
        Some(s) => {
            put_digits(&mut id[14..17], s);
            id[17] = check_character(&id[..17]);
        }
        None => {
            // Showcase: the first sequence number of the right parity whose
            // check character is X (so every X fault can be shown).
            let mut s = u32::from(c.male);
            loop {
                put_digits(&mut id[14..17], s);
                id[17] = check_character(&id[..17]);
                if id[17] == b'X' || s >= 998 {
                    break;
                }
                s += 2;
            }
        }
    }
    (id, days)
}
