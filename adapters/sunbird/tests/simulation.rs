//! Deterministic simulation: one seed drives 2-5 devices of one or two learners, the reference
//! course service's own merge code (in-process, the code `headway serve` runs) and a faulty
//! network: random records, offline/online flips, syncs, server reads, peer exchanges, lost
//! requests, lost answers, 5xx, duplicated and replayed requests, dropped, duplicated and
//! reordered peer messages, file exports and imports, concurrent writes to one content on two
//! devices, compactions right after peer imports, crashes and restarts from the store file
//! (stores otherwise stay open across steps, as in an app), compactions. After every
//! step nothing on any device or the server is lower than before; after the network heals and
//! everyone syncs, every device and the server hold exactly the max of everything recorded,
//! and nothing is pending.
//!
//! Every sync and read runs the real Sunbird client (`headway_sunbird::protocol`): its
//! planning, answer reading, bisection on 400 (the service refuses a poisoned content while
//! the network is faulty) and token refresh on 401 (the gateway expires tokens); and the sync
//! engine's second round for first writes Sunbird stores lower. The test prints how often each
//! ran over all seeds.
//!
//! `HEADWAY_SEED=<n>` replays one seed; `HEADWAY_SIM_SEEDS=<n>` runs seeds 0..n (default 500,
//! what CI runs; `HEADWAY_SIM_SEEDS=5000` is the long run).
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use headway::{
    Adapter, AdapterError, BatchId, ContentItem, ContentKey, ContentState, CourseId, Durability,
    EnrolledCourse, ItemOutcome, Outgoing, PeerMessage, PeerSession, ProgressUpdate, PushReport,
    Role, Status, Store, StoreOptions, SyncOptions, Timestamp, UserId,
};
use headway_sunbird::protocol::{
    Answer, Machine, Method, Read, Request, Step, Tally, TokenUse, UpdatePush,
};
use headway_sunbird::{wire, Error as ClientError, SunbirdConfig};
use headway_sunbird_server::{BatchStatus, CourseService};
use serde_json::{json, Value};

const COURSE: &str = "do_course";
const BATCH: &str = "0130000000000000001";
const CONTENTS: u64 = 8;
const T0: i64 = 1_714_558_530_123;
const NOW: i64 = 1_716_000_000_000;

/// SplitMix64: the simulation's only source of randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The network and gateway between devices and the course service: every fault is drawn from
/// the seed, and time is virtual (a back-off advances the clock, nothing sleeps).
struct SimNetwork {
    rng: Mutex<Rng>,
    faulty: Mutex<bool>,
    replays: Mutex<Vec<Value>>,
    /// While the network is faulty, the service refuses (400) every update holding this
    /// content, as Sunbird refuses a whole request for one malformed item.
    poisoned: String,
    started: Instant,
    elapsed: Mutex<Duration>,
    /// What the real client state machine did over the run.
    tally: Mutex<Tally>,
    /// Items the last push of their learner answered `HeldLower`: a push that sends one of
    /// them again is the engine's second round.
    held_lower: Mutex<BTreeSet<ContentKey>>,
    /// How often the engine ran a second round.
    second_rounds: Mutex<usize>,
}

/// One device's view of the network: a real Sunbird client state machine whose requests are
/// delivered to the service's own code through the faulty network.
struct SimAdapter<'a> {
    service: &'a CourseService,
    network: &'a SimNetwork,
    online: bool,
    config: &'a SunbirdConfig,
}

impl SimNetwork {
    fn draw(&self, percent: u64) -> bool {
        *self.faulty.lock().unwrap() && self.rng.lock().unwrap().chance(percent)
    }

    fn now(&self) -> Instant {
        self.started + *self.elapsed.lock().unwrap()
    }

    fn pass(&self, time: Duration) {
        *self.elapsed.lock().unwrap() += time;
    }

    fn poisons(&self, body: &Value) -> bool {
        *self.faulty.lock().unwrap()
            && body["request"]["contents"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["contentId"] == *self.poisoned))
    }
}

fn answered(status: u16, body: &Value) -> Answer {
    Answer::Answered {
        status,
        body: serde_json::to_vec(body).unwrap(),
    }
}

impl SimAdapter<'_> {
    /// What becomes of one request: lost, refused by the gateway, failed by the service, or
    /// answered by the service's own code (perhaps twice, perhaps with the answer lost).
    fn deliver(&self, user: &str, request: &Request) -> Answer {
        let network = self.network;
        network.pass(Duration::from_millis(5));
        if !self.online {
            return Answer::Failed(ClientError::CannotConnect {
                address: self.config_address(),
            });
        }
        if network.draw(5) {
            return Answer::Failed(ClientError::TimedOut); // the request is lost
        }
        if network.draw(5) {
            return Answer::Failed(ClientError::Transport {
                detail: "connection reset".into(),
            });
        }
        if network.draw(10) {
            return answered(503, &json!({"responseCode": "SERVER_ERROR", "result": {}}));
        }
        // The learner's token expired: the gateway refuses it until the app refreshes it.
        if request.token == TokenUse::Current && network.draw(10) {
            return answered(
                401,
                &json!({"params": {"err": "UNAUTHORIZED_USER"}, "responseCode": "CLIENT_ERROR", "result": {}}),
            );
        }
        let body: Value = serde_json::from_slice(request.body.as_deref().unwrap_or(b"{}")).unwrap();
        let reply = match request.method {
            Method::Patch => {
                if network.poisons(&body) {
                    return answered(
                        400,
                        &json!({"params": {"err": "DATE_FORMAT_ERRROR", "errmsg": "Date format error."},
                                "responseCode": "CLIENT_ERROR", "result": {}}),
                    );
                }
                // A stale copy of this request may arrive much later.
                if network.draw(20) {
                    network.replays.lock().unwrap().push(body.clone());
                }
                let mut reply = self.service.update(Some(user), &body, NOW);
                if network.draw(10) {
                    reply = self.service.update(Some(user), &body, NOW); // duplicated request
                }
                if network.draw(10) {
                    // Applied, then the answer is lost.
                    return Answer::Failed(ClientError::Transport {
                        detail: "the connection closed while reading the answer".into(),
                    });
                }
                reply
            }
            Method::Post => self.service.read(Some(user), &body, NOW),
            Method::Get => panic!("the simulation reads no enrollment list"),
        };
        answered(reply.status, &reply.body)
    }

    fn config_address(&self) -> String {
        "http://simulated-sunbird".into()
    }

    /// Runs one client state machine to its end against the simulated network.
    fn drive<M: Machine>(&self, user: &str, mut machine: M) -> M::Output {
        loop {
            match machine.poll(self.network.now()) {
                Step::Send(request) => {
                    let answer = self.deliver(user, &request);
                    machine.answer(self.network.now(), answer);
                }
                Step::Wait(pause) => self.network.pass(pause),
                Step::Done(output) => {
                    *self.network.tally.lock().unwrap() += machine.tally();
                    return output;
                }
            }
        }
    }
}

#[async_trait]
impl Adapter for SimAdapter<'_> {
    async fn push(&self, user: &UserId, items: &[Outgoing]) -> PushReport {
        {
            let mut held_lower = self.network.held_lower.lock().unwrap();
            if items.iter().any(|o| held_lower.contains(o.item.key())) {
                *self.network.second_rounds.lock().unwrap() += 1;
            }
            held_lower.retain(|key| key.user() != user.as_str());
        }
        let push = UpdatePush::new(self.config, user, items, self.network.now());
        let report = self.drive(user, push);
        let mut held_lower = self.network.held_lower.lock().unwrap();
        for (key, outcome) in &report.outcomes {
            if matches!(outcome, ItemOutcome::HeldLower { .. }) {
                held_lower.insert(key.clone());
            }
        }
        report
    }

    async fn read_states(
        &self,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
    ) -> Result<Vec<ContentItem>, AdapterError> {
        let read = Read::states(self.config, user, course, batch, self.network.now());
        self.drive(user, read)
    }

    async fn enrolled_courses(&self, _user: &UserId) -> Result<Vec<EnrolledCourse>, AdapterError> {
        Ok(Vec::new())
    }
}

struct Device {
    user: String,
    path: PathBuf,
    store: Option<Store>,
    online: bool,
    seen: BTreeMap<ContentKey, ContentState>,
}

fn options() -> StoreOptions {
    StoreOptions::new()
        .durability(Durability::ProcessCrash)
        .flush_after(3)
        .compact_after(2)
}

impl Device {
    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    /// Nothing this device holds is lower than what it held before; remembers the new view.
    fn check_monotone(&mut self, seed: u64, step: usize) {
        for item in self.store().items(&user_id(&self.user), None).unwrap() {
            if let Some(before) = self.seen.get(item.key()) {
                assert!(
                    item.state().covers(before),
                    "HEADWAY_SEED={seed} step {step}: {:?} went down on a device: {before:?} -> {:?}",
                    item.key(), item.state()
                );
            }
            self.seen.insert(item.key().clone(), *item.state());
        }
        assert!(
            self.seen.len()
                <= self
                    .store()
                    .items(&user_id(&self.user), None)
                    .unwrap()
                    .len(),
            "HEADWAY_SEED={seed} step {step}: a content state vanished from a device"
        );
    }
}

/// A server row's status, progress, last access and last completion.
type ServerRow = (i64, i64, Option<i64>, Option<i64>);

fn course_id() -> CourseId {
    CourseId::new(COURSE).unwrap()
}

fn batch_id() -> BatchId {
    BatchId::new(BATCH).unwrap()
}

fn server_states(service: &CourseService, user: &str) -> BTreeMap<String, ServerRow> {
    service
        .states_of(user)
        .unwrap()
        .into_iter()
        .map(|row| {
            let time = |name: &str| {
                row[name]
                    .as_str()
                    .and_then(wire::parse_date)
                    .map(Timestamp::as_millis)
            };
            (
                row["contentId"].as_str().unwrap().to_string(),
                (
                    row["status"].as_i64().unwrap(),
                    row["progress"].as_i64().unwrap(),
                    time("lastAccessTime"),
                    time("lastCompletedTime"),
                ),
            )
        })
        .collect()
}

/// One peer exchange through a channel that may drop, duplicate or reorder messages. A broken
/// exchange is abandoned (as a real transport would), never half-applied.
fn peer_exchange(rng: &mut Rng, faulty: bool, a: &Device, b: &Device) {
    let mut initiator = PeerSession::new(&user_id(&a.user), Role::Initiator);
    let mut responder = PeerSession::new(&user_id(&a.user), Role::Responder);
    let Ok(first) = initiator.start(a.store()) else {
        return;
    };
    let mut to_b = vec![first];
    for _ in 0..200 {
        let Some(message) = to_b.pop() else { return };
        if faulty && rng.chance(5) {
            return; // dropped: the exchange times out
        }
        let mut deliveries = vec![message.clone()];
        if faulty && rng.chance(5) {
            deliveries.push(message); // duplicated
        }
        let mut replies = Vec::new();
        for delivery in deliveries {
            let Ok(wire) = PeerMessage::decode(&delivery.encode()) else {
                return;
            };
            match responder.handle(b.store(), wire) {
                Ok(r) => replies.extend(r),
                Err(_) => return,
            }
        }
        if faulty && replies.len() > 1 && rng.chance(50) {
            replies.reverse(); // reordered
        }
        for reply in replies {
            match initiator.handle(a.store(), reply) {
                Ok(next) => to_b.extend(next),
                Err(_) => return,
            }
        }
    }
}

/// A random status, progress and consumption time for `key`.
fn random_update(rng: &mut Rng, key: &ContentKey) -> ProgressUpdate {
    let status = Status::try_from(rng.below(3) as i64).unwrap();
    let at = Timestamp::from_millis(T0 + rng.below(1_000_000) as i64).unwrap();
    ProgressUpdate::new(key.clone(), status, rng.below(101) as i64)
        .unwrap()
        .consumed_at_checked(at, Timestamp::from_millis(NOW).unwrap())
        .unwrap()
}

/// How often the client's and the engine's recovery paths ran.
#[derive(Debug, Default)]
struct Counts {
    client: Tally,
    second_rounds: usize,
}

async fn run(seed: u64) -> Counts {
    let mut rng = Rng(seed);
    let dir = std::env::temp_dir().join(format!("headway-sim-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let service = CourseService::open(None).unwrap();
    service
        .put_batch(BATCH, COURSE, BatchStatus::Ongoing)
        .unwrap();
    let network = SimNetwork {
        rng: Mutex::new(Rng(seed ^ 0xABCD)),
        faulty: Mutex::new(true),
        replays: Mutex::new(Vec::new()),
        poisoned: format!("do_{}", rng.below(CONTENTS)),
        started: Instant::now(),
        elapsed: Mutex::new(Duration::ZERO),
        tally: Mutex::new(Tally::default()),
        held_lower: Mutex::new(BTreeSet::new()),
        second_rounds: Mutex::new(0),
    };
    let config = SunbirdConfig::new("http://simulated-sunbird");
    let learners = 1 + rng.below(2) as usize;
    let device_count = 2 + rng.below(4) as usize;
    let mut devices: Vec<Device> = (0..device_count)
        .map(|d| {
            let path = dir.join(format!("device-{d}.db"));
            Device {
                user: format!("learner-{}", d % learners),
                store: Some(Store::open_with(&path, options()).unwrap()),
                path,
                online: true,
                seen: BTreeMap::new(),
            }
        })
        .collect();
    let mut recorded: BTreeMap<ContentKey, ContentState> = BTreeMap::new();
    let mut server_seen: BTreeMap<(String, String), ServerRow> = BTreeMap::new();
    let sync_options = SyncOptions::new();
    let steps = 40 + rng.below(40) as usize;
    for step in 0..steps {
        let d = rng.below(device_count as u64) as usize;
        match rng.below(100) {
            0..=39 => {
                let key = ContentKey::new(
                    devices[d].user.clone(),
                    COURSE,
                    BATCH,
                    format!("do_{}", rng.below(CONTENTS)),
                )
                .unwrap();
                let update = random_update(&mut rng, &key);
                let entry = recorded.entry(key.clone()).or_default();
                *entry = entry.merge(update.state());
                devices[d].store().record(update).unwrap();
                // Often the learner's other device writes the same content at about the same
                // time, with its own values: concurrent writes to one register.
                let e = rng.below(device_count as u64) as usize;
                if e != d && devices[e].user == devices[d].user && rng.chance(40) {
                    let update = random_update(&mut rng, &key);
                    let entry = recorded.entry(key).or_default();
                    *entry = entry.merge(update.state());
                    devices[e].store().record(update).unwrap();
                }
            }
            40..=49 => devices[d].online = !devices[d].online,
            50..=64 => {
                let adapter = SimAdapter {
                    service: &service,
                    network: &network,
                    online: devices[d].online,
                    config: &config,
                };
                let user = devices[d].user.clone();
                devices[d]
                    .store()
                    .sync(&user_id(&user), &adapter, &sync_options)
                    .await
                    .unwrap();
            }
            65..=72 => {
                let adapter = SimAdapter {
                    service: &service,
                    network: &network,
                    online: devices[d].online,
                    config: &config,
                };
                let user = devices[d].user.clone();
                if let Ok(states) = adapter
                    .read_states(&user_id(&user), &course_id(), &batch_id())
                    .await
                {
                    devices[d].store().merge_server_states(&states).unwrap();
                }
            }
            73..=84 => {
                let e = rng.below(device_count as u64) as usize;
                if e != d && devices[e].user == devices[d].user {
                    let user = devices[d].user.clone();
                    if rng.chance(60) {
                        peer_exchange(&mut rng, true, &devices[d], &devices[e]);
                    } else {
                        // A file carried from d to e, whole or since what d knows of e.
                        let peer = devices[e].store().device_id().unwrap();
                        let since = rng.chance(50).then_some(peer.as_str());
                        let file = devices[d]
                            .store()
                            .peer_export(&user_id(&user), since)
                            .unwrap();
                        let held = devices[d].store().items(&user_id(&user), None).unwrap();
                        devices[e]
                            .store()
                            .peer_import(&user_id(&user), &file)
                            .unwrap();
                        for item in held {
                            let now = devices[e].store().state(item.key()).unwrap().unwrap();
                            assert!(
                                now.covers(item.state()),
                                "HEADWAY_SEED={seed} step {step}: a file lost {:?}",
                                item.key()
                            );
                        }
                    }
                    // The receiver compacts right after (as BackgroundSync may): whatever the
                    // exchange brought must survive the rebuild from the table.
                    if rng.chance(50) {
                        devices[e].store().compact(&user_id(&user)).unwrap();
                    }
                    assert_eq!(
                        devices[e].store().document_items(&user_id(&user)).unwrap(),
                        devices[e].store().items(&user_id(&user), None).unwrap(),
                        "HEADWAY_SEED={seed} step {step}: document and table differ after a peer exchange"
                    );
                }
            }
            85..=89 => {
                // A stale copy of an old request arrives now.
                let replay = {
                    let mut replays = network.replays.lock().unwrap();
                    let n = replays.len();
                    (n > 0).then(|| replays.swap_remove(rng.below(n as u64) as usize))
                };
                if let Some(body) = replay {
                    let user = body["request"]["userId"].as_str().unwrap().to_string();
                    service.update(Some(&user), &body, NOW);
                }
            }
            90..=95 => {
                // The process dies and restarts from its file.
                devices[d].store = None;
                devices[d].store = Some(Store::open_with(&devices[d].path, options()).unwrap());
            }
            _ => {
                let user = devices[d].user.clone();
                devices[d].store().compact(&user_id(&user)).unwrap();
            }
        }
        for device in &mut devices {
            device.check_monotone(seed, step);
        }
        for learner in 0..learners {
            let user = format!("learner-{learner}");
            for (content, now) in server_states(&service, &user) {
                let key = (user.clone(), content);
                if let Some(before) = server_seen.get(&key) {
                    assert!(
                        now.0 >= before.0 && now.1 >= before.1 && now.2 >= before.2 && now.3 >= before.3,
                        "HEADWAY_SEED={seed} step {step}: the server went down for {key:?}: {before:?} -> {now:?}"
                    );
                }
                server_seen.insert(key, now);
            }
        }
    }

    // The network heals; everyone syncs with the server and with each other until quiet.
    *network.faulty.lock().unwrap() = false;
    for device in &mut devices {
        device.online = true;
        // The poisoned content is refused no more: the app sends its rejections again.
        let user = device.user.clone();
        device.store().resend_rejected(&user_id(&user)).unwrap();
    }
    for _ in 0..3 {
        for device in &devices {
            let adapter = SimAdapter {
                service: &service,
                network: &network,
                online: true,
                config: &config,
            };
            let user = device.user.clone();
            let report = device
                .store()
                .sync(&user_id(&user), &adapter, &sync_options)
                .await
                .unwrap();
            assert!(
                report.rejected.is_empty(),
                "HEADWAY_SEED={seed}: {report:?}"
            );
            let states = adapter
                .read_states(&user_id(&user), &course_id(), &batch_id())
                .await
                .unwrap();
            device.store().merge_server_states(&states).unwrap();
        }
        for d in 0..device_count {
            for e in 0..device_count {
                if d != e && devices[d].user == devices[e].user {
                    peer_exchange(&mut rng, false, &devices[d], &devices[e]);
                }
            }
        }
    }
    for device in &devices {
        let expected: Vec<ContentItem> = recorded
            .iter()
            .filter(|(key, _)| key.user() == device.user)
            .map(|(key, state)| ContentItem::new(key.clone(), *state))
            .collect();
        let items = device.store().items(&user_id(&device.user), None).unwrap();
        assert_eq!(
            items, expected,
            "HEADWAY_SEED={seed}: a device does not hold the max of everything recorded"
        );
        assert!(
            device
                .store()
                .pending(&user_id(&device.user))
                .unwrap()
                .is_empty(),
            "HEADWAY_SEED={seed}: items still pending"
        );
        assert_eq!(
            device
                .store()
                .document_items(&user_id(&device.user))
                .unwrap(),
            expected,
            "HEADWAY_SEED={seed}: document and table differ"
        );
        let on_server = server_states(&service, &device.user);
        assert_eq!(
            on_server.len(),
            expected.len(),
            "HEADWAY_SEED={seed}: the server lacks items"
        );
        for item in &expected {
            let state = item.state();
            let held = on_server[item.key().content().as_str()];
            let want = (
                i64::from(state.status().code()),
                i64::from(state.progress().get()),
                state.last_access_time().map(Timestamp::as_millis),
                state.last_completed_time().map(Timestamp::as_millis),
            );
            assert_eq!(held, want, "HEADWAY_SEED={seed}: the server holds {held:?} for {:?}, the max recorded is {want:?}", item.key());
        }
    }
    drop(devices);
    let _ = std::fs::remove_dir_all(&dir);
    let client = *network.tally.lock().unwrap();
    let second_rounds = *network.second_rounds.lock().unwrap();
    Counts {
        client,
        second_rounds,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn devices_and_server_converge_to_the_max_of_everything_recorded() {
    if let Some(seed) = std::env::var("HEADWAY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        eprintln!("HEADWAY_SEED={seed}");
        let tally = run(seed).await;
        eprintln!("{tally:?}");
        return;
    }
    let seeds: u64 = std::env::var("HEADWAY_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut total = Counts::default();
    for seed in 0..seeds {
        let counts = run(seed).await;
        total.client += counts.client;
        total.second_rounds += counts.second_rounds;
    }
    eprintln!(
        "{seeds} seeds converged; the real Sunbird client ran {} bisections and {} token refreshes, the engine {} second rounds",
        total.client.bisections, total.client.token_refreshes, total.second_rounds
    );
    // Every recovery path of the client and the engine ran against the service's own code.
    if seeds >= 100 {
        assert!(total.client.bisections > 0, "{total:?}");
        assert!(total.client.token_refreshes > 0, "{total:?}");
        assert!(total.second_rounds > 0, "{total:?}");
    }
}

/// The learner `id`, validated (every id in these tests is valid).
fn user_id(id: &str) -> headway::UserId {
    headway::UserId::new(id).unwrap()
}
