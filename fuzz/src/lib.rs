//! What every fuzz target shares: a target fails only on what a user would see (a panic that
//! escapes headway's API, a broken property, a hang), never on a panic headway catches itself;
//! and the runners of the store-level target and the peer target, which
//! `tests/fuzz_crashers.rs` also uses to replay kept inputs.
//!
//! libfuzzer-sys installs a panic hook that aborts on *every* panic, even one caught by
//! `catch_unwind` inside headway (automerge 0.12 panics on some malformed bytes and
//! `LearnerDocument::load` turns that into `CorruptDocument`). Each target therefore calls
//! [`quiet_caught_panics`] once (its `init:`) and runs its body inside
//! [`abort_on_escaping_panic`].

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

pub mod peer_message;
pub mod store_ops;

thread_local! {
    /// The last panic's message and place, printed if that panic escapes the target.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces libFuzzer's abort-on-every-panic hook with one that only remembers the panic: a
/// panic that headway catches costs nothing, one that escapes is reported by
/// [`abort_on_escaping_panic`].
pub fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|info| {
        let text = info.to_string();
        LAST_PANIC.with(|last| *last.borrow_mut() = Some(text));
    }));
}

/// The variable that makes every target panic outside headway: for the test that proves an
/// escaping panic fails the fuzz run (`tests/fuzzing.rs`).
pub const PLANTED_PANIC_VAR: &str = "HEADWAY_FUZZ_PLANTED_PANIC";

/// The variable that makes every target panic and catch it, the way headway catches automerge's
/// panics on malformed bytes: for the test that proves a caught panic does not stop a fuzz run
/// (headway now refuses every input that made automerge panic before automerge sees it, so
/// no kept input panics any more).
pub const PLANTED_CAUGHT_PANIC_VAR: &str = "HEADWAY_FUZZ_PLANTED_CAUGHT_PANIC";

fn planted_panic() -> bool {
    static PLANTED: OnceLock<bool> = OnceLock::new();
    *PLANTED.get_or_init(|| std::env::var_os(PLANTED_PANIC_VAR).is_some())
}

fn planted_caught_panic() -> bool {
    static PLANTED: OnceLock<bool> = OnceLock::new();
    *PLANTED.get_or_init(|| std::env::var_os(PLANTED_CAUGHT_PANIC_VAR).is_some())
}

/// Runs one input; a panic that escapes it (from headway's API or a failed assertion) prints
/// where it happened and aborts the process, which libFuzzer reports as a crash and keeps.
pub fn abort_on_escaping_panic(body: impl FnOnce()) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if planted_panic() {
            panic!("a planted panic ({PLANTED_PANIC_VAR} is set)");
        }
        if planted_caught_panic() {
            let caught = catch_unwind(|| panic!("a planted caught panic"));
            debug_assert!(caught.is_err());
        }
        body();
    }));
    if outcome.is_err() {
        let text = LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| "a panic".to_string());
        eprintln!("a panic escaped the fuzz target: {text}");
        std::process::abort();
    }
}
