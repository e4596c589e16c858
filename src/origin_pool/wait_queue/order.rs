//! Which waiter is served next, and when waiters give up: the lanes (retries, then urgency
//! 0..=7), aging, and the lane fronts' deadlines.

use std::task::Waker;
use std::time::{Duration, Instant};

use super::{State, WaitQueue};
use crate::error::Error;

/// Lanes: retries, then urgencies 0..=7.
pub(super) const LANES: usize = 1 + 8;
pub(super) const RETRY_LANE: usize = 0;
pub(super) const URGENCY_0_LANE: usize = 1;

/// The lane of a waiter.
pub(super) fn lane_of(retry: bool, urgency: u8) -> usize {
    if retry {
        RETRY_LANE
    } else {
        URGENCY_0_LANE + usize::from(urgency.min(7))
    }
}

/// When a waiter counts as aged, and is served as urgency 0: once it has waited
/// `priority_aging`. Every waiter of an origin waits at most the same `acquire_timeout`, so a
/// waiter has aged when at most `acquire_timeout - priority_aging` is left before its
/// deadline, and deadlines order waiters by arrival as well.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Aging {
    /// Time left before the deadline at which a waiter has aged; `None`: never (the aging
    /// bound is past the timeout, or aging is off).
    pub(super) left: Option<Duration>,
}

impl Aging {
    /// Waiters age after `aging`, out of an `acquire_timeout`.
    pub(crate) fn new(aging: Duration, acquire_timeout: Duration) -> Aging {
        Aging {
            left: acquire_timeout.checked_sub(aging),
        }
    }

    fn has_aged(&self, deadline: Instant, now: Instant) -> bool {
        self.left
            .is_some_and(|left| deadline.saturating_duration_since(now) <= left)
    }
}

impl<C> WaitQueue<C> {
    /// The urgency lane whose front is served next: the oldest of the urgency-0 front and the
    /// fronts that have aged, else the most urgent lane with waiters.
    pub(super) fn next_urgency_lane(&mut self, aging: Aging) -> Option<usize> {
        let urgencies = self.busy & !(1 << RETRY_LANE);
        if urgencies == 0 {
            return None;
        }
        let first = urgencies.trailing_zeros() as usize;
        if urgencies.is_power_of_two() {
            // One urgency waits: nothing to reorder, no clock to read.
            return Some(first);
        }
        let now = Instant::now();
        let mut best: Option<(Instant, usize)> = None;
        for lane in URGENCY_0_LANE..LANES {
            if urgencies & (1 << lane) == 0 {
                continue;
            }
            let Some(deadline) = self.front_deadline(lane) else {
                continue;
            };
            let aged = lane == URGENCY_0_LANE || aging.has_aged(deadline, now);
            if aged && best.is_none_or(|(b, _)| deadline < b) {
                best = Some((deadline, lane));
            }
        }
        Some(best.map_or(first, |(_, lane)| lane))
    }

    /// The deadline of the front waiter of `lane` (dropping stale keys on the way).
    fn front_deadline(&mut self, lane: usize) -> Option<Instant> {
        while let Some(&key) = self.lanes[lane].front() {
            if self.is_live_waiting(key) {
                return Some(self.entries[key.index].deadline);
            }
            self.lanes[lane].pop_front();
        }
        None
    }

    /// The earliest deadline of a waiting acquirer: the earliest lane front's, since all
    /// share one timeout.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for lane in 0..LANES {
            while let Some(&key) = self.lanes[lane].front() {
                if self.is_live_waiting(key) {
                    let deadline = self.entries[key.index].deadline;
                    earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
                    break;
                }
                self.lanes[lane].pop_front();
            }
        }
        earliest
    }

    /// Fails every waiter whose deadline has passed with `error()`; returns their wakers.
    pub(crate) fn expire(&mut self, now: Instant, error: impl Fn() -> Error) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for lane in 0..LANES {
            while let Some(&key) = self.lanes[lane].front() {
                if !self.is_live_waiting(key) {
                    self.lanes[lane].pop_front();
                    continue;
                }
                let entry = &mut self.entries[key.index];
                if entry.deadline > now {
                    break;
                }
                if let State::Waiting(waker) =
                    std::mem::replace(&mut entry.state, State::Failed(error()))
                {
                    wakers.push(waker);
                }
                self.left(lane);
                self.lanes[lane].pop_front();
            }
        }
        wakers
    }
}
