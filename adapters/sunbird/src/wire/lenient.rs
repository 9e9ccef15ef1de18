//! How every field of Sunbird's answers is read: a value of another type reads as absent.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A JSON value read as `T`, or as absent when it has another type (or is missing, with
/// `#[serde(default)]`): how every field of Sunbird's answers is read.
///
/// ```
/// use headway_sunbird::wire::Lenient;
/// let n: Lenient<i64> = serde_json::from_str("2")?;
/// let s: Lenient<i64> = serde_json::from_str(r#""2""#)?;
/// assert_eq!((n.0, s.0), (Some(2), None));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Lenient<T> {
        Lenient(None)
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<T>, D::Error> {
        // Any JSON is accepted (a syntax error is still an error); what does not fit `T` reads
        // as absent.
        let value = Value::deserialize(deserializer)?;
        Ok(Lenient(serde_json::from_value(value).ok()))
    }
}
