//! headway records a learner's course progress on the device first, as max-wins registers in
//! an Automerge document stored in SQLite, so progress is never lost or rolled back, whatever
//! order updates arrive in.

mod content_state;
mod progress_update;
mod timestamp;
mod document;
mod store;
mod events;
mod error;

pub use content_state::{
    check_id, ContentItem, ContentKey, ContentState, Progress, Status, MAX_ID_LEN,
};
pub use document::LearnerDocument;
pub use error::{Error, Result};
pub use events::{ChangeOrigin, ContentStateChanged, Event, Subscription};
pub use progress_update::ProgressUpdate;
pub use store::{Durability, Store, StoreOptions};
pub use timestamp::{Timestamp, UtcDateTime};
