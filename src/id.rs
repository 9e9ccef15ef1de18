//! The ids that name a learner, a course, a batch and a content item: validated once, when
//! they are built, so an id that reaches the store was checked.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::{shorten, Error, Result};

/// The longest id accepted, in bytes. Sunbird's ids are 19 to 40 characters long.
pub const MAX_ID_LEN: usize = 256;

/// `N` bytes from the OS's random source (`getrandom`): the one source of every id headway
/// makes (a store's device id, a document's actor id and epoch, a pairing key's id and
/// secret) and of the sealed peer files' nonces. Never a clock, a process id or a hash.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::RandomSource {
        reason: e.to_string(),
    })?;
    Ok(bytes)
}

/// Checks one id: not blank, not too long, no control characters, no white space around it.
/// The one validator behind every id type (and the peer protocol's device ids).
pub(crate) fn check_id(field: &'static str, value: String) -> Result<String> {
    let problem = if value.trim().is_empty() {
        Some("it is empty")
    } else if value.len() > MAX_ID_LEN {
        Some("it is longer than 256 bytes")
    } else if value.chars().any(char::is_control) {
        Some("it holds a control character")
    } else if value.trim() != value {
        // Sunbird trims ids: a batch "b1 " would be stored as "b1" and answered under that
        // name, so the answer could not be matched to the item sent.
        Some("it starts or ends with white space")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::InvalidId {
            field,
            value: shorten(&value),
            problem,
        }),
        None => Ok(value),
    }
}

/// Declares one validated id type: an `Arc<str>` (cheap to clone) built only through
/// [`check_id`], with the conversions and trait impls every id shares.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $example:literal) => {
        $(#[$doc])*
        ///
        /// The id is non-empty, at most [`MAX_ID_LEN`] bytes, free of control characters and
        /// of white space at either end; anything else is refused with
        /// [`Error::InvalidId`](crate::Error::InvalidId). It derefs to `str` and clones
        /// cheaply.
        ///
        /// ```
        #[doc = concat!("use headway::", stringify!($name), ";")]
        #[doc = concat!("let id = ", stringify!($name), "::new(\"", $example, "\")?;")]
        #[doc = concat!("assert_eq!(id.as_str(), \"", $example, "\");")]
        #[doc = concat!("assert_eq!(id.to_string(), \"", $example, "\");")]
        #[doc = concat!("assert_eq!(", stringify!($name), "::try_from(\"", $example, "\")?, id);")]
        #[doc = concat!("assert!(", stringify!($name), "::new(\"\").is_err());")]
        #[doc = concat!("assert!(", stringify!($name), "::new(\" padded \").is_err());")]
        #[doc = concat!("assert!(", stringify!($name), "::new(\"a\\nb\").is_err());")]
        #[doc = concat!("let json = serde_json::to_string(&id).unwrap();")]
        #[doc = concat!("assert_eq!(json, \"\\\"", $example, "\\\"\");")]
        #[doc = concat!("assert!(serde_json::from_str::<", stringify!($name), ">(\"\\\" \\\"\").is_err());")]
        /// # Ok::<(), headway::Error>(())
        /// ```
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates an id; refuses it with [`Error::InvalidId`](crate::Error::InvalidId)
            /// when it is blank, too long, holds a control character or starts or ends with
            /// white space.
            pub fn new(id: impl Into<String>) -> Result<$name> {
                check_id($field, id.into()).map(|id| $name(Arc::from(id)))
            }

            /// An id read back from the store, where only validated ids were ever written.
            // The store reads a learner's rows with the learner's id in hand: `UserId`'s is
            // unused.
            #[allow(dead_code)]
            pub(crate) fn trusted(id: &str) -> $name {
                $name(Arc::from(id))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(id: &str) -> Result<$name> {
                $name::new(id)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(id: String) -> Result<$name> {
                $name::new(id)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<String> for &$name {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == &*other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == &*other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                **self == *other.0
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(&*self.0))
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.to_string()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }
    };
}

id_type!(
    /// The learner whose progress this is (Sunbird's `userId`).
    UserId,
    "user",
    "learner-1"
);

id_type!(
    /// A course (Sunbird's `courseId`).
    CourseId,
    "course",
    "do_course"
);

id_type!(
    /// The batch of a course a learner is enrolled in (Sunbird's `batchId`).
    BatchId,
    "batch",
    "0130"
);

id_type!(
    /// One content item of a course: a video, a document, a quiz (Sunbird's `contentId`).
    ContentId,
    "content",
    "do_video"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_type_refuses_what_check_id_refuses_with_its_own_field_name() {
        for bad in ["", "   ", "a\nb", "b1 ", &"x".repeat(MAX_ID_LEN + 1)] {
            let fields = [
                UserId::new(bad).err(),
                CourseId::new(bad).err(),
                BatchId::new(bad).err(),
                ContentId::new(bad).err(),
            ];
            let names: Vec<_> = fields
                .iter()
                .map(|e| match e {
                    Some(Error::InvalidId { field, .. }) => *field,
                    _ => "accepted",
                })
                .collect();
            assert_eq!(names, ["user", "course", "batch", "content"], "{bad:?}");
        }
        assert!(UserId::new("x".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn an_id_deserializes_only_when_valid() {
        let id: UserId = serde_json::from_str("\"learner-1\"").unwrap();
        assert_eq!(id, "learner-1");
        assert!(serde_json::from_str::<BatchId>("\"\"").is_err());
        assert!(serde_json::from_str::<CourseId>("\"c\\u0000\"").is_err());
    }
}
