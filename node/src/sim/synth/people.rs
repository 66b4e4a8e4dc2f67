//! The people: a [`Person`] with every row they have in every department
//! (the ground truth), and [`person`], which generates person `i` from the
//! seed and their slot: name, addresses, registrations, deaths,
//! disability, insurance, the ministry index and the raw-ID form of every
//! row.

use super::ctx::Ctx;
use super::faults::{Copies, Form, SHOWCASE_FORMS, draw_form};
use super::ids::{Core, Kind, core, make_id, years_days};
use super::rng::Rng;
use super::tables::{
    ACTIVE, CANCELLED, CORRECTION_SHARE, DISABILITY_CATEGORIES, EM, EP, MA, MOVED_OUT, RM, RP,
    SUSPENDED, TERMINATED, UN, WI, is_pension,
};
use dxmesh_protocol::date::Date;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Name {
    pub(super) surname: &'static str,
    pub(super) given: [&'static str; 2],
    pub(super) n_given: u8,
    /// Between surname and given name: empty, or spacing noise.
    pub(super) gap: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Address {
    pub(super) rural: bool,
    pub(super) place: u8,
    pub(super) number: u16,
    pub(super) building: u8,
    pub(super) room: u16,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RegRow {
    pub(super) county: u8,
    pub(super) address: Address,
    pub(super) status: u8,
    pub(super) ids: Copies,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct DeathRow {
    pub(super) date: Date,
    pub(super) ids: Copies,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct DisRow {
    pub(super) category: u8,
    pub(super) level: u8,
    pub(super) date: Date,
    pub(super) ids: Copies,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct HrRow {
    pub(super) ty: u8,
    pub(super) status: u8,
    pub(super) since: Date,
    pub(super) ids: Copies,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct NatRow {
    pub(super) province: [u8; 2],
    pub(super) ty: u8,
    pub(super) ids: Copies,
}

/// A fixed-capacity list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Small<T: Copy, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy, const N: usize> Small<T, N> {
    pub(super) fn new(fill: T) -> Self {
        Small {
            items: [fill; N],
            len: 0,
        }
    }
    pub(super) fn push(&mut self, t: T) {
        debug_assert!(self.len < N, "Small capacity exceeded");
        if self.len < N {
            self.items[self.len] = t;
            self.len += 1;
        }
    }
    pub(super) fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

/// Name variant in HR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HrName {
    Same,
    Conflict,
    Spaced,
}

#[derive(Debug, Clone)]
pub(super) struct Person {
    pub(super) id: [u8; 18],
    pub(super) birth: Date,
    pub(super) male: bool,
    pub(super) name: Name,
    pub(super) hr_name: Name,
    pub(super) hr_variant: HrName,
    pub(super) regs: Small<RegRow, 3>,
    pub(super) civil: Option<DeathRow>,
    pub(super) health: Option<DeathRow>,
    pub(super) disability: Option<DisRow>,
    pub(super) hr: Small<HrRow, 8>,
    pub(super) national: Small<NatRow, 4>,
}

/// How duplicated rows are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dup {
    Random,
    Exact,
    Clean,
}

/// Draws the per-row raw forms of one person.
struct RowGen {
    rng: Rng,
    id: [u8; 18],
    year: u16,
    forced: Option<Form>,
    dup: Dup,
}

impl RowGen {
    fn form(&mut self) -> Form {
        match self.forced {
            Some(f) => f,
            None => draw_form(&mut self.rng, &self.id, self.year),
        }
    }
    fn copies(&mut self) -> Copies {
        let f1 = self.form();
        match self.dup {
            Dup::Exact => Copies {
                forms: [f1, f1],
                n: 2,
            },
            Dup::Clean => Copies {
                forms: [f1, Form::Clean],
                n: 2,
            },
            Dup::Random => {
                let r = self.rng.next();
                if r % 10_000 < 25 {
                    let f2 = if (r >> 32) % 10 < 6 { f1 } else { self.form() };
                    Copies {
                        forms: [f1, f2],
                        n: 2,
                    }
                } else {
                    Copies {
                        forms: [f1, Form::Clean],
                        n: 1,
                    }
                }
            }
        }
    }
}

fn random_name(ctx: &Ctx, rng: &mut Rng, male: bool) -> Name {
    let surname = if rng.below(1000) < 5 {
        rng.pick(&ctx.compound_surnames)
    } else {
        let u = rng.unit();
        ctx.surnames[((u * u) * ctx.surnames.len() as f64) as usize]
    };
    let gendered = ctx.given(male);
    let (given, n_given) = if rng.chance(0.75) {
        let first = if rng.chance(0.4) {
            rng.pick(&ctx.given_neutral)
        } else {
            rng.pick(gendered)
        };
        ([first, rng.pick(gendered)], 2)
    } else {
        let g = rng.pick(gendered);
        ([g, g], 1)
    };
    Name {
        surname,
        given,
        n_given,
        gap: "",
    }
}

/// The same person's name with another first given character.
fn conflicting_name(ctx: &Ctx, rng: &mut Rng, name: Name, male: bool) -> Name {
    let list = ctx.given(male);
    let cur = name.given[0];
    let new = match list.iter().position(|&g| g == cur) {
        Some(p) => list[(p + 1 + rng.below(list.len() as u64 - 1) as usize) % list.len()],
        None => rng.pick(list),
    };
    let mut n = name;
    n.given[0] = new;
    n
}

fn random_address(ctx: &Ctx, rng: &mut Rng) -> Address {
    let r = rng.next();
    let rural = r % 100 < 18;
    let place = if rural {
        ((r >> 8) % ctx.villages.len() as u64) as u8
    } else {
        ((r >> 8) % ctx.streets.len() as u64) as u8
    };
    let number = 1 + ((r >> 16) % 300) as u16;
    let building = if rural || (r >> 28) % 10 >= 6 {
        0
    } else {
        1 + ((r >> 32) % 30) as u8
    };
    let room = (1 + ((r >> 40) % 30) as u16) * 100 + 1 + ((r >> 50) % 8) as u16;
    Address {
        rural,
        place,
        number,
        building,
        room,
    }
}

/// Generates person `i`.
pub(super) fn person(ctx: &Ctx, i: u64, slot: u16) -> Person {
    let mut rng = ctx.rng(i);
    let c = core(ctx, i, &mut rng);
    let (id, birth_days) = make_id(ctx, &c, slot);
    let birth = ctx.date(birth_days);
    let (forced, dup) = match c.kind {
        Kind::Showcase(j) => (
            Some(SHOWCASE_FORMS[usize::from(j)]),
            match j {
                0 => Dup::Exact,
                2 => Dup::Clean,
                _ => Dup::Random,
            },
        ),
        _ => (None, Dup::Random),
    };
    let name = random_name(ctx, &mut rng, c.male);
    let placeholder = Date::new(2000, 1, 1).expect("valid date");
    let mut p = Person {
        id,
        birth,
        male: c.male,
        name,
        hr_name: name,
        hr_variant: HrName::Same,
        regs: Small::new(RegRow {
            county: 0,
            address: Address {
                rural: false,
                place: 0,
                number: 0,
                building: 0,
                room: 0,
            },
            status: ACTIVE,
            ids: Copies::ONE,
        }),
        civil: None,
        health: None,
        disability: None,
        hr: Small::new(HrRow {
            ty: 0,
            status: ACTIVE,
            since: placeholder,
            ids: Copies::ONE,
        }),
        national: Small::new(NatRow {
            province: [0; 2],
            ty: 0,
            ids: Copies::ONE,
        }),
    };
    let mut g = RowGen {
        rng,
        id,
        year: birth.year(),
        forced,
        dup,
    };
    match c.kind {
        Kind::Showcase(j) => showcase(ctx, &mut g, &mut p, &c, j),
        Kind::Worker => worker(ctx, &mut g, &mut p, birth_days),
        Kind::Resident | Kind::Newcomer(_) | Kind::Edge(_) => {
            resident(ctx, &mut g, &mut p, &c, birth_days)
        }
    }
    let first_change = match c.kind {
        Kind::Resident => Some(1),
        Kind::Newcomer(arrival) => Some(arrival + 1),
        _ => None,
    };
    if let Some(first) = first_change {
        for cycle in first..=ctx.cycle {
            correct(ctx, &mut p, i, cycle);
            churn(ctx, &mut p, i, cycle);
        }
    }
    // The ministry index holds every active pension of the province.
    for k in 0..p.hr.len {
        let row = p.hr.items[k];
        if row.status == ACTIVE && is_pension(row.ty) {
            let ids = g.copies();
            p.national.push(NatRow {
                province: ctx.home,
                ty: row.ty,
                ids,
            });
        }
    }
    p
}

/// One period's changes to a resident still registered and alive, drawn
/// from their own stream for cycle `cycle` (each period adds its changes to
/// the last): death (0.4 %; recorded by civil affairs, health or both; the
/// registry row stays `active`, the pension ends unless kept: the fraud
/// case), a resident pension taken out by an uninsured adult (2 %), a move
/// out of the province (0.2 %). Raw-ID faults of new rows are drawn as for
/// any row.
fn churn(ctx: &Ctx, p: &mut Person, i: u64, cycle: u32) {
    let mut g = RowGen {
        rng: ctx.cycle_rng(i, cycle),
        id: p.id,
        year: p.birth.year(),
        forced: None,
        dup: Dup::Random,
    };
    let period = i64::from(ctx.period_days);
    let start = i64::from(cycle - 1) * period;
    let Some(day) = ctx
        .reference
        .add_days(start + g.rng.range(1, period.max(2)))
    else {
        return;
    };
    let alive = p.civil.is_none() && p.health.is_none();
    let registered = p.regs.as_slice().iter().any(|r| r.status == ACTIVE);
    if !alive || !registered || p.birth > day {
        return;
    }
    if g.rng.chance(0.004) {
        let u = g.rng.below(20);
        if u < 17 {
            p.civil = Some(DeathRow {
                date: day,
                ids: g.copies(),
            });
        }
        if u >= 12 {
            p.health = Some(DeathRow {
                date: day,
                ids: g.copies(),
            });
        }
        let keep = g.rng.chance(0.25);
        for row in p.hr.as_mut_slice() {
            if row.status == ACTIVE && is_pension(row.ty) && !keep {
                row.status = TERMINATED;
            }
        }
        return;
    }
    let pension =
        p.hr.as_slice()
            .iter()
            .any(|r| r.status == ACTIVE && is_pension(r.ty));
    let elsewhere = p.national.as_slice().iter().any(|n| n.province != ctx.home);
    if !pension && !elsewhere && p.birth.age_on(day) >= 16 && g.rng.chance(0.02) {
        let ids = g.copies();
        p.hr.push(HrRow {
            ty: RP,
            status: ACTIVE,
            since: day,
            ids,
        });
    } else if g.rng.chance(0.002) {
        for row in p.regs.as_mut_slice() {
            if row.status == ACTIVE {
                row.status = MOVED_OUT;
            }
        }
    }
}

/// One period's corrections: each of the person's rows whose raw ID has a
/// fault (or is written twice) is corrected by its department with chance
/// [`CORRECTION_SHARE`], from a stream of its own (so the changes `churn`
/// draws are the same with or without it).
fn correct(ctx: &Ctx, p: &mut Person, i: u64, cycle: u32) {
    let mut rng = ctx.cycle_rng(i ^ CORRECTION_STREAM, cycle);
    let mut fix = |ids: &mut Copies| {
        if *ids != Copies::ONE && rng.chance(CORRECTION_SHARE) {
            *ids = Copies::ONE;
        }
    };
    for row in p.regs.as_mut_slice() {
        fix(&mut row.ids);
    }
    for row in p.hr.as_mut_slice() {
        fix(&mut row.ids);
    }
    for row in [&mut p.civil, &mut p.health].into_iter().flatten() {
        fix(&mut row.ids);
    }
    if let Some(row) = &mut p.disability {
        fix(&mut row.ids);
    }
}

/// Salt of the corrections' streams.
const CORRECTION_STREAM: u64 = 0xC0DE_FACE_0F1D_5EED;

/// A start date within the last 30 years, from age 16 (from birth for children).
fn since(g: &mut RowGen, ctx: &Ctx, birth_days: i64) -> Date {
    let mut lo = birth_days + years_days(16) + 1;
    if lo > ctx.r_days {
        lo = birth_days;
    }
    let lo = lo.max(ctx.r_days - years_days(30));
    ctx.date(g.rng.range(lo, ctx.r_days))
}

fn push_hr(g: &mut RowGen, ctx: &Ctx, p: &mut Person, birth_days: i64, ty: u8, status: u8) {
    let since = since(g, ctx, birth_days);
    let ids = g.copies();
    p.hr.push(HrRow {
        ty,
        status,
        since,
        ids,
    });
}

fn push_other_province(g: &mut RowGen, ctx: &Ctx, p: &mut Person, ty: u8) {
    let province = g.rng.pick(&ctx.other_provinces);
    let ids = g.copies();
    p.national.push(NatRow { province, ty, ids });
}

fn push_reg(ctx: &Ctx, g: &mut RowGen, p: &mut Person, county: usize, status: u8) {
    let address = random_address(ctx, &mut g.rng);
    let ids = g.copies();
    p.regs.push(RegRow {
        county: county as u8,
        address,
        status,
        ids,
    });
}

fn disability_row(g: &mut RowGen, ctx: &Ctx, birth_days: i64) -> DisRow {
    let total: u32 = DISABILITY_CATEGORIES.iter().map(|c| c.1).sum();
    let mut x = g.rng.below(u64::from(total)) as u32;
    let mut category = 0;
    for (k, c) in DISABILITY_CATEGORIES.iter().enumerate() {
        if x < c.1 {
            category = k as u8;
            break;
        }
        x -= c.1;
    }
    let level = match g.rng.below(100) {
        0..10 => 1,
        10..30 => 2,
        30..60 => 3,
        _ => 4,
    };
    let lo = birth_days.max(ctx.r_days - years_days(20));
    let date = ctx.date(g.rng.range(lo, ctx.r_days));
    let ids = g.copies();
    DisRow {
        category,
        level,
        date,
        ids,
    }
}

fn death_rows(
    g: &mut RowGen,
    ctx: &Ctx,
    p: &mut Person,
    birth_days: i64,
    civil: bool,
    health: bool,
) {
    let lo = birth_days.max(ctx.r_days - years_days(3));
    let date = ctx.date(g.rng.range(lo, ctx.r_days));
    if civil {
        let ids = g.copies();
        p.civil = Some(DeathRow { date, ids });
    }
    if health {
        let ids = g.copies();
        p.health = Some(DeathRow { date, ids });
    }
}

fn showcase(ctx: &Ctx, g: &mut RowGen, p: &mut Person, c: &Core, j: u8) {
    let birth_days = c.birth_days;
    push_reg(ctx, g, p, c.county, ACTIVE);
    death_rows(g, ctx, p, birth_days, true, true);
    p.disability = Some(disability_row(g, ctx, birth_days));
    push_hr(g, ctx, p, birth_days, EP, ACTIVE);
    push_hr(g, ctx, p, birth_days, EM, TERMINATED);
    push_other_province(g, ctx, p, RP);
    if j == 1 {
        p.hr_name = conflicting_name(ctx, &mut g.rng, p.name, p.male);
        p.hr_variant = HrName::Conflict;
    }
}

fn worker(ctx: &Ctx, g: &mut RowGen, p: &mut Person, birth_days: i64) {
    if g.rng.chance(0.9) {
        for ty in [EP, EM, UN, WI, MA] {
            push_hr(g, ctx, p, birth_days, ty, ACTIVE);
        }
    } else {
        push_hr(g, ctx, p, birth_days, EP, TERMINATED);
        push_hr(g, ctx, p, birth_days, EM, TERMINATED);
    }
}

fn resident(ctx: &Ctx, g: &mut RowGen, p: &mut Person, c: &Core, birth_days: i64) {
    let age = p.birth.age_on(ctx.reference);
    let adult = age >= 16;
    let edge = matches!(c.kind, Kind::Edge(_));
    // New residents arrive alive and registered.
    let newcomer = matches!(c.kind, Kind::Newcomer(_));
    let p_dead = if edge || newcomer {
        0.0
    } else if age >= 60 {
        0.035
    } else if adult {
        0.003
    } else {
        0.0005
    };
    let dead = g.rng.chance(p_dead);
    // No longer living in the province (moved out, or registration cancelled).
    let mut away = false;
    if dead {
        let status = if g.rng.chance(0.3) { CANCELLED } else { ACTIVE };
        push_reg(ctx, g, p, c.county, status);
        let u = g.rng.below(10);
        death_rows(g, ctx, p, birth_days, u < 8, !(5..8).contains(&u));
    } else if edge || newcomer {
        push_reg(ctx, g, p, c.county, ACTIVE);
    } else {
        let u = g.rng.below(1000);
        match u {
            0..5 => {
                push_reg(ctx, g, p, c.county, MOVED_OUT);
                away = true;
            }
            5..8 => {
                let old = ctx.other_county(&mut g.rng, c.county);
                push_reg(ctx, g, p, old, MOVED_OUT);
                push_reg(ctx, g, p, c.county, ACTIVE);
            }
            8..10 => {
                let second = ctx.other_county(&mut g.rng, c.county);
                push_reg(ctx, g, p, c.county, ACTIVE);
                push_reg(ctx, g, p, second, ACTIVE);
            }
            10..11 => {
                push_reg(ctx, g, p, c.county, CANCELLED);
                away = true;
            }
            _ => push_reg(ctx, g, p, c.county, ACTIVE),
        }
    }
    let disabled = !edge && g.rng.chance(0.02);
    if disabled {
        p.disability = Some(disability_row(g, ctx, birth_days));
    }

    // Insurance.
    let mut insured_here = false;
    if edge {
        // Boundary people are uninsured: whether they are listed depends on age alone.
    } else if !adult {
        if g.rng.chance(0.92) {
            push_hr(g, ctx, p, birth_days, RM, ACTIVE);
        }
    } else if away {
        if g.rng.chance(0.45) {
            push_other_province(g, ctx, p, EP);
        }
        if g.rng.chance(0.5) {
            push_hr(g, ctx, p, birth_days, EP, TERMINATED);
        }
    } else {
        let p_uninsured = if disabled { 0.15 } else { 0.047 };
        let u = g.rng.unit();
        if u < p_uninsured {
            match g.rng.below(100) {
                0..45 => {}
                45..70 => push_hr(g, ctx, p, birth_days, RM, ACTIVE),
                70..90 => {
                    push_hr(g, ctx, p, birth_days, EP, SUSPENDED);
                    push_hr(g, ctx, p, birth_days, EM, SUSPENDED);
                }
                _ => {
                    push_hr(g, ctx, p, birth_days, RP, TERMINATED);
                    push_hr(g, ctx, p, birth_days, RM, ACTIVE);
                }
            }
        } else if u < p_uninsured + 0.0235 {
            let ty = if g.rng.chance(0.8) { EP } else { RP };
            push_other_province(g, ctx, p, ty);
            if g.rng.chance(0.35) {
                push_hr(g, ctx, p, birth_days, EP, TERMINATED);
            }
            if g.rng.chance(0.2) {
                push_hr(g, ctx, p, birth_days, RM, ACTIVE);
            }
        } else {
            insured_here = true;
            let enterprise = g.rng.chance(if age < 60 { 0.62 } else { 0.55 });
            if enterprise {
                if g.rng.chance(0.05) {
                    push_hr(g, ctx, p, birth_days, RP, TERMINATED);
                }
                push_hr(g, ctx, p, birth_days, EP, ACTIVE);
                push_hr(g, ctx, p, birth_days, EM, ACTIVE);
                if age < 60 {
                    let un = if g.rng.chance(0.04) {
                        SUSPENDED
                    } else {
                        ACTIVE
                    };
                    push_hr(g, ctx, p, birth_days, UN, un);
                    push_hr(g, ctx, p, birth_days, WI, ACTIVE);
                    if g.rng.chance(0.85) {
                        push_hr(g, ctx, p, birth_days, MA, ACTIVE);
                    }
                }
            } else {
                push_hr(g, ctx, p, birth_days, RP, ACTIVE);
                push_hr(g, ctx, p, birth_days, RM, ACTIVE);
            }
            if g.rng.chance(0.003) {
                push_other_province(g, ctx, p, EP);
            }
        }
    }
    if dead {
        // A quarter of the insured dead still draw a pension (and keep
        // their other insurance active too: only the pension rows are
        // theirs to disclose for deceased_insured).
        let fraud = insured_here && g.rng.chance(0.25);
        for row in p.hr.as_mut_slice() {
            if row.status == ACTIVE && !fraud {
                row.status = TERMINATED;
            }
        }
    }
    if p.hr.len > 0 {
        let u = g.rng.below(1000);
        if u < 2 {
            p.hr_name = conflicting_name(ctx, &mut g.rng, p.name, p.male);
            p.hr_variant = HrName::Conflict;
        } else if u < 5 && !dead {
            p.hr_name.gap = if g.rng.next() & 1 == 0 {
                " "
            } else {
                "\u{3000}"
            };
            p.hr_variant = HrName::Spaced;
        }
    }
}
