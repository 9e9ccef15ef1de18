//! Events to the app: each [`EventListener`] gets its own thread, which takes the library's
//! events off a subscription and calls the listener, never on the caller's thread and never
//! while a store lock is held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::app_calls::AppObject;
use crate::error::HeadwayError;
use crate::types::Event;

/// What the app implements to hear about changes instead of polling. `on_event` is called on
/// a headway thread (one per listener, in commit order), never while headway holds a lock, so
/// it may call back into the store. An exception it throws is dropped; the next event still
/// arrives.
#[uniffi::export(callback_interface)]
pub trait EventListener: Send + Sync {
    /// One change: a content state went up, a course's percentage moved, or a sync finished
    /// or failed.
    fn on_event(&self, event: Event);
}

/// How long the delivery thread waits for an event before it checks whether the store is gone.
const POLL: Duration = Duration::from_millis(50);

/// Starts the delivery thread of one listener; it ends once `stop` is set.
pub(crate) fn deliver(
    store: &Arc<headway::Store>,
    listener: Box<dyn EventListener>,
    stop: Arc<AtomicBool>,
) -> Result<(), HeadwayError> {
    let subscription = store.subscribe();
    let store: Weak<headway::Store> = Arc::downgrade(store);
    // Called and freed only while the app can take calls: see `AppObject`.
    let listener = AppObject::new(listener);
    std::thread::Builder::new()
        .name("headway-events".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let Some(event) = subscription.next_timeout(POLL) else {
                    continue;
                };
                // The store is gone: no more events.
                if store.strong_count() == 0 {
                    break;
                }
                let event = Event::new(&event);
                if let Some(event) = event {
                    // A listener that throws must not end the deliveries.
                    let delivered = listener.call(|listener| {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            listener.on_event(event)
                        }))
                    });
                    match delivered {
                        Some(Ok(())) => {}
                        Some(Err(_)) => {
                            tracing::warn!("an event listener failed; delivering the next events")
                        }
                        // After `shutdown` the app's runtime may be exiting: no call into it.
                        None => break,
                    }
                }
            }
        })
        .map_err(|e| HeadwayError::Internal {
            message: format!("cannot start the event thread: {e}"),
        })?;
    Ok(())
}
