//! Millisecond timestamps: when a learner consumed a content, never when it was synced.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{shorten, Error, Result};

/// A moment in UTC, in milliseconds since the Unix epoch, between 2000-01-01 and the end of
/// year 9999. Learners' consumption times are recorded as `Timestamp`s.
///
/// ```
/// use headway::Timestamp;
/// let t = Timestamp::parse_rfc3339("2024-05-01T10:15:30.123Z")?;
/// assert_eq!(t.as_millis(), 1_714_558_530_123);
/// assert_eq!(t.to_rfc3339(), "2024-05-01T10:15:30.123Z");
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Timestamp(i64);

impl TryFrom<i64> for Timestamp {
    type Error = Error;
    fn try_from(millis: i64) -> Result<Timestamp> {
        Timestamp::from_millis(millis)
    }
}

impl From<Timestamp> for i64 {
    fn from(t: Timestamp) -> i64 {
        t.0
    }
}

/// 2000-01-01T00:00:00Z: no learner consumed a content before this.
const EARLIEST_MILLIS: i64 = 946_684_800_000;
/// 9999-12-31T23:59:59.999Z: the last moment a four-digit year can show.
const LATEST_MILLIS: i64 = 253_402_300_799_999;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// The calendar fields of a [`Timestamp`] in UTC, for adapters that format dates their own way.
///
/// ```
/// use headway::{Timestamp, UtcDateTime};
/// let t = Timestamp::from_millis(1_714_558_530_123)?;
/// let utc = t.to_utc();
/// assert_eq!((utc.year, utc.month, utc.day, utc.millisecond), (2024, 5, 1, 123));
/// assert_eq!(Timestamp::from_utc(utc)?, t);
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcDateTime {
    /// The year, 2000..=9999.
    pub year: i64,
    /// The month, 1..=12.
    pub month: u32,
    /// The day of the month, 1..=31.
    pub day: u32,
    /// The hour, 0..=23.
    pub hour: u32,
    /// The minute, 0..=59.
    pub minute: u32,
    /// The second, 0..=59.
    pub second: u32,
    /// The millisecond, 0..=999.
    pub millisecond: u32,
}

impl Timestamp {
    /// Makes a timestamp from milliseconds since the Unix epoch, refusing times before 2000 and
    /// after year 9999.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert!(Timestamp::from_millis(1_714_558_530_123).is_ok());
    /// assert!(Timestamp::from_millis(0).is_err()); // 1970: before any learner used headway
    /// ```
    pub fn from_millis(millis: i64) -> Result<Timestamp> {
        if millis < EARLIEST_MILLIS {
            return Err(Error::TimestampOutOfRange {
                millis,
                problem: "before 2000-01-01",
            });
        }
        if millis > LATEST_MILLIS {
            return Err(Error::TimestampOutOfRange {
                millis,
                problem: "after year 9999",
            });
        }
        Ok(Timestamp(millis))
    }

    /// The system clock, now. A clock set before 2000 reads as 2000-01-01.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert!(Timestamp::now().as_millis() > 1_700_000_000_000);
    /// ```
    pub fn now() -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(LATEST_MILLIS))
            .unwrap_or(EARLIEST_MILLIS);
        Timestamp(millis.clamp(EARLIEST_MILLIS, LATEST_MILLIS))
    }

    /// Milliseconds since the Unix epoch.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert_eq!(Timestamp::from_millis(946_684_800_000)?.as_millis(), 946_684_800_000);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Refuses this timestamp if it lies more than a day after `now`: a consumption time cannot
    /// be in the future (a day of slack covers wrong device clocks and time zones).
    ///
    /// ```
    /// use headway::Timestamp;
    /// let now = Timestamp::from_millis(1_714_558_530_123)?;
    /// let next_week = Timestamp::from_millis(now.as_millis() + 7 * 86_400_000)?;
    /// assert!(now.not_after_tomorrow(now).is_ok());
    /// assert!(next_week.not_after_tomorrow(now).is_err());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn not_after_tomorrow(self, now: Timestamp) -> Result<Timestamp> {
        if self.0 > now.0.saturating_add(MILLIS_PER_DAY) {
            return Err(Error::TimestampOutOfRange {
                millis: self.0,
                problem: "more than a day in the future",
            });
        }
        Ok(self)
    }

    /// The calendar fields in UTC.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert_eq!(Timestamp::from_millis(946_684_800_000)?.to_utc().year, 2000);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn to_utc(self) -> UtcDateTime {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let in_day = self.0.rem_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // `in_day` is below 86_400_000, so every field fits in u32.
        let in_day = in_day as u32;
        UtcDateTime {
            year,
            month,
            day,
            hour: in_day / 3_600_000,
            minute: in_day / 60_000 % 60,
            second: in_day / 1_000 % 60,
            millisecond: in_day % 1_000,
        }
    }

    /// Makes a timestamp from calendar fields in UTC, refusing impossible dates.
    ///
    /// ```
    /// use headway::{Timestamp, UtcDateTime};
    /// let leap = UtcDateTime { year: 2024, month: 2, day: 29, hour: 0, minute: 0, second: 0, millisecond: 0 };
    /// assert!(Timestamp::from_utc(leap).is_ok());
    /// assert!(Timestamp::from_utc(UtcDateTime { year: 2023, ..leap }).is_err());
    /// ```
    pub fn from_utc(utc: UtcDateTime) -> Result<Timestamp> {
        let millis = Timestamp::from_utc_unchecked(utc).ok_or_else(|| Error::InvalidDate {
            input: format!("{utc:?}"),
            format: "calendar",
        })?;
        Timestamp::from_millis(millis)
    }

    /// Formats as RFC 3339 in UTC with milliseconds: `2024-05-01T10:15:30.123Z`.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert_eq!(Timestamp::from_millis(946_684_800_000)?.to_rfc3339(), "2000-01-01T00:00:00.000Z");
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn to_rfc3339(self) -> String {
        let u = self.to_utc();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            u.year, u.month, u.day, u.hour, u.minute, u.second, u.millisecond
        )
    }

    /// Parses RFC 3339 (`2024-05-01T10:15:30Z`, `2024-05-01T15:45:30.5+05:30`, ...). Digits
    /// past the millisecond are dropped.
    ///
    /// ```
    /// use headway::Timestamp;
    /// let a = Timestamp::parse_rfc3339("2024-05-01T15:45:30.123+05:30")?;
    /// let b = Timestamp::parse_rfc3339("2024-05-01T10:15:30.123Z")?;
    /// assert_eq!(a, b);
    /// assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp> {
        let refuse = || Error::InvalidDate {
            input: shorten(text),
            format: "RFC 3339",
        };
        let b = text.as_bytes();
        if b.len() < 20 || !text.is_ascii() {
            return Err(refuse());
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32> {
            let part = &text[range];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| refuse())
            } else {
                Err(refuse())
            }
        };
        let separators_ok = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        if !separators_ok {
            return Err(refuse());
        }
        let mut utc = UtcDateTime {
            year: i64::from(num(0..4)?),
            month: num(5..7)?,
            day: num(8..10)?,
            hour: num(11..13)?,
            minute: num(14..16)?,
            second: num(17..19)?,
            millisecond: 0,
        };
        let mut rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(refuse());
            }
            let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
            utc.millisecond = padded.parse().map_err(|_| refuse())?;
            rest = &fraction[digits..];
        }
        let offset_minutes: i64 = match rest.as_bytes() {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let digit = |c: &u8| {
                    c.is_ascii_digit()
                        .then(|| i64::from(c - b'0'))
                        .ok_or_else(refuse)
                };
                let hours = digit(h1)? * 10 + digit(h2)?;
                let minutes = digit(m1)? * 10 + digit(m2)?;
                if hours > 23 || minutes > 59 {
                    return Err(refuse());
                }
                let magnitude = hours * 60 + minutes;
                if *sign == b'-' {
                    -magnitude
                } else {
                    magnitude
                }
            }
            _ => return Err(refuse()),
        };
        let local = Timestamp::from_utc_unchecked(utc).ok_or_else(refuse)?;
        Timestamp::from_millis(local - offset_minutes * 60_000)
    }

    /// Milliseconds for calendar fields, or `None` for an impossible date; no range check.
    fn from_utc_unchecked(utc: UtcDateTime) -> Option<i64> {
        let valid = (1..=12).contains(&utc.month)
            && utc.day >= 1
            && utc.day <= days_in_month(utc.year, utc.month)
            && utc.hour < 24
            && utc.minute < 60
            && utc.second < 60
            && utc.millisecond < 1000
            && (1..=9999).contains(&utc.year);
        valid.then(|| {
            days_from_civil(utc.year, utc.month, utc.day) * MILLIS_PER_DAY
                + i64::from(utc.hour) * 3_600_000
                + i64::from(utc.minute) * 60_000
                + i64::from(utc.second) * 1_000
                + i64::from(utc.millisecond)
        })
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both values are small and positive by construction: day in 1..=31, month in 1..=12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_every_day_from_2000_to_2100() {
        let start = days_from_civil(2000, 1, 1);
        for day in start..start + 36_600 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn rfc3339_accepts_offsets_and_fractions() {
        let base = Timestamp::parse_rfc3339("2024-05-01T10:15:30Z").unwrap();
        assert_eq!(base.as_millis(), 1_714_558_530_000);
        let frac = Timestamp::parse_rfc3339("2024-05-01T10:15:30.1234567Z").unwrap();
        assert_eq!(frac.as_millis(), 1_714_558_530_123);
        let west = Timestamp::parse_rfc3339("2024-05-01T05:15:30-05:00").unwrap();
        assert_eq!(west, base);
    }

    #[test]
    fn rfc3339_refuses_malformed_text() {
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:15:30",
            "2024-05-01T10:15:30.Z",
            "2024-05-01T10:15:30+0530",
            "1999-12-31T23:59:59Z",
            "2024-05-01T10:15:30Zjunk",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad} was accepted");
        }
    }
}
