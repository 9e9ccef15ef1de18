//! `headway demo`: the offline progress story, told on a fresh temporary store.

use std::path::PathBuf;

use anyhow::Context;
use headway::{ContentKey, ProgressUpdate, Status, Store, Timestamp};

const LEARNER: &str = "learner-asha";
const COURSE: &str = "do_course_fractions";
const BATCH: &str = "0130000000000000001";

/// A progress bar of 20 cells for a percentage.
fn bar(percent: u8) -> String {
    let filled = usize::from(percent) / 5;
    format!(
        "[{}{}] {percent:>3}%",
        "#".repeat(filled),
        ".".repeat(20 - filled)
    )
}

fn temp_store_path() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "headway-demo-{}-{}",
        std::process::id(),
        Timestamp::now().as_millis()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join("device-a.db"))
}

fn show(store: &Store) -> anyhow::Result<()> {
    for item in store.items(LEARNER, Some(COURSE))? {
        let state = item.state();
        println!(
            "    {:<14} status {}  {}",
            item.key().content(),
            state.status().code(),
            bar(state.progress().get())
        );
    }
    Ok(())
}

/// Runs the demo; every step checks what it claims.
pub fn run() -> anyhow::Result<()> {
    let path = temp_store_path()?;
    println!("headway demo: offline course progress that never goes backwards");
    println!("store: {}\n", path.display());
    let store = Store::open(&path)?;
    let key = |content: &str| ContentKey::new(LEARNER, COURSE, BATCH, content);

    println!("1. The learner is offline and works through three contents.");
    store.record(ProgressUpdate::new(
        key("do_intro")?,
        Status::Completed,
        100,
    )?)?;
    store.record(ProgressUpdate::new(
        key("do_video")?,
        Status::InProgress,
        60,
    )?)?;
    store.record(ProgressUpdate::new(
        key("do_quiz")?,
        Status::InProgress,
        30,
    )?)?;
    show(&store)?;

    println!("\n2. A stale update arrives late (do_intro at 20%, from an old session).");
    let stale = ProgressUpdate::new(key("do_intro")?, Status::InProgress, 20)?.consumed_at(
        Timestamp::from_millis(Timestamp::now().as_millis() - 3_600_000)?,
    )?;
    let changed = store.record(stale)?;
    anyhow::ensure!(changed.is_none(), "a stale update changed the store");
    println!("   headway kept the higher state: nothing rolled back.");
    show(&store)?;

    println!("\n3. The app is killed and reopened: every recorded update is still there.");
    drop(store);
    let store = Store::open(&path)?;
    store.record(ProgressUpdate::new(
        key("do_video")?,
        Status::Completed,
        100,
    )?)?;
    show(&store)?;
    let intro = store
        .state(&key("do_intro")?)?
        .context("do_intro vanished")?;
    anyhow::ensure!(intro.progress().get() == 100, "do_intro rolled back");

    let pending = store.pending(LEARNER)?;
    println!(
        "\n{} content states wait for the next sync; none will be lost.",
        pending.len()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
    Ok(())
}
