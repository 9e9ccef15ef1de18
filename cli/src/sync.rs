//! `headway sync`: one sync of a learner's pending progress, now. Offline it returns at once:
//! the first request that cannot connect ends the sync, everything stays pending, exit 3. A
//! refused token exits 4, naming where the token came from.

use std::fmt::Display;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use clap::Args;
use headway::{ContentKey, SyncFailure, SyncOptions, SyncReport};
use headway_sunbird::PushProgress;
use indicatif::ProgressBar;
use serde_json::json;

use crate::server_access::{self, Bounds, TokenSource};
use crate::{open_store, ui, Failure};

/// At most this many rejected or retrying items are listed for people.
const LISTED: usize = 10;

#[derive(Args)]
pub struct SyncArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// The course service's base URL, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    server: String,
    /// The gateway key, sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "HEADWAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The learner's access token, sent as `x-authenticated-user-token`.
    #[arg(long, env = "HEADWAY_USER_TOKEN", hide_env_values = true)]
    user_token: Option<String>,
    /// Items per update request.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    chunk: u32,
    #[command(flatten)]
    bounds: Bounds,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The report as scripts read it.
pub fn report_json(report: &SyncReport) -> serde_json::Value {
    json!({
        "sent": report.sent,
        "acknowledged": report.acknowledged,
        "rejected": report.rejected.iter()
            .map(|r| item_json(&r.key, "reason", &r.reason))
            .collect::<Vec<_>>(),
        "retrying": report.retrying.len(),
        "retryingItems": report.retrying.iter()
            .map(|r| item_json(&r.key, "cause", &r.cause))
            .collect::<Vec<_>>(),
        "requests": report.requests,
        "bytesSent": report.bytes_sent,
        "bytesReceived": report.bytes_received,
        "durationMs": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

/// One item of the report: `contentId`, `batchId`, `courseId`, then `why` (`reason` or
/// `cause`) as text.
fn item_json(key: &ContentKey, why: &str, text: &impl Display) -> serde_json::Value {
    let mut item = serde_json::Map::new();
    item.insert("contentId".into(), json!(key.content()));
    item.insert("batchId".into(), json!(key.batch()));
    item.insert("courseId".into(), json!(key.course()));
    item.insert(why.into(), json!(text.to_string()));
    serde_json::Value::Object(item)
}

/// Why a sync failed (see [`SyncReport::failure`]), as the command's error naming the server
/// and where the token came from; `None` when it did not fail.
fn failed(server: &str, source: TokenSource, report: &SyncReport) -> Option<Failure> {
    Some(match report.failure()? {
        SyncFailure::CredentialsRefused { status, pending } => {
            server_access::credentials_refused(server, source, status, pending)
        }
        SyncFailure::Unavailable { cause, pending } => Failure::Unavailable(format!(
            "no answer from {server} ({cause}); {pending} item(s) stay pending"
        )),
        SyncFailure::EveryItemDropped { sent } => {
            server_access::every_item_dropped(server, source, sent)
        }
    })
}

/// Says at most [`LISTED`] items as `  {kind} {content} (batch {batch}): {why}`, then how many
/// more there are and the `headway {command}` that lists them all.
fn say_listed<'a>(
    kind: &str,
    items: impl ExactSizeIterator<Item = (&'a ContentKey, &'a (impl Display + 'a))>,
    command: &str,
    user: &str,
) -> std::io::Result<()> {
    let total = items.len();
    for (key, why) in items.take(LISTED) {
        say!("  {kind} {} (batch {}): {why}", key.content(), key.batch())?;
    }
    if total > LISTED {
        say!(
            "  ... and {} more {kind} (headway {command} --user {user})",
            total - LISTED
        )?;
    }
    Ok(())
}

pub fn run(db: &Path, args: SyncArgs) -> Result<(), Failure> {
    let user = headway::UserId::new(args.user.clone())?;
    let chunk = args.chunk as usize;
    // The bar is drawn once the store says how much is pending; the adapter (which refuses a
    // bad --server) is built first, so refused flags never create the store.
    let shown = Arc::new(OnceLock::<ProgressBar>::new());
    let follow = shown.clone();
    let progress = PushProgress::new(move |done, total| {
        if let Some(bar) = follow.get() {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    });
    let source = server_access::token_source(args.user_token.is_some());
    let adapter = server_access::adapter(
        &args.server,
        chunk,
        args.api_key,
        args.user_token,
        args.bounds,
        Some(progress),
    )?;
    let store = open_store(db)?;
    let pending = store.pending(&user)?.len();
    let bar = if pending > chunk {
        ui::bar(pending, &format!("syncing {}", args.user))
    } else {
        ProgressBar::hidden()
    };
    let _ = shown.set(bar.clone());
    let runtime = server_access::runtime()?;
    let report = runtime.block_on(store.sync(&user, &adapter, &SyncOptions::new()));
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        say!("{}", report_json(&report))?;
    } else if !report.server_failed() {
        say!(
            "sync of {}: sent {}, acknowledged {}, rejected {}, retrying {} ({} requests, {} ms)",
            args.user,
            report.sent,
            report.acknowledged,
            report.rejected.len(),
            report.retrying.len(),
            report.requests,
            report.duration.as_millis()
        )?;
        let rejected = report.rejected.iter().map(|r| (&r.key, &r.reason));
        say_listed("rejected", rejected, "rejected", &args.user)?;
        let retrying = report.retrying.iter().map(|r| (&r.key, &r.cause));
        say_listed("retrying", retrying, "pending", &args.user)?;
    }
    match failed(&args.server, source, &report) {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}
