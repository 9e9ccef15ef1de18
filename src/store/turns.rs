//! One exchange with a server at a time per learner: [`LearnerTurns`]. Two syncs of one
//! learner at once (an app's own beside its background sync) pushed the same items and each
//! saw the other's answers pre-empt its own, reporting items as retrying, or the sync as
//! failed, while nothing was pending. They now take turns; the second sends what is still
//! pending once the first is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::id::UserId;

/// A turn lock per learner of one store (its handles share it). Other processes, or other
/// `Store`s opened on the same file, are not covered: their syncs still run side by side,
/// with the same outcome as before (nothing is lost, reports may overstate what retries).
#[derive(Debug, Default)]
pub(crate) struct LearnerTurns {
    locks: Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
}

impl LearnerTurns {
    /// Waits for `user`'s turn; it lasts as long as the guard.
    pub(crate) async fn take(&self, user: &UserId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            // The map holds plain values that no panic leaves half-written.
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget learners no one waits for, so the map follows the learners being synced.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(user.clone()).or_default())
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_turn_of_one_learner_waits_and_another_learner_does_not() {
        let turns = LearnerTurns::default();
        let (asha, ravi) = (UserId::new("asha").unwrap(), UserId::new("ravi").unwrap());
        let first = turns.take(&asha).await;
        // Ravi's turn is free while Asha's is taken.
        drop(turns.take(&ravi).await);
        let second = turns.take(&asha);
        tokio::pin!(second);
        assert!(futures_poll_once(second.as_mut()).await.is_none());
        drop(first);
        drop(second.await);
    }

    /// Polls `future` once: its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
