//! Property and fixed-case tests of resident ID normalisation (GB 11643-1999,
//! see `/work/shared/DOMAIN.md`, "Resident ID numbers"), against the reference
//! date 2026-11-27: `normalise` is idempotent and every number it returns has
//! the right check character; generated valid numbers survive every dirty form
//! real exports contain (full-width digits and `Ｘ`, lowercase `x`, leading,
//! trailing and inner whitespace including U+3000, separators, legacy
//! 15-digit numbers) with exactly the right `Fixes` reported; and each kind
//! of bad number is refused with its exact `IdError` variant (wrong check
//! character, impossible or future birth date, wrong length, letters, a
//! misplaced `X`, nothing at all). Fixed cases include the domain's examples
//! and Hong Kong / Macao / Taiwan residence permit numbers.

use dxmesh_protocol::date::{Date, days_in_month};
use dxmesh_protocol::id::{
    Fixes, Gender, IdError, IdNumber, check_character, normalise, normalise_with_fixes,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};

fn reference() -> Date {
    Date::new(2026, 11, 27).unwrap()
}

/// Days since 1970-01-01 of 0001-01-01.
const FIRST_DAY: i64 = -719_162;

/// The names of the fixes in `f`, in `Fixes::ALL` order.
fn names(f: Fixes) -> Vec<&'static str> {
    Fixes::ALL
        .iter()
        .filter(|(fix, _)| f.contains(*fix))
        .map(|&(_, name)| name)
        .collect()
}

/// The 17 digits for `region`, `birth` (as `YYYYMMDD` digits) and `seq`.
fn body(region: u32, birth: &str, seq: u16) -> String {
    format!("{region:06}{birth}{seq:03}")
}

/// `body` with its check character appended.
fn with_check(body: &str) -> String {
    format!("{body}{}", check_character(body.as_bytes()) as char)
}

fn digits_of(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

fn regions() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => 0u32..1_000_000,
        1 => select(vec![810_000u32, 820_000, 830_000, 440_524, 110_105]),
    ]
}

fn birth_dates_between(first: Date, last: Date) -> impl Strategy<Value = Date> {
    (first.days_since_epoch()..=last.days_since_epoch())
        .prop_map(|d| Date::from_days_since_epoch(d).unwrap())
}

/// A valid 18-character number (birth on or before the reference date).
fn valid_ids() -> impl Strategy<Value = String> {
    let first = Date::from_days_since_epoch(FIRST_DAY).unwrap();
    (
        regions(),
        prop_oneof![
            birth_dates_between(first, reference()),
            birth_dates_between(Date::new(1900, 1, 1).unwrap(), reference()),
            Just(reference()),
        ],
        0u16..1000,
    )
        .prop_map(|(r, b, s)| with_check(&body(r, &digits_of(b), s)))
}

/// A valid number born in the 1900s, as `(18-digit form, legacy 15-digit form)`.
fn legacy_ids() -> impl Strategy<Value = (String, String)> {
    (
        regions(),
        birth_dates_between(
            Date::new(1900, 1, 1).unwrap(),
            Date::new(1999, 12, 31).unwrap(),
        ),
        0u16..1000,
    )
        .prop_map(|(r, b, s)| {
            let full = with_check(&body(r, &digits_of(b), s));
            let legacy = format!("{}{}", &full[..6], &full[8..17]);
            (full, legacy)
        })
}

const SPACES: &[char] = &[
    ' ', '\t', '\n', '\r', '\u{3000}', '\u{A0}', '\u{2002}', '\u{FEFF}', '\u{200B}',
];
const SEPARATORS: &[char] = &[
    '-', '_', '/', '.', '\u{2010}', '\u{2014}', '\u{2212}', '\u{FF0D}', '\u{FF0E}', '\u{FF0F}',
    '\u{30FC}',
];

/// How to dirty a clean number.
#[derive(Debug, Clone)]
struct Dirt {
    /// Which characters to write full width.
    full_width: Vec<bool>,
    /// How to write a final `X`: 0 `X`, 1 `x`, 2 `Ｘ`, 3 `ｘ`.
    x_form: u8,
    /// Whitespace or separators to insert, and where (0 = leading, len = trailing).
    inserts: Vec<(Index, char)>,
}

fn dirt() -> impl Strategy<Value = Dirt> {
    let filler = prop_oneof![select(SPACES.to_vec()), select(SEPARATORS.to_vec())];
    (
        prop_oneof![
            Just(vec![false; 18]),
            Just(vec![true; 18]),
            prop::collection::vec(any::<bool>(), 18),
        ],
        0u8..4,
        prop::collection::vec((any::<Index>(), filler), 0..6),
    )
        .prop_map(|(full_width, x_form, inserts)| Dirt {
            full_width,
            x_form,
            inserts,
        })
}

/// Applies `dirt` to `clean` (ASCII digits and `X`); returns the dirty text
/// and the names of the fixes normalising it must report.
fn apply(clean: &str, dirt: &Dirt) -> (String, Vec<&'static str>) {
    let (mut full_width, mut lowercase_x, mut whitespace, mut separator) =
        (false, false, false, false);
    let mut chars: Vec<char> = clean
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            'X' => match dirt.x_form {
                1 => {
                    lowercase_x = true;
                    'x'
                }
                2 => {
                    full_width = true;
                    '\u{FF38}'
                }
                3 => {
                    full_width = true;
                    '\u{FF58}'
                }
                _ => 'X',
            },
            d if dirt.full_width[i % dirt.full_width.len()] => {
                full_width = true;
                char::from_u32(d as u32 - '0' as u32 + 0xFF10).unwrap()
            }
            d => d,
        })
        .collect();
    for &(at, c) in &dirt.inserts {
        if SPACES.contains(&c) {
            whitespace = true;
        } else {
            separator = true;
        }
        chars.insert(at.index(chars.len() + 1), c);
    }
    let expected = [
        ("full_width", full_width),
        ("lowercase_x", lowercase_x),
        ("whitespace", whitespace),
        ("separator", separator),
    ]
    .into_iter()
    .filter(|&(_, on)| on)
    .map(|(name, _)| name)
    .collect();
    (chars.into_iter().collect(), expected)
}

/// Dates that do not exist, as `YYYYMMDD` digits.
fn impossible_dates() -> impl Strategy<Value = String> {
    let y = 1900u16..=2026;
    prop_oneof![
        (y.clone(), 1u8..=12).prop_map(|(y, m)| format!("{y:04}{m:02}00")),
        (y.clone(), 1u8..=12, 0u8..10).prop_map(|(y, m, extra)| format!(
            "{y:04}{m:02}{:02}",
            days_in_month(y, m) + 1 + extra
        )),
        (y.clone(), 1u8..=31).prop_map(|(y, d)| format!("{y:04}00{d:02}")),
        (y.clone(), 13u8..=99, 1u8..=28).prop_map(|(y, m, d)| format!("{y:04}{m:02}{d:02}")),
        (0u8..=99, 1u8..=12, 1u8..=28).prop_map(|(_, m, d)| format!("0000{m:02}{d:02}")),
    ]
}

/// Characters `normalise` has no use for.
fn letters() -> impl Strategy<Value = char> {
    prop_oneof![
        (b'a'..=b'z').prop_filter_map("x is a check character", |b| (b != b'x')
            .then_some(b as char)),
        (b'A'..=b'Z').prop_filter_map("X is a check character", |b| (b != b'X')
            .then_some(b as char)),
        select(vec![
            '张', 'Ａ', 'é', '#', '+', ',', '(', '\u{0}', '٣', '\u{FF21}'
        ]),
    ]
}

proptest! {
    #[test]
    fn valid_numbers_normalise_to_themselves(id in valid_ids()) {
        let (n, fixes) = normalise_with_fixes(&id, reference()).unwrap();
        prop_assert_eq!(n.as_str(), id.as_str());
        prop_assert!(fixes.is_empty());
        prop_assert_eq!(check_character(&n.as_bytes()[..17]), n.as_bytes()[17]);
        prop_assert_eq!(digits_of(n.birth_date()), &id[6..14]);
        prop_assert_eq!(n.region_code(), &id[..6]);
        prop_assert_eq!(n.province_code(), &id[..2]);
        let seq: u16 = id[14..17].parse().unwrap();
        prop_assert_eq!(n.sequence(), seq);
        let gender = if seq % 2 == 1 { Gender::Male } else { Gender::Female };
        prop_assert_eq!(n.gender(), gender);
        prop_assert_eq!(n.is_hk_mo_tw_permit(), matches!(&id[..6], "810000" | "820000" | "830000"));
    }

    #[test]
    fn dirty_forms_normalise_with_the_right_fixes(id in valid_ids(), dirt in dirt()) {
        let (dirty, expected) = apply(&id, &dirt);
        let (n, fixes) = normalise_with_fixes(&dirty, reference())
            .map_err(|e| TestCaseError::fail(format!("{dirty:?}: {e:?}")))?;
        prop_assert_eq!(n.as_str(), id.as_str(), "from {:?}", dirty);
        prop_assert_eq!(names(fixes), expected, "from {:?}", dirty);
    }

    #[test]
    fn legacy_numbers_upgrade_to_the_18_digit_form((full, legacy) in legacy_ids(), dirt in dirt()) {
        let (n, fixes) = normalise_with_fixes(&legacy, reference()).unwrap();
        prop_assert_eq!(n.as_str(), full.as_str());
        prop_assert_eq!(names(fixes), vec!["legacy_15"]);
        let (dirty, mut expected) = apply(&legacy, &dirt);
        expected.push("legacy_15");
        let (n, fixes) = normalise_with_fixes(&dirty, reference())
            .map_err(|e| TestCaseError::fail(format!("{dirty:?}: {e:?}")))?;
        prop_assert_eq!(n.as_str(), full.as_str(), "from {:?}", dirty);
        prop_assert_eq!(names(fixes), expected, "from {:?}", dirty);
    }

    #[test]
    fn normalise_is_idempotent_and_outputs_pass_the_check(
        raw in prop_oneof![
            (valid_ids(), dirt()).prop_map(|(id, d)| apply(&id, &d).0),
            (legacy_ids(), dirt()).prop_map(|((_, l), d)| apply(&l, &d).0),
            "[0-9Xx \\-\u{3000}\u{FF10}-\u{FF19}\u{FF38}]{0,24}",
            any::<String>(),
        ],
    ) {
        if let Ok(n) = normalise(&raw, reference()) {
            let again = normalise_with_fixes(n.as_str(), reference());
            prop_assert_eq!(again, Ok((n, Fixes::default())), "from {:?}", raw);
            prop_assert_eq!(n.as_str().len(), 18);
            prop_assert!(n.as_bytes()[..17].iter().all(u8::is_ascii_digit));
            prop_assert_eq!(check_character(&n.as_bytes()[..17]), n.as_bytes()[17]);
            prop_assert!(n.birth_date() <= reference());
        }
    }

    #[test]
    fn wrong_check_characters_are_refused(
        id in valid_ids(),
        wrong in select(b"0123456789X".to_vec()),
        dirt in dirt(),
    ) {
        let expected = id.as_bytes()[17];
        prop_assume!(wrong != expected);
        let bad = format!("{}{}", &id[..17], wrong as char);
        let want = Err(IdError::CheckCharacter { expected: expected as char, found: wrong as char });
        prop_assert_eq!(normalise(&bad, reference()), want.clone());
        // Dirty forms are folded first, then refused the same way.
        let (dirty, _) = apply(&bad, &dirt);
        prop_assert_eq!(normalise(&dirty, reference()), want, "from {:?}", dirty);
    }

    #[test]
    fn impossible_birth_dates_are_refused(
        region in regions(),
        date in impossible_dates(),
        seq in 0u16..1000,
    ) {
        let id = with_check(&body(region, &date, seq));
        prop_assert_eq!(
            normalise(&id, reference()),
            Err(IdError::InvalidBirthDate { digits: date.clone() })
        );
        // The legacy form of a 19xx date is refused the same way.
        if let Some(yymmdd) = date.strip_prefix("19") {
            let legacy = format!("{}{yymmdd}{seq:03}", &id[..6]);
            prop_assert_eq!(
                normalise(&legacy, reference()),
                Err(IdError::InvalidBirthDate { digits: date })
            );
        }
    }

    #[test]
    fn future_birth_dates_are_refused(
        region in regions(),
        birth in birth_dates_between(
            reference().add_days(1).unwrap(),
            Date::new(9999, 12, 31).unwrap(),
        ),
        seq in 0u16..1000,
    ) {
        let id = with_check(&body(region, &digits_of(birth), seq));
        prop_assert_eq!(
            normalise(&id, reference()),
            Err(IdError::FutureBirthDate { birth, reference: reference() })
        );
        // Against a later reference date the same number is fine.
        prop_assert!(normalise(&id, birth).is_ok());
    }

    #[test]
    fn wrong_lengths_are_refused(id in valid_ids(), len in 1usize..40, dirt in dirt()) {
        prop_assume!(len != 15 && len != 18);
        // Digits only: the valid number's digits, cut or repeated to `len`.
        let digits: String = id[..17].chars().cycle().take(len).collect();
        prop_assert_eq!(normalise(&digits, reference()), Err(IdError::Length { len }));
        let (dirty, _) = apply(&digits, &dirt);
        prop_assert_eq!(normalise(&dirty, reference()), Err(IdError::Length { len }), "from {:?}", dirty);
    }

    #[test]
    fn letters_are_refused_where_they_are(
        id in valid_ids(),
        dirt in dirt(),
        ch in letters(),
        at in any::<Index>(),
    ) {
        let (dirty, _) = apply(&id, &dirt);
        let mut chars: Vec<char> = dirty.chars().collect();
        let position = at.index(chars.len() + 1);
        chars.insert(position, ch);
        let raw: String = chars.into_iter().collect();
        prop_assert_eq!(
            normalise(&raw, reference()),
            Err(IdError::InvalidCharacter { ch, position }),
            "from {:?}", raw
        );
    }

    #[test]
    fn x_before_the_last_place_is_refused(
        id in valid_ids(),
        (_, legacy) in legacy_ids(),
        at in 0usize..17,
        lower in any::<bool>(),
        dirt in dirt(),
    ) {
        let x = if lower { 'x' } else { 'X' };
        let mut chars: Vec<char> = id.chars().collect();
        chars[at] = x;
        let bad: String = chars.into_iter().collect();
        prop_assert_eq!(normalise(&bad, reference()), Err(IdError::MisplacedX { position: at }));
        let (dirty, _) = apply(&bad, &dirt);
        prop_assert_eq!(
            normalise(&dirty, reference()),
            Err(IdError::MisplacedX { position: at }),
            "from {:?}", dirty
        );
        // Legacy numbers have no check character: X is misplaced anywhere.
        let at15 = at % 15;
        let mut chars: Vec<char> = legacy.chars().collect();
        chars[at15] = x;
        let bad: String = chars.into_iter().collect();
        prop_assert_eq!(normalise(&bad, reference()), Err(IdError::MisplacedX { position: at15 }));
    }

    #[test]
    fn nothing_but_whitespace_and_separators_is_empty(
        fill in prop::collection::vec(
            prop_oneof![select(SPACES.to_vec()), select(SEPARATORS.to_vec())],
            0..8,
        ),
    ) {
        let raw: String = fill.into_iter().collect();
        prop_assert_eq!(normalise(&raw, reference()), Err(IdError::Empty), "from {:?}", raw);
    }
}

fn fixes_of(raw: &str) -> Vec<&'static str> {
    let (_, fixes) =
        normalise_with_fixes(raw, reference()).unwrap_or_else(|e| panic!("{raw:?}: {e:?}"));
    names(fixes)
}

#[test]
fn domain_examples() {
    let id = normalise("11010519491231002X", reference()).unwrap();
    assert_eq!(id.as_str(), "11010519491231002X");
    assert_eq!(id.birth_date(), Date::new(1949, 12, 31).unwrap());
    assert_eq!(id.gender(), Gender::Female);
    assert_eq!(id.region_code(), "110105");
    assert!(!id.is_hk_mo_tw_permit());

    // The standard's second example: retired region code, born 1880. Valid.
    let old = normalise("440524188001010014", reference()).unwrap();
    assert_eq!(old.birth_date(), Date::new(1880, 1, 1).unwrap());
    assert_eq!(old.gender(), Gender::Male);
    assert_eq!(old.region_code(), "440524");
    assert_eq!(check_character(b"44052418800101001"), b'4');
    assert_eq!(check_character(b"11010519491231002"), b'X');
}

#[test]
fn hong_kong_macao_taiwan_permits_are_valid() {
    for region in ["810000", "820000", "830000"] {
        let body = format!("{region}19900101123");
        let check = check_character(body.as_bytes()) as char;
        let raw = format!("{body}{check}");
        let id = normalise(&raw, reference()).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
        assert_eq!(id.as_str(), raw);
        assert!(id.is_hk_mo_tw_permit());
        assert_eq!(id.province_code(), &region[..2]);
        assert_eq!(id.gender(), Gender::Male);
    }
    // Cross-checked by hand: the weighted sum of 81000019900101123 is 166,
    // 166 mod 11 = 1, which maps to '0'.
    assert_eq!(check_character(b"81000019900101123"), b'0');
    let hk = normalise("810000199001011230", reference()).unwrap();
    assert!(hk.is_hk_mo_tw_permit());
    assert_eq!(hk.birth_date(), Date::new(1990, 1, 1).unwrap());
}

#[test]
fn each_dirty_form_reports_its_fix() {
    let clean = "11010519491231002X";
    assert_eq!(fixes_of(clean), Vec::<&str>::new());
    assert_eq!(
        fixes_of("１１０１０５１９４９１２３１００２Ｘ"),
        ["full_width"]
    );
    assert_eq!(fixes_of("11010519491231002Ｘ"), ["full_width"]);
    assert_eq!(fixes_of("11010519491231002ｘ"), ["full_width"]);
    assert_eq!(fixes_of("11010519491231002x"), ["lowercase_x"]);
    assert_eq!(fixes_of("  11010519491231002X"), ["whitespace"]);
    assert_eq!(fixes_of("11010519491231002X\u{3000}"), ["whitespace"]);
    assert_eq!(fixes_of("110105 19491231 002X"), ["whitespace"]);
    assert_eq!(
        fixes_of("110105\u{3000}19491231\u{3000}002X"),
        ["whitespace"]
    );
    assert_eq!(fixes_of("\t11010519491231002X\r\n"), ["whitespace"]);
    assert_eq!(fixes_of("110105-19491231-002X"), ["separator"]);
    assert_eq!(fixes_of("110105－19491231－002X"), ["separator"]);
    assert_eq!(
        fixes_of("110105 - 19491231 - 002x"),
        ["lowercase_x", "whitespace", "separator"]
    );
    assert_eq!(fixes_of("110105491231002"), ["legacy_15"]);
    assert_eq!(
        fixes_of(" １１０１０５-４９１２３１-００２\u{3000}"),
        ["full_width", "whitespace", "separator", "legacy_15"]
    );
    for raw in [
        "１１０１０５１９４９１２３１００２Ｘ",
        "11010519491231002x",
        "\u{3000}11010519491231002X ",
        "110105-19491231-002X",
        "110105491231002",
        "110105 491231 002",
    ] {
        assert_eq!(
            normalise(raw, reference()).unwrap().as_str(),
            clean,
            "from {raw:?}"
        );
    }
}

#[test]
fn each_rule_is_named_by_its_error() {
    let r = reference();
    let cases: Vec<(String, IdError)> = vec![
        (
            "110105194912310021".into(),
            IdError::CheckCharacter {
                expected: 'X',
                found: '1',
            },
        ),
        (
            "440524188001010010".into(),
            IdError::CheckCharacter {
                expected: '4',
                found: '0',
            },
        ),
        (
            with_check("11010519490230002"),
            IdError::InvalidBirthDate {
                digits: "19490230".into(),
            },
        ),
        (
            with_check("11010519491301002"),
            IdError::InvalidBirthDate {
                digits: "19491301".into(),
            },
        ),
        (
            with_check("11010519000229002"),
            IdError::InvalidBirthDate {
                digits: "19000229".into(),
            },
        ),
        (
            "110105490230002".into(),
            IdError::InvalidBirthDate {
                digits: "19490230".into(),
            },
        ),
        (
            with_check("11010520261128002"),
            IdError::FutureBirthDate {
                birth: Date::new(2026, 11, 28).unwrap(),
                reference: r,
            },
        ),
        ("11010519491231002".into(), IdError::Length { len: 17 }),
        ("1101051949123100".into(), IdError::Length { len: 16 }),
        ("11010519491231002X1".into(), IdError::Length { len: 19 }),
        ("1101051949123100 2X1".into(), IdError::Length { len: 19 }),
        (
            "11010519491231002A".into(),
            IdError::InvalidCharacter {
                ch: 'A',
                position: 17,
            },
        ),
        (
            "１１０张10519491231002X".into(),
            IdError::InvalidCharacter {
                ch: '张',
                position: 3,
            },
        ),
        (
            "110105X94912310020".into(),
            IdError::MisplacedX { position: 6 },
        ),
        (
            "X10105194912310020".into(),
            IdError::MisplacedX { position: 0 },
        ),
        (
            "11010549123100X".into(),
            IdError::MisplacedX { position: 14 },
        ),
        ("".into(), IdError::Empty),
        ("   ".into(), IdError::Empty),
        ("\u{3000}\u{3000}".into(), IdError::Empty),
        (" - ".into(), IdError::Empty),
    ];
    for (raw, want) in cases {
        assert_eq!(normalise(&raw, r), Err(want), "{raw:?}");
    }
    // The reference date itself is a possible birth date.
    assert!(normalise(&with_check("11010520261127002"), r).is_ok());
}

#[test]
fn normalised_numbers_are_plain_values() {
    let a: IdNumber = normalise("11010519491231002x", reference()).unwrap();
    let b: IdNumber = normalise("110105491231002", reference()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "11010519491231002X");
    assert_eq!(format!("{a:?}"), "IdNumber(11010519491231002X)");
}
