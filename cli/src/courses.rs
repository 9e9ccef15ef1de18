//! `headway courses`: the learner's enrolled courses with merged progress, online or offline.

use std::path::Path;

use clap::Args;
use headway::{CoursesSource, EnrolledCourse, Store, SyncOptions};
use serde_json::{json, Value};

use crate::output::bar;
use crate::server_access;
use crate::Failure;

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
    /// Print one JSON array.
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

pub fn run(db: &Path, args: CoursesArgs) -> Result<(), Failure> {
    headway::check_id("user", args.user.clone())?;
    let store = Store::open(db)?;
    let courses = match (&args.server, args.offline) {
        (Some(server), false) => {
            let adapter = server_access::adapter(server, 100, args.api_key, args.user_token)?;
            let runtime = server_access::runtime()?;
            let answer = runtime.block_on(store.refresh_courses(
                &args.user,
                &adapter,
                &SyncOptions::new(),
            ))?;
            if let CoursesSource::Cache { cause } = &answer.source {
                eprintln!("headway: offline answer from the cached list ({cause})");
            }
            answer.courses
        }
        _ => store.courses(&args.user)?,
    };
    if args.json {
        let all: Vec<Value> = courses.iter().map(course_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&all).map_err(|e| Failure::Other(e.into()))?
        );
    } else {
        for course in &courses {
            println!("{}", course_line(course));
        }
    }
    Ok(())
}
