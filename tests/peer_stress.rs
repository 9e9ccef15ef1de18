//! Review of issue 9 (hostile tester): the long-lived randomized peer test, made harsher.
//! Besides what `peer_long_lived` does, devices here also: import *old* files (kept from
//! earlier steps, possibly from before either side compacted or re-entered an epoch, possibly
//! the same file twice), abandon live exchanges part-way (the transport drops after a random
//! number of messages; what was delivered was handled), and run steps through a *second*
//! handle on the same store file (another process would). After every step no state went
//! down; after every completed exchange or import the receiver covers what the sender held;
//! document and table agree; at the end a full round of live exchanges converges.
//!
//! `HEADWAY_REVIEW_SEEDS=N` (default 100), `HEADWAY_SEED=N` replays one seed.
#![cfg(test)]

mod support;

use std::path::PathBuf;

use headway::{Durability, Store, StoreOptions};
use support::{
    covers, exchange, exchange_along_the_chain_and_back, exchange_cut_after, snapshot, update,
    user_id, Rng, Snapshot, TempDir,
};

const T0: i64 = 1_714_558_530_123;
const USER: &str = "u";

struct Device {
    path: PathBuf,
    options: StoreOptions,
    stores: [Option<Store>; 2],
    seen: Snapshot,
}

impl Device {
    fn store(&self) -> &Store {
        self.stores[0].as_ref().expect("open")
    }
    fn handle(&self, which: usize) -> &Store {
        self.stores[which].as_ref().expect("open")
    }
    fn restart(&mut self, which: usize) {
        self.stores[which] = None;
        self.stores[which] =
            Some(Store::open_with(&self.path, self.options.clone()).expect("reopen"));
    }
    fn items(&self) -> Snapshot {
        snapshot(self.store().items(&user_id(USER), None).expect("items"))
    }
    fn check_monotonic(&mut self, step: &str) -> Result<(), String> {
        let now = self.items();
        covers(&now, &self.seen).map_err(|e| format!("{step}: a state went down: {e}"))?;
        self.seen = now;
        Ok(())
    }
    fn check_document_agrees(&self, step: &str, which: usize) -> Result<(), String> {
        let document = snapshot(
            self.handle(which)
                .document_items(&user_id(USER))
                .map_err(|e| format!("{step}: document_items: {e}"))?,
        );
        let table = self.items();
        if document != table {
            return Err(format!(
                "{step}: document and table disagree (handle {which}):\n document {document:?}\n table    {table:?}"
            ));
        }
        Ok(())
    }
}

fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let dir = TempDir::new("review-stress");
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
            let first = Store::open_with(&path, options.clone()).expect("open");
            let second = std::env::var("HEADWAY_REVIEW_ONE_HANDLE")
                .is_err()
                .then(|| Store::open_with(&path, options.clone()).expect("open"));
            Device {
                path,
                options,
                stores: [Some(first), second],
                seen: Snapshot::new(),
            }
        })
        .collect();
    let ids: Vec<String> = devices
        .iter()
        .map(|d| d.store().device_id().expect("device id"))
        .collect();
    // Old files: (sender, intended receiver if a since-peer file, bytes, what the sender held).
    let mut files: Vec<(usize, Option<usize>, Vec<u8>, Snapshot)> = Vec::new();
    let mut everything = Snapshot::new();
    let steps = 20 + rng.below(50);
    for step in 0..steps {
        let x = rng.below(count as u64) as usize;
        let mut y = rng.below(count as u64 - 1) as usize;
        if y >= x {
            y += 1;
        }
        // `HEADWAY_REVIEW_ONE_HANDLE` keeps every step on the first handle (to look past the
        // faults a second handle shows).
        let one = std::env::var("HEADWAY_REVIEW_ONE_HANDLE").is_ok();
        let hx = if one { 0 } else { rng.below(2) as usize };
        let hy = if one { 0 } else { rng.below(2) as usize };
        let what = rng.below(100);
        let label = format!("step {step} (op {what}, x {x}/{hx}, y {y}/{hy})");
        match what {
            0..=37 => {
                let content = &contents[rng.below(contents.len() as u64) as usize];
                let status = rng.below(3) as i64;
                let progress = rng.below(101) as i64;
                let at = T0 + rng.below(1_000_000) as i64;
                let change = update(USER, content, status, progress, at);
                let recorded = *change.state();
                let key = change.key().clone();
                devices[x]
                    .handle(hx)
                    .record(change)
                    .map_err(|e| format!("{label}: record: {e}"))?;
                let joined = everything
                    .get(&key)
                    .map_or(recorded, |held| held.merge(&recorded));
                everything.insert(key, joined);
            }
            38..=43 => devices[x]
                .handle(hx)
                .flush(&user_id(USER))
                .map_err(|e| format!("{label}: flush: {e}"))?,
            44..=49 => devices[x]
                .handle(hx)
                .compact(&user_id(USER))
                .map_err(|e| format!("{label}: compact: {e}"))?,
            50..=53 => devices[x].restart(hx),
            54..=65 => {
                let held = devices[x].items();
                let since = (rng.below(2) == 0).then_some(ids[y].as_str());
                let file = devices[x]
                    .handle(hx)
                    .peer_export(&user_id(USER), since)
                    .map_err(|e| format!("{label}: export: {e}"))?;
                files.push((x, since.map(|_| y), file.clone(), held.clone()));
                devices[y]
                    .handle(hy)
                    .peer_import(&user_id(USER), &file)
                    .map_err(|e| format!("{label}: import from {x} into {y}: {e}"))?;
                covers(&devices[y].items(), &held)
                    .map_err(|e| format!("{label}: file {x} -> {y} lost a value: {e}"))?;
                devices[y].check_document_agrees(&label, hy)?;
            }
            // An old file, into any device but its sender.
            66..=73 if !files.is_empty() => {
                let (from, meant, file, held) = &files[rng.below(files.len() as u64) as usize];
                let to = if *from == y { x } else { y };
                // A since-peer file given to another device carries only part of the sender's
                // values: it must apply (or be refused) without harm, but need not cover them.
                let complete = meant.is_none_or(|m| m == to);
                devices[to]
                    .handle(hy)
                    .peer_import(&user_id(USER), file)
                    .map_err(|e| format!("{label}: old file from {from} into {to}: {e}"))?;
                if complete {
                    covers(&devices[to].items(), held).map_err(|e| {
                        format!("{label}: old file {from} -> {to} lost a value: {e}")
                    })?;
                }
                devices[to].check_document_agrees(&label, hy)?;
            }
            // A live exchange cut part-way.
            74..=84 => {
                let cut = 1 + rng.below(6) as usize;
                exchange_cut_after(
                    devices[x].handle(hx),
                    devices[y].handle(hy),
                    USER,
                    Some(cut),
                )
                .map_err(|e| format!("{label}: cut live {x} <-> {y}: {e}"))?;
                devices[x].check_document_agrees(&label, hx)?;
                devices[y].check_document_agrees(&label, hy)?;
            }
            _ => {
                let (held_x, held_y) = (devices[x].items(), devices[y].items());
                exchange(devices[x].handle(hx), devices[y].handle(hy), USER)
                    .map_err(|e| format!("{label}: live {x} <-> {y}: {e}"))?;
                covers(&devices[y].items(), &held_x)
                    .map_err(|e| format!("{label}: live {x} -> {y} lost a value: {e}"))?;
                covers(&devices[x].items(), &held_y)
                    .map_err(|e| format!("{label}: live {y} -> {x} lost a value: {e}"))?;
                devices[x].check_document_agrees(&label, hx)?;
                devices[y].check_document_agrees(&label, hy)?;
            }
        }
        for (i, device) in devices.iter_mut().enumerate() {
            device.check_monotonic(&label)?;
            // What is stored must load: a fresh handle (a restart) reads the document.
            if std::env::var("HEADWAY_REVIEW_FRESH").is_ok() {
                let fresh = Store::open_with(&device.path, device.options.clone())
                    .map_err(|e| format!("{label}: device {i}: reopen: {e}"))?;
                fresh.document_items(&user_id(USER)).map_err(|e| {
                    format!("{label}: device {i}: the stored document does not load: {e}")
                })?;
            }
        }
    }
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
        device.check_document_agrees("final", 0)?;
        if device.stores[1].is_some() {
            device.check_document_agrees("final", 1)?;
        }
        device
            .store()
            .compact(&user_id(USER))
            .map_err(|e| format!("final: device {i}: compact: {e}"))?;
        device.restart(0);
        if device.items() != everything {
            return Err(format!(
                "final: device {i} lost a value to compaction and restart"
            ));
        }
    }
    Ok(())
}

#[test]
fn harsh_long_lived_devices_with_old_files_cut_exchanges_and_two_handles_never_lose_a_value() {
    support::run_seeds("HEADWAY_REVIEW_SEEDS", 100, run);
}
