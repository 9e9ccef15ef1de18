//! How the CLI reaches a course service: the Sunbird adapter built from `--server`,
//! `--api-key`, `--user-token`, `--timeout`, `--deadline` and `--max-answer-bytes`, a runtime
//! to await it on, and the failures that name the token's source (never its value).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use headway_sunbird::{
    ApiKey, PushProgress, StaticToken, SunbirdAdapter, SunbirdConfig, UserToken,
};

use crate::Failure;

/// How long the CLI waits for a course service.
#[derive(Args, Clone, Copy)]
pub struct Bounds {
    /// Seconds one request may take, connecting included.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_seconds)]
    timeout: f64,
    /// Seconds the whole exchange with the server may take; then everything not yet
    /// acknowledged stays pending.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = positive_seconds)]
    deadline: f64,
    /// The most bytes of one answer that are read; past it the request fails and everything
    /// stays pending. Default: 64 KiB per item of a chunk, at least 4 MiB.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1024..))]
    max_answer_bytes: Option<u64>,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400 (for example 2.5)"
        )),
    }
}

/// A Sunbird adapter for `server` with a fixed user token (none: no token header).
pub fn adapter(
    server: &str,
    chunk: usize,
    api_key: Option<String>,
    user_token: Option<String>,
    bounds: Bounds,
    progress: Option<PushProgress>,
) -> Result<SunbirdAdapter, Failure> {
    let mut config = SunbirdConfig::new(server)
        .chunk(chunk)
        .timeout(Duration::from_secs_f64(bounds.timeout))
        .deadline(Duration::from_secs_f64(bounds.deadline));
    if let Some(bytes) = bounds.max_answer_bytes {
        config = config.max_answer_bytes(bytes);
    }
    if config.sends_credentials_in_the_clear() && user_token.is_some() {
        // One line; a closed stderr is not a reason to fail.
        let _ = writeln!(
            std::io::stderr(),
            "headway: warning: --server {server} is plain http to another host: {} travels unencrypted (use https)",
            token_source(true).the_token()
        );
    }
    // A token or key that cannot travel in an HTTP header is refused input (exit 2), not a
    // network failure retried for ever.
    if user_token.as_deref().is_some_and(|t| !fits_a_header(t)) {
        return Err(Failure::Input(format!(
            "{} holds bytes an HTTP header cannot carry (control characters)",
            token_source(true).the_token()
        )));
    }
    if api_key.as_deref().is_some_and(|k| !fits_a_header(k)) {
        return Err(Failure::Input(
            "the API key holds bytes an HTTP header cannot carry (control characters)".into(),
        ));
    }
    if let Some(key) = api_key {
        config = config.api_key(ApiKey::new(key));
    }
    if let Some(progress) = progress {
        config = config.on_progress(progress);
    }
    let token = UserToken::new(user_token.unwrap_or_default());
    SunbirdAdapter::new(config, Arc::new(StaticToken::new(token)))
        .map_err(|e| Failure::Input(format!("--server {server:?}: {e}")))
}

/// True when `value` can be sent as an HTTP header value: visible ASCII, spaces and tabs.
fn fits_a_header(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// A single-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}

/// Where the user token came from, as messages name it. Never the token itself.
#[derive(Clone, Copy)]
pub enum TokenSource {
    /// `--user-token`.
    Flag,
    /// `HEADWAY_USER_TOKEN`.
    Environment,
    /// Neither: the requests carried no user token.
    Missing,
}

impl TokenSource {
    /// The token, as a message names it: "the user token from --user-token".
    fn the_token(self) -> &'static str {
        match self {
            TokenSource::Flag => "the user token from --user-token",
            TokenSource::Environment => "the user token from HEADWAY_USER_TOKEN",
            TokenSource::Missing => "the request without a user token",
        }
    }

    /// Why `server` refused with `status`, in words that read naturally with no token too.
    fn refused(self, server: &str, status: u16) -> String {
        match self {
            TokenSource::Missing => format!(
                "{server} refused the request ({status}): no user token was given (--user-token or HEADWAY_USER_TOKEN)"
            ),
            given => format!("{server} refused {} ({status})", given.the_token()),
        }
    }
}

/// Where the user token came from: the flag, the environment variable, or neither.
pub fn token_source(given: bool) -> TokenSource {
    let on_the_command_line = std::env::args_os().any(|arg| {
        arg.to_str()
            .is_some_and(|a| a == "--user-token" || a.starts_with("--user-token="))
    });
    match (given, on_the_command_line) {
        (true, true) => TokenSource::Flag,
        (true, false) => TokenSource::Environment,
        (false, _) => TokenSource::Missing,
    }
}

/// The exit-4 failure for the server refusing the token (`status`) from `source`.
pub fn credentials_refused(
    server: &str,
    source: TokenSource,
    status: u16,
    pending: usize,
) -> Failure {
    Failure::Credentials(format!(
        "{}; {pending} item(s) stay pending",
        source.refused(server, status)
    ))
}

/// The exit-4 failure for a sync in which `server` dropped all `sent` items without a reason,
/// as Sunbird does for another learner's token (issue 17).
pub fn every_item_dropped(server: &str, source: TokenSource, sent: usize) -> Failure {
    Failure::Credentials(format!(
        "{server} dropped every item sent ({sent}), as it does for another learner's token: {} is probably not this learner's; the items are sent again by the next sync",
        source.the_token()
    ))
}

/// A refresh's failure: the exit-4 failures (refused credentials, an answer for another
/// learner) name the token's source; anything else as usual.
pub fn refresh_failure(server: &str, source: TokenSource, error: headway::Error) -> Failure {
    match error {
        headway::Error::CredentialsRefused { status } => Failure::Credentials(format!(
            "{}; nothing the server answered was merged",
            source.refused(server, status)
        )),
        headway::Error::WrongLearner { asked, answered } => Failure::Credentials(format!(
            "{server} answered for learner {answered:?}, not {asked:?}: {} belongs to someone else; nothing it answered was merged",
            source.the_token()
        )),
        headway::Error::EveryItemDropped { sent } => every_item_dropped(server, source, sent),
        other => other.into(),
    }
}
