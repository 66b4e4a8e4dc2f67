//! A synthetic province: department exports with realistic proportions and
//! data-quality faults, plus the results a correct comparison must find.
//!
//! [`synth`] writes, under [`SynthOptions::out`]:
//!
//! ```text
//! public_security/registry.csv    id_number,name,gender,birth_date,region_code,address,status
//! civil_affairs/deaths.csv        id_number,name,death_date
//! health/deaths.csv               id_number,death_date
//! disabled_federation/register.csv  id_number,name,category,level,certificate_date
//! hr/insured.csv                  id_number,name,insurance_type,status,since
//! ministry/national.csv           id_number,province_code,insurance_type
//! expected/uninsured.csv          id_number,name,address
//! expected/deceased_insured.csv   id_number,name,insurance_type
//! expected/disabled_uninsured.csv id_number,name,address
//! expected/name_conflicts.csv     id_number,name
//! expected/coverage.csv           region_code,eligible,covered
//! expected/summary.json           the SynthReport
//! ```
//!
//! Every file is UTF-8 CSV with a header line; existing files are
//! overwritten. Nothing is fsynced: the output is a test fixture.
//!
//! ## Determinism
//!
//! Person `i` is a pure function of `(seed, i)` (a SplitMix64 stream keyed by
//! both) and of a 16-bit slot that a sequential first pass assigns to make
//! ID numbers unique: the first pass counts people per (birth region, birth
//! date, gender) and gives each its own sequence number (shifting the birth
//! date a day earlier in the practically impossible case of 500 people in
//! one bucket). The same options therefore give byte-identical files, and two
//! threads can each regenerate every person and write different departments:
//! one writes the registry, the death and disability registers, the ministry
//! index and the expected results, the other the HR file (the largest).
//!
//! ## The population
//!
//! Residents (`residents` of them, each with a household-registry row) have
//! a Chinese name, an age from a coarse population pyramid (about 85 % aged
//! 16 or more), a registry county among the home province's counties and a
//! birth region (the ID's first six digits) that is the same county for most,
//! another home county or another province for migrants, and a retired code
//! for a few old people. About 1 % die within the three years before the
//! reference date (recorded by civil affairs, health or both; 70 % still have
//! an `active` registry row; a quarter of those with a pension keep it
//! `active`: the fraud case); about 1 % of registry rows are `moved_out` or
//! `cancelled` (moves out of the province, moves between counties, living
//! cancellations) and 0.2 % of people hold two `active` registrations in two
//! counties. About 2 % are in the disability register (and are uninsured three
//! times as often). Of living adults, about 4.7 % are insured nowhere (no HR
//! rows, medical only, or a suspended or terminated pension), 2.35 % have a
//! pension in another province only, and the rest an `active` enterprise or
//! resident pension here (with the matching medical, unemployment, work-injury
//! and maternity rows; 0.3 % are insured in another province as well). A
//! further 5 % of `residents` are workers from other provinces (and Hong Kong,
//! Macao and Taiwan permit holders) insured here but absent from the registry.
//! The ministry index holds the province's active pension records (province
//! code = home province) and the other-province pensions of its people.
//!
//! ## Cycles
//!
//! [`SynthOptions::cycle`] `k` writes the same province `k` periods of
//! [`SynthOptions::period_days`] later: the same people and registry rows,
//! with each period's changes to the residents still registered and alive
//! drawn from their own stream per period (so cycle `k` is cycle `k - 1`
//! plus one period): 0.4 % die (recorded by civil affairs, health or both,
//! the registry row left `active`, the pension ended for three in four),
//! 2 % of the uninsured adults take out a resident pension, 0.2 % move out
//! of the province; 16th birthdays come with the later date. Each cycle
//! (for the first 36) 0.5 % of `residents` move in: new people after the
//! workers, registered `active` from the cycle they arrive, alive, with
//! the insurance any resident has. Each department corrects 10 % of the
//! residents' rows with a faulty raw ID (or written twice) in a period
//! (the showcase people and the workers from elsewhere keep theirs). The expected
//! results are those of the cycle's own reference date.
//!
//! ## Data-quality faults
//!
//! Each row's raw ID is, independently: full-width digits (0.4 %), leading or
//! trailing spaces including U+3000 (0.6 %), separators (0.3 %), the legacy
//! 15-digit form (1.2 % of rows of people born 1900-1999, and only those),
//! lowercase `x` (10 % of IDs ending in `X`), full-width `Ｘ` (2 % of them),
//! a wrong check character (0.12 %) or an impossible birth date with a
//! matching check character (0.03 %). 0.25 % of rows are written twice,
//! 60 % of them as exact duplicates. 0.2 % of HR people carry a different
//! name (another given character) and 0.3 % of living HR people the same name
//! with a space or U+3000 inside (no conflict after
//! [`normalise_attr`]). In provinces of 200 residents or more, the
//! first nine are "showcase" people with one fault each in every row of every
//! file (so each fault occurs in each file), and the next three are born on
//! the 16th-birthday boundary and on 29 February.
//!
//! ## Expected results
//!
//! Computed from the ground truth with the comparison rules: a row whose raw
//! ID cannot be normalised (wrong check character, impossible date) does not
//! exist; every other raw ID stands for the true 18-digit number. With R the
//! reference date and "pension" meaning `enterprise_pension` or
//! `resident_pension`:
//!
//! * `registry_scope`: IDs with an `active` registry row, aged 16 or more at R
//!   (from the ID's birth date; [`Date::age_on`]).
//! * `deceased`: IDs in either death register.
//! * `pension_insured`: IDs with an `active` pension row in HR.
//! * `other_province`: IDs with a pension in the ministry index under another
//!   province code.
//! * `uninsured` = scope − pension_insured − deceased − other_province: one
//!   line per distinct (name, address) of the ID's active registry rows.
//! * `deceased_insured` = pension_insured ∩ deceased: one line per distinct
//!   (HR name, pension type) of its active pension rows.
//! * `disabled_uninsured` = uninsured ∩ disability register.
//! * `name_conflicts`: IDs in scope with an active HR row whose set of active
//!   registry names and set of active HR names differ after
//!   [`normalise_attr`]: one line per registry name.
//! * `coverage`: per registry county of the scope rows (an ID counts in each
//!   county it has active rows in): eligible = scope − deceased, covered =
//!   eligible − uninsured.
//!
//! Lists are sorted by line (so by ID number first).
//!
//! [`normalise_attr`]: dxmesh_protocol::token::normalise_attr
//! [`Date::age_on`]: dxmesh_protocol::date::Date::age_on

mod ctx;
mod expected;
mod faults;
mod ids;
mod model;
mod output;
mod people;
mod rng;
mod tables;
#[cfg(test)]
mod tests;
mod writers;

pub use tables::INSURANCE_TYPES;

pub use model::{
    DEPARTMENT_FILES, EXPECTED_FILES, ExpectedCounts, MAX_RESIDENTS, SUMMARY_FILE, SynthError,
    SynthOptions, SynthReport,
};

use ctx::Ctx;
use faults::FAULT_NAMES;
use ids::assign_slots;
use model::io_err;
use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use writers::{gen_insurance, gen_population};

/// Generates a synthetic province into `opts.out` and returns what was written.
///
/// Deterministic: the same options give byte-identical files. Uses two
/// threads (one per group of departments). See the module documentation for
/// the model, the faults and the rules behind the expected results.
pub fn synth(opts: &SynthOptions) -> Result<SynthReport, SynthError> {
    let ctx = Ctx::new(opts)?;
    fs::create_dir_all(&opts.out).map_err(|e| io_err(&opts.out, e))?;
    let slots = assign_slots(&ctx)?;
    let stop = AtomicBool::new(false);
    let dir = opts.out.as_path();
    let (population, insurance) = std::thread::scope(|s| {
        let ins = s.spawn(|| {
            let r = gen_insurance(&ctx, &slots, dir, &stop);
            if r.is_err() {
                // The other thread stops early (reporting `Panicked`, which
                // the match below replaces with this error).
                stop.store(true, Ordering::Relaxed);
            }
            r
        });
        let pop = s.spawn(|| {
            let r = gen_population(&ctx, &slots, dir, &stop);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r
        });
        (pop.join(), ins.join())
    });
    let (population, insurance) = match (population, insurance) {
        (Ok(p), Ok(i)) => (p, i),
        _ => return Err(SynthError::Panicked),
    };
    // Report the real failure rather than the other thread's reaction to it.
    let (mut written, counts, insurance) = match (population, insurance) {
        (Ok((w, c)), Ok(i)) => (w, c, i),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
        (Err(SynthError::Panicked), Err(e)) | (Err(e), Err(_)) => return Err(e),
    };
    written.extend(insurance);
    let mut files = BTreeMap::new();
    let mut faults = BTreeMap::new();
    for w in written {
        files.insert(w.rel.to_string(), w.rows);
        if let Some(f) = w.faults {
            let per: BTreeMap<String, u64> = FAULT_NAMES
                .iter()
                .zip(f)
                .map(|(n, c)| (n.to_string(), c))
                .collect();
            faults.insert(w.rel.to_string(), per);
        }
    }
    let report = SynthReport {
        seed: opts.seed,
        residents: opts.residents,
        reference: ctx.current,
        cycle: opts.cycle,
        home_province: opts.home_province.clone(),
        counts,
        files,
        faults,
    };
    let mut json = serde_json::to_vec_pretty(&report)?;
    json.push(b'\n');
    let path = opts.out.join(SUMMARY_FILE);
    fs::write(&path, json).map_err(|e| io_err(&path, e))?;
    Ok(report)
}
