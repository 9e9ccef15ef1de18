//! What the server is known to hold: the items to send, the outcomes of a push, and the
//! server's own states merged in. Each is one transaction.

use super::rows::{self, Raise, Rejection, Rows};
use super::{write_transaction, Store};
use crate::adapter::{ItemOutcome, Outgoing};
use crate::content_state::ContentItem;
use crate::error::Result;
use crate::events::{ChangeOrigin, ContentStateChanged};
use crate::id::{CourseId, UserId};
use crate::rejection::RejectionReason;
use crate::timestamp::Timestamp;

impl Store {
    /// The pending items of a learner with what the server is known to hold of each: what a
    /// sync hands to [`Adapter::push`](crate::Adapter::push).
    pub(crate) fn outgoing(&self, user: &UserId) -> Result<Vec<Outgoing>> {
        let inner = self.lock()?;
        let rows = rows::select_unsent(&inner.conn, user)?;
        Ok(rows
            .into_iter()
            .map(|row| Outgoing {
                item: ContentItem::new(row.key, row.state),
                server: row.server,
            })
            .collect())
    }

    /// Stores what the server said about each item sent, in one transaction. An acknowledged
    /// item records the *sent* state as held by the server, so a state raised while the push
    /// was in flight stays pending; a rejection is tied to the state that was refused.
    pub(crate) fn apply_outcomes(&self, answered: &[(Outgoing, ItemOutcome)]) -> Result<()> {
        let mut inner = self.lock()?;
        write_transaction(&mut inner.conn, "applying sync outcomes", |tx| {
            apply_outcomes_in(tx, answered)
        })
    }

    /// Merges content states read from the server: each local state is raised to the join
    /// with the server's (this is how another device's progress arrives), and the server is
    /// known to hold at least what it reported. A time more than a day after this device's
    /// clock is dropped from the state merged in (status and progress kept; see
    /// [`ContentState::without_future_times`](crate::ContentState::without_future_times)).
    /// Returns the changes, which are also published.
    ///
    /// ```
    /// # fn main() -> headway::Result<()> {
    /// use headway::{ChangeOrigin, ContentItem, ContentKey, ContentState, Progress, Status, Store, UserId};
    /// let store = Store::open_in_memory()?;
    /// let key = ContentKey::new("u", "c", "b", "k")?;
    /// let from_server = ContentState::new(Status::Completed, Progress::new(100)?, None, None);
    /// let changes = store.merge_server_states(&[ContentItem::new(key.clone(), from_server)])?;
    /// assert_eq!(changes[0].origin, ChangeOrigin::Server);
    /// assert_eq!(store.state(&key)?, Some(from_server));
    /// assert!(store.pending(&UserId::new("u")?)?.is_empty()); // the server already holds it
    /// # Ok(()) }
    /// ```
    pub fn merge_server_states(&self, items: &[ContentItem]) -> Result<Vec<ContentStateChanged>> {
        let now = Timestamp::now();
        let mut inner = self.lock()?;
        let changes: Vec<ContentStateChanged> =
            write_transaction(&mut inner.conn, "merging server states", |tx| {
                let mut changes = Vec::new();
                for item in items {
                    // The row takes the bounded state; what the server holds is recorded as it
                    // said, so an item it holds with a later time is not resent for nothing.
                    let state = item.state().without_future_times(now);
                    let raise = Raise::new(item.key(), state, ChangeOrigin::Server)
                        .server_holds(*item.state());
                    changes.extend(rows::raise(tx, raise)?);
                }
                Ok(changes)
            })?;
        for change in &changes {
            *inner
                .unflushed
                .entry(change.key.user().clone())
                .or_default() += 1;
        }
        self.publish(&inner, changes.clone());
        drop(inner);
        Ok(changes)
    }

    /// The items whose current state the server refused for good, with the reasons. They are
    /// not sent again until they change or [`Store::resend_rejected`] is called.
    ///
    /// ```
    /// # use headway::UserId;
    /// let store = headway::Store::open_in_memory()?;
    /// assert!(store.rejected(&UserId::new("u")?)?.is_empty());
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn rejected(&self, user: &UserId) -> Result<Vec<(ContentItem, RejectionReason)>> {
        let inner = self.lock()?;
        let rows = rows::select_learner(&inner.conn, user, Rows::All)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let reason = row.rejection()?.clone();
                Some((ContentItem::new(row.key, row.state), reason))
            })
            .collect())
    }

    /// Forgets every rejection of a learner so the next sync sends those items again (the app
    /// asks after the learner's batch reopened, say). Returns how many were forgotten.
    ///
    /// ```
    /// # use headway::UserId;
    /// let store = headway::Store::open_in_memory()?;
    /// assert_eq!(store.resend_rejected(&UserId::new("u")?)?, 0);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn resend_rejected(&self, user: &UserId) -> Result<usize> {
        self.clear_rejections(user, None)
    }

    /// Like [`Store::resend_rejected`], for one course only (`None`: every course).
    ///
    /// ```
    /// use headway::{CourseId, UserId};
    /// let store = headway::Store::open_in_memory()?;
    /// let (user, course) = (UserId::new("u")?, CourseId::new("do_course")?);
    /// assert_eq!(store.resend_rejected_in(&user, Some(&course))?, 0);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn resend_rejected_in(&self, user: &UserId, course: Option<&CourseId>) -> Result<usize> {
        self.clear_rejections(user, course.map(CourseId::as_str))
    }

    /// Forgets the learner's rejections (of one course, if given), in one transaction.
    fn clear_rejections(&self, user: &UserId, course: Option<&str>) -> Result<usize> {
        let mut inner = self.lock()?;
        write_transaction(&mut inner.conn, "clearing rejections", |tx| {
            let mut cleared = 0;
            for mut row in rows::select_learner(tx, user, Rows::All)? {
                if course.is_some_and(|c| c != row.key.course()) {
                    continue;
                }
                if row.rejected.is_some() {
                    row.rejected = None;
                    rows::write(tx, &row)?;
                    cleared += 1;
                }
            }
            Ok(cleared)
        })
    }
}

/// Stores what the server said about each item sent, inside the caller's transaction.
fn apply_outcomes_in(
    tx: &rusqlite::Transaction<'_>,
    answered: &[(Outgoing, ItemOutcome)],
) -> Result<()> {
    for (out, outcome) in answered {
        let Some(mut row) = rows::select_one(tx, out.item.key())? else {
            continue;
        };
        // A drop is a retry state: any other answer about the item ends it.
        if row
            .rejected
            .as_ref()
            .is_some_and(|r| r.reason.is_resent_at_next_sync())
        {
            row.rejected = None;
        }
        let held = match outcome {
            ItemOutcome::Acknowledged => Some(*out.item.state()),
            // "Held lower" claiming more than was sent is not believed: recorded as the
            // server's, it would cover the item and no sync would send it again.
            ItemOutcome::HeldLower { held } if out.item.state().covers(held) => Some(*held),
            ItemOutcome::HeldLower { .. } => {
                tracing::warn!(key = ?out.item.key(), "an adapter said the server holds more than was sent; the item stays pending");
                None
            }
            ItemOutcome::Rejected { reason } => {
                row.rejected = Some(Rejection {
                    state: *out.item.state(),
                    reason: reason.clone(),
                });
                None
            }
            _ => None,
        };
        if let Some(held) = held {
            row.server = Some(row.server.map_or(held, |s| s.merge(&held)));
            if row.server.is_some_and(|s| s.covers(&row.state)) {
                row.rejected = None;
            }
        }
        rows::write(tx, &row)?;
    }
    Ok(())
}
