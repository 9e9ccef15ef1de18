//! The Rust side of `bindings/node/bench`, in the same process as the JavaScript side: the
//! same calls through the core library, timed here. Built only with the `bench` feature, and
//! left out of the TypeScript types.

use std::time::Instant;

use headway::{ContentKey, Durability, StoreOptions};
use napi_derive::napi;

use crate::error::{guard, Failure};

/// What the core library did, timed in Rust.
#[napi(object, object_from_js = false)]
pub struct RustBaseline {
    /// Single `record`s per second (ProcessCrash durability, one transaction each).
    pub record_per_s: f64,
    /// `items` of every recorded item, the best of 5 reads, in ms.
    pub state_ms: f64,
    /// The first of those reads, in ms.
    pub first_state_ms: f64,
    /// One `record_batch` of `items` updates on a fresh store, in ms.
    pub record_batch_ms: f64,
}

fn update(user: &str, i: u32) -> Result<headway::ProgressUpdate, Failure> {
    let key = ContentKey::new(user, "do_course", "0130", format!("do_{i}"))?;
    Ok(headway::ProgressUpdate::new(
        key,
        headway::Status::InProgress,
        50,
    )?)
}

/// Records `items` updates one by one into a fresh store at `record_path`, reads them back,
/// and records them again in one batch into a fresh store at `batch_path`.
#[napi(skip_typescript)]
pub fn bench_rust_baseline(
    record_path: String,
    batch_path: String,
    user: String,
    items: u32,
) -> napi::Result<RustBaseline> {
    guard(|| {
        let options = || StoreOptions::new().durability(Durability::ProcessCrash);
        let store = headway::Store::open_with(record_path, options())?;
        let started = Instant::now();
        for i in 0..items {
            store.record(update(&user, i)?)?;
        }
        let record_per_s = f64::from(items) / started.elapsed().as_secs_f64();
        let user_id = headway::UserId::new(user.clone())?;
        let mut reads = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let read = store.items(&user_id, None)?;
            reads.push(started.elapsed().as_secs_f64() * 1e3);
            if read.len() != items as usize {
                return Err(Failure::invalid("the baseline read back fewer items"));
            }
        }
        let first_state_ms = reads[0];
        let state_ms = reads.iter().copied().fold(f64::INFINITY, f64::min);
        let batch = (0..items)
            .map(|i| update(&user, i))
            .collect::<Result<Vec<_>, _>>()?;
        let store = headway::Store::open_with(batch_path, options())?;
        let started = Instant::now();
        store.record_batch(batch)?;
        let record_batch_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(RustBaseline {
            record_per_s,
            state_ms,
            first_state_ms,
            record_batch_ms,
        })
    })
}
