//! `headway status`: an overview of a store, for people (or one JSON object with `--json`).

use std::path::Path;

use clap::Args;
use headway::LastSync;
use serde_json::json;

use crate::{existing_store, Failure};

#[derive(Args)]
pub struct StatusArgs {
    /// Only this learner.
    #[arg(long)]
    user: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The store file's size on disk, its WAL included.
fn store_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    [db.to_path_buf(), wal.into()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

pub fn run(db: &Path, args: StatusArgs) -> Result<(), Failure> {
    let only = args.user.clone().map(headway::UserId::new).transpose()?;
    let store = existing_store(db)?;
    let learners = match &only {
        Some(user) => store
            .learners()?
            .into_iter()
            .filter(|u| u == user)
            .collect(),
        None => store.learners()?,
    };
    let (mut items, mut pending, mut rejected) = (0, 0, 0);
    let mut last: Option<(String, LastSync)> = None;
    for user in &learners {
        items += store.items(user, None)?.len();
        pending += store.pending(user)?.len();
        rejected += store.rejected(user)?.len();
        if let Some(sync) = store.last_sync(user)? {
            if last.as_ref().is_none_or(|(_, l)| sync.at > l.at) {
                last = Some((user.to_string(), sync));
            }
        }
    }
    let size = store_size(db);
    let device = store.device_id()?;
    if args.json {
        let last_sync = last.as_ref().map(|(user, s)| {
            json!({"userId": user, "at": s.at.to_rfc3339(), "outcome": s.outcome,
                   "sent": s.sent, "acknowledged": s.acknowledged})
        });
        say!(
            "{}",
            json!({
                "store": db.display().to_string(),
                "learners": learners.len(),
                "items": items,
                "pending": pending,
                "rejected": rejected,
                "lastSync": last_sync,
                "storeBytes": size,
                "deviceId": device,
            })
        )?;
        return Ok(());
    }
    let last_line = match &last {
        Some((user, s)) => format!(
            "{} ({}; {} sent, {} acknowledged; learner {user})",
            s.at.to_rfc3339(),
            s.outcome,
            s.sent,
            s.acknowledged
        ),
        None => "never".to_string(),
    };
    let learner_line = match &args.user {
        Some(user) if learners.is_empty() => format!("0 (no progress recorded for {user})"),
        _ => learners.len().to_string(),
    };
    say!("store       {}", db.display())?;
    say!("learners    {learner_line}")?;
    say!("items       {items}")?;
    say!("pending     {pending}")?;
    say!("rejected    {rejected}")?;
    say!("last sync   {last_line}")?;
    say!("store size  {}", human_size(size))?;
    say!("device id   {device}")?;
    Ok(())
}
