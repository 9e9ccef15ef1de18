//! `headway peer`: device-to-device sync of a learner's progress, through a file (a USB stick
//! between a school server and phones) or live over TCP between two processes. Live peers
//! pair first (`peer pair`, `--key`): see `peer/pairing.rs`.

mod deadline;
mod pairing;
mod slots;
mod store_thread;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use headway::{Charge, FrameLimit, MemoryBudget, PeerMessage, PeerSession, Role, UserId};
use pairing::Scope;

use crate::{existing_store, open_store, ui, Failure};
use deadline::{DeadlineArgs, DeadlinePassed, DeadlineStream};
use slots::{Slot, Slots};
use store_thread::StoreThread;

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Make a pairing key for some learners: both devices hold it to sync them.
    Pair(pairing::PairArgs),
    /// Write what a peer lacks (or the whole document) to a file.
    Export(ExportArgs),
    /// Merge a peer's file into this device's store.
    Import(ImportArgs),
    /// Answer live sync exchanges on a TCP address.
    Serve(ServeArgs),
    /// Sync live with a device that runs `headway peer serve`.
    Connect(ConnectArgs),
    /// Print this device's id (what peers pass as --since-peer).
    Id,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// Only what this peer device lacks, if this device knows what it holds.
    #[arg(long)]
    since_peer: Option<String>,
    /// Seal the file with this pairing key (it must cover --user): only its holder opens it.
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The learner (userId).
    #[arg(long)]
    user: String,
    /// The file a peer exported.
    file: PathBuf,
    /// The pairing key a sealed file was sealed with (it must cover --user).
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Where to listen (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:9100")]
    addr: String,
    /// Only exchanges for this learner (default: any learner a peer names).
    #[arg(long)]
    user: Option<String>,
    /// Stop after this many exchanges: connections that synced at least one learner (a refused
    /// or silent connection does not count). Default: serve until killed.
    #[arg(long)]
    exchanges: Option<usize>,
    #[command(flatten)]
    deadlines: DeadlineArgs,
    /// A pairing key (from `headway peer pair`) peers must hold; repeat for several. A
    /// connection touches only its key's learners.
    #[arg(long, value_name = "KEYFILE")]
    key: Vec<PathBuf>,
    /// Serve anyone, in clear, without a key: only on a loopback address (tests, demos).
    #[arg(long)]
    no_auth: bool,
    /// Memory, in MiB, that messages in flight may take on all connections together (past
    /// each message's first 64 KiB); a message past it is refused and its connection closed.
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    memory_budget: usize,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// The peer's address, e.g. 127.0.0.1:9100.
    addr: String,
    /// Only this learner (default: every learner either device holds that the key covers).
    #[arg(long)]
    user: Option<String>,
    #[command(flatten)]
    deadlines: DeadlineArgs,
    /// The pairing key both devices hold (without it, only a `--no-auth` peer answers).
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
}

pub fn run(db: &Path, command: PeerCommand) -> Result<(), Failure> {
    match command {
        PeerCommand::Export(args) => {
            let user = UserId::new(args.user.clone())?;
            let key = args.key.as_deref().map(pairing::read_key).transpose()?;
            if let Some(key) = &key {
                pairing::check_covers(key, &user)?;
            }
            let store = existing_store(db)?;
            let file = match &key {
                Some(key) => store.peer_export_sealed(&user, args.since_peer.as_deref(), key)?,
                None => store.peer_export(&user, args.since_peer.as_deref())?,
            };
            std::fs::write(&args.out, &file)
                .with_context(|| format!("writing {}", args.out.display()))?;
            say!(
                "exported {} bytes of {}'s progress from device {} to {}",
                file.len(),
                args.user,
                store.device_id()?,
                args.out.display()
            )?;
            Ok(())
        }
        PeerCommand::Import(args) => {
            let user = UserId::new(args.user.clone())?;
            let key = args.key.as_deref().map(pairing::read_key).transpose()?;
            if let Some(key) = &key {
                pairing::check_covers(key, &user)?;
            }
            let bytes = std::fs::read(&args.file)
                .map_err(|e| Failure::Input(format!("cannot read {}: {e}", args.file.display())))?;
            let created = !db.exists();
            let store = open_store(db)?;
            let spinner = ui::spinner(true, format!("merging {}'s progress", args.user));
            let imported = match &key {
                Some(key) => store.peer_import_sealed(&user, &bytes, key),
                None => store.peer_import(&user, &bytes),
            }
            .map_err(refused);
            spinner.finish_and_clear();
            if created && matches!(imported, Err(Failure::Input(_))) {
                // A refused file creates nothing: the store this command made goes again.
                drop(store);
                remove_new_store(db);
            }
            imported?;
            say!(
                "imported {}'s progress from {}",
                args.user,
                args.file.display()
            )?;
            Ok(())
        }
        PeerCommand::Pair(args) => pairing::pair(args),
        PeerCommand::Serve(args) => serve(db, args),
        PeerCommand::Connect(args) => connect(db, args),
        PeerCommand::Id => {
            say!("{}", open_store(db)?.device_id()?)?;
            Ok(())
        }
    }
}

/// Removes a store file this command created (and SQLite's companions), best effort.
fn remove_new_store(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

/// Bytes a peer sent that were refused are bad input (exit 2): nothing was changed.
fn refused(e: headway::Error) -> Failure {
    match e {
        // A busy peer is unavailable for now (exit 3, try again), not a refusal of our input.
        headway::Error::PeerMessage { ref reason } if slots::is_busy(reason) => {
            Failure::Unavailable(e.to_string())
        }
        headway::Error::PeerMessage { .. }
        | headway::Error::CorruptDocument { .. }
        | headway::Error::NotPaired { .. } => Failure::Input(e.to_string()),
        other => other.into(),
    }
}

fn write_frame(stream: &mut impl Write, message: &PeerMessage) -> anyhow::Result<usize> {
    Ok(message.write_framed(stream)?)
}

/// Why bytes on a peer connection are not a headway peer's.
#[derive(Debug)]
struct NotAPeer(String);

impl std::fmt::Display for NotAPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a headway peer: {}", self.0)
    }
}

impl std::error::Error for NotAPeer {}

/// One message within `limit`, or `None` at a clean end of stream (the framing is
/// `PeerMessage`'s). Bytes that are not a headway peer's framing are a [`NotAPeer`].
fn read_frame(stream: &mut impl Read, limit: FrameLimit) -> anyhow::Result<Option<PeerMessage>> {
    let budget = MemoryBudget::unlimited();
    Ok(read_charged_frame(stream, limit, &budget)?.map(|(message, _charge)| message))
}

/// [`read_frame`], charging `budget` (shared by every connection) as the frame arrives and its
/// payload inflates; the message comes with its charge, to hold while it is handled.
fn read_charged_frame(
    stream: &mut impl Read,
    limit: FrameLimit,
    budget: &MemoryBudget,
) -> anyhow::Result<Option<(PeerMessage, Charge)>> {
    match PeerMessage::read_framed_budgeted(stream, limit, budget) {
        Ok(message) => Ok(message.transpose()?),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(NotAPeer(e.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}

fn serve(db: &Path, args: ServeArgs) -> Result<(), Failure> {
    let only = args.user.clone().map(UserId::new).transpose()?;
    // Pairing before listening: a device never serves unauthenticated by mistake.
    let auth = std::sync::Arc::new(pairing::serve_auth(&args.key, args.no_auth, &args.addr)?);
    if let (Some(user), pairing::Auth::Paired(keys)) = (&only, auth.as_ref()) {
        // Serving a learner no key covers would refuse every peer: say so before listening.
        if !keys.iter().any(|key| key.covers(user)) {
            return Err(Failure::Input(format!(
                "--user {user}: none of the --key files covers that learner"
            )));
        }
    }
    // Listening first: an --addr that cannot be listened on creates no store.
    let listener = TcpListener::bind(&args.addr)
        .map_err(|e| Failure::Input(format!("--addr {:?}: cannot listen there: {e}", args.addr)))?;
    let store = std::sync::Arc::new(open_store(db)?);
    let store = StoreThread::start(store).map_err(anyhow::Error::from)?;
    say!(
        "headway peer sync listening on {}",
        listener.local_addr().map_err(anyhow::Error::from)?
    )?;
    let mut workers = Vec::new();
    let deadlines = args.deadlines.deadlines();
    let slots = Slots::default();
    // One budget for every connection: many bombs together stay within it (issue 17).
    let budget = MemoryBudget::new(args.memory_budget.saturating_mul(1024 * 1024));
    // Only exchanges that happened count towards --exchanges: a stranger refused at the
    // pairing handshake, a probe that says nothing, or a dropped connection does not end the
    // serving (issue 17). The worker that completes the last one wakes the accept loop.
    let exchanged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let wake = listener
        .local_addr()
        .map(waking_address)
        .map_err(anyhow::Error::from)?;
    let enough = |done: usize| args.exchanges.is_some_and(|n| done >= n);
    for stream in listener.incoming() {
        if enough(exchanged.load(std::sync::atomic::Ordering::SeqCst)) {
            break;
        }
        workers.retain(|worker: &std::thread::JoinHandle<()>| !worker.is_finished());
        match stream.and_then(|stream| Ok((slots.admit(&stream)?, stream))) {
            Ok(((mut slot, dropped), stream)) => {
                if let Some(dropped) = dropped {
                    note!(
                        "headway: peer {dropped} dropped: {}",
                        slots::NoSlot::Dropped
                    );
                }
                // One thread per connection, each in a bounded pool (see `slots`) and bounded
                // by the deadlines: a slow or idle peer never blocks the others, and many
                // cannot exhaust memory.
                let store = store.clone();
                let only = only.clone();
                let auth = auth.clone();
                let budget = budget.clone();
                let exchanged = exchanged.clone();
                let wanted = args.exchanges;
                workers.push(std::thread::spawn(move || {
                    let name = slots::peer_name(&stream);
                    let stream = DeadlineStream::new(stream, deadlines);
                    let (mut stream, scope) = match pairing::accept(stream, &auth) {
                        Ok(paired) => paired,
                        // Dropped to admit a newer connection: logged then.
                        Err(_) if slot.was_dropped() => return,
                        Err(error) => {
                            note!("headway: peer {name} refused: {error:#}");
                            return;
                        }
                    };
                    match answer(
                        &store,
                        &mut stream,
                        only.as_ref(),
                        &scope,
                        &mut slot,
                        &budget,
                    ) {
                        Ok(false) => {}
                        Ok(true) => {
                            let done = exchanged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            if wanted.is_some_and(|n| done + 1 >= n) {
                                // Unblocks the accept loop, which then sees the count.
                                let _ = TcpStream::connect_timeout(
                                    &wake,
                                    std::time::Duration::from_secs(1),
                                );
                            }
                        }
                        // Dropped to admit a newer connection: logged then.
                        Err(_) if slot.was_dropped() => {}
                        Err(error) => {
                            // Say why before closing, so the other side reports the real reason.
                            let reason = format!("{error:#}");
                            let _ = write_frame(&mut stream, &PeerMessage::Refused(reason));
                            note!("headway: peer exchange with {name} abandoned: {error:#}");
                        }
                    }
                    drop(slot);
                }));
            }
            Err(error) => note!("headway: peer connection failed: {error}"),
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// Where a worker connects to wake the accept loop: the listening address, with an
/// unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
fn waking_address(mut listening: std::net::SocketAddr) -> std::net::SocketAddr {
    if listening.ip().is_unspecified() {
        listening.set_ip(match listening {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    listening
}

/// Answers one connection: every message gets exactly one reply. A hello starts an exchange
/// for the learner it names; one connection may carry exchanges for several learners, each
/// only for a learner its `scope` (the pairing key) covers. Its first message moves it from the
/// opening pool to an exchange `slot`; until a hello, frames are small and nothing inflates
/// ([`FrameLimit::Opening`]). Every message is charged to `budget`, shared by every connection,
/// until its replies are written. True when the connection ended cleanly after an exchange for
/// at least one learner.
fn answer(
    store: &StoreThread,
    stream: &mut (impl Read + Write),
    only: Option<&UserId>,
    scope: &Scope,
    slot: &mut Slot,
    budget: &MemoryBudget,
) -> anyhow::Result<bool> {
    let mut session: Option<PeerSession> = None;
    let limit = |session: &Option<PeerSession>| match session {
        Some(_) => FrameLimit::Exchange,
        None => FrameLimit::Opening,
    };
    while let Some((message, _charge)) = read_charged_frame(stream, limit(&session), budget)? {
        slot.start_exchange()?;
        let replies = match message {
            PeerMessage::ListLearners => {
                let learners = store
                    .run(|store| store.learners())??
                    .into_iter()
                    .filter(|u| only.is_none_or(|o| o == u) && scope.allows(u))
                    .collect();
                vec![PeerMessage::Learners(learners)]
            }
            PeerMessage::Hello(hello) => {
                if only.is_some_and(|u| *u != hello.user) {
                    let only = only.map_or("", |u| u.as_str());
                    anyhow::bail!("this device serves only learner {only:?}");
                }
                if !scope.allows(&hello.user) {
                    anyhow::bail!("{}", scope.refusal(&hello.user));
                }
                let fresh = PeerSession::new(&hello.user, Role::Responder);
                step(store, &mut session, fresh, PeerMessage::Hello(hello))?
            }
            other => match session.take() {
                Some(current) => step(store, &mut session, current, other)?,
                None => anyhow::bail!("the peer did not start with a hello"),
            },
        };
        for reply in replies {
            write_frame(stream, &reply)?;
        }
    }
    Ok(session.is_some())
}

/// One step of `current`'s exchange on the store's thread; the session comes back into
/// `session` whatever the step's outcome.
fn step(
    store: &StoreThread,
    session: &mut Option<PeerSession>,
    mut current: PeerSession,
    message: PeerMessage,
) -> anyhow::Result<Vec<PeerMessage>> {
    let (current, replies) = store.run(move |store| {
        let replies = current.handle(store, message);
        (current, replies)
    })?;
    *session = Some(current);
    Ok(replies?)
}

/// One request, one reply, with the peer at `peer` (its address as the user gave it: once a
/// connection is reset the socket no longer knows it).
fn ask(
    stream: &mut (impl Read + Write),
    peer: &str,
    message: &PeerMessage,
    bytes: &mut usize,
) -> Result<PeerMessage, Failure> {
    *bytes += write_frame(stream, message).map_err(|e| peer_failure(peer, e))?;
    let reply = match read_frame(stream, FrameLimit::Exchange) {
        Ok(Some(reply)) => reply,
        Ok(None) => {
            return Err(Failure::Unavailable(format!(
                "the peer {peer} closed the connection"
            )))
        }
        Err(e) => return Err(peer_failure(peer, e)),
    };
    *bytes += reply.encode().len();
    Ok(reply)
}

/// How a failed exchange with a live peer exits: bytes that are not a headway peer's or a
/// refused message are refused input (2, nothing changed); a peer that passes a deadline, resets
/// the connection or closes it mid-message is unavailable (3, never a bare OS error with exit
/// 1, and never a write error taken for a closed stdout).
fn peer_failure(peer: &str, error: anyhow::Error) -> Failure {
    let error = match error.downcast::<NotAPeer>() {
        Ok(NotAPeer(why)) => return Failure::Input(format!("{peer} is not a headway peer: {why}")),
        Err(error) => error,
    };
    let error = match error.downcast::<headway::Error>() {
        Ok(e) => return refused(e),
        Err(error) => error,
    };
    if let Some(passed) = DeadlinePassed::in_chain(&error) {
        return Failure::Unavailable(format!("the peer {peer}: {passed}"));
    }
    let timed_out = error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        })
    });
    if timed_out {
        Failure::Unavailable(format!("the peer {peer} did not answer in time"))
    } else {
        Failure::Unavailable(format!("the peer {peer}: {error:#}"))
    }
}

fn connect(db: &Path, args: ConnectArgs) -> Result<(), Failure> {
    let only = args.user.clone().map(UserId::new).transpose()?;
    let key = args.key.as_deref().map(pairing::read_key).transpose()?;
    if let (Some(key), Some(user)) = (&key, &only) {
        pairing::check_covers(key, user)?;
    }
    let store = open_store(db)?;
    let deadlines = args.deadlines.deadlines();
    let stream = connect_within(&args.addr, deadlines.handshake.min(deadlines.exchange))
        .map_err(|e| Failure::Unavailable(format!("cannot connect to {}: {e}", args.addr)))?;
    let stream = DeadlineStream::new(stream, deadlines);
    let (mut stream, scope) = pairing::open(stream, key.as_ref(), &args.addr)?;
    let mut bytes = 0usize;
    let learners = match only {
        Some(user) => vec![user],
        None => {
            let mut all = store.learners()?;
            match ask(
                &mut stream,
                &args.addr,
                &PeerMessage::ListLearners,
                &mut bytes,
            )? {
                // Both ends keep to the key: what the peer lists beyond it is not asked for.
                PeerMessage::Learners(theirs) => all.extend(theirs),
                PeerMessage::Refused(reason) if slots::is_busy(&reason) => {
                    return Err(Failure::Unavailable(format!(
                        "the peer {}: {reason}",
                        args.addr
                    )))
                }
                PeerMessage::Refused(reason) => {
                    return Err(Failure::Input(format!(
                        "the peer refused the exchange: {reason}"
                    )))
                }
                other => {
                    return Err(Failure::Input(format!(
                        "the peer answered {other:?} to a learner list"
                    )))
                }
            }
            all.retain(|u| scope.allows(u));
            all.sort();
            all.dedup();
            all
        }
    };
    let bar = if learners.len() > 1 {
        ui::bar(learners.len(), "exchanging")
    } else {
        ui::spinner(true, format!("exchanging with {}", args.addr))
    };
    for user in &learners {
        bar.inc(1);
        let mut session = PeerSession::new(user, Role::Initiator);
        let mut outgoing = vec![session.start(&store)?];
        while let Some(message) = outgoing.pop() {
            let reply = ask(&mut stream, &args.addr, &message, &mut bytes)?;
            outgoing.extend(session.handle(&store, reply).map_err(refused)?);
        }
        bar.suspend(|| {
            say!(
                "synced {user}'s progress with device {}",
                session.peer().unwrap_or("?")
            )
        })?;
    }
    bar.finish_and_clear();
    say!("{} learner(s), {bytes} bytes exchanged", learners.len())?;
    Ok(())
}

/// A connection to the first of `addr`'s addresses that answers within `timeout` each.
fn connect_within(addr: &str, timeout: std::time::Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for address in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the address names no host")
    }))
}
