//! Randomized peer sync between long-lived stores: 2-4 devices kept open across steps the way
//! an app keeps them (restarted now and then), concurrent writes to the same contents,
//! flushes, explicit and automatic compactions, file exports with and without `--since-peer`,
//! and live exchanges in both directions. After every step no device's state went down; after
//! every exchange the receiver covers what the sender held, document and table agree, and a
//! live exchange always finishes. At the end, after a full round of exchanges, every device
//! holds the join of everything recorded anywhere. One seed in eight carries its live
//! exchanges through the paired, encrypted channel (issue 17), over a Unix socket pair.
//!
//! `HEADWAY_PEER_SEEDS=2000 cargo test --release --test peer_long_lived` runs a longer search;
//! `HEADWAY_SEED=N` replays one seed (a failure prints it).
#![cfg(test)]

mod support;

use std::path::PathBuf;

use headway::{Durability, Store, StoreOptions};
use support::{
    covers, exchange, exchange_along_the_chain_and_back, exchange_paired, snapshot, update,
    user_id, Rng, Snapshot, TempDir,
};

const T0: i64 = 1_714_558_530_123;
const USER: &str = "u";

struct Device {
    path: PathBuf,
    options: StoreOptions,
    store: Option<Store>,
    /// What this device's table held after its last step: it must never go down.
    seen: Snapshot,
}

impl Device {
    fn store(&self) -> &Store {
        self.store.as_ref().expect("open")
    }

    fn restart(&mut self) {
        self.store = None;
        self.store = Some(Store::open_with(&self.path, self.options.clone()).expect("reopen"));
    }

    fn items(&self) -> Snapshot {
        snapshot(self.store().items(&user_id(USER), None).expect("items"))
    }

    /// No state went down since the last check; the table is remembered for the next one.
    fn check_monotonic(&mut self, step: &str) -> Result<(), String> {
        let now = self.items();
        covers(&now, &self.seen).map_err(|e| format!("{step}: a state went down: {e}"))?;
        self.seen = now;
        Ok(())
    }

    fn check_document_agrees(&self, step: &str) -> Result<(), String> {
        let document = snapshot(
            self.store()
                .document_items(&user_id(USER))
                .map_err(|e| e.to_string())?,
        );
        let table = self.items();
        if document != table {
            return Err(format!(
                "{step}: document and table disagree:\n document {document:?}\n table    {table:?}"
            ));
        }
        Ok(())
    }
}

fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    // Issue 17: keys in use must not change what converges.
    // One seed in eight: each paired exchange hands every message between two threads,
    // which on a loaded 2-core machine costs more than the exchange itself.
    let paired = seed
        .is_multiple_of(8)
        .then(|| headway::PairingKey::generate([user_id(USER)]).expect("a pairing key"));
    let dir = TempDir::new("long-lived");
    let count = 2 + rng.below(3) as usize;
    let contents: Vec<String> = (0..2 + rng.below(7)).map(|i| format!("do_{i}")).collect();
    let mut devices: Vec<Device> = (0..count)
        .map(|i| {
            let mut options = StoreOptions::new()
                .durability(Durability::ProcessCrash)
                .compact_after(1 + rng.below(6) as usize);
            if rng.below(3) == 0 {
                options = options.flush_after(1 + rng.below(5) as usize);
            }
            let path = dir.file(&format!("device-{i}.db"));
            let store = Store::open_with(&path, options.clone()).expect("open");
            Device {
                path,
                options,
                store: Some(store),
                seen: Snapshot::new(),
            }
        })
        .collect();
    let ids: Vec<String> = devices
        .iter()
        .map(|d| d.store().device_id().expect("device id"))
        .collect();
    let mut everything = Snapshot::new();
    let steps = 20 + rng.below(40);
    for step in 0..steps {
        let x = rng.below(count as u64) as usize;
        let mut y = rng.below(count as u64 - 1) as usize;
        if y >= x {
            y += 1;
        }
        let what = rng.below(100);
        let label = format!("step {step}");
        match what {
            // A record, often to a content another device is writing too.
            0..=44 => {
                let content = &contents[rng.below(contents.len() as u64) as usize];
                let status = rng.below(3) as i64;
                let progress = rng.below(101) as i64;
                let at = T0 + rng.below(1_000_000) as i64;
                let change = update(USER, content, status, progress, at);
                let recorded = *change.state();
                let key = change.key().clone();
                devices[x]
                    .store()
                    .record(change)
                    .map_err(|e| e.to_string())?;
                let joined = everything
                    .get(&key)
                    .map_or(recorded, |held| held.merge(&recorded));
                everything.insert(key, joined);
            }
            45..=52 => devices[x]
                .store()
                .flush(&user_id(USER))
                .map_err(|e| e.to_string())?,
            53..=58 => devices[x]
                .store()
                .compact(&user_id(USER))
                .map_err(|e| e.to_string())?,
            59..=63 => devices[x].restart(),
            // A file from x to y, whole or since what x knows of y.
            64..=81 => {
                let held = devices[x].items();
                let since = (rng.below(2) == 0).then_some(ids[y].as_str());
                let file = devices[x]
                    .store()
                    .peer_export(&user_id(USER), since)
                    .map_err(|e| format!("{label}: export: {e}"))?;
                devices[y]
                    .store()
                    .peer_import(&user_id(USER), &file)
                    .map_err(|e| format!("{label}: import from {x} into {y}: {e}"))?;
                covers(&devices[y].items(), &held)
                    .map_err(|e| format!("{label}: file {x} -> {y} lost a value: {e}"))?;
                devices[y].check_document_agrees(&label)?;
            }
            // A live exchange, x initiating.
            _ => {
                let (held_x, held_y) = (devices[x].items(), devices[y].items());
                match &paired {
                    Some(key) => exchange_paired(devices[x].store(), devices[y].store(), USER, key),
                    None => exchange(devices[x].store(), devices[y].store(), USER),
                }
                .map_err(|e| format!("{label}: live {x} <-> {y}: {e}"))?;
                covers(&devices[y].items(), &held_x)
                    .map_err(|e| format!("{label}: live {x} -> {y} lost a value: {e}"))?;
                covers(&devices[x].items(), &held_y)
                    .map_err(|e| format!("{label}: live {y} -> {x} lost a value: {e}"))?;
                devices[x].check_document_agrees(&label)?;
                devices[y].check_document_agrees(&label)?;
            }
        }
        for device in &mut devices {
            device.check_monotonic(&label)?;
        }
    }
    // A full round: everyone passes everything along a chain and back.
    exchange_along_the_chain_and_back(
        &devices.iter().map(Device::store).collect::<Vec<_>>(),
        USER,
    )?;
    for (i, device) in devices.iter_mut().enumerate() {
        let held = device.items();
        if held != everything {
            return Err(format!(
                "final: device {i} holds\n {held:?}\nnot the join of everything recorded\n {everything:?}"
            ));
        }
        device.check_document_agrees("final")?;
        device
            .store()
            .compact(&user_id(USER))
            .map_err(|e| e.to_string())?;
        device.restart();
        if device.items() != everything {
            return Err(format!(
                "final: device {i} lost a value to compaction and restart"
            ));
        }
    }
    Ok(())
}

#[test]
fn long_lived_devices_never_lose_a_value_and_always_converge() {
    support::run_seeds("HEADWAY_PEER_SEEDS", 200, run);
}
