//! Resident ID numbers (GB 11643-1999): normalisation of the dirty forms real
//! exports contain, validation, and accessors.
//!
//! [`normalise`] folds full-width digits and `Ｘ`, upper-cases `x`, removes
//! whitespace (including the ideographic space U+3000, NBSP, BOM and
//! zero-width space) and separators (`-`, `_`, `/`, `.` and their full-width
//! and dash forms), upgrades legacy 15-digit numbers to 18 digits (inserting
//! `19`: the rule in practice, since 15-digit numbers were issued only to
//! people born in the 1900s) and validates length, characters, the birth date
//! (a real date, not after the reference date) and the check character.
//! Region codes are never checked against a list: codes are not updated when
//! divisions are renamed, and `810000`/`820000`/`830000` (Hong Kong, Macao,
//! Taiwan residence permits) are valid. [`IdError`] names the rule that failed.

use crate::date::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Weights of the first 17 digits (ISO 7064 MOD 11-2).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for `sum mod 11`.
const CHECK: [u8; 11] = *b"10X98765432";

/// A valid, normalised 18-character resident ID number (ASCII digits, last may be `X`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdNumber([u8; 18]);

/// Gender as encoded by the sequence number's parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gender {
    /// Odd sequence number.
    Male,
    /// Even sequence number.
    Female,
}

/// Which rule an ID number failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum IdError {
    /// Nothing but whitespace and separators.
    #[error("empty ID number")]
    Empty,
    /// A character that is no digit, `X`, whitespace or separator.
    #[error("invalid character {ch:?} at position {position}")]
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Its 0-based position among the characters of the raw value.
        position: usize,
    },
    /// Not 15 or 18 significant characters.
    #[error("{len} characters; an ID number has 18 (or 15 in the legacy form)")]
    Length {
        /// Significant characters found.
        len: usize,
    },
    /// `X` anywhere but the last position of an 18-character number.
    #[error("'X' at position {position}; only the 18th character may be X")]
    MisplacedX {
        /// 0-based position in the normalised characters.
        position: usize,
    },
    /// The birth date digits are no real calendar date.
    #[error("birth date {digits} is not a real calendar date")]
    InvalidBirthDate {
        /// The eight date digits, `YYYYMMDD`.
        digits: String,
    },
    /// The birth date is after the reference date.
    #[error("birth date {birth} is after the reference date {reference}")]
    FutureBirthDate {
        /// Birth date.
        birth: Date,
        /// Reference date.
        reference: Date,
    },
    /// The check character does not match the first 17 digits.
    #[error("check character is {found}, expected {expected}")]
    CheckCharacter {
        /// What the first 17 digits require.
        expected: char,
        /// What the number has.
        found: char,
    },
}

impl IdError {
    /// A short stable code for reports and statistics (`check_character`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Empty => "empty",
            IdError::InvalidCharacter { .. } => "invalid_character",
            IdError::Length { .. } => "length",
            IdError::MisplacedX { .. } => "misplaced_x",
            IdError::InvalidBirthDate { .. } => "invalid_birth_date",
            IdError::FutureBirthDate { .. } => "future_birth_date",
            IdError::CheckCharacter { .. } => "check_character",
        }
    }
}

/// The fixes [`normalise_with_fixes`] applied, as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fixes(u8);

impl Fixes {
    /// Full-width digits or `Ｘ` folded.
    pub const FULL_WIDTH: Fixes = Fixes(1);
    /// Lowercase `x` upper-cased.
    pub const LOWERCASE_X: Fixes = Fixes(2);
    /// Whitespace removed.
    pub const WHITESPACE: Fixes = Fixes(4);
    /// Separators removed.
    pub const SEPARATOR: Fixes = Fixes(8);
    /// Legacy 15-digit number upgraded.
    pub const LEGACY_15: Fixes = Fixes(16);
    /// Every fix, with its report name.
    pub const ALL: [(Fixes, &'static str); 5] = [
        (Fixes::FULL_WIDTH, "full_width"),
        (Fixes::LOWERCASE_X, "lowercase_x"),
        (Fixes::WHITESPACE, "whitespace"),
        (Fixes::SEPARATOR, "separator"),
        (Fixes::LEGACY_15, "legacy_15"),
    ];

    /// No fix was needed.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether every fix in `other` is in `self`.
    pub fn contains(self, other: Fixes) -> bool {
        self.0 & other.0 == other.0
    }
    fn insert(&mut self, other: Fixes) {
        self.0 |= other.0;
    }
}

/// The check character for the first 17 digits (ASCII `0`-`9`).
pub fn check_character(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// Normalises and validates `raw` against `reference` (the latest possible birth date).
pub fn normalise(raw: &str, reference: Date) -> Result<IdNumber, IdError> {
    normalise_with_fixes(raw, reference).map(|(id, _)| id)
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        '-' | '_' | '/' | '.' | '\u{2010}'
            ..='\u{2015}'
                | '\u{2212}'
                | '\u{FF0D}'
                | '\u{FF0E}'
                | '\u{FF0F}'
                | '\u{FF3F}'
                | '\u{30FC}'
    )
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{FEFF}' | '\u{200B}')
}

/// Like [`normalise`], and also says which fixes were applied.
pub fn normalise_with_fixes(raw: &str, reference: Date) -> Result<(IdNumber, Fixes), IdError> {
    let mut buf = [0u8; 18];
    let mut len = 0usize;
    let mut fixes = Fixes::default();
    let bytes = raw.as_bytes();
    // Fast path: an 18-byte ASCII value needs no folding at all.
    if bytes.len() == 18
        && bytes[..17].iter().all(u8::is_ascii_digit)
        && matches!(bytes[17], b'0'..=b'9' | b'X' | b'x')
    {
        buf.copy_from_slice(bytes);
        len = 18;
        if buf[17] == b'x' {
            buf[17] = b'X';
            fixes.insert(Fixes::LOWERCASE_X);
        }
    } else {
        for (position, c) in raw.chars().enumerate() {
            let b = match c {
                '0'..='9' | 'X' => c as u8,
                'x' => {
                    fixes.insert(Fixes::LOWERCASE_X);
                    b'X'
                }
                '\u{FF10}'..='\u{FF19}' => {
                    fixes.insert(Fixes::FULL_WIDTH);
                    b'0' + (c as u32 - 0xFF10) as u8
                }
                '\u{FF38}' | '\u{FF58}' => {
                    fixes.insert(Fixes::FULL_WIDTH);
                    b'X'
                }
                c if is_space(c) => {
                    fixes.insert(Fixes::WHITESPACE);
                    continue;
                }
                c if is_separator(c) => {
                    fixes.insert(Fixes::SEPARATOR);
                    continue;
                }
                ch => return Err(IdError::InvalidCharacter { ch, position }),
            };
            if len < 18 {
                buf[len] = b;
            }
            len += 1;
        }
    }
    match len {
        0 => Err(IdError::Empty),
        18 => validate18(buf, reference).map(|id| (id, fixes)),
        15 => {
            if let Some(position) = buf[..15].iter().position(|&b| b == b'X') {
                return Err(IdError::MisplacedX { position });
            }
            let mut up = [0u8; 18];
            up[..6].copy_from_slice(&buf[..6]);
            up[6..8].copy_from_slice(b"19");
            up[8..17].copy_from_slice(&buf[6..15]);
            check_date(&up, reference)?;
            up[17] = check_character(&up[..17]);
            fixes.insert(Fixes::LEGACY_15);
            Ok((IdNumber(up), fixes))
        }
        len => Err(IdError::Length { len }),
    }
}

fn check_date(id: &[u8; 18], reference: Date) -> Result<Date, IdError> {
    let birth = Date::from_digits(&id[6..14]).ok_or_else(|| IdError::InvalidBirthDate {
        digits: String::from_utf8_lossy(&id[6..14]).into_owned(),
    })?;
    if birth > reference {
        return Err(IdError::FutureBirthDate { birth, reference });
    }
    Ok(birth)
}

fn validate18(buf: [u8; 18], reference: Date) -> Result<IdNumber, IdError> {
    if let Some(position) = buf[..17].iter().position(|&b| b == b'X') {
        return Err(IdError::MisplacedX { position });
    }
    check_date(&buf, reference)?;
    let expected = check_character(&buf[..17]);
    if buf[17] != expected {
        return Err(IdError::CheckCharacter {
            expected: expected as char,
            found: buf[17] as char,
        });
    }
    Ok(IdNumber(buf))
}

impl IdNumber {
    /// An ID number already in normalised form (18 characters, digits and a
    /// final digit or `X`), as stored or sent: checked again (characters,
    /// birth date, check character; no reference date bound), never fixed.
    pub fn from_normalised(bytes: &[u8]) -> Result<IdNumber, IdError> {
        let buf: [u8; 18] = bytes
            .try_into()
            .map_err(|_| IdError::Length { len: bytes.len() })?;
        if let Some(position) = buf[..17].iter().position(|b| !b.is_ascii_digit()) {
            return Err(match buf[position] {
                b'X' => IdError::MisplacedX { position },
                b => IdError::InvalidCharacter {
                    ch: char::from(b),
                    position,
                },
            });
        }
        if !(buf[17].is_ascii_digit() || buf[17] == b'X') {
            return Err(IdError::InvalidCharacter {
                ch: char::from(buf[17]),
                position: 17,
            });
        }
        let max = Date::new(9999, 12, 31).expect("valid");
        validate18(buf, max)
    }

    /// The ID as a number: its first 17 digits (the check character
    /// follows from them). Keys order as the ID numbers do, and
    /// [`IdNumber::from_key`] is the inverse: sorted indexes store these 8
    /// bytes instead of 18.
    pub fn key(&self) -> u64 {
        self.0[..17]
            .iter()
            .fold(0u64, |k, d| k * 10 + u64::from(d - b'0'))
    }

    /// The ID number whose [`IdNumber::key`] is `key`, checked like
    /// [`IdNumber::from_normalised`] (a key of more than 17 digits, or
    /// without a valid birth date, is an error).
    pub fn from_key(key: u64) -> Result<IdNumber, IdError> {
        let digits = format!("{key:017}");
        let mut bytes = digits.into_bytes();
        if bytes.len() == 17 {
            bytes.push(check_character(&bytes));
        }
        IdNumber::from_normalised(&bytes)
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an IdNumber is ASCII")
    }
    /// The 18 ASCII bytes.
    pub fn as_bytes(&self) -> &[u8; 18] {
        &self.0
    }
    /// The 6-digit region code (GB/T 2260) as issued; never checked against a list.
    pub fn region_code(&self) -> &str {
        &self.as_str()[..6]
    }
    /// The 2-digit province code (`44` for Guangdong, `81` for Hong Kong permits).
    pub fn province_code(&self) -> &str {
        &self.as_str()[..2]
    }
    /// The birth date.
    pub fn birth_date(&self) -> Date {
        Date::from_digits(&self.0[6..14]).expect("validated at construction")
    }
    /// The 3-digit sequence number.
    pub fn sequence(&self) -> u16 {
        self.0[14..17]
            .iter()
            .fold(0, |acc, &b| acc * 10 + u16::from(b - b'0'))
    }
    /// Gender from the sequence number's parity.
    pub fn gender(&self) -> Gender {
        if self.sequence() % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        }
    }
    /// Whether this is a Hong Kong, Macao or Taiwan residence permit number.
    pub fn is_hk_mo_tw_permit(&self) -> bool {
        matches!(self.region_code(), "810000" | "820000" | "830000")
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.as_str())
    }
}

impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdNumber {
    /// Decoding re-validates (without a reference date bound): an ID number
    /// from the wire is never trusted to be well-formed. No allocation: the
    /// characters are checked where they lie.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IdNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a normalised 18-character ID number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IdNumber, E> {
                IdNumber::from_normalised(v.as_bytes()).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refd() -> Date {
        Date::new(2026, 11, 27).unwrap()
    }

    #[test]
    fn stored_ids_are_checked_again_never_fixed() {
        let ok = IdNumber::from_normalised(b"11010519491231002X").unwrap();
        assert_eq!(ok.as_str(), "11010519491231002X");
        let decoded: IdNumber = crate::codec::decode(&crate::codec::encode(&ok).unwrap()).unwrap();
        assert_eq!(decoded, ok);
        for (bad, code) in [
            (&b"11010519491231002x"[..], "invalid_character"),
            (b"110105194912310029", "check_character"),
            (b"1101051949123100X2", "misplaced_x"),
            (b"11010519491331002X", "invalid_birth_date"),
            (b"110105 9491231002X", "invalid_character"),
            (b"11010519491231002", "length"),
            (b"", "length"),
        ] {
            let e = IdNumber::from_normalised(bad).unwrap_err();
            assert_eq!(e.code(), code, "{:?}", String::from_utf8_lossy(bad));
            // Decoding refuses what `from_normalised` refuses.
            let as_string = String::from_utf8_lossy(bad).to_string();
            let bytes = crate::codec::encode(&as_string).unwrap();
            assert!(crate::codec::decode::<IdNumber>(&bytes).is_err());
        }
    }

    #[test]
    fn domain_examples_are_valid() {
        let id = normalise("11010519491231002X", refd()).unwrap();
        assert_eq!(id.birth_date().to_string(), "1949-12-31");
        assert_eq!(id.gender(), Gender::Female);
        assert_eq!(id.province_code(), "11");
        let old = normalise("440524188001010014", refd()).unwrap();
        assert_eq!(old.birth_date().to_string(), "1880-01-01");
        assert_eq!(old.gender(), Gender::Male);
    }

    #[test]
    fn check_character_rule() {
        assert_eq!(check_character(b"11010519491231002"), b'X');
        assert_eq!(check_character(b"44052418800101001"), b'4');
    }

    #[test]
    fn keys_order_like_ids_and_round_trip() {
        let ids: Vec<IdNumber> = [
            "11010519491231002X",
            "440524188001010014",
            "110105194912310029",
            "000000190001010000",
        ]
        .iter()
        .filter_map(|s| {
            let mut b = s.as_bytes()[..17].to_vec();
            b.push(check_character(&b));
            IdNumber::from_normalised(&b).ok()
        })
        .collect();
        assert!(ids.len() >= 3, "fixtures must be valid IDs");
        for a in &ids {
            assert_eq!(IdNumber::from_key(a.key()).unwrap(), *a);
            for b in &ids {
                assert_eq!(a.key().cmp(&b.key()), a.as_bytes().cmp(b.as_bytes()));
            }
        }
        // More than 17 digits, or no valid birth date: refused.
        assert!(IdNumber::from_key(100_000_000_000_000_000).is_err());
        assert!(IdNumber::from_key(11_010_519_491_331_002).is_err());
    }
}
