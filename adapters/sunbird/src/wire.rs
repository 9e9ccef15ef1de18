//! Sunbird's JSON and date strings, and what each answer means for each item sent. Pure
//! functions, no IO: the client and the fuzz targets share them. Bodies are (de)serialized
//! through typed structs; a field of an unexpected type reads as absent ([`Lenient`]), as
//! Sunbird's answers drift in type between versions. An update's `result` is read more
//! strictly, because it decides acknowledgements: a rejection list of another type, or a key
//! written twice with different values, acknowledges nothing it could concern.
//!
//! One module per format: [`update_body`] and [`interpret_update`] (the bulk update),
//! [`read_body`] and [`parse_read`] (the content-state read), [`parse_enrollment_list`] (the
//! enrolment list), and what they share: [`Lenient`], the date format and the error envelope.
//! This layer knows no request, retry or client.

mod date;
mod enrolment_list;
mod entries;
mod error_answer;
mod identity;
mod lenient;
mod read;
#[cfg(test)]
mod tests;
mod update;

pub use date::{format_date, parse_date};
pub(crate) use enrolment_list::for_the_core;
pub use enrolment_list::parse_enrollment_list;
pub use error_answer::error_reason;
pub use identity::{other_learner_in_list, other_learner_in_read, ANSWERED_LEN};
pub use lenient::Lenient;
pub use read::{parse_read, read_body, ReadRequest};
pub use update::{interpret_update, update_body, UpdateAnswer, UpdateRequest, NOT_IN_RESULT};
