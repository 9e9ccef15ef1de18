//! headway from the app's own language: a thin [UniFFI](https://mozilla.github.io/uniffi-rs)
//! facade over the headway library and its Sunbird adapter, from which Kotlin, Swift and
//! Python bindings are generated (namespace `headway`). It only converts types: every rule
//! lives in the library.
//!
//! Local calls block (they are fast); network calls are async (Kotlin `suspend`, Swift
//! `async`, Python coroutines) and run on a tokio runtime the facade owns. Every error is a
//! [`HeadwayError`]; a panic is caught at the boundary and becomes [`HeadwayError::Internal`].
//!
//! ```
//! use headway_ffi::{ProgressUpdate, Status, Store};
//! let phone = Store::open_in_memory()?;
//! let finished = ProgressUpdate {
//!     user_id: "learner-1".into(), course_id: "do_course".into(), batch_id: "0130".into(),
//!     content_id: "do_video".into(), status: Status::Completed, progress: 100, consumed_at_ms: None,
//! };
//! assert!(phone.record(finished)?);
//! assert_eq!(phone.pending("learner-1".into())?.len(), 1); // waits for the next sync
//!
//! let tablet = Store::open_in_memory()?;
//! let file = phone.peer_export("learner-1".into(), None, None)?;
//! assert_eq!(tablet.peer_import("learner-1".into(), file, None)?, 1);
//! assert_eq!(tablet.state("learner-1".into(), None)?, phone.state("learner-1".into(), None)?);
//! # Ok::<(), headway_ffi::HeadwayError>(())
//! ```

mod app_calls;
mod error;
mod events;
mod server;
mod store;
mod types;

pub use app_calls::shutdown;
pub use error::HeadwayError;
pub use events::EventListener;
pub use server::{SunbirdServer, TokenProvider};
pub use store::Store;
pub use types::{
    ContentItem, CourseContext, Durability, EnrolledCourse, Event, ProgressUpdate, RejectedItem,
    Status, SyncReport,
};

uniffi::setup_scaffolding!("headway");
