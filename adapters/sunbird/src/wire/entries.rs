//! An update answer's `result` objects with every entry kept, duplicated keys included.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The `result` objects of an update's answer, read with every entry kept: a key the server
/// wrote twice must not hide a rejection behind a later `SUCCESS` (serde's maps keep only the
/// last value of a duplicated key).
pub(super) struct UpdateEnvelope {
    /// One element per top-level `result` key: its entries, or `None` when it is not an
    /// object.
    pub(super) results: Vec<Option<Entries>>,
}

impl<'de> Deserialize<'de> for UpdateEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UpdateEnvelope, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = UpdateEnvelope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an answer object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UpdateEnvelope, A::Error> {
                let mut results = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "result" {
                        results.push(map.next_value::<MaybeEntries>()?.0);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(UpdateEnvelope { results })
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// A JSON object's entries in order, duplicated keys included.
pub(super) type Entries = Vec<(String, Value)>;

/// Any JSON value: the entries of an object, `None` for anything else.
struct MaybeEntries(Option<Entries>);

impl<'de> Deserialize<'de> for MaybeEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MaybeEntries, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = MaybeEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MaybeEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(MaybeEntries(Some(entries)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MaybeEntries, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeEntries(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeEntries, E> {
                Ok(MaybeEntries(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeEntries, E> {
                Ok(MaybeEntries(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeEntries, E> {
                Ok(MaybeEntries(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeEntries, E> {
                Ok(MaybeEntries(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<MaybeEntries, E> {
                Ok(MaybeEntries(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeEntries, E> {
                Ok(MaybeEntries(None))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}
