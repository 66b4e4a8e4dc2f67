//! Exchange cycles: how often a feed is published and pulled.
//!
//! A cycle has a period (a whole number of days, or of calendar months), an
//! anchor date, a pull window after each epoch start and a maximum number of
//! pulls per epoch. Epoch `n` (from 0) starts at midnight UTC of
//! `anchor + n * period`; months are added from the anchor each time and
//! clamped to the month's end (anchor 31 January, monthly: 28/29 February,
//! 31 March, ...). Both sides compute the same epochs from the same terms.
//! The epoch's start date is its **reference date** (ages, "within N days").

use crate::date::Date;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The length of one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    /// A whole number of days (daily = 1, weekly = 7).
    Days(u32),
    /// A whole number of calendar months (monthly = 1, quarterly = 3, yearly = 12).
    Months(u32),
}

/// Why a period, duration or cycle was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum CycleError {
    /// Not a period name or supported ISO 8601 duration.
    #[error(
        "{0:?} is not a period: use daily, weekly, monthly, quarterly, yearly or an ISO 8601 duration such as P14D, P2W, P2M, P1Y"
    )]
    Period(String),
    /// Not a supported ISO 8601 duration.
    #[error("{0:?} is not a duration: use ISO 8601 days and time, such as P7D, PT12H, P1DT6H")]
    Duration(String),
    /// A cycle that cannot work.
    #[error("invalid cycle: {0}")]
    Invalid(String),
}

impl Period {
    /// Parses `daily`, `weekly`, `monthly`, `quarterly`, `yearly`, or an ISO 8601
    /// duration of days, weeks, months or years (`P14D`, `P2W`, `P2M`, `P1Y`).
    pub fn parse(s: &str) -> Result<Period, CycleError> {
        let err = || CycleError::Period(s.to_string());
        let p = match s.trim().to_ascii_lowercase().as_str() {
            "daily" => Period::Days(1),
            "weekly" => Period::Days(7),
            "monthly" => Period::Months(1),
            "quarterly" => Period::Months(3),
            "yearly" | "annually" => Period::Months(12),
            other => {
                let body = other.strip_prefix('p').ok_or_else(err)?;
                if body.len() < 2 {
                    return Err(err());
                }
                // The unit is one ASCII letter: a last character of more
                // than one byte is no unit (and no place to cut).
                let (num, unit) = body.split_at_checked(body.len() - 1).ok_or_else(err)?;
                let n: u32 = num.parse().map_err(|_| err())?;
                match unit {
                    "d" => Period::Days(n),
                    "w" => Period::Days(n.checked_mul(7).ok_or_else(err)?),
                    "m" => Period::Months(n),
                    "y" => Period::Months(n.checked_mul(12).ok_or_else(err)?),
                    _ => return Err(err()),
                }
            }
        };
        match p {
            Period::Days(0) | Period::Months(0) => Err(err()),
            p => Ok(p),
        }
    }

    /// ISO 8601 text (`P1D`, `P3M`).
    pub fn to_iso(&self) -> String {
        match self {
            Period::Days(d) => format!("P{d}D"),
            Period::Months(m) => format!("P{m}M"),
        }
    }
}

/// Parses an ISO 8601 duration of days and time (`P7D`, `PT12H`, `P1DT6H30M`) into seconds.
pub fn parse_duration_secs(s: &str) -> Result<u64, CycleError> {
    let err = || CycleError::Duration(s.to_string());
    let t = s.trim().to_ascii_uppercase();
    let body = t.strip_prefix('P').ok_or_else(err)?;
    let (date_part, time_part) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut total: u64 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Result<(), CycleError> {
        let mut num = String::new();
        let mut last_unit = 0usize;
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let idx = units.iter().position(|(u, _)| *u == c).ok_or_else(err)?;
            if num.is_empty() || idx < last_unit {
                return Err(err());
            }
            last_unit = idx + 1;
            let n: u64 = num.parse().map_err(|_| err())?;
            total = total
                .checked_add(n.checked_mul(units[idx].1).ok_or_else(err)?)
                .ok_or_else(err)?;
            any = true;
            num.clear();
        }
        if num.is_empty() { Ok(()) } else { Err(err()) }
    };
    take(date_part, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(tp) = time_part {
        if tp.is_empty() {
            return Err(err());
        }
        take(tp, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if !any {
        return Err(err());
    }
    Ok(total)
}

/// Formats seconds as an ISO 8601 duration (`P7D`, `PT12H`, `P1DT6H`).
pub fn format_duration_secs(secs: u64) -> String {
    let (d, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, (rem / 60) % 60, rem % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if rem > 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 {
            out.push_str(&format!("{s}S"));
        }
    }
    if out == "P" {
        out.push_str("0D");
    }
    out
}

/// An exchange cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cycle {
    /// Length of an epoch.
    pub period: Period,
    /// Start date of epoch 0.
    pub anchor: Date,
    /// Pulls are allowed from an epoch's start for this many seconds.
    pub window_secs: u64,
    /// Maximum pulls (distinct pull sessions) per epoch.
    pub max_pulls: u32,
}

impl Cycle {
    /// Checks the cycle can work: a window, at least one pull, a window no
    /// longer than the shortest epoch.
    pub fn validate(&self) -> Result<(), CycleError> {
        if self.window_secs == 0 {
            return Err(CycleError::Invalid("the pull window is empty".into()));
        }
        if self.max_pulls == 0 {
            return Err(CycleError::Invalid("max_pulls must be at least 1".into()));
        }
        let shortest_days = match self.period {
            Period::Days(d) => u64::from(d),
            Period::Months(m) => 28 * u64::from(m),
        };
        if self.window_secs > shortest_days * 86_400 {
            return Err(CycleError::Invalid(format!(
                "the pull window ({}) is longer than an epoch ({})",
                format_duration_secs(self.window_secs),
                self.period.to_iso()
            )));
        }
        Ok(())
    }

    /// Start (reference) date of epoch `n`.
    pub fn epoch_start(&self, n: u64) -> Option<Date> {
        match self.period {
            Period::Days(d) => self
                .anchor
                .add_days(i64::try_from(n.checked_mul(u64::from(d))?).ok()?),
            Period::Months(m) => self
                .anchor
                .add_months(i64::try_from(n.checked_mul(u64::from(m))?).ok()?),
        }
    }

    /// The epoch running at `t` (`None` before the anchor).
    pub fn epoch_at(&self, t: Timestamp) -> Option<u64> {
        let today = t.date();
        if today < self.anchor {
            return None;
        }
        let mut n = match self.period {
            Period::Days(d) => {
                ((today.days_since_epoch() - self.anchor.days_since_epoch()) as u64) / u64::from(d)
            }
            Period::Months(m) => {
                let months = (i64::from(today.year()) - i64::from(self.anchor.year())) * 12
                    + i64::from(today.month())
                    - i64::from(self.anchor.month());
                (months.max(0) as u64) / u64::from(m)
            }
        };
        // Month clamping can put the estimate one epoch too far or too near.
        while n > 0 && self.epoch_start(n).is_none_or(|s| s > today) {
            n -= 1;
        }
        while self.epoch_start(n + 1).is_some_and(|s| s <= today) {
            n += 1;
        }
        Some(n)
    }

    /// The pull window of epoch `n`: `[start, end)`.
    pub fn window(&self, n: u64) -> Option<(Timestamp, Timestamp)> {
        let start = Timestamp::from_date(self.epoch_start(n)?);
        Some((start, start.plus(self.window_secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn periods_and_durations_parse() {
        assert_eq!(Period::parse("monthly").unwrap(), Period::Months(1));
        assert_eq!(Period::parse("P2W").unwrap(), Period::Days(14));
        assert_eq!(Period::parse("P1Y").unwrap(), Period::Months(12));
        assert!(Period::parse("P0D").is_err());
        assert!(Period::parse("fortnightly").is_err());
        assert_eq!(parse_duration_secs("P7D").unwrap(), 7 * 86_400);
        assert_eq!(parse_duration_secs("PT12H").unwrap(), 12 * 3600);
        assert_eq!(
            parse_duration_secs("P1DT6H30M").unwrap(),
            86_400 + 6 * 3600 + 1800
        );
        assert!(parse_duration_secs("P").is_err());
        assert!(parse_duration_secs("PT").is_err());
        assert!(parse_duration_secs("P1H").is_err());
        assert!(parse_duration_secs("7 days").is_err());
        assert_eq!(format_duration_secs(86_400 + 6 * 3600), "P1DT6H");
    }

    /// Regression (found by `protocol/tests/prop_decoders.rs`): a period
    /// whose last character takes more than one byte (`P1月`, from a terms
    /// file) panicked cutting the unit off instead of being refused.
    #[test]
    fn a_period_ending_in_a_multibyte_character_is_refused() {
        for s in ["P1月", "p月", "P\u{1F600}", "Pé"] {
            assert_eq!(
                Period::parse(s),
                Err(CycleError::Period(s.to_string())),
                "{s}"
            );
        }
    }

    #[test]
    fn monthly_epochs_clamp_to_month_end() {
        let c = Cycle {
            period: Period::Months(1),
            anchor: d("2026-01-31"),
            window_secs: 7 * 86_400,
            max_pulls: 2,
        };
        assert_eq!(c.epoch_start(1).unwrap(), d("2026-02-28"));
        assert_eq!(c.epoch_start(2).unwrap(), d("2026-03-31"));
        assert_eq!(c.epoch_at(Timestamp::from_date(d("2026-01-30"))), None);
        assert_eq!(c.epoch_at(Timestamp::from_date(d("2026-01-31"))), Some(0));
        assert_eq!(c.epoch_at(Timestamp::from_date(d("2026-02-27"))), Some(0));
        assert_eq!(c.epoch_at(Timestamp::from_date(d("2026-02-28"))), Some(1));
        assert_eq!(c.epoch_at(Timestamp::from_date(d("2026-03-30"))), Some(1));
        assert_eq!(c.epoch_at(Timestamp::from_date(d("2026-03-31"))), Some(2));
        let (s, e) = c.window(1).unwrap();
        assert_eq!(s.to_string(), "2026-02-28T00:00:00Z");
        assert_eq!(e.to_string(), "2026-03-07T00:00:00Z");
    }

    #[test]
    fn every_instant_falls_in_the_epoch_whose_start_precedes_it() {
        for period in [
            Period::Days(1),
            Period::Days(7),
            Period::Months(1),
            Period::Months(3),
        ] {
            let c = Cycle {
                period,
                anchor: d("2024-01-31"),
                window_secs: 86_400,
                max_pulls: 1,
            };
            for day in 0..800 {
                let date = d("2024-01-31").add_days(day).unwrap();
                let n = c.epoch_at(Timestamp::from_date(date)).unwrap();
                assert!(c.epoch_start(n).unwrap() <= date);
                assert!(c.epoch_start(n + 1).unwrap() > date, "{period:?} {date}");
            }
        }
    }

    #[test]
    fn invalid_cycles() {
        let mut c = Cycle {
            period: Period::Days(7),
            anchor: d("2026-01-01"),
            window_secs: 8 * 86_400,
            max_pulls: 1,
        };
        assert!(c.validate().is_err());
        c.window_secs = 86_400;
        assert!(c.validate().is_ok());
        c.max_pulls = 0;
        assert!(c.validate().is_err());
    }
}
