//! Opening a store file: pragmas, the integrity check, and schema upgrades one version at a
//! time inside one transaction.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::id::random_bytes;

/// `PRAGMA application_id` of a headway store: "HWAY".
const APPLICATION_ID: i64 = 0x4857_4159;

/// The newest schema version this build writes.
pub(crate) const VERSION: i64 = 5;

/// How long a write waits for another connection's write to finish.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How durable a commit is once `record` returns.
///
/// ```
/// use headway::{Durability, StoreOptions};
/// let options = StoreOptions::new().durability(Durability::ProcessCrash);
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Survives the process being killed and the device losing power: every commit is
    /// fsynced (SQLite `synchronous=FULL`). The default.
    #[default]
    PowerLoss,
    /// Survives the process being killed; a power loss may drop the last commits (SQLite
    /// `synchronous=NORMAL` in WAL mode). Faster.
    ProcessCrash,
}

/// Sets the connection's pragmas, checks the file and brings its schema up to [`VERSION`].
pub(crate) fn prepare(conn: &mut Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::sqlite("setting the busy timeout"))?;
    // The header and the schema read in one snapshot: another connection creating the file
    // at the same instant is seen before or after its one transaction, never half-way (it was
    // seen as "not a headway store": tables already, no application id yet).
    let (application_id, found, tables) = {
        let snapshot = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
            .map_err(Error::sqlite("reading the file header"))?;
        let application_id: i64 = snapshot
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .map_err(Error::sqlite("reading the file header"))?;
        let found = version(&snapshot)?;
        let tables: i64 = snapshot
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(Error::sqlite("reading the schema"))?;
        (application_id, found, tables)
    };
    let fresh = application_id == 0 && found == 0 && tables == 0;
    if !fresh && application_id != APPLICATION_ID {
        return Err(Error::CorruptStore {
            reason: format!(
                "not a headway store (application id {application_id:#x}, {tables} tables)"
            ),
        });
    }
    if found > VERSION {
        return Err(Error::StoreTooNew {
            found,
            supported: VERSION,
        });
    }
    // Read-only (no write permission, or a header whose write version SQLite does not know):
    // refused now, not at the first write after the app believed the store open.
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(Error::sqlite("reading the file header"))?
    {
        return Err(Error::StoreOpen {
            path: conn.path().unwrap_or("").to_string(),
            reason: "the file cannot be written (read-only, or a header this SQLite cannot \
                     write)"
                .into(),
        });
    }
    // The version stamp is one header field: a damaged one must not run upgrades over tables
    // of a later version. Checked before anything is written (WAL included).
    if !fresh && found == VERSION {
        // A current stamp over other tables is refused before the switch to WAL writes to
        // the file's header.
        check_tables(conn)?;
    }
    if !fresh && found < VERSION && layout(conn)? != layout_at(found)? {
        return Err(Error::CorruptStore {
            reason: format!(
                "its schema version says {found}, but its tables are not those of version \
                 {found} (damaged header?)"
            ),
        });
    }
    if fresh {
        // Only takes effect before the first table exists: lets compaction give pages back.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(Error::sqlite("setting auto_vacuum"))?;
    }
    let mode = switch_to_wal(conn)?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(Error::StoreOpen {
            path: conn.path().unwrap_or("").to_string(),
            reason: format!("journal mode is {mode}, WAL is needed"),
        });
    }
    let synchronous = match durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(Error::sqlite("setting synchronous"))?;
    if found == VERSION {
        // Current (its tables checked above): nothing to write, so opening costs no commit.
        return Ok(());
    }
    super::write_transaction(conn, "upgrading the schema", |tx| {
        // Another process may have upgraded the file meanwhile: read the version again under
        // the write lock.
        let found = version(tx)?;
        if found > VERSION {
            return Err(Error::StoreTooNew {
                found,
                supported: VERSION,
            });
        }
        for from in found..VERSION {
            upgrade_from(tx, from)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(Error::sqlite("stamping the application id"))?;
        tx.pragma_update(None, "user_version", VERSION)
            .map_err(Error::sqlite("stamping the schema version"))
    })?;
    check_tables(conn)
}

/// Switches the file to WAL (a no-op once it is), and answers the journal mode. The switch
/// needs the file to itself and SQLite answers "database is locked" at once, without its busy
/// handler, while another connection opens the same new file: retried for up to
/// [`BUSY_TIMEOUT`].
fn switch_to_wal(conn: &Connection) -> Result<String> {
    let started = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            answer => return answer.map_err(Error::sqlite("switching to WAL")),
        }
    }
}

/// The columns of every table at [`VERSION`], in order.
const TABLES: [(&str, &[&str]); 7] = [
    ("meta", &["name", "value"]),
    ("learner", &["user_id", "epoch"]),
    ("doc_chunk", &["user_id", "seq", "bytes"]),
    (
        "content_state",
        &[
            "user_id",
            "course_id",
            "batch_id",
            "content_id",
            "status",
            "progress",
            "last_access",
            "last_completed",
            "in_document",
            "server_state",
            "rejected_state",
            "rejection",
            "checksum",
        ],
    ),
    (
        "enrolled_course",
        &[
            "user_id",
            "course_id",
            "batch_id",
            "position",
            "server_progress",
            "leaf_nodes_count",
            "batch_status",
            "content_status",
            "fields",
            "fetched_at",
        ],
    ),
    (
        "course_leaf",
        &["user_id", "course_id", "batch_id", "content_id", "status"],
    ),
    (
        "peer",
        &[
            "user_id",
            "peer_id",
            "their_epoch",
            "heads",
            "sync_epoch",
            "sync_state",
        ],
    ),
];

/// Refuses a file whose tables do not have the columns this version wrote: the stored schema
/// text was damaged (SQLite's structure checks do not read it).
fn check_tables(conn: &Connection) -> Result<()> {
    let mut columns = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(Error::sqlite("reading the table layout"))?;
    for (table, expected) in TABLES {
        let found = columns
            .query_map([table], |row| row.get::<_, String>(0))
            .map_err(Error::sqlite("reading the table layout"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::sqlite("reading the table layout"))?;
        if found != expected {
            return Err(Error::CorruptStore {
                reason: format!("table {table} has columns {found:?}, expected {expected:?}"),
            });
        }
    }
    Ok(())
}

/// Every table of the file (SQLite's own aside) with its columns in order.
fn layout(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
    let read = |e| Error::sqlite("reading the table layout")(e);
    let mut tables = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .map_err(read)?;
    let names = tables
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(read)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(read)?;
    let mut columns = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(read)?;
    names
        .into_iter()
        .map(|table| {
            let found = columns
                .query_map([&table], |row| row.get::<_, String>(0))
                .map_err(read)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(read)?;
            Ok((table, found))
        })
        .collect()
}

/// The layout a store of schema `version` has: the upgrades up to it, run on an empty
/// in-memory database (only when a file is about to be upgraded, which is rare).
fn layout_at(version: i64) -> Result<Vec<(String, Vec<String>)>> {
    let scratch =
        Connection::open_in_memory().map_err(Error::sqlite("opening a scratch database"))?;
    for from in 0..version {
        upgrade_from(&scratch, from)?;
    }
    layout(&scratch)
}

fn version(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(Error::sqlite("reading the schema version"))
}

/// `PRAGMA quick_check`: page structure, record formats and index consistency, in about the
/// time of one full read of the file.
pub(crate) fn integrity_check(conn: &Connection) -> Result<()> {
    let first: Option<String> = conn
        .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
        .optional()
        .map_err(Error::sqlite("checking the file's integrity"))?;
    match first.as_deref() {
        Some("ok") => Ok(()),
        Some(problem) => Err(Error::CorruptStore {
            reason: problem.to_string(),
        }),
        None => Err(Error::CorruptStore {
            reason: "integrity check returned nothing".into(),
        }),
    }
}

/// One schema step, from version `from` to `from + 1`.
fn upgrade_from(conn: &Connection, from: i64) -> Result<()> {
    let sql = match from {
        0 => {
            "
            -- Facts about this device's store: its Automerge actor id.
            CREATE TABLE meta (
                name  TEXT PRIMARY KEY,
                value BLOB NOT NULL
            ) WITHOUT ROWID;

            -- One row per learner: the epoch of the learner's document (bumped by compaction).
            CREATE TABLE learner (
                user_id TEXT PRIMARY KEY,
                epoch   INTEGER NOT NULL
            ) WITHOUT ROWID;

            -- The learner's Automerge document: a snapshot (seq 0 after a compaction) followed
            -- by one change per flush. Only chunks of the learner's current epoch are kept.
            CREATE TABLE doc_chunk (
                user_id TEXT NOT NULL,
                seq     INTEGER NOT NULL,
                bytes   BLOB NOT NULL,
                PRIMARY KEY (user_id, seq)
            ) WITHOUT ROWID;

            -- Every content state, joined: the table reads are answered from. `in_document`
            -- is 0 for a row raised since the last flush into the document. `server_state` is
            -- the highest state the server is known to hold (a packed register); the item is
            -- pending while it does not cover the row, unless the server rejected exactly this
            -- state (`rejected_state`, `rejected_reason`). `checksum` covers every other value
            -- but `in_document` (see store/rows.rs).
            CREATE TABLE content_state (
                user_id         TEXT NOT NULL,
                course_id       TEXT NOT NULL,
                batch_id        TEXT NOT NULL,
                content_id      TEXT NOT NULL,
                status          INTEGER NOT NULL,
                progress        INTEGER NOT NULL,
                last_access     INTEGER,
                last_completed  INTEGER,
                in_document     INTEGER NOT NULL DEFAULT 0,
                server_state    BLOB,
                rejected_state  BLOB,
                rejected_reason TEXT,
                checksum        INTEGER NOT NULL,
                PRIMARY KEY (user_id, course_id, batch_id, content_id)
            ) WITHOUT ROWID;
            "
        }
        1 => {
            "
            -- The last enrollment list the server gave, one row per enrolled course batch, in the
            -- server's order: its figures, and every field it sent (`fields`, JSON, without the
            -- leaf node list, which lives in course_leaf).
            CREATE TABLE enrolled_course (
                user_id               TEXT NOT NULL,
                course_id             TEXT NOT NULL,
                batch_id              TEXT NOT NULL,
                position              INTEGER NOT NULL,
                server_progress       INTEGER NOT NULL,
                leaf_nodes_count      INTEGER NOT NULL,
                batch_status          INTEGER,
                content_status        TEXT NOT NULL,
                fields                TEXT NOT NULL,
                fetched_at            INTEGER NOT NULL,
                PRIMARY KEY (user_id, course_id, batch_id)
            ) WITHOUT ROWID;

            -- The leaf nodes (trackable contents) of each enrolled course batch, with the status
            -- of the learner's content state, kept up to date by every write of content_state,
            -- so the offline course answer is one range scan.
            CREATE TABLE course_leaf (
                user_id    TEXT NOT NULL,
                course_id  TEXT NOT NULL,
                batch_id   TEXT NOT NULL,
                content_id TEXT NOT NULL,
                status     INTEGER NOT NULL,
                PRIMARY KEY (user_id, course_id, batch_id, content_id)
            ) WITHOUT ROWID;
            "
        }
        2 => {
            "
            -- What this device knows of each peer device per learner: the epoch and heads the
            -- peer last said it holds (for file exports of only what it lacks), and the
            -- Automerge sync state of the live protocol with the epoch it belongs to.
            CREATE TABLE peer (
                user_id     TEXT NOT NULL,
                peer_id     TEXT NOT NULL,
                their_epoch BLOB,
                heads       BLOB NOT NULL,
                sync_epoch  BLOB,
                sync_state  BLOB,
                PRIMARY KEY (user_id, peer_id)
            ) WITHOUT ROWID;

            -- The rows a flush folds into the document, found without scanning the table.
            CREATE INDEX content_state_unfolded ON content_state (user_id) WHERE in_document = 0;
            "
        }
        3 => {
            "
            -- What kind of refusal a rejection is (`refused`, `dropped`, `batch_not_ongoing`,
            -- `batch_unknown`), so `rejected_reason` holds only the server's text. Version 3
            -- marked a dropped item by prefixing its reason with U+001E `next-sync` U+001E;
            -- the marker moves into the kind here, and every other rejection was a refusal.
            -- Checksums stay valid: they cover the text behind the same marker (store/rows.rs).
            -- The marker is cut off as bytes: substr on text stops at a NUL, which a server's
            -- text may hold.
            ALTER TABLE content_state ADD COLUMN rejected_kind TEXT;
            UPDATE content_state
            SET rejected_kind = CASE
                    WHEN substr(rejected_reason, 1, 11) = char(30) || 'next-sync' || char(30)
                    THEN 'dropped' ELSE 'refused' END,
                rejected_reason = CASE
                    WHEN substr(rejected_reason, 1, 11) = char(30) || 'next-sync' || char(30)
                    THEN CAST(substr(CAST(rejected_reason AS BLOB), 12) AS TEXT)
                    ELSE rejected_reason END
            WHERE rejected_reason IS NOT NULL;
            "
        }
        4 => {
            "
            -- A rejection's kind and the server's text share one column, `rejection`: the kind,
            -- U+001E, the text (store/rows.rs `stored_reason`). The kind's own column cost every
            -- row a byte, rejected or not. Checksums stay valid: they cover kind and text, not
            -- how they are stored. The new name also keeps this layout apart from version 3's.
            -- A damaged row with a text but no kind keeps its text (kind '': it reads as corrupt,
            -- as under version 4, whose checksum took a missing kind for '' too).
            UPDATE content_state
            SET rejected_reason = coalesce(rejected_kind, '') || char(30) || rejected_reason
            WHERE rejected_reason IS NOT NULL;
            ALTER TABLE content_state DROP COLUMN rejected_kind;
            ALTER TABLE content_state RENAME COLUMN rejected_reason TO rejection;
            "
        }
        other => {
            return Err(Error::StoreOpen {
                path: conn.path().unwrap_or("").to_string(),
                reason: format!("no upgrade step from schema version {other}"),
            })
        }
    };
    conn.execute_batch(sql)
        .map_err(Error::sqlite("upgrading the schema"))
}

/// This device's actor id, made once and kept in `meta`.
pub(crate) fn device_id(conn: &Connection) -> Result<[u8; 16]> {
    let stored: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE name = 'device'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(Error::sqlite("reading the device id"))?;
    if let Some(bytes) = stored {
        return <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| Error::CorruptStore {
            reason: format!("device id has {} bytes, 16 expected", bytes.len()),
        });
    }
    let id = random_bytes::<16>()?;
    // INSERT OR IGNORE, then read back: two processes opening a new file agree on one id.
    conn.execute(
        "INSERT OR IGNORE INTO meta (name, value) VALUES ('device', ?1)",
        [&id[..]],
    )
    .map_err(Error::sqlite("storing the device id"))?;
    let bytes: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE name = 'device'", [], |row| {
            row.get(0)
        })
        .map_err(Error::sqlite("reading the device id"))?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| Error::CorruptStore {
        reason: "device id is not 16 bytes".into(),
    })
}
