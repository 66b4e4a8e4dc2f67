//! Everything derived from the options ([`Ctx`]): the home counties and
//! their weights, the birth regions, the date table, the word lists, the
//! per-person random streams and the (region, date, gender) buckets that
//! make ID numbers unique.

use super::faults::SHOWCASE_FORMS;
use super::model::{MAX_RESIDENTS, SynthError, SynthOptions};
use super::rng::{GOLDEN, Rng, mix64};
use super::tables::{
    COMPOUND_SURNAMES, COUNTIES, EDGE_PEOPLE, GIVEN_FEMALE, GIVEN_MALE, GIVEN_NEUTRAL,
    NEWCOMER_CYCLES, NEWCOMER_SHARE, OTHER_PROVINCES, OTHER_REGIONS, PERMIT_REGIONS,
    RETIRED_SUFFIX, SHOWCASE_MIN_RESIDENTS, SHOWCASE_SUFFIX, STREETS, SURNAMES, VILLAGES,
    WORKER_SHARE,
};
use dxmesh_protocol::date::Date;

/// Everything derived from the options.
pub(super) struct Ctx {
    pub(super) seed_key: u64,
    pub(super) residents: u64,
    pub(super) total: u64,
    /// The first new resident (after the residents and the workers), and
    /// how many arrive each cycle: person `newcomers + k * per_cycle + j`
    /// is registered from cycle `k + 1`.
    pub(super) newcomers: u64,
    pub(super) per_cycle: u64,
    pub(super) showcase: u64,
    pub(super) edges: u64,
    pub(super) reference: Date,
    pub(super) r_days: i64,
    /// The cycle written, its period, and its reference date (`reference`
    /// for cycle 0).
    pub(super) cycle: u32,
    pub(super) period_days: u32,
    pub(super) current: Date,
    min_days: i64,
    ndays: usize,
    pub(super) home: [u8; 2],
    /// Home county codes.
    pub(super) counties: Vec<[u8; 6]>,
    county_cum: Vec<u32>,
    pub(super) district_names: bool,
    /// Birth regions: the counties, then retired, showcase, other provinces, permits.
    pub(super) regions: Vec<[u8; 6]>,
    pub(super) idx_retired: usize,
    pub(super) idx_showcase: usize,
    pub(super) other_start: usize,
    pub(super) other_len: usize,
    pub(super) permit_start: usize,
    pub(super) other_provinces: Vec<[u8; 2]>,
    /// Dates from `min_days` to `r_days`, by day.
    dates: Vec<Date>,
    pub(super) surnames: Vec<&'static str>,
    pub(super) compound_surnames: Vec<&'static str>,
    given_male: Vec<&'static str>,
    given_female: Vec<&'static str>,
    pub(super) given_neutral: Vec<&'static str>,
    pub(super) streets: Vec<&'static str>,
    pub(super) villages: Vec<&'static str>,
}

fn code6(s: &str) -> [u8; 6] {
    let mut c = [0u8; 6];
    c.copy_from_slice(&s.as_bytes()[..6]);
    c
}

fn words(list: &'static str) -> Vec<&'static str> {
    list.split_whitespace().collect()
}

impl Ctx {
    pub(super) fn new(opts: &SynthOptions) -> Result<Ctx, SynthError> {
        let h = opts.home_province.as_bytes();
        if h.len() != 2 || !(b'1'..=b'9').contains(&h[0]) || !h[1].is_ascii_digit() {
            return Err(SynthError::Options(format!(
                "home province {:?} must be two digits, 10-99",
                opts.home_province
            )));
        }
        if opts.residents > MAX_RESIDENTS {
            return Err(SynthError::Options(format!(
                "{} residents; at most {MAX_RESIDENTS}",
                opts.residents
            )));
        }
        if opts.reference.year() < 1980 {
            return Err(SynthError::Options(format!(
                "reference date {} is before 1980-01-01",
                opts.reference
            )));
        }
        let home = [h[0], h[1]];
        let prefixed = |suffix: &str| {
            let mut c = [0u8; 6];
            c[..2].copy_from_slice(&home);
            c[2..].copy_from_slice(suffix.as_bytes());
            c
        };
        let counties: Vec<[u8; 6]> = COUNTIES.iter().map(|c| prefixed(c.0)).collect();
        let mut county_cum = Vec::with_capacity(COUNTIES.len());
        let mut acc = 0;
        for c in COUNTIES {
            acc += c.2;
            county_cum.push(acc);
        }
        let mut regions = counties.clone();
        let idx_retired = regions.len();
        regions.push(prefixed(RETIRED_SUFFIX));
        let idx_showcase = regions.len();
        regions.push(prefixed(SHOWCASE_SUFFIX));
        let other_start = regions.len();
        regions.extend(
            OTHER_REGIONS
                .iter()
                .filter(|r| r.as_bytes()[..2] != home)
                .map(|r| code6(r)),
        );
        let other_len = regions.len() - other_start;
        let permit_start = regions.len();
        regions.extend(
            PERMIT_REGIONS
                .iter()
                .filter(|r| r.as_bytes()[..2] != home)
                .map(|r| code6(r)),
        );
        let other_provinces = OTHER_PROVINCES
            .iter()
            .filter(|p| p.as_bytes() != home)
            .map(|p| [p.as_bytes()[0], p.as_bytes()[1]])
            .collect();
        let r_days = opts.reference.days_since_epoch();
        let current = opts
            .reference
            .add_days(i64::from(opts.cycle) * i64::from(opts.period_days))
            .filter(|_| opts.cycle == 0 || opts.period_days > 0)
            .ok_or_else(|| {
                SynthError::Options(format!(
                    "cycle {} of {} days: no such date, or no period",
                    opts.cycle, opts.period_days
                ))
            })?;
        // Ages reach 104, plus the bucket shifts.
        let min_days = r_days - 107 * 366;
        let workers = (opts.residents as f64 * WORKER_SHARE).round() as u64;
        let per_cycle = (opts.residents as f64 * NEWCOMER_SHARE).round() as u64;
        let arrived = per_cycle * u64::from(opts.cycle.min(NEWCOMER_CYCLES));
        let showcase = if opts.residents >= SHOWCASE_MIN_RESIDENTS {
            SHOWCASE_FORMS.len() as u64
        } else {
            0
        };
        let edges = if showcase > 0 { EDGE_PEOPLE } else { 0 };
        Ok(Ctx {
            seed_key: mix64(opts.seed ^ 0xD1B5_4A32_D192_ED03),
            residents: opts.residents,
            total: opts.residents + workers + arrived,
            newcomers: opts.residents + workers,
            per_cycle,
            showcase,
            edges,
            reference: opts.reference,
            r_days,
            cycle: opts.cycle,
            period_days: opts.period_days,
            current,
            min_days,
            ndays: (r_days - min_days + 1) as usize,
            home,
            counties,
            county_cum,
            district_names: home == *b"44",
            regions,
            idx_retired,
            idx_showcase,
            other_start,
            other_len,
            permit_start,
            other_provinces,
            dates: (min_days..=r_days)
                .map(|d| Date::from_days_since_epoch(d).expect("after 1870"))
                .collect(),
            surnames: words(SURNAMES),
            compound_surnames: words(COMPOUND_SURNAMES),
            given_male: words(GIVEN_MALE),
            given_female: words(GIVEN_FEMALE),
            given_neutral: words(GIVEN_NEUTRAL),
            streets: words(STREETS),
            villages: words(VILLAGES),
        })
    }

    /// Given-name characters for a gender.
    pub(super) fn given(&self, male: bool) -> &[&'static str] {
        if male {
            &self.given_male
        } else {
            &self.given_female
        }
    }

    /// The date `days` after 1970-01-01 (a table lookup in the generated range).
    pub(super) fn date(&self, days: i64) -> Date {
        match usize::try_from(days - self.min_days)
            .ok()
            .and_then(|k| self.dates.get(k))
        {
            Some(d) => *d,
            None => Date::from_days_since_epoch(days).expect("dates stay after 1870"),
        }
    }

    pub(super) fn rng(&self, i: u64) -> Rng {
        Rng(mix64(self.seed_key ^ i.wrapping_mul(GOLDEN)))
    }

    /// Person `i`'s stream for the changes of cycle `c` (its own, so that
    /// cycle `k` is cycle `k - 1` plus that period's changes).
    pub(super) fn cycle_rng(&self, i: u64, c: u32) -> Rng {
        Rng(mix64(
            self.seed_key ^ i.wrapping_mul(GOLDEN) ^ mix64(u64::from(c).wrapping_add(0x9E37)),
        ))
    }

    pub(super) fn pick_county(&self, rng: &mut Rng) -> usize {
        let total = *self.county_cum.last().expect("counties");
        let x = rng.below(u64::from(total)) as u32;
        self.county_cum.partition_point(|&c| c <= x)
    }

    pub(super) fn other_county(&self, rng: &mut Rng, c: usize) -> usize {
        let n = self.counties.len();
        (c + 1 + rng.below(n as u64 - 1) as usize) % n
    }

    pub(super) fn bucket(&self, region: usize, days: i64, male: bool) -> Option<usize> {
        if days < self.min_days || days > self.r_days {
            return None;
        }
        Some(((region * self.ndays + (days - self.min_days) as usize) << 1) | usize::from(male))
    }

    pub(super) fn n_buckets(&self) -> usize {
        self.regions.len() * self.ndays * 2
    }
}
