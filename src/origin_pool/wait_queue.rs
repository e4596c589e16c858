//! The acquirers waiting for a stream slot on one origin, and the hand-off that serves them.
//!
//! A waiter is an entry in a slab owned by the origin's state (no allocation per wait once
//! the slab has grown to the peak number of waiters). When a slot frees and someone waits,
//! the releaser, under the origin lock it already holds, puts the slot's connection into the
//! longest waiter's entry and wakes it: the waiter wakes holding its lease, with no re-scan of
//! the connections and no race with newcomers (who queue behind it: FIFO, no barging).
//!
//! Deadlines cost no timer per waiter: every waiter of an origin has the same
//! `acquire_timeout`, so in a FIFO the front waiter always expires first, and one timer per
//! origin, armed for the front's deadline ([`WaitQueue::next_deadline`]), expires them all in
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
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::error::Error;

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
    /// A connection this waiter may not use (the one its retried request failed on).
    exclude: Option<u64>,
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

/// The FIFO of waiters, over a slab of entries.
pub(crate) struct WaitQueue<C> {
    entries: Vec<Entry<C>>,
    vacant: Vec<usize>,
    /// Keys in arrival order; keys of entries that left early stay until they reach the
    /// front (or a compaction), and are skipped.
    order: VecDeque<WaiterKey>,
    waiting: usize,
    next_generation: u64,
}

impl<C> Default for WaitQueue<C> {
    fn default() -> Self {
        WaitQueue {
            entries: Vec::new(),
            vacant: Vec::new(),
            order: VecDeque::new(),
            waiting: 0,
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

    /// Queues an acquirer at the back.
    pub(crate) fn push(
        &mut self,
        exclude: Option<u64>,
        deadline: Instant,
        waker: Waker,
    ) -> WaiterKey {
        let generation = self.next_generation;
        self.next_generation += 1;
        let entry = Entry {
            generation,
            state: State::Waiting(waker),
            exclude,
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
        self.order.push_back(key);
        self.waiting += 1;
        self.compact();
        key
    }

    /// Hands a slot on the connection `conn_id` to the longest waiter that may use it;
    /// returns its waker (to wake once the lock is dropped), or `None` when nobody can take
    /// it. The slot stays counted as leased: it moves from the releaser to the waiter.
    pub(crate) fn hand_to_next(&mut self, conn_id: u64, conn: &Arc<C>) -> Option<Waker> {
        let mut i = 0;
        while i < self.order.len() {
            let key = self.order[i];
            if !self.is_live_waiting(key) {
                // Stale: drop it from the front cheaply; skip it elsewhere.
                if i == 0 {
                    self.order.pop_front();
                } else {
                    i += 1;
                }
                continue;
            }
            let entry = &mut self.entries[key.index];
            if entry.exclude == Some(conn_id) {
                i += 1;
                continue;
            }
            let state = std::mem::replace(&mut entry.state, State::Handed(Arc::clone(conn)));
            self.waiting -= 1;
            if i == 0 {
                self.order.pop_front();
            } else {
                self.order.remove(i);
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
        for key in self.order.drain(..) {
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
        self.waiting = 0;
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

    /// Leaves the queue (timeout, or the acquirer was dropped).
    pub(crate) fn cancel(&mut self, key: WaiterKey) -> Cancelled<C> {
        if self.entry_mut(key).is_none() {
            return Cancelled::Nothing;
        }
        match self.vacate(key) {
            State::Waiting(_) => {
                self.waiting -= 1;
                Cancelled::Nothing
            }
            State::Handed(conn) => Cancelled::Handed(conn),
            State::Failed(_) | State::Vacant => Cancelled::Nothing,
        }
    }

    /// The earliest deadline of a waiting acquirer: the front's, since all share one timeout.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&key) = self.order.front() {
            if self.is_live_waiting(key) {
                return Some(self.entries[key.index].deadline);
            }
            self.order.pop_front();
        }
        None
    }

    /// Fails every waiter whose deadline has passed with `error(deadline)`; returns their
    /// wakers.
    pub(crate) fn expire(&mut self, now: Instant, error: impl Fn() -> Error) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while let Some(&key) = self.order.front() {
            if !self.is_live_waiting(key) {
                self.order.pop_front();
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
            self.waiting -= 1;
            self.order.pop_front();
        }
        wakers
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

    /// Keeps `order` from growing with keys of waiters that left from the middle of a queue
    /// whose front never moves.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.waiting + 64 {
            let entries = &self.entries;
            self.order.retain(|k| {
                entries.get(k.index).is_some_and(|e| {
                    e.generation == k.generation && matches!(e.state, State::Waiting(_))
                })
            });
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
            assert!(q.hand_to_next(1, &conn).is_some());
            assert!(matches!(q.poll(*key, &waker()), Poll::Ready(Ok(_))));
        }
        assert_eq!(q.waiting(), 0);
        assert!(q.hand_to_next(1, &conn).is_none());
    }

    /// A waiter that left is skipped; one handed a slot before leaving gives it back.
    #[test]
    fn cancelled_waiters_are_skipped_and_return_handed_slots() {
        let (mut q, keys) = queue_of(3);
        let conn = Arc::new(7u32);
        assert!(matches!(q.cancel(keys[0]), Cancelled::Nothing));
        assert_eq!(q.waiting(), 2);
        assert!(q.hand_to_next(1, &conn).is_some());
        // keys[1] got it; it is cancelled before it woke: the slot comes back.
        assert!(matches!(q.cancel(keys[1]), Cancelled::Handed(_)));
        assert_eq!(q.waiting(), 1);
        assert!(q.hand_to_next(1, &conn).is_some());
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
        let first = q.push(Some(1), Instant::now(), waker());
        let second = q.push(None, Instant::now(), waker());
        let conn1 = Arc::new(1u32);
        let conn2 = Arc::new(2u32);
        assert!(q.hand_to_next(1, &conn1).is_some());
        assert!(matches!(q.poll(second, &waker()), Poll::Ready(Ok(c)) if *c == 1));
        assert!(q.poll(first, &waker()).is_pending());
        assert!(q.hand_to_next(2, &conn2).is_some());
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
        assert!(q.order.len() < 200, "{}", q.order.len());
        assert!(q.entries.len() <= 2);
    }
}
