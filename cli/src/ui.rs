//! What people see on stderr: progress bars and notes (only on a terminal, never with
//! `--quiet`), and `tracing` logs controlled by `-v`/`-vv` and `RUST_LOG`.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A learner this large gets a spinner while compacting.
pub const LARGE: usize = 10_000;

static QUIET: OnceLock<bool> = OnceLock::new();

/// Sets up logging and remembers `--quiet`. Logs go to stderr; `RUST_LOG` wins over `-v`.
/// Only headway's own crates log below `error`, so no transport internals (and no header,
/// token or key: headway never logs those) reach the output.
pub fn init(quiet: bool, verbose: u8) {
    let _ = QUIET.set(quiet);
    let level = match verbose {
        0 => "error",
        1 => "error,headway=info,headway_sunbird=info,headway_cli=info",
        _ => "error,headway=debug,headway_sunbird=debug,headway_cli=debug",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => tracing_subscriber::EnvFilter::new(env),
        _ => tracing_subscriber::EnvFilter::new(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 1)
        .try_init();
}

/// stderr for the logs, where a failed write is dropped: `tracing-subscriber` reports a failed
/// write with `eprintln!`, which panics when stderr is closed (issue 17).
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

/// True when progress may be drawn: stderr is a terminal and `--quiet` was not given.
pub fn interactive() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// A note for people on stderr (a fallback taken, say); silenced by `--quiet`.
pub fn note(message: &str) {
    if !quiet() {
        note!("headway: {message}");
    }
}

/// A progress bar of `total` steps, drawn on stderr only when [`interactive`].
pub fn bar(total: usize, what: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})") {
        bar.set_style(style.progress_chars("#>."));
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A spinner while `what` runs, drawn only when `wanted` and [`interactive`].
pub fn spinner(wanted: bool, what: String) -> ProgressBar {
    if !wanted || !interactive() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(what);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}
