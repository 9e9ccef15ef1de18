//! Events to JavaScript: each listener gets a headway thread that takes the library's events
//! off a subscription and queues them to the listener on the JavaScript thread (a Node-API
//! threadsafe function), in commit order, never re-entrantly and never while a store lock is
//! held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use crate::error::{Code, Failure};
use crate::types::Event;

/// The listener as headway's threads call it: weak, so a subscribed listener does not keep the
/// Node process alive; its errors are the listener's own (reported by Node, not headway).
pub(crate) type Listener = ThreadsafeFunction<Event, (), Event, napi::Status, false, true>;

/// How long the delivery thread waits for an event before it checks whether it should stop.
const POLL: Duration = Duration::from_millis(50);

/// Starts the delivery thread of one listener; it ends once `stop` is set or the store is gone.
pub(crate) fn deliver(
    store: &Arc<headway::Store>,
    listener: Listener,
    stop: Arc<AtomicBool>,
) -> Result<(), Failure> {
    let subscription = store.subscribe();
    let store: Weak<headway::Store> = Arc::downgrade(store);
    std::thread::Builder::new()
        .name("headway-events".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let Some(event) = subscription.next_timeout(POLL) else {
                    if store.strong_count() == 0 {
                        break;
                    }
                    continue;
                };
                if stop.load(Ordering::Acquire) {
                    break;
                }
                if let Some(event) = Event::new(&event) {
                    // Queued to the JavaScript thread; `Closing` once Node is exiting.
                    let status = listener.call(event, ThreadsafeFunctionCallMode::NonBlocking);
                    if status == napi::Status::Closing {
                        break;
                    }
                }
            }
        })
        .map_err(|e| {
            Failure::new(
                Code::Internal,
                format!("cannot start the event thread: {e}"),
            )
        })?;
    Ok(())
}
