//! headway records a learner's course progress on the device first, as max-wins registers in
//! an Automerge document stored in SQLite, so progress is never lost or rolled back, whatever
//! order updates arrive in.
//!
//! # A tour
//!
//! The app reports progress as [`ProgressUpdate`]s: which content ([`ContentKey`]), the new
//! [`Status`] and progress, and when the learner consumed it. Once built, an update is valid.
//!
//! ```
//! # fn main() -> headway::Result<()> {
//! use headway::{ContentKey, ProgressUpdate, Status};
//! let key = ContentKey::new("learner-1", "do_course", "0130", "do_video")?;
//! let update = ProgressUpdate::new(key, Status::InProgress, 60)?;
//! assert!(ProgressUpdate::new(update.key().clone(), Status::InProgress, 160).is_err());
//! # Ok(()) }
//! ```
//!
//! A [`Store`] records updates durably and answers reads from SQLite. States only go up:
//!
//! ```
//! # fn main() -> headway::Result<()> {
//! use headway::{ContentKey, ProgressUpdate, Status, Store};
//! let store = Store::open_in_memory()?;
//! let key = ContentKey::new("learner-1", "do_course", "0130", "do_video")?;
//! store.record(ProgressUpdate::new(key.clone(), Status::Completed, 100)?)?;
//! store.record(ProgressUpdate::new(key.clone(), Status::InProgress, 10)?)?;
//! assert_eq!(store.state(&key)?.map(|s| s.status()), Some(Status::Completed));
//! # Ok(()) }
//! ```
//!
//! Behind the table, each learner's progress lives in an Automerge document
//! ([`LearnerDocument`]) of max-wins registers. Two devices that recorded different progress
//! for the same content converge to the max of every field when their documents merge:
//!
//! ```
//! # fn main() -> headway::Result<()> {
//! use headway::{ContentKey, LearnerDocument, ProgressUpdate, Status, Store, UserId};
//! let key = ContentKey::new("learner-1", "do_course", "0130", "do_quiz")?;
//! let phone = Store::open_in_memory()?;
//! let tablet = Store::open_in_memory()?;
//! phone.record(ProgressUpdate::new(key.clone(), Status::InProgress, 70)?)?;
//! tablet.record(ProgressUpdate::new(key.clone(), Status::InProgress, 30)?)?;
//!
//! let mut on_phone = LearnerDocument::load(&UserId::new("learner-1")?, &phone.save_document(&UserId::new("learner-1")?)?, None)?;
//! let mut on_tablet = LearnerDocument::load(&UserId::new("learner-1")?, &tablet.save_document(&UserId::new("learner-1")?)?, None)?;
//! on_tablet.merge(&mut on_phone)?;
//! on_phone.merge(&mut on_tablet)?;
//! assert_eq!(on_phone.state(&key).map(|s| s.progress().get()), Some(70));
//! assert_eq!(on_phone.items(), on_tablet.items());
//! # Ok(()) }
//! ```

mod adapter;
mod background;
mod content_state;
mod course;
mod document;
mod error;
mod events;
mod id;
mod pairing;
mod peer;
mod progress_update;
mod refresh;
mod rejection;
mod store;
mod sync;
mod sync_report;
#[cfg(feature = "testing")]
pub mod testing;
mod timestamp;

pub use adapter::{Adapter, AdapterError, ItemOutcome, Outgoing, PushReport, RetryCause};
pub use background::{BackgroundOptions, BackgroundSync};
pub use content_state::{ContentItem, ContentKey, ContentState, Progress, Status};
pub use course::{derive_course_progress, EnrolledCourse};
pub use document::LearnerDocument;
pub use error::{Error, ErrorKind, Result};
pub use events::{
    ChangeOrigin, ContentStateChanged, CourseProgressChanged, Event, Subscription, SyncFailed,
    SUBSCRIPTION_CAPACITY,
};
pub use id::{BatchId, ContentId, CourseId, UserId, MAX_ID_LEN};
pub use pairing::{PairingKey, PeerChannel, MAX_PAIRED_LEARNERS};
pub use peer::{
    Charge, FrameLimit, Hello, InEpoch, MemoryBudget, MemoryReplica, PeerMessage, PeerReplica,
    PeerSession, Role, FREE_PER_MESSAGE, MAX_INFLATION_RATIO, MAX_MESSAGE_LEN, OPENING_FRAME_LEN,
};
pub use progress_update::ProgressUpdate;
pub use refresh::{CoursesAnswer, CoursesSource};
pub use rejection::RejectionReason;
pub use store::{Durability, LastSync, Store, StoreOptions};
pub use sync::{Backoff, SyncOptions};
pub use sync_report::{RejectedItem, RetryingItem, SyncFailure, SyncReport};
pub use timestamp::{Timestamp, UtcDateTime};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
