//! Sunbird's date strings: `yyyy-MM-dd HH:mm:ss:SSSZ`.

use headway::Timestamp;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// Formats a time the way Sunbird's course service wants it: `yyyy-MM-dd HH:mm:ss:SSSZ` in
/// UTC, e.g. `2024-05-01 10:15:30:123+0000`.
///
/// ```
/// use headway::Timestamp;
/// let t = Timestamp::from_millis(1_714_558_530_123)?;
/// assert_eq!(headway_sunbird::wire::format_date(t), "2024-05-01 10:15:30:123+0000");
/// # Ok::<(), headway::Error>(())
/// ```
pub fn format_date(t: Timestamp) -> String {
    // Formatting a valid date-time with a fixed description cannot fail.
    t.to_offset_date_time()
        .format(SUNBIRD_DATE)
        .unwrap_or_default()
}

/// `yyyy-MM-dd HH:mm:ss:SSSZ` (Java's `SimpleDateFormat`), with an RFC 822 zone such as `+0000`.
const SUNBIRD_DATE: &[FormatItem<'_>] = format_description!(
    "[year]-[month]-[day] [hour]:[minute]:[second]:[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
);

/// Parses Sunbird's `yyyy-MM-dd HH:mm:ss:SSSZ` strictly (a colon before exactly three
/// millisecond digits, a `±hhmm` zone); anything else is `None`.
///
/// ```
/// use headway_sunbird::wire::parse_date;
/// assert_eq!(parse_date("2024-05-01 15:45:30:123+0530").map(|t| t.as_millis()), Some(1_714_558_530_123));
/// assert!(parse_date("2024-05-01T10:15:30.123Z").is_none());
/// assert!(parse_date("2024-05-01 10:15:30.123+0000").is_none());
/// assert!(parse_date("2024-05-01 10:15:30:123+00:00").is_none());
/// ```
pub fn parse_date(text: &str) -> Option<Timestamp> {
    let at = OffsetDateTime::parse(text, SUNBIRD_DATE).ok()?;
    Timestamp::from_offset_date_time(at).ok()
}
