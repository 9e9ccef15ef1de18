//! When to try again after a failed sync: exponential back-off with jitter, bounded, and reset
//! at once when the network comes back.

use std::time::Duration;

/// Exponential back-off with "equal jitter": after `n` failures the delay is drawn from
/// `[d/2, d]` where `d = min(max, base * 2^n)`. The jitter comes from a seed the caller passes,
/// so schedules are reproducible in tests and simulations.
///
/// ```
/// use std::time::Duration;
/// use headway::Backoff;
/// let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(backoff.delay(7), Duration::ZERO); // no failure yet: try now
/// for _ in 0..20 { backoff.record_failure(); }
/// assert!(backoff.delay(7) <= Duration::from_secs(60)); // bounded
/// backoff.reset(); // the network is back
/// assert_eq!(backoff.delay(7), Duration::ZERO);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A back-off starting at `base` and never waiting longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Counts one more failed attempt.
    pub fn record_failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// Forgets the failures: the next attempt may run at once.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failed attempts since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long to wait before the next attempt; zero after no failure.
    pub fn delay(&self, seed: u64) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let exponent = (self.failures - 1).min(32);
        let ceiling = self
            .base
            .checked_mul(1u32 << exponent.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            mix(seed ^ u64::from(self.failures)) % (spread + 1)
        };
        half + Duration::from_micros(jitter)
    }
}

/// SplitMix64's finalizer: spreads a seed over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_stay_bounded_and_jitter_stays_in_range() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut previous_ceiling = Duration::ZERO;
        for n in 1..40u32 {
            b.record_failure();
            let ceiling = Duration::from_millis(100)
                .checked_mul(1 << (n - 1).min(31))
                .unwrap_or(Duration::from_secs(10))
                .min(Duration::from_secs(10));
            assert!(ceiling >= previous_ceiling);
            previous_ceiling = ceiling;
            for seed in 0..50 {
                let d = b.delay(seed);
                assert!(d >= ceiling / 2 && d <= ceiling, "{n} {seed} {d:?}");
            }
        }
    }
}
