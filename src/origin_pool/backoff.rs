//! Dial backoff per origin: after a failed dial, the next waits `dial_backoff_initial`, each
//! further failure in a row 1.6 times longer, up to `dial_backoff_max`, with ±20 % jitter so
//! that many clients of one failed server do not come back in step (gRPC's connection
//! backoff, `connection-backoff.md`). Every dial obeys it: those waiting requests ask for,
//! the warm minimum's, prewarm's.
//!
//! Acquirers that nothing can serve while the origin backs off fail at once with
//! [`Error::BackingOff`] from the second failed dial in a row. After a single failure they
//! wait for the next dial instead (due within 1.2 s by default): one refused dial is as often
//! a server restarting as a server down, and requests made just after a restart should not
//! fail for it.
//!
//! A dial counts as a success only once its connection served a response: a server that
//! completes the handshake and then sends GOAWAY, or closes, before answering anything is
//! failing, and handshake time alone would otherwise bound how fast the pool re-dials it.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use crate::config::PoolConfig;
use crate::error::Error;
use crate::origin::Origin;

/// Growth of the wait per failure in a row (gRPC's).
const MULTIPLIER: f64 = 1.6;
/// The wait is spread over ±this fraction of itself (gRPC's).
const JITTER: f64 = 0.2;
/// Failed dials in a row from which acquirers fail fast instead of waiting for the next.
const FAIL_FAST_AFTER: u32 = 2;

/// An origin's record of failed dials.
#[derive(Debug, Default)]
pub(crate) struct DialBackoff {
    /// Dials failed in a row since a connection last served a response.
    failures: u32,
    /// No dial starts before this.
    next_dial_at: Option<Instant>,
    /// The last failure, named in [`Error::BackingOff`].
    last_error: Option<Error>,
}

impl DialBackoff {
    /// A dial failed at `now` with `error`: the next waits longer.
    pub(crate) fn failed(&mut self, error: &Error, now: Instant, config: &PoolConfig) {
        self.failures = self.failures.saturating_add(1);
        let wait = wait_after(
            self.failures,
            config.dial_backoff_initial,
            config.dial_backoff_max,
            jitter(now, self.failures),
        );
        self.next_dial_at = Some(now + wait);
        self.last_error = Some(error.clone());
    }

    /// A connection served a response: the origin is healthy again.
    pub(crate) fn succeeded(&mut self) {
        *self = DialBackoff::default();
    }

    /// True when a dial may start at `now`.
    pub(crate) fn allows_dial(&self, now: Instant) -> bool {
        self.next_dial_at.is_none_or(|at| now >= at)
    }

    /// When the next dial may start, while backing off.
    pub(crate) fn next_dial_at(&self, now: Instant) -> Option<Instant> {
        self.next_dial_at.filter(|&at| at > now)
    }

    /// Dials failed in a row.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The error for an acquirer that nothing can serve while the origin backs off, from
    /// the second failure in a row (see the module's notes).
    pub(crate) fn refusal(&self, origin: &Origin, now: Instant) -> Option<Error> {
        if self.failures < FAIL_FAST_AFTER {
            return None;
        }
        let at = self.next_dial_at(now)?;
        let last = self.last_error.clone()?;
        Some(Error::BackingOff {
            origin: origin.clone(),
            failures: self.failures,
            retry_in: at - now,
            source: Box::new(last),
        })
    }
}

/// The wait after `failures` failed dials in a row; `jitter` in [-1, 1] spreads it by up to
/// ±[`JITTER`].
fn wait_after(failures: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
    let base = (initial.as_secs_f64() * MULTIPLIER.powi(exponent)).min(max.as_secs_f64());
    let spread = base * (1.0 + JITTER * jitter.clamp(-1.0, 1.0));
    Duration::from_secs_f64(spread.clamp(0.0, max.as_secs_f64()))
}

/// A number in [-1, 1], different per process, origin state and failure: std's randomly keyed
/// hasher is randomness enough to keep clients out of step.
fn jitter(now: Instant, failures: u32) -> f64 {
    let bits = RandomState::new().hash_one((now, failures));
    // The top 53 bits as a fraction in [0, 1), then moved to [-1, 1).
    (bits >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Without jitter: 1 s, 1.6 s, 2.56 s, … capped at the maximum.
    #[test]
    fn the_wait_grows_by_1_6_to_the_cap() {
        let max = Duration::from_secs(120);
        assert_eq!(wait_after(1, SECOND, max, 0.0), SECOND);
        assert_eq!(wait_after(2, SECOND, max, 0.0), Duration::from_millis(1600));
        let third = wait_after(3, SECOND, max, 0.0);
        assert!((third.as_secs_f64() - 2.56).abs() < 1e-9);
        assert_eq!(wait_after(40, SECOND, max, 0.0), max);
        assert_eq!(wait_after(u32::MAX, SECOND, max, 0.0), max);
    }

    /// Jitter stays within ±20 % and never passes the cap.
    #[test]
    fn jitter_stays_within_a_fifth() {
        let max = Duration::from_secs(120);
        assert_eq!(wait_after(1, SECOND, max, 1.0), Duration::from_millis(1200));
        assert_eq!(wait_after(1, SECOND, max, -1.0), Duration::from_millis(800));
        assert_eq!(wait_after(40, SECOND, max, 1.0), max);
        for failures in 0..50 {
            let j = jitter(Instant::now(), failures);
            assert!((-1.0..=1.0).contains(&j), "{j}");
        }
    }

    /// A failure blocks dials until its wait passes; from the second, acquirers are refused
    /// with it named; a success clears it.
    #[test]
    fn a_failure_blocks_dials_until_its_wait_passes() {
        let config = PoolConfig::default();
        let origin: Origin = "https://a.example".parse().expect("valid origin");
        let mut backoff = DialBackoff::default();
        let now = Instant::now();
        assert!(backoff.allows_dial(now));
        assert!(backoff.refusal(&origin, now).is_none());
        backoff.failed(&Error::PoolClosed, now, &config);
        assert!(!backoff.allows_dial(now));
        assert!(backoff.allows_dial(now + Duration::from_millis(1200)));
        // One failure: acquirers wait for the next dial.
        assert!(backoff.refusal(&origin, now).is_none());
        backoff.failed(&Error::PoolClosed, now, &config);
        match backoff.refusal(&origin, now) {
            Some(Error::BackingOff {
                failures, source, ..
            }) => {
                assert_eq!(failures, 2);
                assert!(matches!(*source, Error::PoolClosed));
            }
            other => panic!("expected BackingOff, got {other:?}"),
        }
        backoff.succeeded();
        assert!(backoff.allows_dial(now));
        assert_eq!(backoff.failures(), 0);
    }
}
