//! The acquirers waiting for a stream slot on one origin, and the hand-off that serves them.
//!
//! A waiter is an entry in a slab owned by the origin's state (no allocation per wait once
//! the slab has grown to the peak number of waiters). When a slot frees and someone waits,
//! the releaser, under the origin lock it already holds, puts the slot's connection into the
//! longest waiter's entry and wakes it: the waiter wakes holding its lease, with no re-scan of
//! the connections and no race with newcomers (who queue behind it: FIFO, no barging).
//!
//! Waiters sit in lanes, each FIFO, served in lane order: first retries (requests sent before
//! anyone now waiting, refused by a server's rotation; re-queued behind newcomers they would
//! land in the tail of the next connection's streams, the very streams the next rotation
//! refuses), then everyone else in arrival order.
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
use std::time::Instant;

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
    /// When it gives up.
    deadline: Instant,
}

/// What leaving the queue early gave back.
pub(crate) enum Cancelled<C> {
    /// The waiter was still waiting (or had failed): nothing to pass on.
    Nothing,
    /// A slot had been handed over meanwhile; the caller passes it on.
    Handed(Arc<C>),
}

/// Lanes: retries, then arrivals.
const LANES: usize = 2;
const RETRY_LANE: usize = 0;
const ARRIVAL_LANE: usize = 1;

/// The FIFO lanes of waiters, over a slab of entries.
pub(crate) struct WaitQueue<C> {
    entries: Vec<Entry<C>>,
    vacant: Vec<usize>,
    /// Keys per lane, each in arrival order; keys of entries that left early stay until they
    /// reach the front (or a compaction), and are skipped.
    lanes: [VecDeque<WaiterKey>; LANES],
    waiting: usize,
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

    /// Queues an acquirer at the back of its lane: the retry lane for a retried request.
    pub(crate) fn push(
        &mut self,
        retry: Option<RetryTarget>,
        deadline: Instant,
        waker: Waker,
    ) -> WaiterKey {
        let generation = self.next_generation;
        self.next_generation += 1;
        let entry = Entry {
            generation,
            state: State::Waiting(waker),
            retry,
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
        let lane = if retry.is_some() {
            RETRY_LANE
        } else {
            ARRIVAL_LANE
        };
        self.lanes[lane].push_back(key);
        self.set_waiting(self.waiting + 1);
        self.compact();
        key
    }

    /// Hands a slot on the connection `conn_id` to the longest waiter that may use it;
    /// returns its waker (to wake once the lock is dropped), or `None` when nobody can take
    /// it. The slot stays counted as leased: it moves from the releaser to the waiter.
    pub(crate) fn hand_to_next(
        &mut self,
        conn_id: u64,
        conn_sent: u64,
        conn: &Arc<C>,
    ) -> Option<Waker> {
        for lane in 0..LANES {
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
                self.set_waiting(self.waiting - 1);
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
                self.set_waiting(self.waiting - 1);
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
                self.set_waiting(self.waiting - 1);
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

    fn waker() -> Waker {
        Waker::noop().clone()
    }

    fn queue_of(n: usize) -> (WaitQueue<u32>, Vec<WaiterKey>) {
        let mut q = WaitQueue::default();
        let keys = (0..n)
            .map(|_| q.push(None, Instant::now(), waker()))
            .collect();
        (q, keys)
    }

    /// Slots go to waiters in arrival order.
    #[test]
    fn hand_off_is_fifo() {
        let (mut q, keys) = queue_of(3);
        let conn = Arc::new(7u32);
        for key in &keys {
            assert!(q.hand_to_next(1, 0, &conn).is_some());
            assert!(matches!(q.poll(*key, &waker()), Poll::Ready(Ok(_))));
        }
        assert_eq!(q.waiting(), 0);
        assert!(q.hand_to_next(1, 0, &conn).is_none());
    }

    /// A waiter that left is skipped; one handed a slot before leaving gives it back.
    #[test]
    fn cancelled_waiters_are_skipped_and_return_handed_slots() {
        let (mut q, keys) = queue_of(3);
        let conn = Arc::new(7u32);
        assert!(matches!(q.cancel(keys[0]), Cancelled::Nothing));
        assert_eq!(q.waiting(), 2);
        assert!(q.hand_to_next(1, 0, &conn).is_some());
        // keys[1] got it; it is cancelled before it woke: the slot comes back.
        assert!(matches!(q.cancel(keys[1]), Cancelled::Handed(_)));
        assert_eq!(q.waiting(), 1);
        assert!(q.hand_to_next(1, 0, &conn).is_some());
        assert!(matches!(q.poll(keys[2], &waker()), Poll::Ready(Ok(_))));
        // A spent key is not confused with the entry's next occupant.
        let newcomer = q.push(None, Instant::now(), waker());
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
            Instant::now(),
            waker(),
        );
        let second = q.push(None, Instant::now(), waker());
        let conn1 = Arc::new(1u32);
        let conn2 = Arc::new(2u32);
        assert!(q.hand_to_next(1, 0, &conn1).is_some());
        assert!(matches!(q.poll(second, &waker()), Poll::Ready(Ok(c)) if *c == 1));
        assert!(q.poll(first, &waker()).is_pending());
        assert!(q.hand_to_next(2, 0, &conn2).is_some());
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
        let first = q.push(None, Instant::now(), waker());
        let retry = q.push(
            Some(RetryTarget {
                exclude: 9,
                within_first: None,
            }),
            Instant::now(),
            waker(),
        );
        let conn = Arc::new(1u32);
        assert!(q.hand_to_next(1, 0, &conn).is_some());
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
        let retry = q.push(Some(target), Instant::now(), waker());
        let conn = Arc::new(2u32);
        assert!(
            q.hand_to_next(2, 60, &conn).is_none(),
            "too far into connection 2"
        );
        assert!(
            q.hand_to_next(3, 10, &conn).is_some(),
            "connection 3 is fresh enough"
        );
        assert!(matches!(q.poll(retry, &waker()), Poll::Ready(Ok(_))));
    }

    /// Waiters past their deadline fail in arrival order; later ones keep waiting.
    #[test]
    fn expiry_fails_only_waiters_past_their_deadline() {
        let mut q: WaitQueue<u32> = WaitQueue::default();
        let t0 = Instant::now();
        let second = std::time::Duration::from_secs(1);
        let early = q.push(None, t0, waker());
        let late = q.push(None, t0 + second, waker());
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
        let _front = q.push(None, Instant::now(), waker());
        for _ in 0..10_000 {
            let k = q.push(None, Instant::now(), waker());
            q.cancel(k);
        }
        let queued: usize = q.lanes.iter().map(VecDeque::len).sum();
        assert!(queued < 200, "{queued}");
        assert!(q.entries.len() <= 2);
    }
}
