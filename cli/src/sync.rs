//! `headway sync`: one sync of a learner's pending progress, now.

use std::path::Path;

use clap::Args;
use headway::{Store, SyncOptions, SyncReport};
use serde_json::json;

use crate::server_access;
use crate::Failure;

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
    #[arg(long, default_value_t = 100)]
    chunk: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The report as scripts read it.
pub fn report_json(report: &SyncReport) -> serde_json::Value {
    json!({
        "sent": report.sent,
        "acknowledged": report.acknowledged,
        "rejected": report.rejected.iter().map(|r| json!({
            "contentId": r.key.content(),
            "batchId": r.key.batch(),
            "courseId": r.key.course(),
            "reason": r.reason,
        })).collect::<Vec<_>>(),
        "retrying": report.retrying.len(),
        "retryingItems": report.retrying.iter().map(|r| json!({
            "contentId": r.key.content(),
            "batchId": r.key.batch(),
            "courseId": r.key.course(),
            "cause": r.cause.to_string(),
        })).collect::<Vec<_>>(),
        "requests": report.requests,
        "bytesSent": report.bytes_sent,
        "bytesReceived": report.bytes_received,
        "durationMs": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

pub fn run(db: &Path, args: SyncArgs) -> Result<(), Failure> {
    headway::check_id("user", args.user.clone())?;
    let store = Store::open(db)?;
    let adapter = server_access::adapter(&args.server, args.chunk, args.api_key, args.user_token)?;
    let runtime = server_access::runtime()?;
    let report = runtime.block_on(store.sync(&args.user, &adapter, &SyncOptions::new()))?;
    if args.json {
        println!("{}", report_json(&report));
    } else {
        println!(
            "sync of {}: sent {}, acknowledged {}, rejected {}, retrying {} ({} requests, {} ms)",
            args.user,
            report.sent,
            report.acknowledged,
            report.rejected.len(),
            report.retrying.len(),
            report.requests,
            report.duration.as_millis()
        );
        for r in &report.rejected {
            println!(
                "  rejected {} (batch {}): {}",
                r.key.content(),
                r.key.batch(),
                r.reason
            );
        }
        for r in &report.retrying {
            println!(
                "  retrying {} (batch {}): {}",
                r.key.content(),
                r.key.batch(),
                r.cause
            );
        }
    }
    if report.server_failed() {
        let cause = report
            .retrying
            .first()
            .map_or_else(|| "no answer".to_string(), |r| r.cause.to_string());
        return Err(Failure::Unavailable(format!(
            "{cause}; {} items stay pending",
            report.retrying.len()
        )));
    }
    Ok(())
}
