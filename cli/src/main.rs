//! The `headway` command: record, inspect and demonstrate a learner's offline course progress.
//!
//! Exit codes: 0 success (a closed stdout ends a command quietly with 0 too); 2 refused input
//! or usage (nothing was stored); 3 the server or peer was unreachable or kept failing (nothing
//! pending was lost); 1 any other failure.

/// Writes one line to stdout; a closed pipe is an error the caller passes up (`?`), so the
/// command ends quietly instead of panicking like `println!`.
/// Writes one line to stderr; a closed stderr is ignored, never a panic (what `eprintln!` does).
macro_rules! note {
    ($($arg:tt)*) => {
        crate::output::note(format_args!($($arg)*))
    };
}

macro_rules! say {
    () => {
        crate::output::say(format_args!(""))
    };
    ($($arg:tt)*) => {
        crate::output::say(format_args!($($arg)*))
    };
}

mod courses;
mod demo;
mod import;
mod output;
mod peer;
mod rejected;
mod serve;
mod server_access;
mod status;
mod sync;
mod ui;

use std::path::{Path, PathBuf};
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
        default_value = "./headway.db",
        help_heading = "Global options"
    )]
    db: PathBuf,
    /// No progress bars and no notes on stderr (errors still show).
    #[arg(long, short, global = true, help_heading = "Global options")]
    quiet: bool,
    /// More log output on stderr: -v info (with `serve`, one line per request), -vv debug.
    /// `RUST_LOG` (for example `RUST_LOG=headway=debug`) overrides it.
    #[arg(
        long,
        short,
        global = true,
        action = clap::ArgAction::Count,
        help_heading = "Global options"
    )]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record one progress update, or many from a JSON Lines file; exits 0 only once durable.
    Record(RecordArgs),
    /// Print a learner's content states.
    State(StateArgs),
    /// Print the items a sync would send now.
    Pending(PendingArgs),
    /// Print the items the server refused for good, with its reasons.
    Rejected(rejected::RejectedArgs),
    /// Make the items the server refused pending again (after a batch reopened, say).
    Resend(rejected::ResendArgs),
    /// Fold pending history and rebase a learner's document onto a snapshot.
    Compact(CompactArgs),
    /// Print the learner's enrolled courses with progress (refreshed from the server if given).
    Courses(courses::CoursesArgs),
    /// Send a learner's pending progress to the course service now, in bulk.
    Sync(sync::SyncArgs),
    /// An overview of the store: learners, items, pending, rejected, last sync, size, device.
    Status(status::StatusArgs),
    /// Sync a learner's progress with another device: through a file or live over TCP.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Run the reference course service (Sunbird's endpoints and semantics) for tests and demos.
    /// Its data (courses, batches, enrolments, progress) lives in memory, or in the file `--db`
    /// names when given on its command line.
    Serve(serve::ServeArgs),
    /// Play the offline progress story on a fresh temporary store.
    Demo,
    /// Print a shell completion script (bash, elvish, fish, powershell or zsh) on stdout.
    Completions(CompletionsArgs),
}

#[derive(Args)]
#[command(
    override_usage = "headway record --user U --course C --batch B --content K --status S --progress P [--at TIME]\n       headway record --from FILE|-"
)]
struct RecordArgs {
    /// The learner (userId).
    #[arg(long, required_unless_present = "from")]
    user: Option<String>,
    /// The course (courseId).
    #[arg(long, required_unless_present = "from")]
    course: Option<String>,
    /// The batch (batchId).
    #[arg(long, required_unless_present = "from")]
    batch: Option<String>,
    /// The content item (contentId).
    #[arg(long, required_unless_present = "from")]
    content: Option<String>,
    /// 0 not started, 1 in progress, 2 completed.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "from")]
    status: Option<i64>,
    /// 0..=100.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "from")]
    progress: Option<i64>,
    /// When the learner consumed the content (RFC 3339, e.g. 2024-05-01T10:15:30Z); default now.
    #[arg(long)]
    at: Option<String>,
    /// Record every item of a JSON Lines file (`-` for stdin), in the shape `state --json`
    /// prints: all or nothing.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["user", "course", "batch", "content", "status", "progress", "at"]
    )]
    from: Option<PathBuf>,
}

#[derive(Args)]
struct StateArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// Only this course.
    #[arg(long)]
    course: Option<String>,
    /// Print one JSON array (piped, one JSON object per line is the default).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PendingArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// Print one JSON array (piped, one JSON object per line is the default).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompactArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// A failure and the exit code it maps to.
pub(crate) enum Failure {
    /// Refused input: exit 2, nothing stored.
    Input(String),
    /// The server or peer was unreachable or kept failing: exit 3, nothing pending lost.
    Unavailable(String),
    /// The server refused the user token, or answered for another learner (the token belongs
    /// to someone else): exit 4, nothing changed, nothing pending lost (issue 17).
    Credentials(String),
    /// Anything else: exit 1 (or a quiet 0 when stdout was closed).
    Other(anyhow::Error),
}

impl From<headway::Error> for Failure {
    fn from(e: headway::Error) -> Failure {
        if matches!(
            e,
            headway::Error::WrongLearner { .. }
                | headway::Error::CredentialsRefused { .. }
                | headway::Error::EveryItemDropped { .. }
        ) {
            return Failure::Credentials(e.to_string());
        }
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

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Other(e.into())
    }
}

/// True when the failure is stdout closing under us (`headway state | head -1`).
fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Exits for a command line clap refused: help and version asked for as clap prints them
/// (exit 0); a usage error with clap's whole message (what is missing, did-you-mean) and exit
/// 2, like every other refused input. A missing command (`headway`, `headway peer`) is a usage
/// error too: clap prints the help in place of the error and exits 2, and so do we.
fn refuse_arguments(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = error.print();
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return ExitCode::SUCCESS;
    }
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
    ui::init(cli.quiet, cli.verbose);
    match run(cli, db_given) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(reason)) => {
            note!("headway: refused: {reason}");
            ExitCode::from(2)
        }
        Err(Failure::Unavailable(reason)) => {
            note!("headway: server unavailable: {reason}");
            ExitCode::from(3)
        }
        Err(Failure::Credentials(reason)) => {
            note!("headway: credentials refused: {reason}");
            ExitCode::from(4)
        }
        Err(Failure::Other(error)) if is_closed_stdout(&error) => ExitCode::SUCCESS,
        Err(Failure::Other(error)) => {
            note!("headway: error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, db_given: bool) -> Result<(), Failure> {
    match cli.command {
        Command::Record(args) => match args.from {
            Some(from) => import::run(&cli.db, &from),
            None => record(&cli.db, args),
        },
        Command::State(args) => {
            let (user, course) = learner_in_course(&args.user, args.course.as_deref())?;
            let store = existing_store(&cli.db)?;
            let items = store.items(&user, course.as_ref())?;
            if items.is_empty() && !args.json && unknown_learner(&store, &user)? {
                return Ok(());
            }
            let empty = match &args.course {
                Some(course) => format!(
                    "no progress recorded for learner {} in course {course}",
                    args.user
                ),
                None => format!("no progress recorded for learner {}", args.user),
            };
            output::print_items(&items, args.json, &empty)
        }
        Command::Pending(args) => {
            let user = headway::UserId::new(args.user.clone())?;
            let store = existing_store(&cli.db)?;
            let items = store.pending(&user)?;
            if items.is_empty() && !args.json && unknown_learner(&store, &user)? {
                return Ok(());
            }
            let empty = format!("nothing pending for learner {}", args.user);
            output::print_items(&items, args.json, &empty)
        }
        Command::Rejected(args) => rejected::list(&cli.db, args),
        Command::Resend(args) => rejected::resend(&cli.db, args),
        Command::Compact(args) => compact(&cli.db, &args.user),
        Command::Sync(args) => sync::run(&cli.db, args),
        Command::Courses(args) => courses::run(&cli.db, args),
        Command::Status(args) => status::run(&cli.db, args),
        Command::Peer(command) => peer::run(&cli.db, command),
        Command::Serve(args) => serve::run(db_given.then_some(cli.db.as_path()), args),
        Command::Demo => demo::run().map_err(Failure::Other),
        Command::Completions(args) => {
            // Generated in memory first: clap_complete panics when its writer fails, and a
            // closed stdout must end the command quietly.
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "headway", &mut script);
            let mut out = std::io::stdout().lock();
            std::io::Write::write_all(&mut out, &script)?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
    }
}

/// The `--user` and optional `--course` of a command, validated before any store is opened.
pub(crate) fn learner_in_course(
    user: &str,
    course: Option<&str>,
) -> Result<(headway::UserId, Option<headway::CourseId>), Failure> {
    let user = headway::UserId::new(user)?;
    let course = course.map(headway::CourseId::new).transpose()?;
    Ok((user, course))
}

/// Opens the store for a read command: a missing file is refused (exit 2) and nothing is
/// created, so a mistyped `--db` never answers from an empty store.
pub(crate) fn existing_store(db: &Path) -> Result<Store, Failure> {
    if !db.exists() {
        return Err(Failure::Input(match missing_parent(db) {
            Some(parent) => format!(
                "no store at {} (the directory {} does not exist)",
                db.display(),
                parent.display()
            ),
            None => format!("no store at {}", db.display()),
        }));
    }
    Ok(Store::open(db)?)
}

/// Opens (or creates) the store for a command that writes: a missing directory is named.
pub(crate) fn open_store(db: &Path) -> Result<Store, Failure> {
    if let Some(parent) = missing_parent(db) {
        return Err(Failure::Input(format!(
            "cannot create a store at {}: the directory {} does not exist",
            db.display(),
            parent.display()
        )));
    }
    Ok(Store::open(db)?)
}

/// The store's directory, if it does not exist.
fn missing_parent(db: &Path) -> Option<&Path> {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
}

/// What a refused time says: the text as typed and an example of the accepted format.
pub(crate) fn refused_time(flag: &str, typed: &str, error: &headway::Error) -> Failure {
    let problem = match error {
        headway::Error::TimestampOutOfRange { problem, .. } => format!("is {problem}"),
        _ => "is not an RFC 3339 time".to_string(),
    };
    Failure::Input(format!(
        "{flag} {typed:?} {problem} (accepted: RFC 3339, for example 2024-05-01T10:15:30Z or 2024-05-01T15:45:30+05:30)"
    ))
}

fn record(db: &Path, args: RecordArgs) -> Result<(), Failure> {
    let missing = |flag: &str| Failure::Input(format!("{flag} is required without --from"));
    // Every argument is checked before the store is opened: refused input touches nothing.
    let key = ContentKey::new(
        args.user.ok_or_else(|| missing("--user"))?,
        args.course.ok_or_else(|| missing("--course"))?,
        args.batch.ok_or_else(|| missing("--batch"))?,
        args.content.ok_or_else(|| missing("--content"))?,
    )?;
    let status = Status::try_from(args.status.ok_or_else(|| missing("--status"))?)?;
    let mut update = ProgressUpdate::new(
        key,
        status,
        args.progress.ok_or_else(|| missing("--progress"))?,
    )?;
    if let Some(at) = args.at {
        let time = Timestamp::parse_rfc3339(&at).map_err(|e| refused_time("--at", &at, &e))?;
        update = update
            .consumed_at(time)
            .map_err(|e| refused_time("--at", &at, &e))?;
    }
    let store = open_store(db)?;
    let key = update.key().clone();
    let asked = *update.state();
    match store.record(update)? {
        Some(change)
            if (change.after.status(), change.after.progress())
                == (asked.status(), asked.progress()) =>
        {
            say!(
                "recorded {}: status {} progress {}",
                key.content(),
                change.after.status().code(),
                change.after.progress().get()
            )?
        }
        // Part of the update was below what is stored: say what went up, and what is kept.
        Some(change) => {
            let before = change.before.unwrap_or_default();
            let raised: Vec<&str> = [
                (before.status() != change.after.status(), "status"),
                (before.progress() != change.after.progress(), "progress"),
                (
                    before.last_access_time() != change.after.last_access_time(),
                    "last access time",
                ),
                (
                    before.last_completed_time() != change.after.last_completed_time(),
                    "last completion time",
                ),
            ]
            .into_iter()
            .filter_map(|(changed, name)| changed.then_some(name))
            .collect();
            say!(
                "recorded {}: only the {} went up; status {} progress {} stored (status {} \
                 progress {} is below it)",
                key.content(),
                raised.join(" and "),
                change.after.status().code(),
                change.after.progress().get(),
                asked.status().code(),
                asked.progress().get()
            )?
        }
        None => {
            let kept = store.state(&key)?.unwrap_or_default();
            say!(
                "unchanged {}: the stored state is not lower (status {} progress {})",
                key.content(),
                kept.status().code(),
                kept.progress().get()
            )?;
        }
    }
    Ok(())
}

/// True, having said so on stderr (on a terminal or a pipe alike), when the store holds
/// nothing of `user`: a mistyped id is told apart from a learner with nothing recorded, and
/// stdout stays empty for scripts (`--json` still prints `[]`).
fn unknown_learner(store: &Store, user: &headway::UserId) -> Result<bool, Failure> {
    if store.learners()?.iter().any(|held| held == user) {
        return Ok(false);
    }
    ui::note(&format!(
        "no progress recorded for learner {user}: the store holds no such learner"
    ));
    Ok(true)
}

fn compact(db: &Path, user: &str) -> Result<(), Failure> {
    let user = &headway::UserId::new(user)?;
    let store = existing_store(db)?;
    if !store.learners()?.iter().any(|u| u == user) {
        say!("nothing to compact: no progress recorded for learner {user}")?;
        return Ok(());
    }
    let items = store.items(user, None)?.len();
    let spinner = ui::spinner(
        items >= ui::LARGE,
        format!("compacting {items} items of {user}"),
    );
    store.compact(user)?;
    spinner.finish_and_clear();
    say!("compacted the document of {user} ({items} items)")?;
    Ok(())
}
