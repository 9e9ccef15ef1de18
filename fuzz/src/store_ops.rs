//! The store-level fuzz target's runner: bytes decoded as a sequence of operations on two or
//! three real `Store` files of one learner (records with arbitrary values and consumption
//! times on a few keys, flushes, compactions, restarts, file exports with and without
//! `since_peer`, imports of any earlier file, live peer messages delivered or lost), checked
//! after every step, then a clean exchange between every pair, after which every store must
//! hold exactly the join of everything recorded anywhere.
//!
//! Also compiled into `tests/fuzz_crashers.rs` (through `#[path]`), which replays every kept
//! input: it uses only `headway` and `std`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use headway::{
    ContentKey, ContentState, Durability, PeerMessage, PeerSession, ProgressUpdate, Role, Status,
    Store, StoreOptions, Timestamp, UserId,
};

const USER: &str = "learner-1";
/// Enough steps for records, a compaction and two exchanges to interleave; few enough that
/// one input runs in milliseconds.
const MAX_STEPS: usize = 48;
/// Exported files kept for later imports (a stale file on a USB stick is imported too).
const MAX_FILES: usize = 6;
const BASE_MILLIS: i64 = 1_700_000_000_000;

/// The bytes a step takes: what to do, on which device, and four operands. Fixed-size steps
/// keep the fuzzer's mutations (insert, erase, cross over) step-aligned.
const STEP_LEN: usize = 6;

/// Runs one input: a header of four bytes (how many devices, how the clean exchange runs, each
/// device's options), then steps of [`STEP_LEN`] bytes. Panics, printing the steps taken, when
/// a property breaks.
pub fn run(bytes: &[u8]) {
    let scratch = Scratch::new();
    let (header, steps) = bytes.split_at(bytes.len().min(4));
    let header = |i: usize| header.get(i).copied().unwrap_or(0);
    let count = 2 + usize::from(header(0) % 2);
    let live_finish = header(0) & 2 != 0;
    let devices = (0..count)
        .map(|i| Device::open(scratch.path().join(format!("device-{i}.db")), header(1 + i)))
        .collect();
    let user = match UserId::new(USER) {
        Ok(user) => user,
        Err(e) => panic!("the fuzz learner's id is refused: {e}"),
    };
    let mut world = World {
        user,
        devices,
        recorded: BTreeMap::new(),
        files: VecDeque::new(),
        exported: 0,
        live: None,
        trace: String::new(),
    };
    for step in steps.chunks_exact(STEP_LEN).take(MAX_STEPS) {
        let mut step_bytes = [0; STEP_LEN];
        step_bytes.copy_from_slice(step);
        world.step(step_bytes);
    }
    world.finish(live_finish);
}

/// A directory for one input's store files, in memory when the system offers one.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("headway-store-ops-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type States = BTreeMap<ContentKey, ContentState>;

/// One device: its store file, how it is opened, and the highest state it ever showed per key.
struct Device {
    path: PathBuf,
    options: StoreOptions,
    id: String,
    store: Option<Store>,
    seen: States,
}

impl Device {
    fn open(path: PathBuf, byte: u8) -> Device {
        // Small compaction intervals make the automatic compaction part of the sequence.
        let mut options = StoreOptions::new()
            .durability(Durability::ProcessCrash)
            .compact_after(1 + usize::from(byte % 8));
        if byte & 0x18 != 0 {
            options = options.flush_after(usize::from((byte >> 3) % 4));
        }
        let store = Store::open_with(&path, options.clone()).expect("a new store opens");
        let id = store.device_id().expect("a device id");
        Device {
            path,
            options,
            id,
            store: Some(store),
            seen: States::new(),
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("the store is open")
    }

    fn restart(&mut self) -> headway::Result<()> {
        drop(self.store.take());
        self.store = Some(Store::open_with(&self.path, self.options.clone())?);
        Ok(())
    }
}

/// One live exchange in progress: side 0 initiated it; messages wait in order.
struct Live {
    ends: [usize; 2],
    sessions: [PeerSession; 2],
    queue: VecDeque<(usize, Vec<u8>)>,
}

struct ExportedFile {
    number: usize,
    from: usize,
    whole: bool,
    bytes: Vec<u8>,
    /// What the sender's table held when it exported the file.
    held: States,
}

struct World {
    /// The one learner every device records for.
    user: UserId,
    devices: Vec<Device>,
    /// The join of every update recorded on any device.
    recorded: States,
    files: VecDeque<ExportedFile>,
    exported: usize,
    live: Option<Live>,
    trace: String,
}

impl World {
    fn fail(&self, what: String) -> ! {
        panic!("{what}\nsteps:\n{}", self.trace)
    }

    fn note(&mut self, step: String) {
        let _ = writeln!(self.trace, "  {step}");
    }

    fn step(&mut self, [op, device, a, b, c, d]: [u8; STEP_LEN]) {
        let n = self.devices.len();
        let pick = |byte: u8, among: usize| usize::from(byte) % among.max(1);
        let device = pick(device, n);
        // Which stores folded their table into the document in this step.
        let mut folded = Vec::new();
        match op % 10 {
            0..=2 => {
                let key =
                    ContentKey::new(USER, "c", "b", format!("k{}", a % 4)).expect("a valid key");
                let status = Status::try_from(i64::from(b % 3)).expect("0..=2");
                let progress = i64::from(c % 101);
                let at = BASE_MILLIS + i64::from(d) * 60_000;
                let now = Timestamp::from_millis(BASE_MILLIS + 86_400_000).expect("valid");
                let update = ProgressUpdate::new(key.clone(), status, progress)
                    .and_then(|u| u.consumed_at_checked(Timestamp::from_millis(at)?, now))
                    .expect("a valid update");
                self.note(format!(
                    "{device}: record {} {status:?} {progress} at +{}min",
                    key.content(),
                    (at - BASE_MILLIS) / 60_000
                ));
                if let Err(e) = self.devices[device].store().record(update.clone()) {
                    self.fail(format!("record failed: {e}"));
                }
                let entry = self.recorded.entry(key).or_default();
                *entry = entry.merge(update.state());
            }
            3 => {
                self.note(format!("{device}: flush"));
                if let Err(e) = self.devices[device].store().flush(&self.user) {
                    self.fail(format!("flush failed: {e}"));
                }
                folded.push(device);
            }
            4 => {
                self.note(format!("{device}: compact"));
                if let Err(e) = self.devices[device].store().compact(&self.user) {
                    self.fail(format!("compaction failed: {e}"));
                }
                folded.push(device);
            }
            5 => {
                self.note(format!("{device}: restart"));
                if self.live.as_ref().is_some_and(|l| l.ends.contains(&device)) {
                    self.live = None;
                }
                if let Err(e) = self.devices[device].restart() {
                    self.fail(format!("reopening failed: {e}"));
                }
            }
            6 => {
                let since = (a % 2 == 1).then(|| pick(a / 2, n));
                self.exported += 1;
                self.note(format!(
                    "{device}: export file {} (since {since:?})",
                    self.exported
                ));
                let since_id = since.map(|s| self.devices[s].id.clone());
                let store = self.devices[device].store();
                match store.peer_export(&self.user, since_id.as_deref()) {
                    Ok(bytes) => {
                        if self.files.len() == MAX_FILES {
                            self.files.pop_front();
                        }
                        let held = self.items(device);
                        self.files.push_back(ExportedFile {
                            number: self.exported,
                            from: device,
                            whole: since.is_none(),
                            bytes,
                            held,
                        });
                    }
                    Err(e) => self.fail(format!("export failed: {e}")),
                }
                folded.push(device);
            }
            7 => {
                let Some(file) = self.files.len().checked_sub(1).map(|last| {
                    // Counted back from the newest file.
                    last - pick(a, self.files.len())
                }) else {
                    return;
                };
                let (from, whole) = (self.files[file].from, self.files[file].whole);
                self.note(format!(
                    "{device}: import file {} (from {from}, {})",
                    self.files[file].number,
                    if whole { "whole" } else { "since" }
                ));
                let result = self.devices[device]
                    .store()
                    .peer_import(&self.user, &self.files[file].bytes);
                match result {
                    // What the sender held reached the receiver's table.
                    Ok(()) => {
                        let now = self.items(device);
                        for (key, held) in &self.files[file].held {
                            if !now.get(key).is_some_and(|s| s.covers(held)) {
                                self.fail(format!(
                                    "device {device}: after importing, {} is {}, below the \
                                     file's {}",
                                    key.content(),
                                    now.get(key).map_or("missing".into(), describe_state),
                                    describe_state(held)
                                ));
                            }
                        }
                    }
                    // A whole document from another device always applies; changes may not
                    // (the receiver may have left that epoch): refused, changing nothing.
                    Err(e) if whole && from != device => {
                        self.fail(format!("importing a whole document failed: {e}"))
                    }
                    Err(_) => {}
                }
                folded.push(device);
            }
            8 => {
                let other = (device + 1 + pick(a, n - 1)) % n;
                self.note(format!("{device}: start a live exchange with {other}"));
                match Live::start(&self.devices, device, other) {
                    Ok(live) => self.live = Some(live),
                    Err(e) => self.fail(format!("starting a live exchange failed: {e}")),
                }
            }
            _ => {
                let lose = a % 4 == 0;
                let Some(mut live) = self.live.take() else {
                    return;
                };
                let Some((side, bytes)) = live.queue.pop_front() else {
                    return;
                };
                let to = live.ends[side];
                if lose {
                    self.note(format!("lose a message to {to}"));
                    self.live = Some(live);
                } else {
                    self.note(format!("deliver a message to {to}"));
                    // An error ends the exchange, as a closed connection would; it changes
                    // nothing (checked below).
                    if live.deliver(&self.devices, side, &bytes).is_ok() {
                        self.live = Some(live);
                    }
                    folded.push(to);
                }
            }
        }
        for i in 0..n {
            self.check_never_lower(i);
        }
        for i in folded {
            self.check_document_matches_table(i);
        }
    }

    /// No field of any row went below what the device showed before, no row disappeared, and
    /// no state is above everything recorded.
    fn check_never_lower(&mut self, i: usize) {
        let now = self.items(i);
        for (key, before) in &self.devices[i].seen {
            if !now.get(key).is_some_and(|s| s.covers(before)) {
                self.fail(format!(
                    "device {i}: {} went down from {} to {}",
                    key.content(),
                    describe_state(before),
                    now.get(key).map_or("missing".into(), describe_state)
                ));
            }
        }
        for (key, state) in &now {
            if !self.recorded.get(key).is_some_and(|r| r.covers(state)) {
                self.fail(format!(
                    "device {i}: {} holds {}, above everything recorded",
                    key.content(),
                    describe_state(state)
                ));
            }
        }
        self.devices[i].seen = now;
    }

    fn items(&self, i: usize) -> States {
        match self.devices[i].store().items(&self.user, None) {
            Ok(items) => items.into_iter().map(|i| i.into_parts()).collect(),
            Err(e) => self.fail(format!("device {i}: reading items failed: {e}")),
        }
    }

    /// After a fold (flush, compaction, exchange), the document holds what the table holds.
    fn check_document_matches_table(&self, i: usize) {
        let store = self.devices[i].store();
        let table = store.items(&self.user, None);
        let document = store.document_items(&self.user);
        match (table, document) {
            (Ok(table), Ok(document)) if table == document => {}
            (table, document) => self.fail(format!(
                "device {i}: the document and the table disagree\n  table:    {}\n  document: {}",
                describe(table),
                describe(document)
            )),
        }
    }

    /// Ends any exchange in progress, then exchanges cleanly between every ordered pair (by
    /// file, or live), and checks every device holds the join of everything recorded.
    fn finish(&mut self, live: bool) {
        self.live = None;
        let n = self.devices.len();
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                if live {
                    self.note(format!("finish: live exchange {from} -> {to}"));
                    if let Err(e) = Live::run_clean(&self.devices, from, to) {
                        self.fail(format!("a clean live exchange {from} -> {to} failed: {e}"));
                    }
                } else {
                    self.note(format!("finish: file {from} -> {to}"));
                    let moved = self.devices[from]
                        .store()
                        .peer_export(&self.user, None)
                        .and_then(|file| self.devices[to].store().peer_import(&self.user, &file));
                    if let Err(e) = moved {
                        self.fail(format!("a clean file exchange {from} -> {to} failed: {e}"));
                    }
                }
                self.check_never_lower(from);
                self.check_never_lower(to);
            }
        }
        for i in 0..n {
            self.check_document_matches_table(i);
            if self.devices[i].seen != self.recorded {
                self.fail(format!(
                    "device {i} does not hold the join of everything recorded\n  \
                     holds:    {}\n  expected: {}",
                    describe_states(&self.devices[i].seen),
                    describe_states(&self.recorded)
                ));
            }
        }
    }
}

impl Live {
    fn start(devices: &[Device], from: usize, to: usize) -> headway::Result<Live> {
        let mut sessions = [
            PeerSession::new(&headway::UserId::new(USER)?, Role::Initiator),
            PeerSession::new(&headway::UserId::new(USER)?, Role::Responder),
        ];
        let hello = sessions[0].start(devices[from].store())?;
        Ok(Live {
            ends: [from, to],
            sessions,
            queue: VecDeque::from([(1, hello.encode())]),
        })
    }

    /// Hands one message, as it crossed the wire, to side `side`, and queues its replies.
    fn deliver(&mut self, devices: &[Device], side: usize, bytes: &[u8]) -> headway::Result<()> {
        let message = PeerMessage::decode(bytes)?;
        let replies = self.sessions[side].handle(devices[self.ends[side]].store(), message)?;
        self.queue
            .extend(replies.iter().map(|reply| (1 - side, reply.encode())));
        Ok(())
    }

    /// A whole exchange with no message lost: it must end, finished, without an error.
    fn run_clean(devices: &[Device], from: usize, to: usize) -> Result<(), String> {
        let mut live = Live::start(devices, from, to).map_err(|e| e.to_string())?;
        while let Some((side, bytes)) = live.queue.pop_front() {
            live.deliver(devices, side, &bytes)
                .map_err(|e| e.to_string())?;
        }
        if live.sessions[0].is_finished() {
            Ok(())
        } else {
            Err("the exchange stopped before the initiator saw both sides idle".to_string())
        }
    }
}

fn describe(items: headway::Result<Vec<headway::ContentItem>>) -> String {
    match items {
        Ok(items) => describe_states(&items.into_iter().map(|i| i.into_parts()).collect()),
        Err(e) => format!("error: {e}"),
    }
}

fn describe_states(states: &States) -> String {
    states
        .iter()
        .map(|(key, s)| format!("{}={}", key.content(), describe_state(s)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Status/progress/last access/last completion, times in minutes after the base time.
fn describe_state(s: &ContentState) -> String {
    let minutes = |t: Option<Timestamp>| t.map(|t| (t.as_millis() - BASE_MILLIS) / 60_000);
    format!(
        "{:?}/{}/{:?}/{:?}",
        s.status(),
        s.progress().get(),
        minutes(s.last_access_time()),
        minutes(s.last_completed_time())
    )
}
