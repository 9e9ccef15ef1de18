//! The Rust side of `bindings/bench`: `record` (ProcessCrash durability) and `state` of 10,000
//! items through the core library and through the facade called from Rust, printed as
//! `name value` lines the script sets next to the same calls made from Python.

use std::time::Instant;

use headway::{ContentKey, Durability, StoreOptions};

const ITEMS: usize = 10_000;
const USER: &str = "learner-bench";

fn items() -> usize {
    if std::env::var_os("HEADWAY_BENCH_QUICK").is_some() {
        1_000
    } else {
        ITEMS
    }
}

fn fresh(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = items();
    let dir = std::env::temp_dir().join(format!("headway-ffi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The core library.
    let core = headway::Store::open_with(
        fresh(&dir, "core.db"),
        StoreOptions::new().durability(Durability::ProcessCrash),
    )?;
    let started = Instant::now();
    for i in 0..n {
        let key = ContentKey::new(USER, "do_course", "0130", format!("do_{i}"))?;
        core.record(headway::ProgressUpdate::new(
            key,
            headway::Status::InProgress,
            50,
        )?)?;
    }
    let core_record = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let read = core.items(&headway::UserId::new(USER)?, None)?;
    let core_state = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(read.len(), n);

    // The facade, called from Rust: the conversions without a foreign language.
    let facade = headway_ffi::Store::new(
        fresh(&dir, "facade.db").display().to_string(),
        Some(headway_ffi::Durability::ProcessCrash),
    )?;
    let started = Instant::now();
    for i in 0..n {
        facade.record(headway_ffi::ProgressUpdate {
            user_id: USER.into(),
            course_id: "do_course".into(),
            batch_id: "0130".into(),
            content_id: format!("do_{i}"),
            status: headway_ffi::Status::InProgress,
            progress: 50,
            consumed_at_ms: None,
        })?;
    }
    let facade_record = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let read = facade.state(USER.into(), None)?;
    let facade_state = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(read.len(), n);

    println!("items {n}");
    println!("rust_record_per_s {core_record:.0}");
    println!("rust_state_ms {core_state:.2}");
    println!("facade_record_per_s {facade_record:.0}");
    println!("facade_state_ms {facade_state:.2}");
    drop((core, facade));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
