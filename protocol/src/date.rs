//! Civil (proleptic Gregorian) calendar dates, as ID numbers, birth and death
//! records and agreement cycles use them: validation, ISO 8601 text, day
//! arithmetic and ages. No time zones: every dxmesh date is a calendar day.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar date between 0001-01-01 and 9999-12-31. Decoding checks the
/// date exists, so no `Date` value is ever impossible.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "Date")]
        struct Raw {
            year: u16,
            month: u8,
            day: u8,
        }
        let r = Raw::deserialize(d)?;
        Date::new(r.year, r.month, r.day).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{:04}-{:02}-{:02} is not a real calendar date",
                r.year, r.month, r.day
            ))
        })
    }
}

/// Days from 1970-01-01 to 0001-01-01 and to 9999-12-31.
const MIN_DAYS: i64 = -719_162;
const MAX_DAYS: i64 = 2_932_896;

/// Why a date string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DateError {
    /// Not `YYYY-MM-DD` (or `YYYYMMDD`) digits.
    #[error("{0:?} is not a date in the form YYYY-MM-DD")]
    Format(String),
    /// Digits in the right places, but no such day.
    #[error("{0:?} is not a real calendar date")]
    NoSuchDay(String),
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days in `month` of `year` (0 for a month outside 1..=12).
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// The date, if it exists.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        ((1..=9999).contains(&year) && day >= 1 && day <= days_in_month(year, month))
            .then_some(Date { year, month, day })
    }

    /// Year.
    pub fn year(&self) -> u16 {
        self.year
    }
    /// Month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of month, 1..=31.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Parses `YYYY-MM-DD` or `YYYYMMDD`.
    pub fn parse(s: &str) -> Result<Date, DateError> {
        let t = s.trim();
        let digits: Vec<u8> = match t.len() {
            10 if t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' => {
                t.bytes().filter(|&b| b != b'-').collect()
            }
            8 => t.bytes().collect(),
            _ => return Err(DateError::Format(s.to_string())),
        };
        if digits.len() != 8 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(DateError::Format(s.to_string()));
        }
        Date::from_digits(&digits).ok_or_else(|| DateError::NoSuchDay(s.to_string()))
    }

    /// Date from eight ASCII digits `YYYYMMDD` (the caller checked they are digits).
    pub(crate) fn from_digits(d: &[u8]) -> Option<Date> {
        let n = |r: std::ops::Range<usize>| {
            d[r].iter()
                .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
        };
        Date::new(n(0..4) as u16, n(4..6) as u8, n(6..8) as u8)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01, if it is within the supported range.
    pub fn from_days_since_epoch(days: i64) -> Option<Date> {
        if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
            return None;
        }
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        let year = u16::try_from(y).ok()?;
        Date::new(year, m as u8, d as u8)
    }

    /// The date `n` days later (or earlier, for negative `n`).
    pub fn add_days(&self, n: i64) -> Option<Date> {
        Date::from_days_since_epoch(self.days_since_epoch().checked_add(n)?)
    }

    /// The same day `n` months later, clamped to the month's last day
    /// (2024-01-31 plus one month is 2024-02-29).
    pub fn add_months(&self, n: i64) -> Option<Date> {
        let total = (i64::from(self.year) * 12 + i64::from(self.month) - 1).checked_add(n)?;
        let year = u16::try_from(total.div_euclid(12)).ok()?;
        let month = (total.rem_euclid(12) + 1) as u8;
        let day = self.day.min(days_in_month(year, month));
        Date::new(year, month, day)
    }

    /// Age in whole years on `on` of someone born on `self` (0 if `on` is earlier).
    /// Someone born on 29 February comes of age on 1 March in common years.
    pub fn age_on(&self, on: Date) -> u32 {
        if on < *self {
            return 0;
        }
        let mut age = u32::from(on.year - self.year);
        if (on.month, on.day) < (self.month, self.day) {
            age -= 1;
        }
        age
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl std::str::FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Date, DateError> {
        Date::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_rules() {
        assert!(Date::new(2000, 2, 29).is_some());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(2023, 4, 31).is_none());
        assert!(Date::new(2023, 13, 1).is_none());
        assert!(Date::new(2023, 0, 1).is_none());
        assert!(Date::new(0, 1, 1).is_none());
    }

    #[test]
    fn epoch_days_round_trip() {
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(Date::new(2000, 3, 1).unwrap().days_since_epoch(), 11_017);
        for d in (-719_162..2_932_896).step_by(97) {
            let date = Date::from_days_since_epoch(d).unwrap();
            assert_eq!(date.days_since_epoch(), d);
        }
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(Date::parse("2026-11-27").unwrap().to_string(), "2026-11-27");
        assert_eq!(Date::parse("20261127").unwrap().to_string(), "2026-11-27");
        assert!(matches!(
            Date::parse("2026-02-30"),
            Err(DateError::NoSuchDay(_))
        ));
        assert!(matches!(
            Date::parse("2026/11/27"),
            Err(DateError::Format(_))
        ));
        assert!(matches!(Date::parse("26-11-27"), Err(DateError::Format(_))));
    }

    #[test]
    fn ages_and_months() {
        let b = Date::new(2008, 2, 29).unwrap();
        assert_eq!(b.age_on(Date::new(2024, 2, 28).unwrap()), 15);
        assert_eq!(b.age_on(Date::new(2024, 2, 29).unwrap()), 16);
        assert_eq!(b.age_on(Date::new(2025, 2, 28).unwrap()), 16);
        assert_eq!(
            Date::new(2024, 1, 31)
                .unwrap()
                .add_months(1)
                .unwrap()
                .to_string(),
            "2024-02-29"
        );
        assert_eq!(
            Date::new(2024, 11, 30)
                .unwrap()
                .add_months(3)
                .unwrap()
                .to_string(),
            "2025-02-28"
        );
    }
}
