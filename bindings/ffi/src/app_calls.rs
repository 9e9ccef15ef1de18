//! The gate every call from headway's threads into the app's code passes (event listeners,
//! token providers, freeing them: UniFFI frees the app's side of an object by calling into
//! the app, and waking the app's coroutine that awaits a `sync`: UniFFI wakes it by calling
//! into the app from the thread that finished the work), and [`shutdown`], which closes it
//! before the app's runtime exits.
//!
//! Why: a language runtime that is exiting cannot take calls from other threads. CPython ends
//! such a thread with a forced unwind (`pthread_exit`) when it asks for the GIL during
//! finalization; that unwind cannot pass through Rust frames and the process aborts
//! (`FATAL: exception not rethrown`, exit 134). A script that ended while a listener was
//! being called did exactly that. The Python package calls [`shutdown`] from `atexit`, which
//! runs before finalization: no new call starts, and the calls in flight are waited for.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// How long [`shutdown`] waits for calls in flight before it returns anyway.
const WAIT_FOR_CALLS: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Gate {
    /// The process the counts belong to (see [`gate`]).
    pid: u32,
    closed: bool,
    in_flight: usize,
    /// Calls in flight whose thread waits in [`shutdown`] (a listener calling it): they end
    /// only after it returns, so no `shutdown` waits for them.
    parked: usize,
    /// [`shutdown`]s waiting for calls in flight: the app's runtime is still alive, and a
    /// call in flight may need its coroutine woken to end (see [`WakeThroughGate`]).
    closing: usize,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    pid: 0,
    closed: false,
    in_flight: 0,
    parked: 0,
    closing: 0,
});
static CALL_ENDED: Condvar = Condvar::new();

thread_local! {
    /// Calls into the app this thread is inside of (a listener may call back into headway).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

fn gate() -> MutexGuard<'static, Gate> {
    // The gate holds plain fields that no panic leaves half-written.
    let mut gate = GATE.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if gate.pid != pid {
        // First use, or a child forked while calls were in flight: the child has none of
        // the threads making them, which would never end there (its shutdown waited 5 s).
        *gate = Gate {
            pid,
            closed: gate.closed,
            ..Gate::default()
        };
    }
    gate
}

/// One call into the app's code in flight; [`shutdown`] waits for it to be dropped.
struct AppCall(());

impl AppCall {
    /// Admits one call into the app's code, or `None` once [`shutdown`] was called: the
    /// caller then skips the call (an event is not delivered, a token provider gives no token).
    fn begin() -> Option<AppCall> {
        AppCall::admit(|gate| !gate.closed)
    }

    /// Admits one wake-up of the app's coroutine: also while a [`shutdown`] waits for the
    /// calls in flight (a listener awaiting a sync ends only once woken), not after.
    fn begin_wake() -> Option<AppCall> {
        AppCall::admit(|gate| !gate.closed || gate.closing > 0)
    }

    fn admit(open: impl FnOnce(&Gate) -> bool) -> Option<AppCall> {
        let mut gate = gate();
        if !open(&gate) {
            return None;
        }
        gate.in_flight += 1;
        DEPTH.with(|depth| depth.set(depth.get() + 1));
        Some(AppCall(()))
    }
}

impl Drop for AppCall {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
        let mut gate = gate();
        gate.in_flight = gate.in_flight.saturating_sub(1);
        drop(gate);
        CALL_ENDED.notify_all();
    }
}

/// An object the app implemented (a listener, a token provider), held by headway. Every call
/// into it, and freeing it (UniFFI frees the app's side by calling into the app), passes the
/// gate; after [`shutdown`] calls are skipped and the object is leaked instead of freed (the
/// process is exiting, and the app's runtime could not take the call).
pub(crate) struct AppObject<P>(Option<P>);

impl<P> AppObject<P> {
    /// Holds `object` until it can be freed through the gate.
    pub(crate) fn new(object: P) -> AppObject<P> {
        AppObject(Some(object))
    }

    /// Runs `call` with the object, counted as a call in flight; `None` once [`shutdown`]
    /// was called (the call is skipped).
    pub(crate) fn call<R>(&self, call: impl FnOnce(&P) -> R) -> Option<R> {
        let _in_flight = AppCall::begin()?;
        self.0.as_ref().map(call)
    }
}

impl<P> Drop for AppObject<P> {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else {
            return;
        };
        match AppCall::begin() {
            Some(_in_flight) => drop(object),
            // The gate is closed: leaked on purpose (see the type's doc).
            None => std::mem::forget(object),
        }
    }
}

/// Whether [`shutdown`] was called: calls into the app are no longer made.
pub(crate) fn is_shut_down() -> bool {
    gate().closed
}

/// A future awaited by the app (through UniFFI) whose wake-ups pass the gate. UniFFI wakes
/// the app's coroutine by calling into the app on the thread that wakes it: headway's
/// runtime thread that finished the work. Once [`shutdown`] returned the wake-up is dropped:
/// the app's runtime may be exiting, and the coroutine awaiting it never resumes.
pub(crate) struct WakeThroughGate<F>(pub(crate) F);

impl<F: Future + Unpin> Future for WakeThroughGate<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(GatedWaker(cx.waker().clone())));
        Pin::new(&mut self.0).poll(&mut Context::from_waker(&waker))
    }
}

/// The app's waker (UniFFI's), woken only through the gate. Dropping it calls nothing.
struct GatedWaker(Waker);

impl Wake for GatedWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(_in_flight) = AppCall::begin_wake() {
            self.0.wake_by_ref();
        }
    }
}

/// Stops every call from headway into the app's code (event listeners, token providers) and
/// waits, up to five seconds, for the calls in flight to return. Call it when the app's
/// runtime is about to exit; the Python package does so from `atexit`. Local calls keep
/// working afterwards; events are no longer delivered, a token provider is no longer asked,
/// `sync` raises `ServerUnavailable` at once and `refresh_courses` answers the cached list
/// (every item stays pending). A `sync` or `refresh_courses` still running when it returns
/// finishes its work, but the app's coroutine awaiting it is not woken: the app is exiting.
/// Calling it again does nothing more.
///
/// ```
/// headway_ffi::shutdown();
/// let store = headway_ffi::Store::open_in_memory()?;
/// assert!(store.pending("learner-1".into())?.is_empty()); // still works
/// # Ok::<(), headway_ffi::HeadwayError>(())
/// ```
#[uniffi::export]
pub fn shutdown() {
    let own = DEPTH.with(Cell::get);
    let deadline = Instant::now() + WAIT_FOR_CALLS;
    let mut gate = gate();
    gate.closed = true;
    gate.closing += 1;
    // A listener calling shutdown is itself a call in flight: parked. Another listener's
    // shutdown does not wait for it (the two would wait for each other); the app's own
    // shutdown (from no call: `atexit`) waits for every call, parked ones too, since the
    // app's runtime exits once it returned and a parked call goes on into the app.
    gate.parked += own;
    if own > 0 {
        CALL_ENDED.notify_all();
    }
    let ignored = |gate: &Gate| if own > 0 { gate.parked } else { 0 };
    while gate.in_flight > ignored(&gate) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                calls = gate.in_flight - ignored(&gate),
                "shutdown: calls into the app still running after {WAIT_FOR_CALLS:?}"
            );
            break;
        }
        gate = CALL_ENDED
            .wait_timeout(gate, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    gate.parked -= own;
    gate.closing -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Barrier};

    fn wait_until_closed() {
        while !is_shut_down() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    // The gate is process-wide, so one test walks through its whole life.
    #[test]
    fn shutdown_waits_for_the_call_in_flight_then_admits_none() {
        let (started_tx, started_rx) = mpsc::channel();
        let (finish_tx, finish_rx) = mpsc::channel::<()>();
        let listener = std::thread::spawn(move || {
            let call = AppCall::begin().expect("the gate is open before shutdown");
            started_tx.send(()).unwrap();
            finish_rx.recv().unwrap();
            wait_until_closed();
            assert!(
                AppCall::begin().is_none(),
                "a call started while shutdown waits"
            );
            // A wake-up may be what the call in flight waits for: it passes.
            drop(AppCall::begin_wake().expect("a wake-up while shutdown waits"));
            std::thread::sleep(Duration::from_millis(100));
            let ended = Instant::now();
            drop(call);
            ended
        });
        // Two calls in flight that call shutdown at once: neither waits for the other.
        let both_inside = Arc::new(Barrier::new(2));
        let other_inside = both_inside.clone();
        let other = std::thread::spawn(move || {
            let call = AppCall::begin().expect("still open");
            other_inside.wait();
            shutdown();
            drop(call);
            Instant::now()
        });
        started_rx.recv().unwrap();
        finish_tx.send(()).unwrap();
        let nested = AppCall::begin().expect("still open");
        both_inside.wait();
        let called = Instant::now();
        shutdown(); // from inside a call: does not wait for itself
        let returned = Instant::now();
        // The call ends after its shutdown returned, as a listener's does: the other
        // shutdown, if not returned yet, waits for it again.
        drop(nested);
        let call_ended = listener.join().unwrap();
        let other_returned = other.join().unwrap();
        assert!(
            returned >= call_ended && other_returned >= call_ended,
            "shutdown returned before the call in flight ended"
        );
        assert!(
            returned.max(other_returned) - called < WAIT_FOR_CALLS / 2,
            "the two shutdowns waited for each other"
        );
        assert!(AppCall::begin().is_none(), "a call started after shutdown");
        assert!(AppCall::begin_wake().is_none(), "a wake-up after shutdown");
        shutdown(); // again: nothing in flight, returns
    }
}
