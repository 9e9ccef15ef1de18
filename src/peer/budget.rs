//! One memory budget shared by every connection a device serves: message bytes in flight
//! (frames being read, payloads being inflated, messages being handled) are charged to it,
//! so many hostile peers together cannot take more than it (issue 17).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// The bytes of each message that are never charged: ordinary small messages (a hello, an
/// idle, a sync message of a few changes) never contend for the budget.
pub const FREE_PER_MESSAGE: usize = 64 * 1024;

/// A limit on the message bytes in flight, shared (cheap clones) by every connection that
/// charges it. A message is charged as its bytes arrive and as its payload inflates, past its
/// first [`FREE_PER_MESSAGE`] bytes; its [`Charge`] gives them back when dropped.
///
/// ```
/// use headway::MemoryBudget;
/// let budget = MemoryBudget::new(1024 * 1024);
/// let mut first = budget.charge();
/// first.grow(64 * 1024 + 600 * 1024)?; // the first 64 KiB are free
/// assert_eq!(budget.in_use(), 600 * 1024);
/// let mut second = budget.clone().charge();
/// assert!(second.grow(64 * 1024 + 600 * 1024).is_err()); // past the budget
/// drop(first);
/// assert!(second.grow(64 * 1024 + 600 * 1024).is_ok()); // given back
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    in_use: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes in flight, over and above each message's free allowance.
    ///
    /// ```
    /// assert_eq!(headway::MemoryBudget::new(24 << 20).limit(), 24 << 20);
    /// ```
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            shared: Arc::new(Shared {
                limit,
                in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// A budget nothing exhausts: for a reader that serves one chosen peer (`peer connect`,
    /// a file), where [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN) is the only bound.
    ///
    /// ```
    /// let mut charge = headway::MemoryBudget::unlimited().charge();
    /// assert!(charge.grow(1 << 40).is_ok());
    /// ```
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(usize::MAX)
    }

    /// The most bytes that may be charged at once.
    ///
    /// ```
    /// assert_eq!(headway::MemoryBudget::new(10).limit(), 10);
    /// ```
    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// The bytes charged now, by every holder of this budget.
    ///
    /// ```
    /// let budget = headway::MemoryBudget::new(1 << 20);
    /// assert_eq!(budget.in_use(), 0);
    /// ```
    pub fn in_use(&self) -> usize {
        self.shared.in_use.load(Ordering::Acquire)
    }

    /// An empty charge for one message, to grow as its bytes arrive.
    ///
    /// ```
    /// let budget = headway::MemoryBudget::new(1 << 20);
    /// assert_eq!(budget.charge().held(), 0);
    /// ```
    pub fn charge(&self) -> Charge {
        Charge {
            budget: self.clone(),
            held: 0,
            charged: 0,
        }
    }

    /// Takes `bytes` if they fit under the limit, all or nothing.
    fn take(&self, bytes: usize) -> bool {
        let shared = &self.shared;
        shared
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|total| *total <= shared.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.shared.in_use.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What one message holds of a [`MemoryBudget`]; dropping it gives the bytes back.
///
/// ```
/// use headway::MemoryBudget;
/// let budget = MemoryBudget::new(1 << 20);
/// let mut charge = budget.charge();
/// charge.grow(100 * 1024)?;
/// assert_eq!((charge.held(), budget.in_use()), (100 * 1024, 36 * 1024));
/// drop(charge);
/// assert_eq!(budget.in_use(), 0);
/// # Ok::<(), headway::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping a charge gives its bytes back at once"]
pub struct Charge {
    budget: MemoryBudget,
    /// The bytes this message holds, free ones included.
    held: usize,
    /// The part of `held` charged to the budget.
    charged: usize,
}

impl Charge {
    /// Holds `bytes` more for this message: charged to the budget past the message's free
    /// allowance, or refused ([`Error::NoMemoryToSpare`]) when the budget cannot take them,
    /// leaving the charge as it was.
    ///
    /// ```
    /// let budget = headway::MemoryBudget::new(0);
    /// let mut charge = budget.charge();
    /// assert!(charge.grow(64 * 1024).is_ok()); // free
    /// assert!(charge.grow(1).is_err());
    /// ```
    pub fn grow(&mut self, bytes: usize) -> Result<()> {
        let held = self.held.saturating_add(bytes);
        let owed = held.saturating_sub(FREE_PER_MESSAGE);
        let more = owed.saturating_sub(self.charged);
        if more > 0 && !self.budget.take(more) {
            return Err(Error::NoMemoryToSpare {
                wanted: held,
                budget: self.budget.limit(),
            });
        }
        self.held = held;
        self.charged += more;
        Ok(())
    }

    /// The bytes this message holds, free ones included.
    ///
    /// ```
    /// let budget = headway::MemoryBudget::new(1 << 20);
    /// let mut charge = budget.charge();
    /// charge.grow(10)?;
    /// assert_eq!(charge.held(), 10);
    /// # Ok::<(), headway::Error>(())
    /// ```
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17: connections together are bounded, and a refused charge leaves the budget as it
    /// was; every charge comes back when its message is dropped.
    #[test]
    fn charges_past_the_budget_are_refused_and_every_charge_comes_back_on_drop() {
        let budget = MemoryBudget::new(1000);
        let mut small = budget.charge();
        small.grow(FREE_PER_MESSAGE).unwrap();
        assert_eq!(budget.in_use(), 0, "a message's first bytes are free");
        let mut a = budget.charge();
        a.grow(FREE_PER_MESSAGE + 600).unwrap();
        let mut b = budget.clone().charge();
        let refused = b.grow(FREE_PER_MESSAGE + 600).unwrap_err();
        assert!(matches!(
            refused,
            Error::NoMemoryToSpare { budget: 1000, .. }
        ));
        assert!(
            refused.to_string().contains("no memory to spare"),
            "{refused}"
        );
        assert_eq!((b.held(), budget.in_use()), (0, 600));
        b.grow(FREE_PER_MESSAGE + 400).unwrap();
        assert_eq!(budget.in_use(), 1000);
        assert!(small.grow(1).is_err());
        drop(a);
        assert_eq!(budget.in_use(), 400);
        drop(b);
        drop(small);
        assert_eq!(budget.in_use(), 0);
    }

    /// Many threads charging at once never pass the limit together.
    #[test]
    fn threads_charging_at_once_never_pass_the_limit_together() {
        let budget = MemoryBudget::new(10 * 1024);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let mut charge = budget.charge();
                        let _ = charge.grow(FREE_PER_MESSAGE + 3 * 1024);
                        assert!(budget.in_use() <= budget.limit());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(budget.in_use(), 0);
    }
}
