//! Tests of the generator: the expected results against a naive
//! recomputation from the written files, determinism, headers, proportions,
//! faults in every department file, unique IDs and refused options.

use super::model::{
    CIVIL_DEATHS, COVERAGE, DECEASED_INSURED, DEPARTMENT_FILES, DISABILITY, DISABLED_UNINSURED,
    EXPECTED_FILES, ExpectedCounts, HEALTH_DEATHS, HR, MAX_RESIDENTS, NAME_CONFLICTS, NATIONAL,
    REGISTRY, SUMMARY_FILE, SynthError, SynthOptions, UNINSURED,
};
use super::synth;
use super::tables::{DISABILITY_CATEGORIES, HR_STATUS, INSURANCE_TYPES};
use dxmesh_protocol::date::Date;
use dxmesh_protocol::id::{IdError, IdNumber, normalise};
use dxmesh_protocol::token::normalise_attr;
use std::collections::BTreeMap;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

fn reference() -> Date {
    Date::new(2026, 6, 30).unwrap()
}

fn opts(dir: &Path, residents: u64, seed: u64) -> SynthOptions {
    SynthOptions {
        residents,
        out: dir.to_path_buf(),
        seed,
        reference: reference(),
        home_province: "44".to_string(),
        cycle: 0,
        period_days: 30,
    }
}

/// Rows of a CSV file after checking its header.
fn read(dir: &Path, (rel, header): (&str, &str)) -> Vec<Vec<String>> {
    let text = fs::read_to_string(dir.join(rel)).unwrap();
    assert_eq!(text.lines().next(), Some(header), "{rel} header");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let cols = header.split(',').count();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), cols, "{rel}: {rec:?}");
            rec.iter().map(str::to_string).collect()
        })
        .collect()
}

fn is_pension(t: &str) -> bool {
    t == "enterprise_pension" || t == "resident_pension"
}

fn naive_age(birth: Date, on: Date) -> u32 {
    let mut age = u32::from(on.year()) - u32::from(birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// The expected files, recomputed from the written CSVs with a naive
/// implementation; also the counts.
fn naive(dir: &Path, r: Date, home: &str) -> (BTreeMap<&'static str, String>, ExpectedCounts) {
    let norm = |raw: &str| normalise(raw, r).ok();
    // id -> [(status, name, address, region)]
    let mut reg: HashMap<IdNumber, Vec<[String; 4]>> = HashMap::new();
    for row in read(dir, REGISTRY) {
        if let Some(id) = norm(&row[0]) {
            reg.entry(id).or_default().push([
                row[6].clone(),
                row[1].clone(),
                row[5].clone(),
                row[4].clone(),
            ]);
        }
    }
    let mut deceased = BTreeSet::new();
    for row in read(dir, CIVIL_DEATHS)
        .into_iter()
        .chain(read(dir, HEALTH_DEATHS))
    {
        deceased.extend(norm(&row[0]));
    }
    let disabled: BTreeSet<IdNumber> = read(dir, DISABILITY)
        .iter()
        .filter_map(|row| norm(&row[0]))
        .collect();
    // id -> [(name, type)] of active rows
    let mut hr: HashMap<IdNumber, Vec<(String, String)>> = HashMap::new();
    for row in read(dir, HR) {
        if let Some(id) = norm(&row[0])
            && row[3] == "active"
        {
            hr.entry(id)
                .or_default()
                .push((row[1].clone(), row[2].clone()));
        }
    }
    let other: BTreeSet<IdNumber> = read(dir, NATIONAL)
        .iter()
        .filter(|row| row[1] != home && is_pension(&row[2]))
        .filter_map(|row| norm(&row[0]))
        .collect();
    let scope: BTreeSet<IdNumber> = reg
        .iter()
        .filter(|(id, rows)| {
            rows.iter().any(|x| x[0] == "active") && naive_age(id.birth_date(), r) >= 16
        })
        .map(|(id, _)| *id)
        .collect();
    let pension: BTreeSet<IdNumber> = hr
        .iter()
        .filter(|(_, rows)| rows.iter().any(|(_, t)| is_pension(t)))
        .map(|(id, _)| *id)
        .collect();
    let base: BTreeSet<IdNumber> = scope
        .iter()
        .filter(|id| !pension.contains(id) && !deceased.contains(id))
        .copied()
        .collect();
    let uninsured: BTreeSet<IdNumber> = base.difference(&other).copied().collect();
    let active_rows = |id: &IdNumber| reg[id].iter().filter(|x| x[0] == "active");
    let reg_lines = |ids: &mut dyn Iterator<Item = &IdNumber>| {
        let mut lines = BTreeSet::new();
        for id in ids {
            for x in active_rows(id) {
                lines.insert(format!("{id},{},{}", x[1], x[2]));
            }
        }
        lines
    };
    let file = |header: &str, lines: BTreeSet<String>| {
        let mut s = format!("{header}\n");
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
        s
    };
    let mut out = BTreeMap::new();
    out.insert(
        UNINSURED.0,
        file(UNINSURED.1, reg_lines(&mut uninsured.iter())),
    );
    let disabled_uninsured: BTreeSet<IdNumber> =
        uninsured.intersection(&disabled).copied().collect();
    out.insert(
        DISABLED_UNINSURED.0,
        file(
            DISABLED_UNINSURED.1,
            reg_lines(&mut disabled_uninsured.iter()),
        ),
    );
    let deceased_insured: BTreeSet<IdNumber> = pension.intersection(&deceased).copied().collect();
    let mut lines = BTreeSet::new();
    for id in &deceased_insured {
        for (name, t) in &hr[id] {
            if is_pension(t) {
                lines.insert(format!("{id},{name},{t}"));
            }
        }
    }
    out.insert(DECEASED_INSURED.0, file(DECEASED_INSURED.1, lines));
    let mut conflicts = BTreeSet::new();
    let mut lines = BTreeSet::new();
    for id in &scope {
        let Some(h) = hr.get(id) else { continue };
        let rn: BTreeSet<String> = active_rows(id).map(|x| normalise_attr(&x[1])).collect();
        let hn: BTreeSet<String> = h.iter().map(|(n, _)| normalise_attr(n)).collect();
        if rn != hn {
            conflicts.insert(*id);
            for x in active_rows(id) {
                lines.insert(format!("{id},{}", x[1]));
            }
        }
    }
    out.insert(NAME_CONFLICTS.0, file(NAME_CONFLICTS.1, lines));
    let mut cov: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for id in &scope {
        let regions: BTreeSet<&String> = active_rows(id).map(|x| &x[3]).collect();
        for region in regions {
            let e = cov.entry(region.clone()).or_default();
            if !deceased.contains(id) {
                e.0 += 1;
                if !uninsured.contains(id) {
                    e.1 += 1;
                }
            }
        }
    }
    let mut s = format!("{}\n", COVERAGE.1);
    for (region, (e, c)) in cov {
        s.push_str(&format!("{region},{e},{c}\n"));
    }
    out.insert(COVERAGE.0, s);
    let counts = ExpectedCounts {
        registry_scope: scope.len() as u64,
        deceased: deceased.len() as u64,
        pension_insured: pension.len() as u64,
        other_province: other.len() as u64,
        uninsured: uninsured.len() as u64,
        deceased_insured: deceased_insured.len() as u64,
        disabled_uninsured: disabled_uninsured.len() as u64,
        name_conflicts: conflicts.len() as u64,
        removed_other_province: base.intersection(&other).count() as u64,
    };
    (out, counts)
}

#[test]
fn synth_expected_results_match_a_naive_recomputation() {
    for (seed, residents, home) in [(1, 2_000, "44"), (2, 2_000, "44"), (3, 1_500, "43")] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path(), residents, seed);
        o.home_province = home.to_string();
        let report = synth(&o).unwrap();
        let (files, counts) = naive(dir.path(), reference(), home);
        for (rel, text) in &files {
            let written = fs::read_to_string(dir.path().join(rel)).unwrap();
            assert_eq!(&written, text, "{rel} (seed {seed})");
            assert_eq!(
                report.files[*rel],
                text.lines().count() as u64 - 1,
                "{rel} row count"
            );
        }
        assert_eq!(report.counts, counts, "seed {seed}");
        let summary: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(SUMMARY_FILE)).unwrap()).unwrap();
        assert_eq!(
            summary["counts"]["uninsured"].as_u64(),
            Some(counts.uninsured)
        );
        assert_eq!(
            summary["counts"]["removed_other_province"].as_u64(),
            Some(counts.removed_other_province)
        );
        assert_eq!(
            summary["files"][REGISTRY.0].as_u64(),
            Some(report.files[REGISTRY.0])
        );
        // Every list is non-trivial in a province this size.
        assert!(counts.uninsured > 0 && counts.deceased_insured > 0);
        assert!(counts.name_conflicts > 0 && counts.removed_other_province > 0);
    }
}

#[test]
fn synth_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let ra = synth(&opts(a.path(), 3_000, 7)).unwrap();
    let rb = synth(&opts(b.path(), 3_000, 7)).unwrap();
    let rc = synth(&opts(c.path(), 3_000, 8)).unwrap();
    assert_eq!(ra, rb);
    let all = DEPARTMENT_FILES
        .iter()
        .chain(EXPECTED_FILES.iter())
        .map(|f| f.0)
        .chain([SUMMARY_FILE]);
    for rel in all {
        let x = fs::read(a.path().join(rel)).unwrap();
        assert_eq!(x, fs::read(b.path().join(rel)).unwrap(), "{rel}");
    }
    assert_ne!(
        fs::read(a.path().join(REGISTRY.0)).unwrap(),
        fs::read(c.path().join(REGISTRY.0)).unwrap()
    );
    assert_ne!(ra.counts, rc.counts);
}

#[test]
fn synth_files_parse_with_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let report = synth(&opts(dir.path(), 2_000, 11)).unwrap();
    for f in DEPARTMENT_FILES.iter().chain(EXPECTED_FILES.iter()) {
        let rows = read(dir.path(), *f);
        assert_eq!(report.files[f.0], rows.len() as u64, "{}", f.0);
    }
    assert_eq!(
        report.files.len(),
        DEPARTMENT_FILES.len() + EXPECTED_FILES.len()
    );
    for row in read(dir.path(), REGISTRY) {
        assert!(["male", "female"].contains(&row[2].as_str()));
        Date::parse(&row[3]).unwrap();
        assert!(row[4].len() == 6 && row[4].starts_with("44"));
        assert!(["active", "moved_out", "cancelled"].contains(&row[6].as_str()));
    }
    let mut child_since = BTreeSet::new();
    for row in read(dir.path(), HR) {
        assert!(INSURANCE_TYPES.contains(&row[2].as_str()));
        assert!(HR_STATUS.contains(&row[3].as_str()));
        let since = Date::parse(&row[4]).unwrap();
        assert!(since <= reference());
        if let Ok(id) = normalise(&row[0], reference()) {
            assert!(id.birth_date() <= since, "{row:?}");
            if id.birth_date().age_on(reference()) < 16 {
                child_since.insert(since);
            }
        }
    }
    assert!(child_since.len() > 10, "children's start dates vary");
    for row in read(dir.path(), DISABILITY) {
        assert!(DISABILITY_CATEGORIES.iter().any(|c| c.0 == row[2]));
        assert!(("1"..="4").contains(&row[3].as_str()));
        let d = Date::parse(&row[4]).unwrap();
        assert!(d <= reference());
        if let Ok(id) = normalise(&row[0], reference()) {
            assert!(id.birth_date() <= d);
        }
    }
    for row in read(dir.path(), NATIONAL) {
        assert!(row[1].len() == 2 && INSURANCE_TYPES.contains(&row[2].as_str()));
    }
    // Dates never lie after the reference date; deaths never before birth.
    for row in read(dir.path(), CIVIL_DEATHS) {
        let d = Date::parse(&row[2]).unwrap();
        assert!(d <= reference());
        if let Ok(id) = normalise(&row[0], reference()) {
            assert!(id.birth_date() <= d);
        }
    }
}

#[test]
fn synth_proportions_are_sane() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000u64;
    let report = synth(&opts(dir.path(), n, 5)).unwrap();
    let c = report.counts;
    let share = |x: u64| x as f64 / n as f64;
    let within = |what: &str, x: f64, lo: f64, hi: f64| {
        assert!(x >= lo && x <= hi, "{what}: {x:.4} not in [{lo}, {hi}]");
    };
    within("registry scope", share(c.registry_scope), 0.80, 0.88);
    within("uninsured", share(c.uninsured), 0.03, 0.065);
    within("deceased", share(c.deceased), 0.006, 0.018);
    within(
        "removed by ministry",
        share(c.removed_other_province),
        0.012,
        0.03,
    );
    within("pension insured", share(c.pension_insured), 0.72, 0.9);
    within("deceased insured", share(c.deceased_insured), 0.001, 0.006);
    within("name conflicts", share(c.name_conflicts), 0.0005, 0.005);
    within(
        "disability rows",
        share(report.files[DISABILITY.0]),
        0.014,
        0.028,
    );
    within(
        "disabled uninsured",
        c.disabled_uninsured as f64 / c.uninsured as f64,
        0.02,
        0.15,
    );
    let registry = read(dir.path(), REGISTRY);
    let adults = registry
        .iter()
        .filter(|r| Date::parse(&r[3]).unwrap().age_on(reference()) >= 16)
        .count();
    within("adults", adults as f64 / registry.len() as f64, 0.82, 0.88);
    let stale = registry.iter().filter(|r| r[6] != "active").count();
    within(
        "moved_out/cancelled",
        stale as f64 / registry.len() as f64,
        0.006,
        0.02,
    );
    let reg_ids: BTreeSet<IdNumber> = registry
        .iter()
        .filter_map(|r| normalise(&r[0], reference()).ok())
        .collect();
    let hr_ids: BTreeSet<IdNumber> = read(dir.path(), HR)
        .iter()
        .filter_map(|r| normalise(&r[0], reference()).ok())
        .collect();
    let outsiders = hr_ids.difference(&reg_ids).count();
    within(
        "insured outside the registry",
        share(outsiders as u64),
        0.03,
        0.07,
    );
    // Counties: 20-40 distinct, all in the home province.
    let counties: BTreeSet<&str> = registry.iter().map(|r| r[4].as_str()).collect();
    assert!((20..=40).contains(&counties.len()), "{}", counties.len());
}

/// The faults a raw ID shows.
fn faults_of(raw: &str) -> Vec<&'static str> {
    let mut f = Vec::new();
    if raw.chars().any(|c| ('\u{FF10}'..='\u{FF19}').contains(&c)) {
        f.push("full_width");
    }
    if raw.contains('Ｘ') {
        f.push("full_width_x");
    }
    if raw.contains('x') {
        f.push("lowercase_x");
    }
    if raw.starts_with([' ', '\u{3000}']) || raw.ends_with([' ', '\u{3000}']) {
        f.push("whitespace");
    }
    if raw.contains('\u{3000}') {
        f.push("ideographic_space");
    }
    if raw.contains('-') {
        f.push("separator");
    }
    if raw.len() == 15 {
        f.push("legacy_15");
    }
    match normalise(raw, reference()) {
        Err(IdError::CheckCharacter { .. }) => f.push("check_character"),
        Err(IdError::InvalidBirthDate { .. }) => f.push("invalid_birth_date"),
        Err(e) => panic!("{raw:?}: unexpected {e}"),
        Ok(id) => {
            if raw.len() == 15 {
                assert!((1900..=1999).contains(&id.birth_date().year()), "{raw}");
            }
        }
    }
    f
}

#[test]
fn synth_every_fault_occurs_in_every_department_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = synth(&opts(dir.path(), 2_000, 3)).unwrap();
    let all = [
        "full_width",
        "full_width_x",
        "lowercase_x",
        "whitespace",
        "ideographic_space",
        "separator",
        "legacy_15",
        "check_character",
        "invalid_birth_date",
    ];
    for f in DEPARTMENT_FILES {
        let text = fs::read_to_string(dir.path().join(f.0)).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        let mut seen = BTreeSet::new();
        for line in &lines {
            seen.extend(faults_of(line.split(',').next().unwrap()));
        }
        for fault in all {
            assert!(seen.contains(fault), "{}: no {fault}", f.0);
        }
        let distinct: BTreeSet<&&str> = lines.iter().collect();
        assert!(
            distinct.len() < lines.len(),
            "{}: no exact duplicate row",
            f.0
        );
        // The report's fault counts agree with the file.
        let counts = &report.faults[f.0];
        assert!(counts["exact_duplicate"] >= 1);
        assert_eq!(
            counts["check_character"],
            lines
                .iter()
                .filter(|l| faults_of(l.split(',').next().unwrap()).contains(&"check_character"))
                .count() as u64
        );
    }
    // The same person under a different name in HR (not just spacing).
    let mut names: HashMap<IdNumber, BTreeSet<String>> = HashMap::new();
    for row in read(dir.path(), REGISTRY) {
        if let Ok(id) = normalise(&row[0], reference()) {
            names.entry(id).or_default().insert(row[1].clone());
        }
    }
    let mut conflicts = 0;
    let mut spacing = 0;
    for row in read(dir.path(), HR) {
        let Ok(id) = normalise(&row[0], reference()) else {
            continue;
        };
        let Some(reg) = names.get(&id) else { continue };
        if !reg.contains(&row[1]) {
            if reg
                .iter()
                .any(|n| normalise_attr(n) == normalise_attr(&row[1]))
            {
                spacing += 1;
            } else {
                conflicts += 1;
            }
        }
    }
    assert!(conflicts > 0 && spacing > 0, "{conflicts} {spacing}");
    assert_eq!(report.faults[HR.0]["name_conflict"], conflicts);
    assert_eq!(report.faults[HR.0]["name_spacing"], spacing);
}

#[test]
fn synth_ids_are_unique_per_person() {
    // Rows of one person agree on name and birth date: no two people share an ID.
    let dir = tempfile::tempdir().unwrap();
    synth(&opts(dir.path(), 30_000, 9)).unwrap();
    let mut seen: HashMap<IdNumber, (String, String)> = HashMap::new();
    for row in read(dir.path(), REGISTRY) {
        if let Ok(id) = normalise(&row[0], reference()) {
            let v = (row[1].clone(), row[3].clone());
            assert_eq!(id.birth_date().to_string(), row[3]);
            assert_eq!(
                id.gender() == dxmesh_protocol::id::Gender::Male,
                row[2] == "male"
            );
            if let Some(old) = seen.insert(id, v.clone()) {
                assert_eq!(old, v, "{id}");
            }
        }
    }
}

#[test]
fn synth_refuses_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 10, 1);
    o.home_province = "4".to_string();
    assert!(matches!(synth(&o), Err(SynthError::Options(_))));
    let mut o = opts(dir.path(), MAX_RESIDENTS + 1, 1);
    o.home_province = "44".to_string();
    assert!(matches!(synth(&o), Err(SynthError::Options(_))));
    let mut o = opts(dir.path(), 10, 1);
    o.reference = Date::new(1970, 1, 1).unwrap();
    assert!(matches!(synth(&o), Err(SynthError::Options(_))));
    // A tiny province works (no showcase people).
    let r = synth(&opts(dir.path(), 10, 1)).unwrap();
    assert!(r.files[REGISTRY.0] >= 10);
}

/// The ID numbers (first column) of an expected list.
fn ids_in(dir: &Path, rel: (&str, &str)) -> std::collections::BTreeSet<String> {
    read(dir, rel).into_iter().map(|r| r[0].clone()).collect()
}

#[test]
fn a_later_cycle_matches_a_naive_recomputation_on_its_own_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 2_000, 5);
    o.cycle = 3;
    let report = synth(&o).unwrap();
    let day = reference().add_days(90).unwrap();
    assert_eq!((report.cycle, report.reference), (3, day));
    let (files, counts) = naive(dir.path(), day, "44");
    for (rel, text) in &files {
        let written = fs::read_to_string(dir.path().join(rel)).unwrap();
        assert_eq!(&written, text, "{rel}");
    }
    assert_eq!(report.counts, counts);
}

#[test]
fn the_next_cycle_keeps_the_people_and_changes_a_few() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = synth(&opts(a.path(), 20_000, 7)).unwrap();
    let mut o = opts(b.path(), 20_000, 7);
    o.cycle = 1;
    let next = synth(&o).unwrap();
    // The same people, and 0.5 % new residents (100 of 20,000): the
    // registry lists the same ID numbers but for a few corrected raw IDs,
    // and the new residents' ones.
    let (was, is) = (ids_in(a.path(), REGISTRY), ids_in(b.path(), REGISTRY));
    let kept = was.intersection(&is).count();
    assert!(kept * 100 >= was.len() * 99, "kept {kept} of {}", was.len());
    let arrived = is.len() - was.len();
    assert!((80..=130).contains(&arrived), "{arrived} more registry IDs");
    // Corrections: fewer rows with a raw-ID fault than the month before.
    let faults = |r: &crate::sim::synth::SynthReport| -> u64 {
        r.faults.values().flat_map(|f| f.values()).sum()
    };
    assert!(
        faults(&next) < faults(&first),
        "{:?} then {:?}",
        first.faults,
        next.faults
    );
    let (before, after) = (ids_in(a.path(), UNINSURED), ids_in(b.path(), UNINSURED));
    let left = before.difference(&after).count();
    let new = after.difference(&before).count();
    let stayed = before.intersection(&after).count();
    // About 2 % insured, 0.4 % dead, 0.2 % moved out; a month of 16th
    // birthdays come in.
    assert!(left > 0 && new > 0, "left {left}, new {new}");
    assert!(
        stayed * 100 >= before.len() * 90,
        "stayed {stayed} of {}",
        before.len()
    );
    assert!(
        left * 100 <= before.len() * 10,
        "left {left} of {}",
        before.len()
    );
    assert!(next.counts.deceased > first.counts.deceased);
    // About 2 % of the uninsured take out a pension in a period.
    assert!(
        left * 100 >= before.len(),
        "left {left} of {}",
        before.len()
    );
}
