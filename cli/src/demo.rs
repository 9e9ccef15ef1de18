//! `headway demo`: the offline progress story on two devices and an embedded reference course
//! service, told with progress bars. Every step checks what it claims.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context};
use headway::{
    Adapter, ContentKey, CoursesSource, PairingKey, PeerChannel, PeerMessage, PeerSession,
    ProgressUpdate, Role, Status, Store, SyncOptions, Timestamp,
};
use headway_sunbird::{
    CourseContext, PlayerEventOutcome, RecordPlayerEvent, StaticToken, SunbirdAdapter,
    SunbirdConfig, UserToken,
};
use headway_sunbird_server::{BatchStatus, Lag, ReferenceServer, ServerConfig};

use crate::courses::course_line;

const LEARNER: &str = "learner-asha";
const BATCH_FRACTIONS: &str = "0130000000000000001";
const BATCH_PLANTS: &str = "0130000000000000002";

/// A new folder of the demo's own, `headway-demo-<pid>-<16 random hex digits>`. The process id
/// says whose it is (`cli/tests/day_one.rs` looks for what a demo left); the OS's random source
/// makes the name unguessable, where the pid and the clock let another user of the shared temp
/// folder create it first. `create_dir` refuses a folder that exists, so the demo never works
/// in, and then deletes, a folder it did not make.
fn temp_dir() -> anyhow::Result<PathBuf> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("the OS's random source failed: {e}"))?;
    let unique: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("headway-demo-{}-{unique}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn adapter(url: &str) -> anyhow::Result<SunbirdAdapter> {
    let config = SunbirdConfig::new(url).attempts(1);
    Ok(SunbirdAdapter::new(
        config,
        Arc::new(StaticToken::new(UserToken::new("demo-token"))),
    )?)
}

fn show(store: &Store) -> anyhow::Result<()> {
    for course in store.courses(&headway::UserId::new(LEARNER)?)? {
        say!("     {}", course_line(&course))?;
    }
    Ok(())
}

/// A content player END event, as Sunbird's player sends it.
fn end_event(content: &str, summary: &str) -> String {
    format!(
        r#"{{"eid":"END","ets":{},"ver":"3.0","actor":{{"id":"{LEARNER}","type":"User"}},
        "context":{{"channel":"ORG_001","env":"contentplayer","pdata":{{"id":"prod.sunbird.app","ver":"4.10.0","pid":"sunbird.app.contentplayer"}}}},
        "object":{{"id":"{content}","type":"Content","ver":"1"}},
        "edata":{{"type":"content","mode":"play","pageid":"sunbird-player-Endpage","summary":{summary}}}}}"#,
        Timestamp::now().as_millis()
    )
}

fn context(course: &str, batch: &str, mime: &str) -> headway::Result<CourseContext> {
    Ok(CourseContext {
        user_id: LEARNER.try_into()?,
        course_id: course.try_into()?,
        batch_id: batch.try_into()?,
        batch_status: Some(1),
        mime_type: Some(mime.into()),
    })
}

/// Completion percentages by course id, sorted.
fn by_course(courses: &[headway::EnrolledCourse]) -> Vec<(&str, u32)> {
    let mut all: Vec<(&str, u32)> = courses
        .iter()
        .map(|c| (c.course_id.as_str(), c.completion_percentage))
        .collect();
    all.sort_unstable();
    all
}

pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = TempFolder(temp_dir()?);
    // Interrupted, failed, or stdout closed: the folder goes on every path (the guard also
    // covers a panic).
    runtime.block_on(async {
        tokio::select! {
            told = story(&dir.0) => told,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    })
}

/// The demo's temporary folder, removed when dropped.
struct TempFolder(PathBuf);

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn story(dir: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let learner = headway::UserId::new(LEARNER)?;
    say!("headway demo: course progress that moves offline and never goes backwards\n")?;
    // The course list's progress lags a minute behind updates, as Sunbird's does.
    let lag = Lag {
        progress_ms: 60_000,
        list_cache_ms: 60_000,
    };
    let server = ReferenceServer::start(ServerConfig::new("127.0.0.1:0").lag(lag)).await?;
    let service = server.service();
    let fractions: Vec<String> = (1..=4).map(|i| format!("do_fractions_{i}")).collect();
    let plants: Vec<String> = (1..=3).map(|i| format!("do_plants_{i}")).collect();
    service.put_course("do_fractions", "Fractions", &fractions)?;
    service.put_course("do_plants", "Photosynthesis", &plants)?;
    service.put_batch(BATCH_FRACTIONS, "do_fractions", BatchStatus::Ongoing)?;
    service.put_batch(BATCH_PLANTS, "do_plants", BatchStatus::Ongoing)?;
    let now = Timestamp::now().as_millis();
    service.enrol(LEARNER, "do_fractions", BATCH_FRACTIONS, now)?;
    service.enrol(LEARNER, "do_plants", BATCH_PLANTS, now + 1)?;
    say!(
        "A reference course service (Sunbird's endpoints and rules) runs on {}.",
        server.url()
    )?;
    say!("{LEARNER} is enrolled in two courses and uses a phone and a tablet.\n")?;

    let phone = Store::open(dir.join("phone.db"))?;
    let tablet = Store::open(dir.join("tablet.db"))?;
    let online = adapter(server.url())?;
    // No network: nothing listens on this port.
    let unreachable = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", probe.local_addr()?);
        drop(probe);
        adapter(&url)?
    };
    let options = SyncOptions::new();

    say!("1. The phone is online and loads the learner's courses.")?;
    let answer = phone.refresh_courses(&learner, &online, &options).await?;
    ensure!(
        answer.source == CoursesSource::Server,
        "the first refresh did not reach the server"
    );
    show(&phone)?;

    say!("\n2. The phone goes offline. The learner finishes two Fractions videos and reads a")?;
    say!("   Photosynthesis PDF to the end; the player's END events are recorded on the phone.")?;
    let video = context("do_fractions", BATCH_FRACTIONS, "video/mp4")?;
    let pdf = context("do_plants", BATCH_PLANTS, "application/pdf")?;
    let watched = r#"[{"progress":100},{"totallength":312},{"visitedlength":312},{"visitedcontentend":true}]"#;
    let read = r#"[{"progress":100},{"endpageseen":true}]"#;
    for (event, ctx) in [
        (end_event(&fractions[0], watched), &video),
        (end_event(&fractions[1], watched), &video),
        (end_event(&plants[0], read), &pdf),
    ] {
        let outcome = phone.record_player_event(event.as_bytes(), ctx)?;
        ensure!(
            matches!(outcome, PlayerEventOutcome::Recorded(Some(_))),
            "an END event recorded nothing"
        );
    }
    let offline = phone
        .refresh_courses(&learner, &unreachable, &options)
        .await?;
    if let CoursesSource::Cache { cause } = &offline.source {
        say!("   (the refresh cannot reach the server: {cause}; the cached list answers)")?;
    }
    show(&phone)?;
    let percentages = by_course(&offline.courses);
    ensure!(
        percentages == [("do_fractions", 50), ("do_plants", 33)],
        "offline progress bars did not move: {percentages:?}"
    );
    say!(
        "   {} content states wait for the network; none can be lost.",
        phone.pending(&learner)?.len()
    )?;

    say!("\n3. The network is back: one bulk request carries all of them.")?;
    let report = phone.sync(&learner, &online, &options).await?;
    say!(
        "   sync: sent {}, acknowledged {}, rejected {}, in {} request(s)",
        report.sent,
        report.acknowledged,
        report.rejected.len(),
        report.requests
    )?;
    ensure!(
        report.acknowledged == 3 && report.requests == 1,
        "the bulk sync did not go through"
    );

    say!("\n4. The tablet refreshes. The server's course list still lags (its progress job")?;
    say!("   runs later), but the tablet reads the content states and merges them in.")?;
    let listed = online.enrolled_courses(&learner).await?;
    for course in &listed {
        say!(
            "     server's list: {:<14} {:>3}%",
            course
                .fields
                .get("courseName")
                .and_then(|v| v.as_str())
                .unwrap_or(&course.course_id),
            course.completion_percentage
        )?;
    }
    let answer = tablet.refresh_courses(&learner, &online, &options).await?;
    show(&tablet)?;
    let on_tablet = by_course(&answer.courses);
    ensure!(
        on_tablet == percentages,
        "the tablet did not see the phone's progress: {on_tablet:?}"
    );

    say!("\n5. A stale update arrives late on the tablet: an old session's 20% on a video the")?;
    say!("   learner finished. Nothing rolls back, on the tablet or on the server.")?;
    let old = Timestamp::from_millis(Timestamp::now().as_millis() - 86_400_000)?;
    let key = ContentKey::new(LEARNER, "do_fractions", BATCH_FRACTIONS, &fractions[0])?;
    let stale = ProgressUpdate::new(key.clone(), Status::InProgress, 20)?.consumed_at(old)?;
    ensure!(
        tablet.record(stale)?.is_none(),
        "a stale update changed the tablet"
    );
    tablet.sync(&learner, &online, &options).await?;
    let on_server = online
        .read_states(&learner, key.course(), key.batch())
        .await?;
    let held = on_server
        .iter()
        .find(|item| item.key().content() == fractions[0])
        .map(|item| item.state().status());
    ensure!(
        held == Some(Status::Completed),
        "the server rolled back: {held:?}"
    );
    say!(
        "     tablet: {} is still completed; server: still completed.",
        fractions[0]
    )?;
    show(&tablet)?;

    server.shutdown().await;
    paired_devices(dir, &phone, &tablet, &fractions[2])?;
    say!(
        "\nDone in {:.2} s: nothing lost, nothing rolled back.",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// Step 6: no server at all. The phone and the tablet pair once, then sync live over an
/// encrypted connection on 127.0.0.1; a device holding another key gets nothing.
fn paired_devices(
    dir: &std::path::Path,
    phone: &Store,
    tablet: &Store,
    content: &str,
) -> anyhow::Result<()> {
    say!("\n6. No server at all: the phone and the tablet pair once (`headway peer pair`), then")?;
    say!("   sync directly over an encrypted connection. A device without the key gets nothing.")?;
    let learner = headway::UserId::new(LEARNER)?;
    let key = PairingKey::generate([learner.clone()])?;
    key.write_new(&dir.join("asha.key"))?;
    let key_id = key.id();
    let finished = ContentKey::new(LEARNER, "do_fractions", BATCH_FRACTIONS, content)?;
    phone.record(ProgressUpdate::new(
        finished.clone(),
        Status::Completed,
        100,
    )?)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stranger = PairingKey::generate([learner.clone()])?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let keys = [key.clone()];
        let serving = scope.spawn(move || -> anyhow::Result<usize> {
            let mut answered = 0;
            // The stranger first, then the paired phone.
            for _ in 0..2 {
                let (stream, _) = listener.accept()?;
                let Ok((mut channel, _)) = PeerChannel::accept(stream, &keys)? else {
                    continue;
                };
                let mut session = PeerSession::new(&learner, Role::Responder);
                while let Some(message) = PeerMessage::read_framed(&mut channel)? {
                    for reply in session.handle(tablet, message?)? {
                        reply.write_framed(&mut channel)?;
                    }
                }
                answered += 1;
            }
            Ok(answered)
        });
        let refused = PeerChannel::connect(std::net::TcpStream::connect(addr)?, &stranger)?;
        ensure!(refused.is_err(), "a device with another key was let in");
        say!("     a device with another key: refused (the tablet does not hold it)")?;
        let mut channel = PeerChannel::connect(std::net::TcpStream::connect(addr)?, &key)??;
        let mut session = PeerSession::new(&headway::UserId::new(LEARNER)?, Role::Initiator);
        let mut outgoing = vec![session.start(phone)?];
        while let Some(message) = outgoing.pop() {
            message.write_framed(&mut channel)?;
            let reply = PeerMessage::read_framed(&mut channel)?.context("the tablet hung up")??;
            outgoing.extend(session.handle(phone, reply)?);
        }
        drop(channel);
        let answered = serving
            .join()
            .map_err(|_| anyhow::anyhow!("the tablet's side panicked"))??;
        ensure!(answered == 1, "the tablet answered {answered} exchanges");
        Ok(())
    })?;
    ensure!(
        tablet.state(&finished)?.map(|s| s.status()) == Some(Status::Completed),
        "the paired exchange did not reach the tablet"
    );
    say!("     paired with key {key_id}: the tablet holds {content} completed, no server needed.")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_demo_folder_is_new_unguessable_and_named_for_the_process() {
        let (first, second) = (temp_dir().unwrap(), temp_dir().unwrap());
        // With the pid and the clock as the name, two folders made in one millisecond were
        // one folder, and the second `create_dir_all` took it without a word.
        assert_ne!(first, second);
        let prefix = format!("headway-demo-{}-", std::process::id());
        for dir in [&first, &second] {
            let name = dir.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(&prefix), "{name}");
            assert_eq!(name.len() - prefix.len(), 16, "{name}");
            std::fs::remove_dir(dir).unwrap();
        }
    }
}
