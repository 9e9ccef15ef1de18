//! `headway record --from FILE`: many updates at once, as JSON Lines or as one JSON array,
//! each item in the shape `state --json` prints (so `state --json | record --from -` copies a
//! learner exactly). Every item is checked before the store is opened, and all of them are
//! recorded in one transaction (`Store::record_batch`): all or nothing. Times are RFC 3339 or
//! Sunbird's `2024-05-01 10:15:30:000+0530`; an absent time means now, as in a single
//! `record` (the completion time only for a completed item), an explicit `null` means no time.
//! A time more than a day in the future is dropped from its item with a note naming the line,
//! never a refusal: what `state` prints always re-imports (issue 17).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use headway::{ContentKey, ContentState, Progress, ProgressUpdate, Status, Timestamp};
use serde_json::{Map, Value};

use crate::{open_store, ui, Failure};

/// The fields of an item, as `state --json` prints them.
const FIELDS: [&str; 8] = [
    "userId",
    "courseId",
    "batchId",
    "contentId",
    "status",
    "progress",
    "lastAccessTime",
    "lastCompletedTime",
];

/// A JSON value in words, for an error: `"2" (a string)`, `5.5 (a number)`, `null`.
fn described(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let mut text = value.to_string();
    if text.chars().count() > 40 {
        text = text.chars().take(40).collect::<String>() + "...";
    }
    format!("{text} ({kind})")
}

/// The id field `name` of `item`.
fn id(item: &Map<String, Value>, name: &str) -> Result<String, String> {
    match item.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!(
            "\"{name}\" must be a string, got {}",
            described(other)
        )),
        None => Err(format!("\"{name}\" is missing")),
    }
}

/// The whole-number field `name` of `item`, one of `allowed`; `expected` says which in words.
fn whole(
    item: &Map<String, Value>,
    name: &str,
    allowed: std::ops::RangeInclusive<i64>,
    expected: &str,
) -> Result<i64, String> {
    let value = item
        .get(name)
        .ok_or_else(|| format!("\"{name}\" is missing"))?;
    match value.as_i64() {
        Some(n) if allowed.contains(&n) => Ok(n),
        _ => Err(format!(
            "\"{name}\" must be {expected}, got {}",
            described(value)
        )),
    }
}

/// What a time field of an item says.
enum Time {
    /// Absent: now, as in a single `record`.
    Absent,
    /// `null`, or dropped as more than a day in the future: no time.
    None,
    /// This time.
    At(Timestamp),
}

/// A time field of an item. A time more than a day after `now` is from a wrong clock (or a
/// hostile file): it is dropped from the item, status and progress kept, and the note saying so
/// is returned (issue 17: `record --from` input counts as outside, as the server and peers do).
fn time(
    item: &Map<String, Value>,
    name: &str,
    now: Timestamp,
    notes: &mut Vec<String>,
) -> Result<Time, String> {
    let text = match item.get(name) {
        None => return Ok(Time::Absent),
        Some(Value::Null) => return Ok(Time::None),
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(format!(
                "\"{name}\" must be a time (a string) or null, got {}",
                described(other)
            ))
        }
    };
    let at = Timestamp::parse_rfc3339(text)
        .ok()
        .or_else(|| headway_sunbird::wire::parse_date(text))
        .ok_or_else(|| {
            format!(
                "\"{name}\" {text:?} is not a time (accepted: RFC 3339, for example \
                 2024-05-01T10:15:30Z, or Sunbird's 2024-05-01 10:15:30:000+0530)"
            )
        })?;
    if at.not_after_tomorrow(now).is_err() {
        notes.push(format!(
            "\"{name}\" {text:?} is more than a day in the future; dropped from that item (status and progress kept)"
        ));
        return Ok(Time::None);
    }
    Ok(Time::At(at))
}

/// One item as an update, or why it is refused; `notes` gets what was dropped from it.
fn parse(value: &Value, now: Timestamp, notes: &mut Vec<String>) -> Result<ProgressUpdate, String> {
    let Value::Object(item) = value else {
        return Err(format!(
            "an item is a JSON object, got {}",
            described(value)
        ));
    };
    if let Some(unknown) = item.keys().find(|name| !FIELDS.contains(&name.as_str())) {
        return Err(format!(
            "\"{unknown}\" is not a field of an item (the fields: {})",
            FIELDS.join(", ")
        ));
    }
    let key = ContentKey::new(
        id(item, "userId")?,
        id(item, "courseId")?,
        id(item, "batchId")?,
        id(item, "contentId")?,
    )
    .map_err(|e| e.to_string())?;
    let status =
        Status::try_from(whole(item, "status", 0..=2, "0, 1 or 2")?).map_err(|e| e.to_string())?;
    let progress = Progress::new(whole(
        item,
        "progress",
        0..=100,
        "a whole number from 0 to 100",
    )?)
    .map_err(|e| e.to_string())?;
    let access = match time(item, "lastAccessTime", now, notes)? {
        Time::Absent => Some(now),
        Time::None => None,
        Time::At(at) => Some(at),
    };
    let completed = match time(item, "lastCompletedTime", now, notes)? {
        Time::Absent => (status == Status::Completed).then_some(now),
        Time::None => None,
        Time::At(at) => Some(at),
    };
    let state = ContentState::new(status, progress, access, completed);
    ProgressUpdate::from_state(key, state).map_err(|e| match e {
        headway::Error::TimestampOutOfRange { problem, .. } => format!("a time is {problem}"),
        other => other.to_string(),
    })
}

/// The line each top-level element of the JSON array `text` starts on (1-based), in order.
/// `text` is known to be valid JSON.
fn element_lines(text: &str) -> Vec<usize> {
    let (mut lines, mut line, mut depth) = (Vec::new(), 1, 0usize);
    let (mut in_string, mut escaped, mut expecting) = (false, false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if depth == 1 && c == ',' {
            expecting = true;
            continue;
        }
        if depth == 1 && expecting && c != ']' {
            lines.push(line);
            expecting = false;
        }
        match c {
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            '"' => in_string = true,
            _ => {}
        }
    }
    lines
}

/// The items of `text` with the line each starts on: one JSON array, or JSON Lines.
fn items(text: &str) -> Result<Vec<(usize, Value)>, (usize, String)> {
    if text.trim_start().starts_with('[') {
        let values: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| (e.line(), format!("not a JSON array of items: {e}")))?;
        return Ok(element_lines(text).into_iter().zip(values).collect());
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line)
                .map(|value| (index + 1, value))
                .map_err(|e| (index + 1, format!("not JSON: {e}")))
        })
        .collect()
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
    let refused = |line: usize, reason: &str| {
        Failure::Input(format!(
            "line {line} of {}: {reason}; nothing was recorded",
            from.display()
        ))
    };
    let items = items(&text).map_err(|(line, reason)| refused(line, &reason))?;
    let bar = if items.len() >= 1_000 {
        ui::bar(items.len(), "checking")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let now = Timestamp::now();
    let mut updates = Vec::with_capacity(items.len());
    let mut notes = Vec::new();
    for (line, item) in &items {
        let mut dropped = Vec::new();
        let update = parse(item, now, &mut dropped).map_err(|reason| {
            bar.finish_and_clear();
            refused(*line, &reason)
        })?;
        updates.push(update);
        notes.extend(
            dropped
                .into_iter()
                .map(|note| format!("line {line} of {}: {note}", from.display())),
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
