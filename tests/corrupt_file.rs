//! Damaged files give a typed error naming what is wrong: never a panic, never a silently
//! empty store.
#![cfg(test)]

mod support;

use std::path::Path;

use headway::{Error, Store, StoreOptions};
use support::{update, user_id, Rng, TempDir};

const T0: i64 = 1_714_558_530_123;

/// A store with 300 items and some document history, closed cleanly (WAL checkpointed).
fn filled_store(path: &Path) {
    let store = Store::open_with(path, StoreOptions::new().flush_after(50)).unwrap();
    for i in 0..600 {
        store
            .record(update(
                "u",
                &format!("do_{:04}", i % 300),
                i % 3,
                i % 101,
                T0 + i,
            ))
            .unwrap();
    }
    store.flush(&user_id("u")).unwrap();
}

/// Opens and reads everything; returns the first error.
fn open_and_read(path: &Path) -> headway::Result<usize> {
    let store = Store::open(path)?;
    // Loading the document joins it with the table, repairing whichever lost something.
    store.document_items(&user_id("u"))?;
    let items = store.items(&user_id("u"), None)?;
    store.pending(&user_id("u"))?;
    Ok(items.len())
}

fn assert_damage_reported(result: headway::Result<usize>) {
    match result {
        Err(e) => assert!(
            e.is_corruption() || matches!(e, Error::StoreOpen { .. }),
            "untyped error {e:?}"
        ),
        Ok(n) => panic!("a damaged store opened with {n} items"),
    }
}

#[test]
fn truncated_file_is_reported_as_corrupt() {
    let dir = TempDir::new("truncated");
    let path = dir.file("p.db");
    filled_store(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [len / 2, len - 4096, 100] {
        let copy = dir.file(&format!("cut-{keep}.db"));
        std::fs::copy(&path, &copy).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(keep)
            .unwrap();
        assert_damage_reported(open_and_read(&copy));
    }
}

#[test]
fn random_bytes_are_not_a_store() {
    let dir = TempDir::new("random");
    let mut rng = Rng::new(7);
    for len in [1usize, 100, 4096, 65_536] {
        let path = dir.file(&format!("r{len}.db"));
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_damage_reported(open_and_read(&path));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the refused file was modified"
        );
    }
}

#[test]
fn another_sqlite_database_is_refused_untouched() {
    let dir = TempDir::new("foreign");
    let path = dir.file("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(Error::CorruptStore { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn flipped_header_bytes_are_reported() {
    let dir = TempDir::new("header");
    let path = dir.file("p.db");
    filled_store(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff; // "SQLite format 3" magic
    std::fs::write(&path, &bytes).unwrap();
    assert_damage_reported(open_and_read(&path));
}

/// A header whose write version SQLite does not know opens read-only: refused at open with a
/// typed error, not at the first write after the app believed the store open (found by the
/// flipped-bytes test below, seed 58); a schema format it does not know is a damaged header.
#[test]
fn a_header_sqlite_cannot_write_or_read_is_refused_at_open_and_left_untouched() {
    let dir = TempDir::new("header-versions");
    for (offset, value) in [(18, 3u8), (19, 3), (47, 9)] {
        let path = dir.file(&format!("byte-{offset}.db"));
        filled_store(&path);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset] = value;
        std::fs::write(&path, &bytes).unwrap();
        let error = open_and_read(&path).expect_err(&format!(
            "byte {offset} = {value}: a store SQLite cannot use opened"
        ));
        assert!(
            error.is_corruption() || matches!(error, Error::StoreOpen { .. }),
            "byte {offset} = {value}: untyped error {error:?}"
        );
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "byte {offset}: the refused file changed"
        );
    }
}

#[test]
fn flipped_bytes_never_panic_and_never_read_as_empty() {
    let dir = TempDir::new("flips");
    let path = dir.file("p.db");
    filled_store(&path);
    let clean = std::fs::read(&path).unwrap();
    let seed = support::test_seed();
    let mut rng = Rng::new(seed);
    for round in 0..60 {
        let mut bytes = clean.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        let copy = dir.file(&format!("flip-{round}.db"));
        std::fs::write(&copy, &bytes).unwrap();
        match open_and_read(&copy) {
            // A flip in unused space changes nothing. A flip that SQLite's structure checks
            // miss (a b-tree page that silently ends early, say) may hide rows: best effort,
            // but the store must never come up empty.
            Ok(n) => assert!(n > 0, "round {round}: a damaged store read as empty"),
            // A flip in the schema version that reads as a later one cannot be told from a
            // store a newer build wrote: refused as too new, which changes nothing either.
            Err(e) => assert!(
                e.is_corruption()
                    || matches!(e, Error::StoreOpen { .. } | Error::StoreTooNew { .. }),
                "round {round}: untyped error {e:?}"
            ),
        }
    }
}

#[test]
fn a_flipped_bit_inside_a_stored_value_is_caught_by_the_row_checksum() {
    let dir = TempDir::new("rowflip");
    let path = dir.file("p.db");
    filled_store(&path);
    let clean = std::fs::read(&path).unwrap();
    let needle = b"do_0150";
    let at = clean
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the content id is stored in the file");
    for (offset, bit) in [(6, 0), (3, 2), (0, 5)] {
        let mut bytes = clean.clone();
        bytes[at + offset] ^= 1 << bit;
        let copy = dir.file(&format!("rowflip-{offset}.db"));
        std::fs::write(&copy, &bytes).unwrap();
        let store = Store::open(&copy).unwrap();
        let error = store
            .items(&user_id("u"), None)
            .expect_err("a changed id was read back");
        assert!(matches!(error, Error::CorruptStore { .. }), "{error:?}");
        assert!(error.to_string().contains("checksum"), "{error}");
    }
}

#[test]
fn corrupt_document_bytes_give_a_typed_error_not_a_panic() {
    // This 27-byte input made automerge 0.12's loader panic (shared/measurements.md).
    let panicking: Vec<u8> = (0..27)
        .map(|i| {
            u8::from_str_radix(
                &"856f4a830000000003110000000123010001000000ffffffffffff"[i * 2..i * 2 + 2],
                16,
            )
            .unwrap_or(0)
        })
        .collect();
    for bad in [
        panicking,
        b"not automerge at all".to_vec(),
        vec![0x85, 0x6f, 0x4a, 0x83],
    ] {
        let dir = TempDir::new("doc");
        let path = dir.file("p.db");
        filled_store(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE doc_chunk SET bytes = ?1 WHERE seq = (SELECT min(seq) FROM doc_chunk)",
            [&bad],
        )
        .unwrap();
        drop(conn);
        let error = open_and_read(&path).expect_err("a corrupt document was loaded");
        assert!(matches!(error, Error::CorruptDocument { .. }), "{error:?}");
        assert!(error.to_string().contains("corrupt document"), "{error}");
    }
}

#[test]
fn invalid_values_in_a_row_are_reported() {
    let dir = TempDir::new("rowvalue");
    let path = dir.file("p.db");
    filled_store(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE content_state SET progress = 250 WHERE content_id = 'do_0001'",
        [],
    )
    .unwrap();
    drop(conn);
    let error = open_and_read(&path).expect_err("an invalid row was read");
    assert!(matches!(error, Error::CorruptStore { .. }), "{error:?}");
}

#[test]
fn check_integrity_passes_a_sound_store_and_reports_a_truncated_one() {
    let dir = TempDir::new("integrity");
    let path = dir.file("p.db");
    filled_store(&path);
    Store::open(&path).unwrap().check_integrity().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let checked = Store::open(&path).and_then(|store| store.check_integrity());
    let error = checked.expect_err("a truncated store passed the integrity check");
    assert!(error.is_corruption(), "{error:?}");
}

/// Rewrites a store file's tables and schema version through SQLite, as an older build (or a
/// damaged header) would have left them.
fn restamp(path: &Path, drop: &[&str], version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for statement in drop {
        conn.execute_batch(statement).unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
}

#[test]
fn a_store_of_an_older_schema_is_upgraded_and_keeps_every_item() {
    let dir = TempDir::new("older");
    // What each version added: 5 one `rejection` column for kind and text, 4 the kind of a
    // rejection in its own column, 3 the peer table and the index of rows to fold, 2 the
    // course cache.
    let version_5 = [
        "ALTER TABLE content_state RENAME COLUMN rejection TO rejected_reason",
        "ALTER TABLE content_state ADD COLUMN rejected_kind TEXT",
    ];
    let version_4 = ["ALTER TABLE content_state DROP COLUMN rejected_kind"];
    let version_3 = ["DROP TABLE peer", "DROP INDEX content_state_unfolded"];
    let version_2 = ["DROP TABLE enrolled_course", "DROP TABLE course_leaf"];
    for (version, dropped) in [
        (
            1,
            [
                &version_5[..],
                &version_4[..],
                &version_3[..],
                &version_2[..],
            ]
            .concat(),
        ),
        (2, [&version_5[..], &version_4[..], &version_3[..]].concat()),
        (3, [&version_5[..], &version_4[..]].concat()),
        (4, version_5.to_vec()),
    ] {
        let path = dir.file(&format!("v{version}.db"));
        filled_store(&path);
        restamp(&path, &dropped, version);
        assert_eq!(open_and_read(&path).unwrap(), 300, "version {version}");
        // Upgraded in place: it opens again as the current version.
        assert_eq!(
            open_and_read(&path).unwrap(),
            300,
            "version {version}, reopened"
        );
    }
}

#[test]
fn a_store_whose_schema_version_was_damaged_is_refused_and_left_untouched() {
    let dir = TempDir::new("restamped");
    for version in [0, 1, 2, 3, 4, 7] {
        let path = dir.file(&format!("stamped-{version}.db"));
        filled_store(&path);
        restamp(&path, &[], version);
        let before = std::fs::read(&path).unwrap();
        let error = open_and_read(&path).expect_err("a restamped store must be refused");
        if version > 5 {
            // Indistinguishable from a store a newer build wrote: refused as too new.
            assert!(
                matches!(error, Error::StoreTooNew { found: 7, .. }),
                "{error:?}"
            );
        } else {
            assert!(error.is_corruption(), "version {version}: {error:?}");
            assert!(
                error
                    .to_string()
                    .contains(&format!("schema version says {version}")),
                "{error}"
            );
        }
        assert!(
            std::fs::read(&path).unwrap() == before,
            "version {version}: the refused file changed"
        );
    }
}
