//! The acquirers waiting for a stream slot on one origin, and the hand-off that serves them.
//!
//! A waiter is an entry in a slab owned by the origin's state (no allocation per wait once
//! the slab has grown to the peak number of waiters). When a slot frees and someone waits,
//! the releaser, under the origin lock it already holds, puts the slot's connection into the
//! longest waiter's entry and wakes it: the waiter wakes holding its lease, with no re-scan of
//! the connections and no race with newcomers (who queue behind it: FIFO, no barging).
//!
//! Waiters sit in lanes, each FIFO: first retries (requests sent before anyone now waiting,
//! refused by a server's rotation; re-queued behind newcomers they would land in the tail of
//! the next connection's streams, the very streams the next rotation refuses), then one lane
//! per [`Priority`](crate::Priority) urgency, 0 first. A waiter that has waited longer than
//! the aging bound is served as urgency 0 (in arrival order among those), so no urgency
//! starves; only the front of each lane can be the oldest, so aging looks at fronts alone, and
//! reads the clock only when waiters of more than one urgency wait. A waiter's age needs no
//! field of its own: every waiter of an origin has the same `acquire_timeout` (see
//! [`Aging`]).
//!
//! Deadlines cost no timer per waiter: every waiter of an origin has the same
//! `acquire_timeout`, so in each FIFO lane the front expires first, and one timer per origin,
//! armed for the earliest lane front ([`WaitQueue::next_deadline`]), expires them all in
//! order ([`WaitQueue::expire`]).
//!
//! # States of a waiter
//!
//! ```text
//! Waiting ──hand_to_next──▶ Handed(conn) ──take──▶ (leased; entry vacant)
//!    │                           │
//!    ├──fail_all──▶ Failed ──take──▶ (error; entry vacant)
//!    └──cancel (timeout, drop)──▶ vacant   (a Handed slot is passed on by the caller)
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Where a retried request may go: not back to the connection that refused it, and, when a
/// server's rotation refused it as the n-th request sent on that connection, only where it
/// will be among the first n - 1 (the server's per-connection budget evidently ended before
/// the n-th).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryTarget {
    pub(crate) exclude: u64,
    /// n - 1, when known.
    pub(crate) within_first: Option<u64>,
}

/// Requests the pool may send on a connection between counting a request and h2 giving it a
/// stream id, from other tasks: the order of the two can differ by that many.
pub(crate) const SEND_ORDER_SLACK: u64 = 4;

impl RetryTarget {
    /// True when a connection `id` on which `sent` requests went out may take the retry.
    pub(crate) fn admits(&self, id: u64, sent: u64) -> bool {
        id != self.exclude
            && self
                .within_first
                .is_none_or(|n| sent + SEND_ORDER_SLACK < n)
    }
}

/// A waiter's place in the slab. The generation tells a reused entry from the one a key was
/// issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey {
    index: usize,
    generation: u64,
}

enum State<C> {
    Vacant,
    Waiting(Waker),
    Handed(Arc<C>),
    Failed(Error),
}

struct Entry<C> {
    generation: u64,
    state: State<C>,
    /// Set for a retried request: where it may go.
    retry: Option<RetryTarget>,
    /// Its lane (see [`lane_of`]).
    lane: u8,
    /// When it gives up (also tells its age, see [`Aging`]).
    deadline: Instant,
}

/// What leaving the queue early gave back.
pub(crate) enum Cancelled<C> {
    /// The waiter was still waiting (or had failed): nothing to pass on.
    Nothing,
    /// A slot had been handed over meanwhile; the caller passes it on.
    Handed(Arc<C>),
}

/// Lanes: retries, then urgencies 0..=7.
const LANES: usize = 1 + 8;
const RETRY_LANE: usize = 0;
const URGENCY_0_LANE: usize = 1;

/// The lane of a waiter.
fn lane_of(retry: bool, urgency: u8) -> usize {
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
    left: Option<Duration>,
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

/// The FIFO lanes of waiters, over a slab of entries.
pub(crate) struct WaitQueue<C> {
    entries: Vec<Entry<C>>,
    vacant: Vec<usize>,
    /// Keys per lane, each in arrival order; keys of entries that left early stay until they
    /// reach the front (or a compaction), and are skipped.
    lanes: [VecDeque<WaiterKey>; LANES],
    waiting: usize,
    /// Waiting acquirers per lane.
    lane_waiting: [usize; LANES],
    /// Bit `l` set when lane `l` has waiting acquirers.
    busy: u16,
    /// `waiting`, readable without the origin lock (see [`WaitQueue::hint`]).
    hint: Arc<AtomicUsize>,
    next_generation: u64,
}

impl<C> Default for WaitQueue<C> {
    fn default() -> Self {
        WaitQueue {
            entries: Vec::new(),
            vacant: Vec::new(),
            lanes: Default::default(),
            waiting: 0,
            lane_waiting: [0; LANES],
            busy: 0,
            hint: Arc::new(AtomicUsize::new(0)),
            next_generation: 0,
        }
    }
}

impl<C> std::fmt::Debug for WaitQueue<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiting", &self.waiting)
            .field("slab", &self.entries.len())
            .finish()
    }
}

impl<C> WaitQueue<C> {
    /// Acquirers waiting for a slot (not counting those handed one that have not yet woken).
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

    /// The waiting count, published for releases that check it without the origin lock.
    pub(crate) fn hint(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.hint)
    }

    fn set_waiting(&mut self, waiting: usize) {
        self.waiting = waiting;
        self.hint.store(waiting, Ordering::SeqCst);
    }

    /// Queues an acquirer at the back of its lane: the retry lane for a retried request,
    /// else its urgency's.
    pub(crate) fn push(
        &mut self,
        retry: Option<RetryTarget>,
        urgency: u8,
        deadline: Instant,
        waker: Waker,
    ) -> WaiterKey {
        let lane = lane_of(retry.is_some(), urgency);
        let generation = self.next_generation;
        self.next_generation += 1;
        let entry = Entry {
            generation,
            state: State::Waiting(waker),
            retry,
            lane: lane as u8,
            deadline,
        };
        let index = match self.vacant.pop() {
            Some(index) => {
                self.entries[index] = entry;
                index
            }
            None => {
                self.entries.push(entry);
                self.entries.len() - 1
            }
        };
        let key = WaiterKey { index, generation };
        self.lanes[lane].push_back(key);
        self.joined(lane);
        self.compact();
        key
    }

    /// Hands a slot on the connection `conn_id` to the waiter that comes next (retries first,
    /// then by urgency with aging, FIFO within a lane) among those that may use it; returns
    /// its waker (to wake once the lock is dropped), or `None` when nobody can take it. The
    /// slot stays counted as leased: it moves from the releaser to the waiter.
    pub(crate) fn hand_to_next(
        &mut self,
        conn_id: u64,
        conn_sent: u64,
        conn: &Arc<C>,
        aging: Aging,
    ) -> Option<Waker> {
        if self.busy & (1 << RETRY_LANE) != 0
            && let Some(waker) = self.hand_from(RETRY_LANE, conn_id, conn_sent, conn)
        {
            return Some(waker);
        }
        let lane = self.next_urgency_lane(aging)?;
        self.hand_from(lane, conn_id, conn_sent, conn)
    }

    /// The urgency lane whose front is served next: the oldest of the urgency-0 front and the
    /// fronts that have aged, else the most urgent lane with waiters.
    fn next_urgency_lane(&mut self, aging: Aging) -> Option<usize> {
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

    /// One more acquirer waits in `lane`.
    fn joined(&mut self, lane: usize) {
        self.lane_waiting[lane] += 1;
        self.busy |= 1 << lane;
        self.set_waiting(self.waiting + 1);
    }

    /// One acquirer of `lane` stopped waiting (served, failed or gone).
    fn left(&mut self, lane: usize) {
        self.lane_waiting[lane] -= 1;
        if self.lane_waiting[lane] == 0 {
            self.busy &= !(1 << lane);
        }
        self.set_waiting(self.waiting - 1);
    }

    /// Hands the slot to the first waiter of `lane` that may use it.
    fn hand_from(
        &mut self,
        lane: usize,
        conn_id: u64,
        conn_sent: u64,
        conn: &Arc<C>,
    ) -> Option<Waker> {
        let mut i = 0;
        while i < self.lanes[lane].len() {
            let key = self.lanes[lane][i];
            if !self.is_live_waiting(key) {
                // Stale: drop it from the front cheaply; skip it elsewhere.
                if i == 0 {
                    self.lanes[lane].pop_front();
                } else {
                    i += 1;
                }
                continue;
            }
            let entry = &mut self.entries[key.index];
            if entry.retry.is_some_and(|r| !r.admits(conn_id, conn_sent)) {
                i += 1;
                continue;
            }
            let state = std::mem::replace(&mut entry.state, State::Handed(Arc::clone(conn)));
            self.left(lane);
            if i == 0 {
                self.lanes[lane].pop_front();
            } else {
                self.lanes[lane].remove(i);
            }
            return match state {
                State::Waiting(waker) => Some(waker),
                _ => None,
            };
        }
        None
    }

    /// Fails every waiting acquirer with `error` (pool closed, or the dial they waited for
    /// failed); returns their wakers.
    pub(crate) fn fail_all(&mut self, error: &Error) -> Vec<Waker> {
        let mut wakers = Vec::with_capacity(self.waiting);
        let keys: Vec<WaiterKey> = self.lanes.iter_mut().flat_map(|l| l.drain(..)).collect();
        for key in keys {
            let Some(entry) = self.entries.get_mut(key.index) else {
                continue;
            };
            if entry.generation != key.generation {
                continue;
            }
            if let State::Waiting(_) = entry.state
                && let State::Waiting(waker) =
                    std::mem::replace(&mut entry.state, State::Failed(error.clone()))
            {
                wakers.push(waker);
            }
        }
        self.lane_waiting = [0; LANES];
        self.busy = 0;
        self.set_waiting(0);
        wakers
    }

    /// The waiter's outcome if it has one (the entry is then vacant and the key spent);
    /// otherwise remembers `waker` and returns `Pending`.
    pub(crate) fn poll(&mut self, key: WaiterKey, waker: &Waker) -> Poll<Result<Arc<C>, Error>> {
        let Some(entry) = self.entry_mut(key) else {
            return Poll::Ready(Err(Error::PoolClosed));
        };
        match &mut entry.state {
            State::Waiting(held) => {
                if !held.will_wake(waker) {
                    held.clone_from(waker);
                }
                Poll::Pending
            }
            _ => match self.vacate(key) {
                State::Handed(conn) => Poll::Ready(Ok(conn)),
                State::Failed(error) => Poll::Ready(Err(error)),
                State::Waiting(_) | State::Vacant => Poll::Ready(Err(Error::PoolClosed)),
            },
        }
    }

    /// The waiter's outcome if it already has one (the key is then spent), without touching
    /// its registered waker.
    pub(crate) fn take_outcome(&mut self, key: WaiterKey) -> Option<Result<Arc<C>, Error>> {
        let entry = self.entry_mut(key)?;
        if matches!(entry.state, State::Waiting(_)) {
            return None;
        }
        match self.vacate(key) {
            State::Handed(conn) => Some(Ok(conn)),
            State::Failed(error) => Some(Err(error)),
            State::Waiting(_) | State::Vacant => None,
        }
    }

    /// Leaves the queue (timeout, or the acquirer was dropped).
    pub(crate) fn cancel(&mut self, key: WaiterKey) -> Cancelled<C> {
        if self.entry_mut(key).is_none() {
            return Cancelled::Nothing;
        }
        match self.vacate(key) {
            State::Waiting(_) => {
                self.left(usize::from(self.entries[key.index].lane));
                Cancelled::Nothing
            }
            State::Handed(conn) => Cancelled::Handed(conn),
            State::Failed(_) | State::Vacant => Cancelled::Nothing,
        }
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

    /// Retried requests still waiting, with where they may go.
    pub(crate) fn waiting_retries(&self) -> impl Iterator<Item = RetryTarget> + '_ {
        self.lanes[RETRY_LANE]
            .iter()
            .filter(|k| self.is_live_waiting(**k))
            .filter_map(|k| self.entries[k.index].retry)
    }

    /// Lifts the "among the first n" condition of every waiting retry: used when no
    /// connection can be added to give them a fresh one, so they take what there is.
    pub(crate) fn relax_retries(&mut self) {
        for key in self.lanes[RETRY_LANE].clone() {
            if self.is_live_waiting(key)
                && let Some(retry) = &mut self.entries[key.index].retry
            {
                retry.within_first = None;
            }
        }
    }

    fn is_live_waiting(&self, key: WaiterKey) -> bool {
        self.entries
            .get(key.index)
            .is_some_and(|e| e.generation == key.generation && matches!(e.state, State::Waiting(_)))
    }

    fn entry_mut(&mut self, key: WaiterKey) -> Option<&mut Entry<C>> {
        self.entries
            .get_mut(key.index)
            .filter(|e| e.generation == key.generation && !matches!(e.state, State::Vacant))
    }

    fn vacate(&mut self, key: WaiterKey) -> State<C> {
        let entry = &mut self.entries[key.index];
        let state = std::mem::replace(&mut entry.state, State::Vacant);
        self.vacant.push(key.index);
        state
    }

    /// Keeps the lanes from growing with keys of waiters that left from the middle of a queue
    /// whose front never moves.
    fn compact(&mut self) {
        let queued: usize = self.lanes.iter().map(VecDeque::len).sum();
        if queued > 2 * self.waiting + 64 {
            let entries = &self.entries;
            for lane in &mut self.lanes {
                lane.retain(|k| {
                    entries.get(k.index).is_some_and(|e| {
                        e.generation == k.generation && matches!(e.state, State::Waiting(_))
                    })
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    /// Aging off: urgency alone orders.
    const NO_AGING: Aging = Aging { left: None };

    fn waker() -> Waker {
        Waker::noop().clone()
    }

    fn queue_of(n: usize) -> (WaitQueue<u32>, Vec<WaiterKey>) {
        let mut q = WaitQueue::default();
        let keys = (0..n)
            .map(|_| q.push(None, 3, Instant::now(), waker()))
            .collect();
        (q, keys)
    }

    /// Slots go to waiters in arrival order.
    #[test]
    fn hand_off_is_fifo() {
        let (mut q, keys) = queue_of(3);
        let conn = Arc::new(7u32);
        for key in &keys {
            assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
            assert!(matches!(q.poll(*key, &waker()), Poll::Ready(Ok(_))));
        }
        assert_eq!(q.waiting(), 0);
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_none());
    }

    /// A waiter that left is skipped; one handed a slot before leaving gives it back.
    #[test]
    fn cancelled_waiters_are_skipped_and_return_handed_slots() {
        let (mut q, keys) = queue_of(3);
        let conn = Arc::new(7u32);
        assert!(matches!(q.cancel(keys[0]), Cancelled::Nothing));
        assert_eq!(q.waiting(), 2);
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
        // keys[1] got it; it is cancelled before it woke: the slot comes back.
        assert!(matches!(q.cancel(keys[1]), Cancelled::Handed(_)));
        assert_eq!(q.waiting(), 1);
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
        assert!(matches!(q.poll(keys[2], &waker()), Poll::Ready(Ok(_))));
        // A spent key is not confused with the entry's next occupant.
        let newcomer = q.push(None, 3, Instant::now(), waker());
        assert!(matches!(q.cancel(keys[2]), Cancelled::Nothing));
        assert!(q.poll(newcomer, &waker()).is_pending());
    }

    /// A waiter excluding a connection keeps its place; the next one takes that slot.
    #[test]
    fn exclusion_skips_without_losing_the_place() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let first = q.push(
            Some(RetryTarget {
                exclude: 1,
                within_first: None,
            }),
            3,
            Instant::now(),
            waker(),
        );
        let second = q.push(None, 3, Instant::now(), waker());
        let conn1 = Arc::new(1u32);
        let conn2 = Arc::new(2u32);
        assert!(q.hand_to_next(1, 0, &conn1, NO_AGING).is_some());
        assert!(matches!(q.poll(second, &waker()), Poll::Ready(Ok(c)) if *c == 1));
        assert!(q.poll(first, &waker()).is_pending());
        assert!(q.hand_to_next(2, 0, &conn2, NO_AGING).is_some());
        assert!(matches!(q.poll(first, &waker()), Poll::Ready(Ok(c)) if *c == 2));
    }

    /// Failing the queue reaches every waiter once.
    #[test]
    fn fail_all_reaches_every_waiter() {
        let (mut q, keys) = queue_of(4);
        q.cancel(keys[2]);
        let wakers = q.fail_all(&Error::PoolClosed);
        assert_eq!(wakers.len(), 3);
        assert_eq!(q.waiting(), 0);
        for key in [keys[0], keys[1], keys[3]] {
            assert!(matches!(
                q.poll(key, &waker()),
                Poll::Ready(Err(Error::PoolClosed))
            ));
        }
    }

    /// A retry goes ahead of everyone waiting; it was sent before any of them. Deadlines
    /// expire per lane.
    #[test]
    fn retries_are_served_first() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let first = q.push(None, 3, Instant::now(), waker());
        let retry = q.push(
            Some(RetryTarget {
                exclude: 9,
                within_first: None,
            }),
            3,
            Instant::now(),
            waker(),
        );
        let conn = Arc::new(1u32);
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
        assert!(matches!(q.poll(retry, &waker()), Poll::Ready(Ok(_))));
        assert!(q.poll(first, &waker()).is_pending());
    }

    /// A retry refused as the 51st request waits for a connection on which clearly fewer than
    /// 50 went out.
    #[test]
    fn a_retry_goes_only_where_it_will_be_among_the_first_n() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let target = RetryTarget {
            exclude: 1,
            within_first: Some(50),
        };
        let retry = q.push(Some(target), 3, Instant::now(), waker());
        let conn = Arc::new(2u32);
        assert!(
            q.hand_to_next(2, 60, &conn, NO_AGING).is_none(),
            "too far into connection 2"
        );
        assert!(
            q.hand_to_next(3, 10, &conn, NO_AGING).is_some(),
            "connection 3 is fresh enough"
        );
        assert!(matches!(q.poll(retry, &waker()), Poll::Ready(Ok(_))));
    }

    /// Waiters are served by urgency, FIFO within one: 5, 5, 1, 3 → 1, 3, 5, 5.
    #[test]
    fn urgency_orders_the_queue() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let now = Instant::now();
        let keys: Vec<_> = [5u8, 5, 1, 3]
            .iter()
            .map(|&u| q.push(None, u, now + TIMEOUT, waker()))
            .collect();
        let conn = Arc::new(1u32);
        let mut served = Vec::new();
        for _ in 0..4 {
            assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
            let i = keys
                .iter()
                .position(|k| matches!(q.take_outcome(*k), Some(Ok(_))))
                .expect("one was served");
            served.push(i);
        }
        assert_eq!(served, vec![2, 3, 0, 1]);
    }

    /// A waiter older than the aging bound is served as urgency 0, ahead of a newer urgent
    /// one.
    #[test]
    fn aging_promotes_a_starved_waiter() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let aging = Aging::new(Duration::from_millis(100), TIMEOUT);
        let now = Instant::now();
        let old = now - Duration::from_secs(1);
        let starved = q.push(None, 7, old + TIMEOUT, waker());
        let urgent = q.push(None, 1, now + TIMEOUT, waker());
        let conn = Arc::new(1u32);
        assert!(q.hand_to_next(1, 0, &conn, aging).is_some());
        assert!(matches!(q.take_outcome(starved), Some(Ok(_))));
        assert!(q.take_outcome(urgent).is_none());
        // Without aging, urgency decides.
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let starved = q.push(None, 7, old + TIMEOUT, waker());
        let urgent = q.push(None, 1, now + TIMEOUT, waker());
        assert!(q.hand_to_next(1, 0, &conn, NO_AGING).is_some());
        assert!(matches!(q.take_outcome(urgent), Some(Ok(_))));
        assert!(q.take_outcome(starved).is_none());
    }

    /// Waiters past their deadline fail in arrival order; later ones keep waiting.
    #[test]
    fn expiry_fails_only_waiters_past_their_deadline() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let t0 = Instant::now();
        let second = std::time::Duration::from_secs(1);
        let early = q.push(None, 3, t0, waker());
        let late = q.push(None, 3, t0 + second, waker());
        assert_eq!(q.next_deadline(), Some(t0));
        assert_eq!(q.expire(t0, || Error::PoolClosed).len(), 1);
        assert!(matches!(q.poll(early, &waker()), Poll::Ready(Err(_))));
        assert!(q.poll(late, &waker()).is_pending());
        assert_eq!(q.next_deadline(), Some(t0 + second));
        assert_eq!(q.waiting(), 1);
    }

    /// Churn at the back of a queue whose front never moves does not grow it without bound.
    #[test]
    fn order_stays_bounded_under_churn() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let _front = q.push(None, 3, Instant::now(), waker());
        for _ in 0..10_000 {
            let k = q.push(None, 3, Instant::now(), waker());
            q.cancel(k);
        }
        let queued: usize = q.lanes.iter().map(VecDeque::len).sum();
        assert!(queued < 200, "{queued}");
        assert!(q.entries.len() <= 2);
    }
}
