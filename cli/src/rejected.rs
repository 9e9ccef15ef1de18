//! `headway rejected` and `headway resend`: the items the server refused for good, and making
//! them pending again (issue 9, point 4).

use std::path::Path;

use clap::Args;
use serde_json::{json, Value};

use crate::output::{items_table, print_records};
use crate::{existing_store, learner_in_course, Failure};

#[derive(Args)]
pub struct RejectedArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// Print one JSON array (piped, one JSON object per line is the default).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ResendArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// Only this course.
    #[arg(long)]
    course: Option<String>,
}

pub fn list(db: &Path, args: RejectedArgs) -> Result<(), Failure> {
    let user = headway::UserId::new(args.user.clone())?;
    let store = existing_store(db)?;
    let rejected = store.rejected(&user)?;
    let records: Vec<Value> = rejected
        .iter()
        .map(|(item, reason)| {
            let mut fields = crate::output::item_fields(item);
            fields.insert("reason".into(), json!(reason.to_string()));
            Value::Object(fields)
        })
        .collect();
    let empty = format!("nothing rejected for learner {}", args.user);
    print_records(&records, args.json, &empty, || {
        let items: Vec<_> = rejected.iter().map(|(item, _)| item.clone()).collect();
        let reasons = rejected
            .iter()
            .map(|(_, reason)| reason.to_string())
            .collect();
        items_table(&items, &[("REASON", reasons)])
    })
}

pub fn resend(db: &Path, args: ResendArgs) -> Result<(), Failure> {
    let (user, course) = learner_in_course(&args.user, args.course.as_deref())?;
    let store = existing_store(db)?;
    let count = store.resend_rejected_in(&user, course.as_ref())?;
    let scope = args
        .course
        .as_ref()
        .map_or_else(String::new, |c| format!(" in course {c}"));
    say!(
        "{count} rejected item(s) of {}{scope} are pending again; the next sync sends them",
        args.user
    )?;
    Ok(())
}
