//! The outcome of each learner's last sync, kept in `meta` (one row per learner) so that
//! `headway status` and the app can say when progress last reached the server.

use rusqlite::OptionalExtension;

use super::Store;
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::sync_report::SyncReport;
use crate::timestamp::Timestamp;

/// How a learner's last sync ended, as [`Store::last_sync`] reports it.
///
/// ```
/// # use headway::UserId;
/// let store = headway::Store::open_in_memory()?;
/// assert_eq!(store.last_sync(&UserId::new("learner-1")?)?, None); // never synced
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastSync {
    /// When the sync ended (the device's clock).
    pub at: Timestamp,
    /// `complete` (nothing stays pending), `partial` (some items stay pending or were
    /// refused), `credentials refused (<status>)` (the server refused the token),
    /// `every item dropped by the server` (as for another learner's token), or
    /// `server unavailable: <cause>` (nothing reached the server).
    pub outcome: String,
    /// Items sent.
    pub sent: usize,
    /// Items the server acknowledged.
    pub acknowledged: usize,
}

fn meta_name(user: &UserId) -> String {
    format!("last_sync:{user}")
}

impl Store {
    /// Keeps how this sync of `user` ended, `at` the time it ended. A failure to write it is
    /// logged, never returned: the sync itself is already committed. A sync that had nothing
    /// to send and did not fail (the one inside a courses refresh, say) is not kept: it would
    /// hide when progress last reached the server (issue 20).
    pub(crate) fn note_sync(&self, user: &UserId, report: &SyncReport, at: Timestamp) {
        if report.sent == 0 && report.failure().is_none() {
            return;
        }
        let outcome = match report.failure() {
            Some(failure) => failure.to_string(),
            None if report.is_complete() && report.rejected.is_empty() => "complete".to_string(),
            None => "partial".to_string(),
        };
        let value = serde_json::json!({
            "at": at.as_millis(),
            "outcome": outcome,
            "sent": report.sent,
            "acknowledged": report.acknowledged,
        });
        let written = self.lock().and_then(|inner| {
            inner
                .conn
                .execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
                    rusqlite::params![meta_name(user), value.to_string().into_bytes()],
                )
                .map_err(Error::sqlite("keeping the last sync's outcome"))
        });
        if let Err(error) = written {
            tracing::warn!(%error, "cannot keep the last sync's outcome");
        }
    }

    /// How the last sync of `user` on this device ended, or `None` if it never synced.
    ///
    /// ```
    /// # use headway::UserId;
    /// let store = headway::Store::open_in_memory()?;
    /// assert!(store.last_sync(&UserId::new("u")?)?.is_none());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn last_sync(&self, user: &UserId) -> Result<Option<LastSync>> {
        let inner = self.lock()?;
        let stored: Option<Vec<u8>> = inner
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                [meta_name(user)],
                |row| row.get(0),
            )
            .optional()
            .map_err(Error::sqlite("reading the last sync's outcome"))?;
        let Some(bytes) = stored else {
            return Ok(None);
        };
        let corrupt = |what: &str| Error::CorruptStore {
            reason: format!("the last sync of {user:?} is unreadable: {what}"),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&e.to_string()))?;
        let number = |name: &str| value.get(name).and_then(serde_json::Value::as_u64);
        let at = value
            .get("at")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| corrupt("no time"))?;
        Ok(Some(LastSync {
            at: Timestamp::from_millis(at)?,
            outcome: value
                .get("outcome")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            sent: usize::try_from(number("sent").unwrap_or(0)).unwrap_or(usize::MAX),
            acknowledged: usize::try_from(number("acknowledged").unwrap_or(0))
                .unwrap_or(usize::MAX),
        }))
    }
}
