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
use std::time::Instant;

use crate::error::Error;

use super::retry_target::RetryTarget;
pub(crate) use order::Aging;
use order::{LANES, RETRY_LANE, lane_of};

mod order;

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

    /// One more acquirer waits in `lane`.
    fn joined(&mut self, lane: usize) {
        self.lane_waiting[lane] += 1;
        self.busy |= 1 << lane;
        self.set_waiting(self.waiting + 1);
    }

    /// One acquirer of `lane` stopped waiting (served, failed or gone).
    fn left(&mut self, lane: usize) {
        debug_assert!(
            self.lane_waiting[lane] > 0 && self.waiting > 0,
            "a waiter left a lane it was not counted in"
        );
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
mod tests;
