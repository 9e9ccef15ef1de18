//! Measures the store against raw rusqlite in one run on one machine: `record` and
//! `record_batch` rates at both durabilities, cold open + read of a learner's 10,000 items, file
//! size per item after 100k and 500k updates, and peak RSS; each figure beside its baseline and
//! each ratio beside its goal.
//!
//! `cargo bench --bench store`; `HEADWAY_BENCH_QUICK=1` shrinks it to a smoke test of a few
//! seconds; `HEADWAY_BENCH_SECS=<seconds>` sets each rate window (default 2.5) and
//! `HEADWAY_BENCH_ROUNDS=<n>` the alternating rounds per rate (default 3).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use headway::{
    ContentItem, ContentKey, Durability, ProgressUpdate, Status, Store, StoreOptions, Timestamp,
};
use rusqlite::{params, Connection, TransactionBehavior};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// 2024-01-01T00:00:00Z.
const YEAR_2024_START_MS: i64 = 1_704_067_200_000;
/// 2024 is a leap year.
const YEAR_2024_MS: i64 = 366 * 86_400_000;
const WORKLOAD_SEED: u64 = 0x4845_4144_5741_5901;
const RATE_SEED: u64 = 0x5241_5445_0000_0001;
const LOAD_SEED: u64 = 0x4c4f_4144_0000_0001;

/// The baseline: the same max-upsert the store's table does, with nothing else. Its table,
/// upsert and row type are written out here on purpose, not shared with `src/store/` (which
/// they resemble): a baseline is what an app would write with rusqlite alone, so it must not
/// call the code it is measured against, nor move when the store's schema changes.
const RAW_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS progress (
        user_id        TEXT NOT NULL,
        course_id      TEXT NOT NULL,
        batch_id       TEXT NOT NULL,
        content_id     TEXT NOT NULL,
        status         INTEGER NOT NULL,
        progress       INTEGER NOT NULL,
        last_access    INTEGER,
        last_completed INTEGER,
        PRIMARY KEY (user_id, course_id, batch_id, content_id)
    ) WITHOUT ROWID;";

// SQLite's scalar max() is NULL if either argument is: coalesce keeps the non-NULL one.
const RAW_UPSERT: &str = "
    INSERT INTO progress
        (user_id, course_id, batch_id, content_id, status, progress, last_access, last_completed)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (user_id, course_id, batch_id, content_id) DO UPDATE SET
        status = max(status, excluded.status),
        progress = max(progress, excluded.progress),
        last_access = coalesce(max(last_access, excluded.last_access), last_access,
            excluded.last_access),
        last_completed = coalesce(max(last_completed, excluded.last_completed), last_completed,
            excluded.last_completed)";

const RAW_SELECT: &str = "
    SELECT course_id, batch_id, content_id, status, progress, last_access, last_completed
    FROM progress WHERE user_id = ?1 ORDER BY course_id, batch_id, content_id";

/// How big the run is.
struct Config {
    quick: bool,
    courses: usize,
    contents_per_course: usize,
    /// Updates loaded before the cold-open and first size measurements.
    load_updates: usize,
    /// Updates loaded in all before the last size measurement.
    big_updates: usize,
    window: Duration,
    rounds: usize,
    open_runs: usize,
}

impl Config {
    fn from_env() -> BenchResult<Config> {
        let quick = std::env::var("HEADWAY_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let mut config = if quick {
            Config {
                quick,
                courses: 10,
                contents_per_course: 200,
                load_updates: 10_000,
                big_updates: 50_000,
                window: Duration::from_millis(300),
                rounds: 3,
                open_runs: 3,
            }
        } else {
            Config {
                quick,
                courses: 50,
                contents_per_course: 200,
                load_updates: 100_000,
                big_updates: 500_000,
                window: Duration::from_millis(2_500),
                rounds: 3,
                // A cold open + read takes ~10 ms: 7 runs left its median swinging by ±40% on a
                // shared machine (ratios 1.3 to 3.0 in one sitting); 31 cost under 2 s.
                open_runs: 31,
            }
        };
        if let Ok(secs) = std::env::var("HEADWAY_BENCH_SECS") {
            let secs: f64 = secs
                .parse()
                .map_err(|e| format!("HEADWAY_BENCH_SECS={secs:?}: {e}"))?;
            config.window = Duration::try_from_secs_f64(secs)?;
        }
        if let Ok(rounds) = std::env::var("HEADWAY_BENCH_ROUNDS") {
            config.rounds = rounds
                .parse::<usize>()
                .map_err(|e| format!("HEADWAY_BENCH_ROUNDS={rounds:?}: {e}"))?
                .max(1);
        }
        Ok(config)
    }

    fn items(&self) -> usize {
        self.courses * self.contents_per_course
    }
}

/// SplitMix64: a tiny, fixed-seed PRNG, so every run replays the same workload.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in 0..n (the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One content item's ids.
struct Item {
    course: String,
    batch: String,
    content: String,
}

/// One learner and their items, with Sunbird-length ids.
struct Workload {
    user: String,
    items: Vec<Item>,
}

impl Workload {
    fn new(courses: usize, contents_per_course: usize) -> Workload {
        let mut rng = SplitMix64(WORKLOAD_SEED);
        let user = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            rng.below(1 << 32),
            rng.below(1 << 16),
            rng.below(1 << 12),
            0x8000 | rng.below(1 << 14),
            rng.below(1 << 48)
        );
        // `do_113` + 19 digits = 25 characters, like `do_1130560561046650881122`.
        let sunbird_id = |rng: &mut SplitMix64| format!("do_113{:019}", rng.below(10u64.pow(19)));
        let mut items = Vec::with_capacity(courses * contents_per_course);
        for _ in 0..courses {
            let course = sunbird_id(&mut rng);
            let batch = format!("01{:017}", rng.below(10u64.pow(17)));
            for _ in 0..contents_per_course {
                items.push(Item {
                    course: course.clone(),
                    batch: batch.clone(),
                    content: sunbird_id(&mut rng),
                });
            }
        }
        Workload { user, items }
    }

    fn progress_update(&self, update: Update) -> BenchResult<ProgressUpdate> {
        let item = &self.items[update.item];
        let key = ContentKey::new(
            self.user.as_str(),
            item.course.as_str(),
            item.batch.as_str(),
            item.content.as_str(),
        )?;
        let status = Status::try_from(i64::from(update.status))?;
        let at = Timestamp::from_millis(update.at)?;
        Ok(ProgressUpdate::new(key, status, update.progress)?.consumed_at(at)?)
    }

    fn progress_updates(&self, updates: &[Update]) -> BenchResult<Vec<ProgressUpdate>> {
        updates.iter().map(|u| self.progress_update(*u)).collect()
    }
}

/// One update as numbers: which item, status 0..=2, progress 0..=100, when (ms, in 2024).
#[derive(Clone, Copy, Debug)]
struct Update {
    item: usize,
    status: u8,
    progress: i64,
    at: i64,
}

/// A stream of random updates whose clock moves forward 0-20 s per update through 2024, so
/// every update raises its item (its access time is the newest) and both sides always write.
struct Updates {
    rng: SplitMix64,
    clock: i64,
    items: u64,
}

impl Updates {
    fn new(seed: u64, items: usize, clock: i64) -> Updates {
        Updates {
            rng: SplitMix64(seed),
            clock,
            items: items as u64,
        }
    }

    fn next_update(&mut self) -> Update {
        self.clock += 1 + self.rng.below(20_000) as i64;
        let item = self.rng.below(self.items) as usize;
        let status = self.rng.below(3) as u8;
        let progress = self.rng.below(101) as i64;
        Update {
            item,
            status,
            progress,
            at: YEAR_2024_START_MS + self.clock % YEAR_2024_MS,
        }
    }

    fn take(&mut self, n: usize) -> Vec<Update> {
        (0..n).map(|_| self.next_update()).collect()
    }
}

/// The baseline database: a plain table, WAL, the given `synchronous`.
fn open_raw(path: &Path, synchronous: &str) -> BenchResult<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("baseline journal mode is {mode}, not WAL").into());
    }
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(RAW_SCHEMA)?;
    Ok(conn)
}

/// Writes `updates` to the baseline in one transaction.
fn raw_write(conn: &mut Connection, work: &Workload, updates: &[Update]) -> BenchResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut upsert = tx.prepare_cached(RAW_UPSERT)?;
        for u in updates {
            let item = &work.items[u.item];
            let completed = u.status == 2;
            upsert.execute(params![
                work.user,
                item.course,
                item.batch,
                item.content,
                i64::from(u.status),
                if completed { 100 } else { u.progress },
                u.at,
                completed.then_some(u.at),
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A row read back from the baseline (its own type, not the store's: see [`RAW_SCHEMA`]).
#[derive(Debug, PartialEq, Eq)]
struct RawRow {
    course: String,
    batch: String,
    content: String,
    status: i64,
    progress: i64,
    last_access: Option<i64>,
    last_completed: Option<i64>,
}

impl RawRow {
    fn of_item(item: &ContentItem) -> RawRow {
        let key = item.key();
        let state = item.state();
        RawRow {
            course: key.course().to_string(),
            batch: key.batch().to_string(),
            content: key.content().to_string(),
            status: i64::from(state.status().code()),
            progress: i64::from(state.progress().get()),
            last_access: state.last_access_time().map(Timestamp::as_millis),
            last_completed: state.last_completed_time().map(Timestamp::as_millis),
        }
    }
}

fn raw_read(conn: &Connection, user: &str) -> BenchResult<Vec<RawRow>> {
    let mut select = conn.prepare(RAW_SELECT)?;
    let rows = select
        .query_map([user], |row| {
            Ok(RawRow {
                course: row.get(0)?,
                batch: row.get(1)?,
                content: row.get(2)?,
                status: row.get(3)?,
                progress: row.get(4)?,
                last_access: row.get(5)?,
                last_completed: row.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Calls `op` (which returns how many updates it made) for `window`; returns updates/second.
fn per_second(window: Duration, mut op: impl FnMut() -> BenchResult<u64>) -> BenchResult<f64> {
    let start = Instant::now();
    let mut done = 0u64;
    loop {
        done += op()?;
        let elapsed = start.elapsed();
        if elapsed >= window {
            return Ok(done as f64 / elapsed.as_secs_f64());
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn median_duration(values: &[Duration]) -> Duration {
    Duration::from_secs_f64(median(values.iter().map(Duration::as_secs_f64).collect()))
}

/// 1234567.8 -> "1,234,568".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 100000 -> "100k", 2500 -> "2,500".
fn count(n: usize) -> String {
    if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", thousands((n / 1_000) as f64))
    } else {
        thousands(n as f64)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "MISSED"
    }
}

/// The database file plus its WAL, in bytes.
fn file_bytes(path: &Path) -> BenchResult<u64> {
    let db = std::fs::metadata(path)?.len();
    let mut wal_name = path.as_os_str().to_owned();
    wal_name.push("-wal");
    let wal = match std::fs::metadata(PathBuf::from(wal_name)) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e.into()),
    };
    Ok(db + wal)
}

/// Where a closed store file's bytes are: pages, free pages, document chunks.
fn store_breakdown(path: &Path) -> BenchResult<String> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    let (chunks, chunk_bytes): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), sum(length(bytes)) FROM doc_chunk",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(format!(
        "{pages} pages of {page_size} B, {free} free; {chunks} doc chunks, {} B",
        thousands(chunk_bytes.unwrap_or(0) as f64)
    ))
}

/// Removes the bench's temp dir however the run ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Goals met or missed, for the summary.
#[derive(Default)]
struct Goals(Vec<(String, bool)>);

impl Goals {
    fn check(&mut self, what: String, ok: bool) -> &'static str {
        self.0.push((what, ok));
        verdict(ok)
    }
}

fn durability_parts(durability: Durability) -> (&'static str, &'static str) {
    match durability {
        Durability::PowerLoss => ("PowerLoss", "FULL"),
        _ => ("ProcessCrash", "NORMAL"),
    }
}

/// `record` (per_call 1) or `record_batch` (per_call > 1) against the raw upsert with as many
/// updates per transaction, at one durability, alternating sides; returns the medians.
fn compare_rates(
    config: &Config,
    work: &Workload,
    dir: &Path,
    durability: Durability,
    per_call: usize,
) -> BenchResult<(f64, f64)> {
    let (name, synchronous) = durability_parts(durability);
    let store_path = dir.join(format!("rate-{name}-{per_call}.db"));
    let raw_path = dir.join(format!("rate-{name}-{per_call}-raw.db"));
    let store = Store::open_with(&store_path, StoreOptions::new().durability(durability))?;
    let mut raw = open_raw(&raw_path, synchronous)?;

    // Every item exists on both sides before timing: the rates are of raising existing items.
    let first: Vec<Update> = (0..work.items.len())
        .map(|item| Update {
            item,
            status: 1,
            progress: 1,
            at: YEAR_2024_START_MS,
        })
        .collect();
    for chunk in first.chunks(1_000) {
        store.record_batch(work.progress_updates(chunk)?)?;
        raw_write(&mut raw, work, chunk)?;
    }
    store.compact(&headway::UserId::new(&work.user)?)?;

    let n = work.items.len();
    let mut ours_stream = Updates::new(RATE_SEED, n, 86_400_000);
    let mut raw_stream = Updates::new(RATE_SEED, n, 86_400_000);
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    {
        let mut ours_op = || -> BenchResult<u64> {
            if per_call == 1 {
                store.record(work.progress_update(ours_stream.next_update())?)?;
            } else {
                store.record_batch(work.progress_updates(&ours_stream.take(per_call))?)?;
            }
            Ok(per_call as u64)
        };
        let mut batch = Vec::with_capacity(per_call);
        let mut raw_op = || -> BenchResult<u64> {
            batch.clear();
            batch.extend((0..per_call).map(|_| raw_stream.next_update()));
            raw_write(&mut raw, work, &batch)?;
            Ok(per_call as u64)
        };
        for round in 0..config.rounds {
            if round.is_multiple_of(2) {
                ours.push(per_second(config.window, &mut ours_op)?);
                base.push(per_second(config.window, &mut raw_op)?);
            } else {
                base.push(per_second(config.window, &mut raw_op)?);
                ours.push(per_second(config.window, &mut ours_op)?);
            }
        }
    }
    drop(store);
    drop(raw);
    for path in [&store_path, &raw_path] {
        let _ = std::fs::remove_file(path);
    }
    Ok((median(ours), median(base)))
}

/// Loads `updates` into the store (record_batch, 1,000 per call) and the baseline (1,000 per
/// transaction); returns the time each took.
fn load(
    store: &Store,
    raw: &mut Connection,
    work: &Workload,
    updates: &[Update],
) -> BenchResult<(Duration, Duration)> {
    let mut ours = Duration::ZERO;
    let mut base = Duration::ZERO;
    for chunk in updates.chunks(1_000) {
        let batch = work.progress_updates(chunk)?;
        let start = Instant::now();
        store.record_batch(batch)?;
        ours += start.elapsed();
        let start = Instant::now();
        raw_write(raw, work, chunk)?;
        base += start.elapsed();
    }
    Ok((ours, base))
}

/// Medians of `Store::open` + `items` (and of `open` alone) against a plain open + read.
struct OpenTimes {
    ours: Duration,
    ours_open: Duration,
    base: Duration,
}

fn cold_open(
    config: &Config,
    work: &Workload,
    store_path: &Path,
    raw_path: &Path,
) -> BenchResult<OpenTimes> {
    let (mut ours, mut ours_open, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..config.open_runs {
        let mut ours_run = || -> BenchResult<Vec<ContentItem>> {
            let start = Instant::now();
            let store = Store::open(store_path)?;
            ours_open.push(start.elapsed());
            let items = store.items(&headway::UserId::new(&work.user)?, None)?;
            ours.push(start.elapsed());
            drop(store);
            Ok(items)
        };
        let mut base_run = || -> BenchResult<Vec<RawRow>> {
            let start = Instant::now();
            let conn = Connection::open(raw_path)?;
            let rows = raw_read(&conn, &work.user)?;
            base.push(start.elapsed());
            drop(conn);
            Ok(rows)
        };
        let (items, rows) = if run.is_multiple_of(2) {
            let items = ours_run()?;
            (items, base_run()?)
        } else {
            let rows = base_run()?;
            (ours_run()?, rows)
        };
        if items.len() != work.items.len() || rows.len() != work.items.len() {
            return Err(format!(
                "read {} items from the store and {} rows from the baseline, {} expected",
                items.len(),
                rows.len(),
                work.items.len()
            )
            .into());
        }
        if run == 0 && items.iter().map(RawRow::of_item).ne(rows) {
            return Err("the store and the baseline hold different states".into());
        }
    }
    Ok(OpenTimes {
        ours: median_duration(&ours),
        ours_open: median_duration(&ours_open),
        base: median_duration(&base),
    })
}

fn print_open(label: &str, times: &OpenTimes, goals: &mut Goals) {
    let ratio = times.ours.as_secs_f64() / times.base.as_secs_f64();
    let ok = ratio < 2.0;
    let verdict = goals.check(
        format!("cold open+items, {label}: ratio {ratio:.2} < 2"),
        ok,
    );
    println!(
        "{:<40} ours {:>8.2} ms (open {:.2} + items {:.2}) | rusqlite {:>7.2} ms | ratio {ratio:.2} (goal < 2) {verdict}",
        format!("cold open+items, {label}"),
        ms(times.ours),
        ms(times.ours_open),
        ms(times.ours.saturating_sub(times.ours_open)),
        ms(times.base),
    );
}

fn print_size(label: &str, ours: u64, base: u64, items: usize, detail: &str) {
    println!(
        "{:<40} ours {:>12} B = {:>6.1} B/item | rusqlite {:>12} B = {:>6.1} B/item | {detail}",
        label,
        thousands(ours as f64),
        ours as f64 / items as f64,
        thousands(base as f64),
        base as f64 / items as f64,
    );
}

fn peak_rss_kib() -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib)
}

fn main() -> Result<(), Box<dyn Error>> {
    let began = Instant::now();
    let config = Config::from_env()?;
    let work = Workload::new(config.courses, config.contents_per_course);
    let dir =
        TempDir(std::env::temp_dir().join(format!("headway-bench-store-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let mut goals = Goals::default();

    println!(
        "headway store bench{}: 1 learner, {} courses x {} contents = {} items; rate window {:.1} s x {} rounds (medians); {} cold-open runs",
        if config.quick { " (QUICK)" } else { "" },
        config.courses,
        config.contents_per_course,
        thousands(config.items() as f64),
        config.window.as_secs_f64(),
        config.rounds,
        config.open_runs,
    );
    println!();

    // 1. Write rates.
    for per_call in [1, 100] {
        for durability in [Durability::PowerLoss, Durability::ProcessCrash] {
            let (ours, base) = compare_rates(&config, &work, &dir.0, durability, per_call)?;
            let (name, synchronous) = durability_parts(durability);
            let label = if per_call == 1 {
                format!("record ({name})")
            } else {
                format!("record_batch {per_call} ({name})")
            };
            let ratio = ours / base;
            let verdict = goals.check(format!("{label}: ratio {ratio:.2} >= 0.33"), ratio >= 0.33);
            println!(
                "{:<40} ours {:>9}/s | rusqlite {:>9}/s ({synchronous}, {per_call}/tx) | ratio {ratio:.2} (goal >= 0.33) {verdict}",
                label,
                thousands(ours),
                thousands(base),
            );
        }
    }
    println!();

    // 2. Load a learner: the store with defaults (PowerLoss), the baseline at FULL.
    let store_path = dir.0.join("learner.db");
    let raw_path = dir.0.join("learner-raw.db");
    let mut stream = Updates::new(LOAD_SEED, work.items.len(), 0);
    let store = Store::open(&store_path)?;
    let mut raw = open_raw(&raw_path, "FULL")?;
    // Every item once first, so that the learner has all of them whatever the random picks.
    let first: Vec<Update> = (0..work.items.len())
        .map(|item| {
            let mut u = stream.next_update();
            u.item = item;
            u
        })
        .collect();
    let mut updates = first;
    updates.extend(stream.take(config.load_updates - work.items.len()));
    let (ours_load, base_load) = load(&store, &mut raw, &work, &updates)?;
    drop(store);
    drop(raw);
    let n = config.load_updates as f64;
    println!(
        "{:<40} ours {:>9}/s | rusqlite {:>9}/s (FULL, 1,000/tx) | ratio {:.2} (info)",
        format!("load {} (record_batch 1,000)", count(config.load_updates)),
        thousands(n / ours_load.as_secs_f64()),
        thousands(n / base_load.as_secs_f64()),
        base_load.as_secs_f64() / ours_load.as_secs_f64(),
    );

    println!(
        "(sizes: db + -wal after the last connection closed, which checkpoints; the store runs with \
         default options, so its automatic compaction also ran during the loads)"
    );
    let items = work.items.len();
    let before_ours = file_bytes(&store_path)?;
    let raw_100k = file_bytes(&raw_path)?;
    print_size(
        &format!(
            "size, {} updates, before compact()",
            count(config.load_updates)
        ),
        before_ours,
        raw_100k,
        items,
        &store_breakdown(&store_path)?,
    );

    // 3. Cold open, before and after compaction.
    let before = cold_open(&config, &work, &store_path, &raw_path)?;
    let store = Store::open(&store_path)?;
    let start = Instant::now();
    store.compact(&headway::UserId::new(&work.user)?)?;
    let compact_time = start.elapsed();
    drop(store);
    let after_ours = file_bytes(&store_path)?;
    let per_item = after_ours as f64 / items as f64;
    let verdict = goals.check(
        format!("{per_item:.0} B/item after compact() < 300"),
        per_item < 300.0,
    );
    print_size(
        &format!("size, {} updates, compact()ed", count(config.load_updates)),
        after_ours,
        raw_100k,
        items,
        &format!(
            "goal < 300 B/item {verdict}; compact() {:.1} ms; {}",
            ms(compact_time),
            store_breakdown(&store_path)?
        ),
    );
    let after = cold_open(&config, &work, &store_path, &raw_path)?;

    // 4. Up to the big total on the same items, then compaction.
    let store = Store::open(&store_path)?;
    let mut raw = open_raw(&raw_path, "FULL")?;
    let more = stream.take(config.big_updates - config.load_updates);
    let (ours_more, base_more) = load(&store, &mut raw, &work, &more)?;
    store.compact(&headway::UserId::new(&work.user)?)?;
    drop(store);
    drop(raw);
    let big_ours = file_bytes(&store_path)?;
    let raw_big = file_bytes(&raw_path)?;
    let growth = (big_ours as f64 / after_ours as f64 - 1.0) * 100.0;
    let verdict = goals.check(
        format!(
            "growth {} -> {} updates {growth:.1}% < 20%",
            count(config.load_updates),
            count(config.big_updates)
        ),
        growth < 20.0,
    );
    print_size(
        &format!("size, {} updates, compact()ed", count(config.big_updates)),
        big_ours,
        raw_big,
        items,
        &format!(
            "growth {growth:+.1}% (goal < 20%) {verdict}; rusqlite {:+.1}%; {}",
            (raw_big as f64 / raw_100k as f64 - 1.0) * 100.0,
            store_breakdown(&store_path)?
        ),
    );
    let m = more.len() as f64;
    println!(
        "{:<40} ours {:>9}/s | rusqlite {:>9}/s (FULL, 1,000/tx) | ratio {:.2} (info)",
        format!("load {} more (record_batch 1,000)", count(more.len())),
        thousands(m / ours_more.as_secs_f64()),
        thousands(m / base_more.as_secs_f64()),
        base_more.as_secs_f64() / ours_more.as_secs_f64(),
    );
    println!();

    print_open(
        &format!("{}, before compact()", count(config.load_updates)),
        &before,
        &mut goals,
    );
    print_open(
        &format!("{}, compact()ed", count(config.load_updates)),
        &after,
        &mut goals,
    );
    let big = cold_open(&config, &work, &store_path, &raw_path)?;
    println!(
        "{:<40} ours {:>8.2} ms (open {:.2} + items {:.2}) | rusqlite {:>7.2} ms | ratio {:.2} (info)",
        format!("cold open+items, {}, compact()ed", count(config.big_updates)),
        ms(big.ours),
        ms(big.ours_open),
        ms(big.ours.saturating_sub(big.ours_open)),
        ms(big.base),
        big.ours.as_secs_f64() / big.base.as_secs_f64(),
    );
    println!();

    // 5. Memory.
    println!(
        "peak RSS (VmHWM)                         {:.1} MiB",
        peak_rss_kib()? as f64 / 1024.0
    );
    println!(
        "total time                               {:.1} s",
        began.elapsed().as_secs_f64()
    );
    println!();
    let missed: Vec<&str> = goals
        .0
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| what.as_str())
        .collect();
    if missed.is_empty() {
        println!("all {} goals met", goals.0.len());
    } else {
        println!("{} of {} goals missed:", missed.len(), goals.0.len());
        for what in missed {
            println!("  - {what}");
        }
    }
    drop(dir);
    Ok(())
}
