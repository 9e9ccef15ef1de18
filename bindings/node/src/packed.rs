//! Many items across the boundary in a few values instead of one JavaScript object each:
//! `state` and `pending` answer [`PackedItems`], `recordBatch` takes [`PackedUpdates`], and
//! `index.js` unpacks and packs them (`unpackItems`, `packUpdates`). Building 10,000 objects
//! through Node-API took some 14 calls per item; packed, a read is six values and the objects
//! are made by JavaScript's own object literals (see bindings/node/bench). Ids cannot hold a
//! control character, so NUL separates them.

use napi::bindgen_prelude::Float64Array;

use crate::error::Failure;
use crate::types::{count, status_number};

/// What separates ids in a packed string.
const SEPARATOR: char = '\u{0}';

/// The numbers of one packed item: status, progress, last access and last completion (NaN
/// when not known).
const ITEM_NUMBERS: usize = 4;

/// The numbers of one packed update: status, progress, consumed at (NaN when absent).
const UPDATE_NUMBERS: usize = 3;

/// One learner's content items, packed (a JavaScript array, in this order): the learner of
/// every item; the items' content ids joined with NUL; the course, the batch and the length of
/// each run of consecutive items with the same course and batch; per item, status, progress,
/// last access and last completion in ms (NaN: not known).
pub type PackedItems = (
    String,
    String,
    Vec<String>,
    Vec<String>,
    Vec<u32>,
    Float64Array,
);

/// `items` (all of the learner `user`), packed.
pub(crate) fn pack_items(user: &headway::UserId, items: &[headway::ContentItem]) -> PackedItems {
    let mut content_ids = String::with_capacity(items.len() * 24);
    let mut numbers = Vec::with_capacity(items.len() * ITEM_NUMBERS);
    let (mut run_courses, mut run_batches, mut run_lengths) = (Vec::new(), Vec::new(), Vec::new());
    let time = |at: Option<headway::Timestamp>| at.map_or(f64::NAN, |at| at.as_millis() as f64);
    for (index, item) in items.iter().enumerate() {
        let (key, state) = (item.key(), item.state());
        if index > 0 {
            content_ids.push(SEPARATOR);
        }
        content_ids.push_str(key.content().as_str());
        let continues = run_courses.last().map(String::as_str) == Some(key.course().as_str())
            && run_batches.last().map(String::as_str) == Some(key.batch().as_str());
        match run_lengths.last_mut() {
            Some(length) if continues => *length += 1,
            _ => {
                run_courses.push(key.course().to_string());
                run_batches.push(key.batch().to_string());
                run_lengths.push(1);
            }
        }
        numbers.extend([
            f64::from(status_number(state.status())),
            f64::from(state.progress().get()),
            time(state.last_access_time()),
            time(state.last_completed_time()),
        ]);
    }
    (
        user.to_string(),
        content_ids,
        run_courses,
        run_batches,
        run_lengths,
        Float64Array::new(numbers),
    )
}

/// Updates packed by `index.js` (a JavaScript array, in this order): how many; the learners,
/// courses, batches and contents, each joined with NUL; per update, status, progress and
/// consumed at in ms (NaN: now). Their types were checked there (a string is a string, a
/// number a number); every value is checked here by the library.
pub type PackedUpdates = (u32, String, String, String, String, Float64Array);

/// The ids of one field, split; `what` names the field in the error.
fn ids<'a>(joined: &'a str, expected: usize, what: &str) -> Result<Vec<&'a str>, Failure> {
    let ids: Vec<&str> = if expected == 0 {
        Vec::new()
    } else {
        joined.split(SEPARATOR).collect()
    };
    if ids.len() != expected {
        // Only a NUL inside an id splits it in two, and an id may not hold one.
        return Err(Failure::invalid(format!(
            "\"{what}\": an id holds a control character (NUL)"
        )));
    }
    Ok(ids)
}

/// The updates `packed` holds, each checked by the library; the first refused one is named by
/// its index.
pub(crate) fn unpack_updates(
    packed: &PackedUpdates,
) -> Result<Vec<headway::ProgressUpdate>, Failure> {
    let (count, user_ids, course_ids, batch_ids, content_ids, numbers) = packed;
    let n = *count as usize;
    let users = ids(user_ids, n, "userId")?;
    let courses = ids(course_ids, n, "courseId")?;
    let batches = ids(batch_ids, n, "batchId")?;
    let contents = ids(content_ids, n, "contentId")?;
    let numbers: &[f64] = numbers;
    if numbers.len() != n * UPDATE_NUMBERS {
        return Err(Failure::invalid(
            "a packed batch holds the wrong count of numbers",
        ));
    }
    (0..n)
        .map(|at| {
            let at_numbers = &numbers[at * UPDATE_NUMBERS..(at + 1) * UPDATE_NUMBERS];
            let update = crate::types::ProgressUpdate {
                user_id: users[at].to_string(),
                course_id: courses[at].to_string(),
                batch_id: batches[at].to_string(),
                content_id: contents[at].to_string(),
                status: at_numbers[0],
                progress: at_numbers[1],
                consumed_at_ms: Some(at_numbers[2]).filter(|ms| !ms.is_nan()),
            };
            headway::ProgressUpdate::try_from(update).map_err(|e| e.at_index(at))
        })
        .collect()
}

/// How many of `changes` raised something.
pub(crate) fn raised(changes: &[Option<headway::ContentStateChanged>]) -> u32 {
    count(changes.iter().flatten().count())
}
