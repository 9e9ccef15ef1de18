//! The `headway` command: record, inspect and demonstrate a learner's offline course progress.
//!
//! Exit codes: 0 success; 2 refused input (nothing was stored); 3 the server was unreachable
//! or kept failing (nothing pending was lost); 1 any other failure.

mod courses;
mod demo;
mod output;
mod peer;
mod serve;
mod server_access;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use headway::{ContentKey, ProgressUpdate, Status, Store, Timestamp};

/// Offline-first course progress: record locally, never roll back, sync in bulk.
#[derive(Parser)]
#[command(name = "headway", version, about)]
struct Cli {
    /// The store file.
    #[arg(
        long,
        global = true,
        env = "HEADWAY_DB",
        default_value = "./headway.db"
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record one progress update; exits 0 only once it is durable.
    Record(RecordArgs),
    /// Print a learner's content states.
    State(StateArgs),
    /// Print the items a sync would send now.
    Pending(PendingArgs),
    /// Fold pending history and rebase a learner's document onto a snapshot.
    Compact(CompactArgs),
    /// Print the learner's enrolled courses with progress (refreshed from the server if given).
    Courses(courses::CoursesArgs),
    /// Send a learner's pending progress to the course service now, in bulk.
    Sync(sync::SyncArgs),
    /// Sync a learner's progress with another device: through a file or live over TCP.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Run the reference course service (Sunbird's endpoints and semantics) for tests and demos.
    Serve(serve::ServeArgs),
    /// Play the offline progress story on a fresh temporary store.
    Demo,
}

#[derive(Args)]
struct RecordArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// The course (courseId).
    #[arg(long)]
    course: String,
    /// The batch (batchId).
    #[arg(long)]
    batch: String,
    /// The content item (contentId).
    #[arg(long)]
    content: String,
    /// 0 not started, 1 in progress, 2 completed.
    #[arg(long, allow_hyphen_values = true)]
    status: i64,
    /// 0..=100.
    #[arg(long, allow_hyphen_values = true)]
    progress: i64,
    /// When the learner consumed the content (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
}

#[derive(Args)]
struct StateArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// Only this course.
    #[arg(long)]
    course: Option<String>,
    /// Print one JSON array instead of one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PendingArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// Print one JSON array instead of one JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompactArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
}

/// A failure and the exit code it maps to.
pub(crate) enum Failure {
    /// Refused input: exit 2, nothing stored.
    Input(String),
    /// The server was unreachable or kept failing: exit 3, nothing pending lost.
    Unavailable(String),
    /// Anything else: exit 1.
    Other(anyhow::Error),
}

impl From<headway::Error> for Failure {
    fn from(e: headway::Error) -> Failure {
        if e.is_invalid_input() {
            Failure::Input(e.to_string())
        } else {
            Failure::Other(e.into())
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Other(e)
    }
}

/// Exits for a command line clap refused: help and version as clap prints them; a usage
/// error as one line on stderr and exit 2, like every other refused input.
fn refuse_arguments(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.to_string();
    let reason = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ");
    eprintln!("headway: refused: {reason}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return refuse_arguments(e),
    };
    let db_given = matches.value_source("db") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return refuse_arguments(e),
    };
    match run(cli, db_given) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(reason)) => {
            eprintln!("headway: refused: {reason}");
            ExitCode::from(2)
        }
        Err(Failure::Unavailable(reason)) => {
            eprintln!("headway: server unavailable: {reason}");
            ExitCode::from(3)
        }
        Err(Failure::Other(error)) => {
            eprintln!("headway: error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, db_given: bool) -> Result<(), Failure> {
    match cli.command {
        Command::Record(args) => record(&cli.db, args),
        Command::State(args) => {
            headway::check_id("user", args.user.clone())?;
            if let Some(course) = &args.course {
                headway::check_id("course", course.clone())?;
            }
            let store = Store::open(&cli.db)?;
            let items = store.items(&args.user, args.course.as_deref())?;
            output::print_items(&items, args.json).map_err(Failure::Other)
        }
        Command::Pending(args) => {
            headway::check_id("user", args.user.clone())?;
            let store = Store::open(&cli.db)?;
            let items = store.pending(&args.user)?;
            output::print_items(&items, args.json).map_err(Failure::Other)
        }
        Command::Compact(args) => {
            let store = Store::open(&cli.db)?;
            store.compact(&args.user)?;
            println!("compacted the document of {}", args.user);
            Ok(())
        }
        Command::Sync(args) => sync::run(&cli.db, args),
        Command::Courses(args) => courses::run(&cli.db, args),
        Command::Peer(command) => peer::run(&cli.db, command),
        Command::Serve(args) => {
            serve::run(db_given.then_some(cli.db.as_path()), args).map_err(Failure::Other)
        }
        Command::Demo => demo::run().map_err(Failure::Other),
    }
}

fn record(db: &PathBuf, args: RecordArgs) -> Result<(), Failure> {
    // Every argument is checked before the store is opened: refused input touches nothing.
    let key = ContentKey::new(args.user, args.course, args.batch, args.content)?;
    let status = Status::try_from(args.status)?;
    let mut update = ProgressUpdate::new(key, status, args.progress)?;
    if let Some(at) = args.at {
        update = update.consumed_at(Timestamp::parse_rfc3339(&at)?)?;
    }
    let store = Store::open(db)?;
    let key = update.key().clone();
    match store.record(update)? {
        Some(change) => println!(
            "recorded {}: status {} progress {}",
            key.content(),
            change.after.status().code(),
            change.after.progress().get()
        ),
        None => {
            let kept = store.state(&key)?.unwrap_or_default();
            println!(
                "unchanged {}: the stored state is not lower (status {} progress {})",
                key.content(),
                kept.status().code(),
                kept.progress().get()
            );
        }
    }
    Ok(())
}
