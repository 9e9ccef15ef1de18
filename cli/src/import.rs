//! `headway record --from FILE`: many updates at once, from JSON Lines in the shape `state
//! --json` prints. Every line is checked before the store is opened, and all of them are
//! recorded in one transaction (`Store::record_batch`): all or nothing. A time more than a day
//! in the future is dropped from its item with a note naming the line, never a refusal: what
//! `state` prints always re-imports (issue 17).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use headway::{ContentKey, ContentState, Progress, ProgressUpdate, Status, Timestamp};
use serde::Deserialize;

use crate::{open_store, ui, Failure};

/// One line: exactly the item shape of `state --json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    user_id: String,
    course_id: String,
    batch_id: String,
    content_id: String,
    status: i64,
    progress: i64,
    #[serde(default)]
    last_access_time: Option<String>,
    #[serde(default)]
    last_completed_time: Option<String>,
}

/// An optional time of a line. A time more than a day after `now` is from a wrong clock (or a
/// hostile file): it is dropped from the item, status and progress kept, and the note saying so
/// is returned (issue 17: `record --from` input counts as outside, as the server and peers do).
fn time(
    field: &str,
    text: Option<String>,
    now: Timestamp,
    notes: &mut Vec<String>,
) -> Result<Option<Timestamp>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let time = Timestamp::parse_rfc3339(&text).map_err(|_| {
        format!(
            "{field} {text:?} is not an RFC 3339 time (accepted: RFC 3339, for example 2024-05-01T10:15:30Z)"
        )
    })?;
    if time.not_after_tomorrow(now).is_err() {
        notes.push(format!(
            "{field} {text:?} is more than a day in the future; dropped from that item (status and progress kept)"
        ));
        return Ok(None);
    }
    Ok(Some(time))
}

/// One line as an update, or why it is refused; `notes` gets what was dropped from it.
fn parse(text: &str, now: Timestamp, notes: &mut Vec<String>) -> Result<ProgressUpdate, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let key = ContentKey::new(line.user_id, line.course_id, line.batch_id, line.content_id)
        .map_err(|e| e.to_string())?;
    let status = Status::try_from(line.status).map_err(|e| e.to_string())?;
    let progress = Progress::new(line.progress).map_err(|e| e.to_string())?;
    let access = time("lastAccessTime", line.last_access_time, now, notes)?;
    let completed = time("lastCompletedTime", line.last_completed_time, now, notes)?;
    let state = ContentState::new(status, progress, access, completed);
    ProgressUpdate::from_state(key, state).map_err(|e| match e {
        headway::Error::TimestampOutOfRange { problem, .. } => format!("a time is {problem}"),
        other => other.to_string(),
    })
}

fn read_all(from: &Path) -> Result<String, Failure> {
    let mut text = String::new();
    let read = if from == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(from).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::Input(format!("cannot read {}: {e}", from.display())))?;
    Ok(text)
}

pub fn run(db: &Path, from: &Path) -> Result<(), Failure> {
    let started = Instant::now();
    let text = read_all(from)?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .collect();
    let bar = if lines.len() >= 1_000 {
        ui::bar(lines.len(), "checking")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let now = Timestamp::now();
    let mut updates = Vec::with_capacity(lines.len());
    let mut notes = Vec::new();
    for (index, line) in &lines {
        let mut dropped = Vec::new();
        let update = parse(line, now, &mut dropped).map_err(|reason| {
            bar.finish_and_clear();
            Failure::Input(format!(
                "line {} of {}: {reason}; nothing was recorded",
                index + 1,
                from.display()
            ))
        })?;
        updates.push(update);
        notes.extend(
            dropped
                .into_iter()
                .map(|note| format!("line {} of {}: {note}", index + 1, from.display())),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Told only once every line passed: a refused file records nothing, so drops nothing.
    for note in &notes {
        ui::note(note);
    }
    if updates.is_empty() {
        say!("nothing to record: {} holds no items", from.display())?;
        return Ok(());
    }
    let store = open_store(db)?;
    let count = updates.len();
    let spinner = ui::spinner(count >= 1_000, format!("recording {count} items"));
    let changes = store.record_batch(updates)?;
    spinner.finish_and_clear();
    let changed = changes.iter().filter(|c| c.is_some()).count();
    say!(
        "recorded {count} items from {}: {changed} raised, {} unchanged ({} ms)",
        from.display(),
        count - changed,
        started.elapsed().as_millis()
    )?;
    Ok(())
}
