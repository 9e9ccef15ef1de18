//! Millisecond timestamps: when a learner consumed a content, never when it was synced.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

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

    /// This timestamp as a `time` date-time in UTC (the crate adapters format dates with).
    ///
    /// ```
    /// use headway::Timestamp;
    /// let t = Timestamp::from_millis(1_714_558_530_123)?.to_offset_date_time();
    /// assert_eq!((t.year(), u8::from(t.month()), t.millisecond()), (2024, 5, 123));
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn to_offset_date_time(self) -> OffsetDateTime {
        // Every Timestamp lies in 2000..=9999, which `time` represents without its
        // large-dates feature, so the conversion cannot fail; the epoch is a harmless fallback.
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// A timestamp from a `time` date-time in any offset; digits past the millisecond are
    /// dropped, and the range check of [`Timestamp::from_millis`] applies.
    ///
    /// ```
    /// use headway::Timestamp;
    /// let t = time::macros::datetime!(2024-05-01 15:45:30.123 +05:30);
    /// assert_eq!(Timestamp::from_offset_date_time(t)?.as_millis(), 1_714_558_530_123);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn from_offset_date_time(at: OffsetDateTime) -> Result<Timestamp> {
        let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
        let millis = i64::try_from(millis).unwrap_or(i64::MAX);
        Timestamp::from_millis(millis)
    }

    /// The calendar fields in UTC.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert_eq!(Timestamp::from_millis(946_684_800_000)?.to_utc().year, 2000);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn to_utc(self) -> UtcDateTime {
        let t = self.to_offset_date_time();
        UtcDateTime {
            year: i64::from(t.year()),
            month: u32::from(u8::from(t.month())),
            day: u32::from(t.day()),
            hour: u32::from(t.hour()),
            minute: u32::from(t.minute()),
            second: u32::from(t.second()),
            millisecond: u32::from(t.millisecond()),
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
        let refuse = || Error::InvalidDate {
            input: format!("{utc:?}"),
            format: "calendar",
        };
        let narrow = |v: u32| u8::try_from(v).map_err(|_| refuse());
        let year = i32::try_from(utc.year).map_err(|_| refuse())?;
        let month = Month::try_from(narrow(utc.month)?).map_err(|_| refuse())?;
        let date = Date::from_calendar_date(year, month, narrow(utc.day)?).map_err(|_| refuse())?;
        let millisecond = u16::try_from(utc.millisecond).map_err(|_| refuse())?;
        let time = Time::from_hms_milli(
            narrow(utc.hour)?,
            narrow(utc.minute)?,
            narrow(utc.second)?,
            millisecond,
        )
        .map_err(|_| refuse())?;
        Timestamp::from_offset_date_time(PrimitiveDateTime::new(date, time).assume_utc())
    }

    /// Formats as RFC 3339 in UTC with milliseconds: `2024-05-01T10:15:30.123Z`.
    ///
    /// ```
    /// use headway::Timestamp;
    /// assert_eq!(Timestamp::from_millis(946_684_800_000)?.to_rfc3339(), "2000-01-01T00:00:00.000Z");
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn to_rfc3339(self) -> String {
        const FORMAT: &[FormatItem<'_>] = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        // Formatting a valid date-time with a fixed description cannot fail.
        self.to_offset_date_time()
            .format(FORMAT)
            .unwrap_or_default()
    }

    /// Parses RFC 3339 (`2024-05-01T10:15:30Z`, `2024-05-01T15:45:30.5+05:30`, ...), also with
    /// a space for the `T`. Digits past the millisecond are dropped.
    ///
    /// ```
    /// use headway::Timestamp;
    /// let a = Timestamp::parse_rfc3339("2024-05-01T15:45:30.123+05:30")?;
    /// let b = Timestamp::parse_rfc3339("2024-05-01 10:15:30.123Z")?;
    /// assert_eq!(a, b);
    /// assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp> {
        let refuse = || Error::InvalidDate {
            input: shorten(text),
            format: "RFC 3339",
        };
        // RFC 3339 lets applications use a space for the `T` (section 5.6).
        let normalized = match (text.get(..10), text.get(10..11), text.get(11..)) {
            (Some(date), Some(" "), Some(rest)) => format!("{date}T{rest}"),
            _ => text.to_string(),
        };
        let at = OffsetDateTime::parse(&normalized, &Rfc3339).map_err(|_| refuse())?;
        Timestamp::from_offset_date_time(at).map_err(|e| match e {
            Error::TimestampOutOfRange { .. } => e,
            _ => refuse(),
        })
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_every_day_from_2000_to_2100() {
        let start = Timestamp::from_millis(EARLIEST_MILLIS).unwrap();
        for day in 0..36_600 {
            let t = Timestamp::from_millis(start.as_millis() + day * MILLIS_PER_DAY + 123).unwrap();
            assert_eq!(Timestamp::from_utc(t.to_utc()).unwrap(), t);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
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
