//! Peer sync: bytes and time to bring a device up to date after 1,000 new updates on a learner
//! with 10,000 items, next to sending the full document, measured in one run; both live
//! (Automerge's sync protocol through a PeerSession) and by file (an export of only what the
//! peer lacks). `HEADWAY_BENCH_QUICK=1` runs a small version.

use std::time::{Duration, Instant};

use headway::{
    ContentKey, Durability, LearnerDocument, PeerMessage, PeerSession, ProgressUpdate, Role,
    Status, Store, StoreOptions, Timestamp,
};

type BoxError = Box<dyn std::error::Error>;

const USER: &str = "95e4942d-cbe8-477d-aebd-ad8e6de4bfc8";
const BATCH: &str = "0130596193870561281";

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// The key of the learner's content item number `item` (200 contents a course).
fn item_key(item: u64) -> Result<ContentKey, BoxError> {
    Ok(ContentKey::new(
        USER,
        format!("do_11305961646828748{:06}", item / 200),
        BATCH,
        format!("do_1130560561046650{item:09}"),
    )?)
}

fn updates(
    rng: &mut Rng,
    items: u64,
    count: usize,
    t0: i64,
) -> Result<Vec<ProgressUpdate>, BoxError> {
    (0..count)
        .map(|i| {
            let key = item_key(rng.below(items))?;
            let status = Status::try_from(i64::try_from(rng.below(3))?)?;
            let at = Timestamp::from_millis(t0 + i64::try_from(i)?)?;
            Ok(
                ProgressUpdate::new(key, status, i64::try_from(rng.below(101))?)?
                    .consumed_at_checked(at, Timestamp::from_millis(1_800_000_000_000)?)?,
            )
        })
        .collect()
}

/// One live exchange; returns bytes on the wire and the time it took.
fn exchange(a: &Store, b: &Store) -> Result<(usize, Duration), BoxError> {
    let started = Instant::now();
    let mut initiator = PeerSession::new(&headway::UserId::new(USER)?, Role::Initiator);
    let mut responder = PeerSession::new(&headway::UserId::new(USER)?, Role::Responder);
    let mut bytes = 0;
    let mut outgoing = vec![initiator.start(a)?];
    while let Some(message) = outgoing.pop() {
        let wire = message.encode();
        bytes += wire.len();
        for reply in responder.handle(b, PeerMessage::decode(&wire)?)? {
            let wire = reply.encode();
            bytes += wire.len();
            outgoing.extend(initiator.handle(a, PeerMessage::decode(&wire)?)?);
        }
    }
    Ok((bytes, started.elapsed()))
}

fn main() -> Result<(), BoxError> {
    let quick = std::env::var("HEADWAY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (items, fresh) = if quick {
        (1_000u64, 100usize)
    } else {
        (10_000, 1_000)
    };
    let dir = std::env::temp_dir().join(format!("headway-bench-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let options = StoreOptions::new().durability(Durability::ProcessCrash);
    let phone = Store::open_with(dir.join("phone.db"), options.clone())?;
    let tablet = Store::open_with(dir.join("tablet.db"), options)?;
    let mut rng = Rng(42);

    // A learner with `items` content items on the phone, compacted, then shared with the tablet.
    let mut all = Vec::new();
    for i in 0..items {
        all.push(ProgressUpdate::new(item_key(i)?, Status::InProgress, 10)?);
    }
    for chunk in all.chunks(1_000) {
        phone.record_batch(chunk.to_vec())?;
    }
    phone.compact(&headway::UserId::new(USER)?)?;
    let (first_bytes, first_time) = exchange(&phone, &tablet)?;

    // 1,000 new updates on the phone (recorded, then folded into the document as the
    // background task does when idle).
    phone.record_batch(updates(&mut rng, items, fresh, 1_750_000_000_000)?)?;
    phone.flush(&headway::UserId::new(USER)?)?;
    let tablet_id = tablet.device_id()?;

    let full_doc = phone.save_document(&headway::UserId::new(USER)?)?;
    let started = Instant::now();
    let full_file = phone.peer_export(&headway::UserId::new(USER)?, None)?;
    let scratch = Store::open_in_memory()?;
    scratch.peer_import(&headway::UserId::new(USER)?, &full_file)?;
    let full_time = started.elapsed();

    let started = Instant::now();
    let delta_file = phone.peer_export(&headway::UserId::new(USER)?, Some(&tablet_id))?;
    let export_time = started.elapsed();

    // A copy of the tablet as it is now, to import the file catch-up into (same device id).
    let copy_path = dir.join("tablet-copy.db");
    rusqlite::Connection::open(dir.join("tablet.db"))?
        .execute("VACUUM INTO ?1", [copy_path.to_string_lossy()])?;

    let (live_bytes, live_time) = exchange(&phone, &tablet)?;
    if phone.items(&headway::UserId::new(USER)?, None)?
        != tablet.items(&headway::UserId::new(USER)?, None)?
    {
        return Err("the devices did not converge".into());
    }
    // How received values reach the table. Both ways apply the changes and write the rows
    // that rose; they differ in how they find those rows: the keys the received changes
    // wrote (decoding their ops: what the store does), or re-joining every key (reading
    // every register of the document and every row of the table).
    let tablet_copy = Store::open_with(
        &copy_path,
        StoreOptions::new().durability(Durability::ProcessCrash),
    )?;
    let mut after = LearnerDocument::load(&headway::UserId::new(USER)?, &full_doc, None)?;
    let before_bytes = tablet_copy.save_document(&headway::UserId::new(USER)?)?;
    let changes = after.changes_after(
        &LearnerDocument::load(&headway::UserId::new(USER)?, &before_bytes, None)?.heads(),
    );
    let mut apply_only = LearnerDocument::load(&headway::UserId::new(USER)?, &before_bytes, None)?;
    let started = Instant::now();
    apply_only.load_more(&changes)?;
    let apply_time = started.elapsed();
    let mut with_keys = LearnerDocument::load(&headway::UserId::new(USER)?, &before_bytes, None)?;
    let started = Instant::now();
    let written = with_keys.receive_changes(&changes)?;
    let touched_time = started.elapsed();
    let started = Instant::now();
    let registers = with_keys.items();
    let rows = tablet_copy.items(&headway::UserId::new(USER)?, None)?;
    let rejoin_time = started.elapsed();
    let started = Instant::now();
    tablet_copy.peer_import(&headway::UserId::new(USER)?, &delta_file)?;
    let import_time = started.elapsed();
    if registers.len() != rows.len()
        || written.len() < fresh / 2
        || tablet_copy.items(&headway::UserId::new(USER)?, None)?
            != phone.items(&headway::UserId::new(USER)?, None)?
    {
        return Err("the file catch-up did not converge".into());
    }

    println!("peer sync: {items} items, then {fresh} new updates on one device");
    println!(
        "  first contact (whole document)  {:>9} bytes {:>8.1} ms",
        first_bytes,
        first_time.as_secs_f64() * 1e3
    );
    println!(
        "  full document                   {:>9} bytes {:>8.1} ms (export + import) | saved document {} bytes",
        full_file.len(),
        full_time.as_secs_f64() * 1e3,
        full_doc.len()
    );
    println!(
        "  live catch-up (sync protocol)   {:>9} bytes {:>8.1} ms | ratio {:.3} of the full document's bytes, {:.2} of its time",
        live_bytes,
        live_time.as_secs_f64() * 1e3,
        live_bytes as f64 / full_file.len() as f64,
        live_time.as_secs_f64() / full_time.as_secs_f64()
    );
    println!(
        "  file catch-up (--since-peer)    {:>9} bytes {:>8.1} ms (export) | ratio {:.3} of the full document's bytes",
        delta_file.len(),
        export_time.as_secs_f64() * 1e3,
        delta_file.len() as f64 / full_file.len() as f64
    );
    println!(
        "  finding the rows to raise       {:>8.2} ms applying + decoding the received changes ({} puts) vs {:.2} ms applying alone: decoding costs {:.2} ms | {:>8.2} ms reading all {} registers and rows (re-join every key) | whole file import {:.1} ms",
        touched_time.as_secs_f64() * 1e3,
        written.len(),
        apply_time.as_secs_f64() * 1e3,
        touched_time.saturating_sub(apply_time).as_secs_f64() * 1e3,
        rejoin_time.as_secs_f64() * 1e3,
        rows.len(),
        import_time.as_secs_f64() * 1e3,
    );
    println!(
        "  information limit               {:.3} ({} of {items} items changed, encoded as densely as the document)",
        fresh as f64 / items as f64,
        fresh
    );
    drop(phone);
    drop(tablet);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
