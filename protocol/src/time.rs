//! Points in time as dxmesh signs them: whole seconds since the Unix epoch,
//! UTC. Text form is RFC 3339 (`2026-11-27T08:00:00Z`); a bare date
//! (`2026-11-27`) means its midnight UTC. The caller supplies "now".

use crate::date::Date;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Timestamp(pub u64);

/// Why a timestamp string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("{0:?} is not a time of the form 2026-11-27 or 2026-11-27T08:00:00Z")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// The last instant with a calendar date: 9999-12-31T23:59:59Z.
    pub const LAST_DATED: Timestamp = Timestamp(253_402_300_799);

    /// Midnight UTC at the start of `date`.
    pub fn from_date(date: Date) -> Timestamp {
        Timestamp((date.days_since_epoch().max(0) as u64) * 86_400)
    }

    /// The calendar day (UTC) this instant falls on. An instant after
    /// [`Timestamp::LAST_DATED`] (a signed `u64` may say anything) falls on
    /// 9999-12-31, the last day a [`Date`] holds.
    pub fn date(&self) -> Date {
        let last = || Date::new(9999, 12, 31).expect("a real date");
        i64::try_from(self.0 / 86_400)
            .ok()
            .and_then(Date::from_days_since_epoch)
            .unwrap_or_else(last)
    }

    /// Parses RFC 3339 with a `Z` offset, or a bare date.
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        let err = || TimestampError(s.to_string());
        let t = s.trim();
        let (date_part, time_part) = match t.split_once(['T', ' ']) {
            Some((d, rest)) => (d, Some(rest)),
            None => (t, None),
        };
        let date = Date::parse(date_part).map_err(|_| err())?;
        let mut secs = Timestamp::from_date(date).0;
        if let Some(rest) = time_part {
            let rest = rest.strip_suffix('Z').ok_or_else(err)?;
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() != 3
                || parts
                    .iter()
                    .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(err());
            }
            let n = |i: usize| parts[i].parse::<u64>().map_err(|_| err());
            let (h, m, sec) = (n(0)?, n(1)?, n(2)?);
            if h > 23 || m > 59 || sec > 59 {
                return Err(err());
            }
            secs += h * 3600 + m * 60 + sec;
        }
        Ok(Timestamp(secs))
    }

    /// `self + seconds`, saturating.
    pub fn plus(&self, seconds: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self > Timestamp::LAST_DATED {
            return write!(f, "{} seconds after 1970-01-01T00:00:00Z", self.0);
        }
        let s = self.0 % 86_400;
        write!(
            f,
            "{}T{:02}:{:02}:{:02}Z",
            self.date(),
            s / 3600,
            (s / 60) % 60,
            s % 60
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        Timestamp::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let t = Timestamp::parse("2026-11-27T08:30:05Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T08:30:05Z");
        assert_eq!(Timestamp::parse("1970-01-02").unwrap(), Timestamp(86_400));
        assert!(Timestamp::parse("2026-11-27T25:00:00Z").is_err());
        assert!(Timestamp::parse("2026-11-27T08:00:00+08:00").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
    }

    /// Regression (found by `protocol/tests/prop_decoders.rs`): an instant
    /// after 9999-12-31, which any signed or decoded `u64` may hold (a
    /// roster member valid until `u64::MAX`, a step's time), panicked when
    /// shown or dated.
    #[test]
    fn instants_beyond_the_calendar_are_shown_and_dated_without_panicking() {
        let last = Timestamp::LAST_DATED;
        assert_eq!(last.to_string(), "9999-12-31T23:59:59Z");
        assert_eq!(Timestamp::parse("9999-12-31T23:59:59Z"), Ok(last));
        for t in [last.plus(1), Timestamp(u64::MAX)] {
            assert_eq!(t.date(), Date::new(9999, 12, 31).unwrap());
            assert_eq!(
                t.to_string(),
                format!("{} seconds after 1970-01-01T00:00:00Z", t.0)
            );
            assert!(format!("{t:?}").starts_with("Timestamp("));
        }
    }
}
