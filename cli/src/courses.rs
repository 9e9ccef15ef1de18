//! `headway courses`: the learner's enrolled courses with merged progress, online or offline.

use std::path::Path;

use clap::Args;
use headway::{CoursesSource, EnrolledCourse, SyncOptions};
use serde_json::{json, Value};

use crate::output::{bar, print_records, Table};
use crate::server_access::{self, Bounds};
use crate::{existing_store, open_store, ui, Failure};

#[derive(Args)]
pub struct CoursesArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// The course service's base URL; without it (or with --offline) the cached list answers.
    #[arg(long)]
    server: Option<String>,
    /// The gateway key.
    #[arg(long, env = "HEADWAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The learner's access token.
    #[arg(long, env = "HEADWAY_USER_TOKEN", hide_env_values = true)]
    user_token: Option<String>,
    /// Answer from the cached list and local progress, without the network.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    bounds: Bounds,
    /// Print one JSON array (piped, one JSON object per line is the default).
    #[arg(long)]
    json: bool,
}

/// One course as scripts read it: every field the server sent, with the merged figures.
pub fn course_json(course: &EnrolledCourse) -> Value {
    let mut object = course.fields.clone();
    let merged = [
        ("courseId", json!(course.course_id)),
        ("batchId", json!(course.batch_id)),
        ("progress", json!(course.progress)),
        ("leafNodesCount", json!(course.leaf_nodes_count)),
        ("completionPercentage", json!(course.completion_percentage)),
        ("status", json!(course.status)),
        ("contentStatus", json!(course.content_status)),
    ];
    for (name, value) in merged {
        object.insert(name.to_string(), value);
    }
    if let Some(leaves) = &course.leaf_nodes {
        object.insert("leafNodes".into(), json!(leaves));
    }
    Value::Object(object)
}

/// A progress line for people.
pub fn course_line(course: &EnrolledCourse) -> String {
    let name = course
        .fields
        .get("courseName")
        .and_then(Value::as_str)
        .unwrap_or(&course.course_id);
    format!(
        "{name:<28} {} {}/{} contents",
        bar(u8::try_from(course.completion_percentage.min(100)).unwrap_or(100)),
        course.progress.min(course.leaf_nodes_count),
        course.leaf_nodes_count
    )
}

fn name(course: &EnrolledCourse) -> &str {
    course
        .fields
        .get("courseName")
        .and_then(Value::as_str)
        .unwrap_or(&course.course_id)
}

fn table(courses: &[EnrolledCourse]) -> Table {
    let mut table = Table::new(&["COURSE", "BATCH", "PROGRESS", "CONTENTS", "STATUS"]).shrink(0);
    for course in courses {
        table.row(vec![
            name(course).to_string(),
            course.batch_id.to_string(),
            bar(u8::try_from(course.completion_percentage.min(100)).unwrap_or(100)),
            format!(
                "{}/{}",
                course.progress.min(course.leaf_nodes_count),
                course.leaf_nodes_count
            ),
            crate::output::status_word(course.status).to_string(),
        ]);
    }
    table
}

pub fn run(db: &Path, args: CoursesArgs) -> Result<(), Failure> {
    let user = headway::UserId::new(args.user.clone())?;
    let courses = match (&args.server, args.offline) {
        (Some(server), false) => {
            // A refused --server is refused before the store is touched: nothing created.
            let source = server_access::token_source(args.user_token.is_some());
            let adapter = server_access::adapter(
                server,
                100,
                args.api_key,
                args.user_token,
                args.bounds,
                None,
            )?;
            let store = open_store(db)?;
            let runtime = server_access::runtime()?;
            let spinner = ui::spinner(true, format!("refreshing from {server}"));
            let answer =
                runtime.block_on(store.refresh_courses(&user, &adapter, &SyncOptions::new()));
            spinner.finish_and_clear();
            let answer = answer.map_err(|e| server_access::refresh_failure(server, source, e))?;
            if let CoursesSource::Cache { cause } = &answer.source {
                ui::note(&format!(
                    "offline answer from the cached list ({server}: {cause})"
                ));
            }
            for (course, cause) in &answer.unread {
                ui::note(&format!(
                    "course {course}: the server's content states could not be read ({server}: {cause}); showing what this device knows"
                ));
            }
            answer.courses
        }
        _ => existing_store(db)?.courses(&user)?,
    };
    let records: Vec<Value> = courses.iter().map(course_json).collect();
    let empty = format!(
        "no enrolled courses known for learner {} (refresh with --server URL)",
        args.user
    );
    print_records(&records, args.json, &empty, || table(&courses))
}
