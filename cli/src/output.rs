//! How results are printed: aligned tables for people on a terminal, one JSON object per line
//! on a pipe, one JSON array with `--json`; the JSON shape of a content item scripts rely on.

use std::io::{IsTerminal, Write};

use headway::{ContentItem, Timestamp};
use serde_json::{json, Value};

use crate::Failure;

/// Writes one line to stdout (what `say!` expands to). A closed stdout is returned as an
/// error, never a panic.
pub fn say(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)?;
    out.write_all(b"\n")
}

/// Writes one line to stderr (what `note!` expands to). A closed stderr is ignored: the exit
/// code still tells scripts what happened, and a panic would replace it with 101.
pub fn note(line: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(line);
    let _ = err.write_all(b"\n");
}

/// True when stdout is a terminal: people read it, so tables instead of JSON.
pub fn for_people() -> bool {
    std::io::stdout().is_terminal()
}

/// The terminal's width, or 100 when it cannot be told.
fn width() -> usize {
    console::Term::stdout()
        .size_checked()
        .map_or(100, |(_, columns)| usize::from(columns))
}

/// One content item as JSON: `userId, courseId, batchId, contentId, status, progress,
/// lastAccessTime, lastCompletedTime`, times as RFC 3339 UTC strings or null.
pub fn item_json(item: &ContentItem) -> Value {
    let state = item.state();
    let mut fields = item_fields(item);
    fields.insert(
        "lastAccessTime".into(),
        json!(state.last_access_time().map(Timestamp::to_rfc3339)),
    );
    fields.insert(
        "lastCompletedTime".into(),
        json!(state.last_completed_time().map(Timestamp::to_rfc3339)),
    );
    Value::Object(fields)
}

/// The ids, status and progress of a content item: `userId, courseId, batchId, contentId,
/// status, progress`, the fields every item listing starts with.
pub fn item_fields(item: &ContentItem) -> serde_json::Map<String, Value> {
    let (key, state) = (item.key(), item.state());
    let mut fields = serde_json::Map::new();
    fields.insert("userId".into(), json!(key.user()));
    fields.insert("courseId".into(), json!(key.course()));
    fields.insert("batchId".into(), json!(key.batch()));
    fields.insert("contentId".into(), json!(key.content()));
    fields.insert("status".into(), json!(state.status().code()));
    fields.insert("progress".into(), json!(state.progress().get()));
    fields
}

/// A status for people.
pub fn status_word(code: u8) -> &'static str {
    match code {
        0 => "not started",
        1 => "in progress",
        _ => "completed",
    }
}

/// A time for people: UTC to the second, or `-`.
fn time_cell(time: Option<Timestamp>) -> String {
    time.map_or_else(
        || "-".to_string(),
        |t| {
            let u = t.to_utc();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
                u.year, u.month, u.day, u.hour, u.minute, u.second
            )
        },
    )
}

/// Prints JSON records the way the output goes: an array with `json`, else one object per
/// line on a pipe, else `table()` for people (or `empty` when there is nothing).
pub fn print_records(
    records: &[Value],
    json: bool,
    empty: &str,
    table: impl FnOnce() -> Table,
) -> Result<(), Failure> {
    if json {
        let text = serde_json::to_string_pretty(records).map_err(anyhow::Error::from)?;
        say!("{text}")?;
    } else if !for_people() {
        for record in records {
            say!("{record}")?;
        }
    } else if records.is_empty() {
        say!("{empty}")?;
    } else {
        table().print()?;
    }
    Ok(())
}

/// Prints content items (see [`print_records`]).
pub fn print_items(items: &[ContentItem], json: bool, empty: &str) -> Result<(), Failure> {
    let records: Vec<Value> = items.iter().map(item_json).collect();
    print_records(&records, json, empty, || items_table(items, &[]))
}

/// The table of content items, with extra columns (header, one value per item) at the end.
pub fn items_table(items: &[ContentItem], extra: &[(&str, Vec<String>)]) -> Table {
    let mut header = vec![
        "COURSE",
        "BATCH",
        "CONTENT",
        "STATUS",
        "PROGRESS",
        "LAST ACCESS",
        "LAST COMPLETED",
    ];
    header.extend(extra.iter().map(|(name, _)| *name));
    let mut table = Table::new(&header);
    for (i, item) in items.iter().enumerate() {
        let (key, state) = (item.key(), item.state());
        let mut row = vec![
            key.course().to_string(),
            key.batch().to_string(),
            key.content().to_string(),
            status_word(state.status().code()).to_string(),
            format!("{}%", state.progress().get()),
            time_cell(state.last_access_time()),
            time_cell(state.last_completed_time()),
        ];
        row.extend(extra.iter().map(|(_, values)| values[i].clone()));
        table.row(row);
    }
    table
}

/// An aligned text table; the column named `shrink` (if any) is truncated so the table fits
/// the terminal.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    shrink: Option<usize>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            shrink: None,
        }
    }

    /// Lets column `index` be truncated to fit the terminal.
    pub fn shrink(mut self, index: usize) -> Table {
        self.shrink = Some(index);
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn print(&self) -> std::io::Result<()> {
        let count = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        if let Some(index) = self.shrink {
            let total: usize = widths.iter().sum::<usize>() + 2 * count.saturating_sub(1);
            let over = total.saturating_sub(width());
            if over > 0 && index < count {
                widths[index] = widths[index].saturating_sub(over).max(8);
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let cell = fit(cell, *w);
                if i + 1 == count {
                    text.push_str(&cell);
                } else {
                    text.push_str(&format!("{cell:<w$}  ", w = *w));
                }
            }
            text.trim_end().to_string()
        };
        say!("{}", line(&self.header))?;
        for row in &self.rows {
            say!("{}", line(row))?;
        }
        Ok(())
    }
}

/// `text` cut to `width` characters, ending in `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A progress bar of 20 cells for a percentage.
pub fn bar(percent: u8) -> String {
    let filled = usize::from(percent.min(100)) / 5;
    format!(
        "[{}{}] {percent:>3}%",
        "#".repeat(filled),
        ".".repeat(20 - filled)
    )
}
