//! One origin's decision state: its connections, which of them have free slots, who waits,
//! what is being dialed. Plain data under the origin's mutex, its fields private to this
//! module: the parts of its logic live in the child files ([`selection`]: which connection
//! takes the next stream; [`scale`]: how many dials waiting demand justifies; [`sweep`]: which
//! idle connections leave), and everyone else goes through its methods.
//!
//! Every method decides and returns *what to do* (wakers to wake, dials to start, connections
//! to drop); the caller drops the guard first and then acts, so no I/O, wake-up or drop of a
//! connection happens under the lock. The state is generic over [`Pooled`] so that unit tests
//! drive selection, hand-off and scale-up with fake connections.

use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use tracing::debug;

use super::backoff::DialBackoff;
use super::demand::DemandWindow;
use super::free_set::FreeSet;
use super::pooled::{PoolEvent, Pooled};
use super::reserved_dials::ReservedDials;
use super::wait_queue::{Aging, Cancelled, WaitQueue, WaiterKey};
use crate::error::Error;
use crate::protocol::Protocol;
use crate::slot::NOT_LISTED;

mod scale;
mod selection;
mod sweep;

pub(crate) use scale::DialPlan;

/// What a release decided.
#[derive(Debug)]
pub(crate) struct Released<C> {
    /// The waiter the slot was handed to.
    pub(crate) waker: Option<Waker>,
    /// A drained connection whose last stream this was: it leaves the table, and dropping it
    /// (outside the lock) lets its driver close the socket.
    pub(crate) retired: Option<Arc<C>>,
    /// The last request of a connection awaiting its verdict was classified: plan dials now
    /// (see [`OriginState::await_verdict`]).
    pub(crate) replan: bool,
}

/// The mutable part of an origin pool.
#[derive(Debug)]
pub(crate) struct OriginState<C> {
    /// Open connections, oldest first; `conns[i].slot().position() == i`.
    conns: Vec<Arc<C>>,
    free: FreeSet,
    queue: WaitQueue<C>,
    /// Dials in flight: raised only by [`reserve_dials`](Self::reserve_dials), lowered only by
    /// [`dial_ended`](Self::dial_ended).
    dialing: usize,
    /// Connections kept open by the sweep; raised by prewarm.
    warm_min: usize,
    /// Failed dials, and when the next may start: every dial obeys it.
    backoff: DialBackoff,
    /// The last peer stream limit seen on this origin: what a new dial is planned to carry.
    planned_streams: Option<usize>,
    /// What the origin's server negotiated last: HTTP/1.1 origins use the `h1_*` limits.
    protocol: Option<Protocol>,
    /// A replan is already scheduled for the end of an HTTP/1.1 reuse grace.
    recheck_scheduled: bool,
    /// Connections that ended having served nothing, whose requests are still being
    /// classified (see [`await_verdict`](Self::await_verdict)).
    awaiting_verdict: Vec<u64>,
    /// The origin's acquire-deadline timer is running.
    expiry_running: bool,
    /// That timer's task, aborted when the origin is dropped: it may sleep until a deadline
    /// `acquire_timeout` away after its waiters left.
    expiry_task: Option<tokio::task::AbortHandle>,
    /// When a waiter is served as urgency 0 (`PoolConfig::priority_aging`).
    aging: Aging,
    /// Recent peak demand (`PoolConfig::demand_window`).
    demand: DemandWindow,
    /// Since when the origin has had nothing (see [`OriginState::vacant_since`]).
    vacant_since: Option<Instant>,
    closed: bool,
}

impl<C> Default for OriginState<C> {
    fn default() -> Self {
        OriginState {
            conns: Vec::new(),
            free: FreeSet::default(),
            queue: WaitQueue::default(),
            dialing: 0,
            warm_min: 0,
            backoff: DialBackoff::default(),
            planned_streams: None,
            protocol: None,
            recheck_scheduled: false,
            awaiting_verdict: Vec::new(),
            expiry_running: false,
            expiry_task: None,
            aging: Aging::default(),
            demand: DemandWindow::default(),
            vacant_since: None,
            closed: false,
        }
    }
}

impl<C> OriginState<C> {
    /// An empty origin with its queue's aging and its demand window configured.
    pub(crate) fn new(aging: Aging, demand: DemandWindow) -> OriginState<C> {
        OriginState {
            aging,
            demand,
            ..OriginState::default()
        }
    }

    /// A connection served a response: the origin's dials succeed again.
    pub(crate) fn served(&mut self) {
        self.backoff.succeeded();
    }

    /// Dials failed in a row (see [`DialBackoff`]).
    pub(crate) fn dial_failures_in_row(&self) -> u32 {
        self.backoff.failures()
    }

    /// True when a dial may start at `now` (see [`DialBackoff`]).
    pub(crate) fn may_dial(&self, now: Instant) -> bool {
        self.backoff.allows_dial(now)
    }

    /// Shut down: takes no new acquirers or connections.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Who waits.
    pub(crate) fn queue(&self) -> &WaitQueue<C> {
        &self.queue
    }

    /// Who waits, to join, poll, leave or expire.
    pub(crate) fn queue_mut(&mut self) -> &mut WaitQueue<C> {
        &mut self.queue
    }

    /// The window of recent demand (`PoolConfig::demand_window`).
    pub(crate) fn demand(&self) -> &DemandWindow {
        &self.demand
    }

    /// The peak demand within the window, as of `now`.
    pub(crate) fn peak_demand(&mut self, now: Instant) -> usize {
        self.demand.peak(now)
    }

    /// Connections kept open by the sweep.
    pub(crate) fn warm_min(&self) -> usize {
        self.warm_min
    }

    /// Prewarm asked for at least `n` connections to be kept open.
    pub(crate) fn raise_warm_min(&mut self, n: usize) {
        self.warm_min = self.warm_min.max(n);
    }

    /// Notes that the acquire-deadline timer runs; false if it already did.
    pub(crate) fn start_expiry_timer(&mut self) -> bool {
        !std::mem::replace(&mut self.expiry_running, true)
    }

    /// The timer found no deadline left and ends.
    pub(crate) fn expiry_timer_ended(&mut self) {
        self.expiry_running = false;
    }

    /// The timer's task, aborted when the origin is dropped.
    pub(crate) fn set_expiry_task(&mut self, task: tokio::task::AbortHandle) {
        self.expiry_task = Some(task);
    }

    pub(crate) fn take_expiry_task(&mut self) -> Option<tokio::task::AbortHandle> {
        self.expiry_task.take()
    }

    /// Notes a replan at the end of an HTTP/1.1 reuse grace; false if one is already due.
    pub(crate) fn schedule_recheck(&mut self) -> bool {
        !std::mem::replace(&mut self.recheck_scheduled, true)
    }

    /// The scheduled replan runs.
    pub(crate) fn recheck_due(&mut self) {
        self.recheck_scheduled = false;
    }
}

impl<C: Pooled> OriginState<C> {
    /// The error for a new acquirer while the origin backs off and nothing can serve it: no
    /// connection in the table that is not closed, no dial in flight.
    pub(crate) fn backing_off(
        &self,
        origin: &crate::origin::Origin,
        now: Instant,
    ) -> Option<Error> {
        // The backoff first: it is almost always clear, and cheaper than the table.
        let refusal = self.backoff.refusal(origin, now)?;
        if self.dialing > 0 || self.conns.iter().any(|c| !c.is_closed()) {
            return None;
        }
        Some(refusal)
    }

    /// Dials in flight.
    pub(crate) fn dialing(&self) -> usize {
        self.dialing
    }

    /// Counts `n` more dials in flight; each must be started, and given back to
    /// [`dial_ended`](Self::dial_ended) when it ends.
    pub(crate) fn reserve_dials(&mut self, n: usize) -> ReservedDials {
        self.dialing += n;
        ReservedDials::counted(n)
    }

    /// A dial reserved here ended (connected, failed or cancelled).
    pub(crate) fn dial_ended(&mut self, dial: ReservedDials) {
        self.dialing -= dial.give_back();
    }

    /// Open connections, oldest first.
    pub(crate) fn connections(&self) -> &[Arc<C>] {
        &self.conns
    }

    /// Since when the origin has had no connection, dial, waiter or warm minimum, as first
    /// noticed at `now` (the maintenance tick asks); `None` while it has any. The manager
    /// forgets an origin vacant for `idle_timeout`, so every host a URL ever named does not
    /// stay in memory.
    pub(crate) fn vacant_since(&mut self, now: Instant) -> Option<Instant> {
        let vacant = self.conns.is_empty()
            && self.dialing == 0
            && self.queue.waiting() == 0
            && self.warm_min == 0
            && self.demand.peak(now) == 0;
        if !vacant {
            self.vacant_since = None;
            return None;
        }
        Some(*self.vacant_since.get_or_insert(now))
    }

    /// A lease on `conn` ended. Hands the slot to the longest waiter that may use it, or
    /// gives it back; a drained connection whose last stream this was leaves the table.
    pub(crate) fn release(&mut self, conn: &Arc<C>) -> Released<C> {
        let Some(position) = self.listed(conn) else {
            // Already out of the table (closed, swept, pool shut down): just count.
            let remaining = conn.slot().give_back();
            conn.note(PoolEvent::SlotIdle);
            return Released {
                waker: None,
                retired: None,
                replan: remaining == 0 && self.verdict_in(conn.id()),
            };
        };
        // The slot can move straight on if the connection still takes streams and the peer
        // has not lowered its limit below what is in use.
        let still_usable = conn.accepts_streams() && conn.slot().active() <= conn.stream_limit();
        if still_usable
            && let Some(waker) =
                self.queue
                    .hand_to_next(conn.id(), conn.requests_sent(), conn, self.aging)
        {
            conn.note(PoolEvent::Leased);
            return Released {
                waker: Some(waker),
                retired: None,
                replan: false,
            };
        }
        let remaining = conn.slot().give_back();
        conn.note(PoolEvent::SlotIdle);
        if remaining == 0 && conn.is_draining() {
            return Released {
                waker: None,
                retired: self.remove_at(position),
                replan: false,
            };
        }
        if Self::has_free_slot(conn) {
            self.index(position, conn);
        }
        Released {
            waker: None,
            retired: None,
            replan: false,
        }
    }

    /// `conn` left the table having served nothing while requests it carried are still
    /// being classified: their verdict (a GOAWAY that refused the first one makes it a failed
    /// dial) is in when the last gives its slot back, and [`release`](Self::release) then
    /// asks for a plan. False when none is out: the verdict is in now.
    pub(crate) fn await_verdict(&mut self, conn: &Arc<C>) -> bool {
        if conn.slot().active() == 0 {
            return false;
        }
        self.awaiting_verdict.push(conn.id());
        true
    }

    /// True (once) when connection `id` was awaiting its verdict.
    fn verdict_in(&mut self, id: u64) -> bool {
        match self.awaiting_verdict.iter().position(|&a| a == id) {
            Some(i) => {
                self.awaiting_verdict.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// A slot of `conn` was given back without the lock, and the table must catch up (a
    /// waiter arrived, or the connection had left the free index): retire a drained
    /// connection whose last stream it was, or offer the slot. Returns the wakers of the
    /// waiters served and the retired connection.
    pub(crate) fn settle(&mut self, conn: &Arc<C>) -> (Vec<Waker>, Option<Arc<C>>) {
        let Some(position) = self.listed(conn) else {
            return (Vec::new(), None);
        };
        if conn.is_draining() && conn.slot().active() == 0 {
            return (Vec::new(), self.remove_at(position));
        }
        (self.offer(conn), None)
    }

    /// `conn` may take more streams than before: hands its free slots to waiters, and indexes
    /// what is left.
    pub(crate) fn offer(&mut self, conn: &Arc<C>) -> Vec<Waker> {
        let mut wakers = Vec::new();
        let Some(position) = self.listed(conn) else {
            return wakers;
        };
        if let Some(limit) = conn.planned_limit() {
            self.planned_streams = Some(limit);
        }
        while Self::has_free_slot(conn) {
            match self
                .queue
                .hand_to_next(conn.id(), conn.requests_sent(), conn, self.aging)
            {
                Some(waker) => {
                    conn.slot().take();
                    conn.note(PoolEvent::Leased);
                    wakers.push(waker);
                }
                None => break,
            }
        }
        if Self::has_free_slot(conn) {
            self.index(position, conn);
        } else {
            self.unindex(position, conn);
        }
        wakers
    }

    /// Offers every connection's free slots (a safety net run by the maintenance tick).
    pub(crate) fn offer_all(&mut self) -> Vec<Waker> {
        let conns = self.conns.clone();
        conns.iter().flat_map(|c| self.offer(c)).collect()
    }

    /// Offers the free slots of the connections in the free index: run right after an
    /// acquirer queued, to serve it (or those ahead of it) from a slot given back without
    /// the lock while it was deciding to wait.
    pub(crate) fn offer_indexed(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        let mut from = 0;
        while self.queue.waiting() > 0
            && let Some(position) = self.free.next_from(from)
        {
            from = position + 1;
            if let Some(conn) = self.conns.get(position).cloned() {
                wakers.extend(self.offer(&conn));
            }
        }
        wakers
    }

    /// A dial finished: the connection joins the table and its slots go to waiters.
    ///
    /// The dial counts as a success only once the connection serves a response
    /// ([`served`](Self::served)).
    pub(crate) fn add(&mut self, conn: Arc<C>) -> Vec<Waker> {
        if let Some(limit) = conn.planned_limit() {
            self.planned_streams = Some(limit);
        }
        self.protocol = Some(conn.protocol());
        conn.slot().set_position(self.conns.len());
        self.conns.push(Arc::clone(&conn));
        self.offer(&conn)
    }

    /// `conn` takes no new streams: it leaves the table. Returns it if it was listed.
    pub(crate) fn remove(&mut self, conn: &Arc<C>) -> Option<Arc<C>> {
        let position = self.listed(conn)?;
        self.remove_at(position)
    }

    pub(super) fn remove_at(&mut self, position: usize) -> Option<Arc<C>> {
        if position >= self.conns.len() {
            return None;
        }
        let conn = self.conns.remove(position);
        conn.slot().set_position(NOT_LISTED);
        conn.slot().set_indexed(false);
        debug!(
            conn_id = conn.id(),
            protocol = %conn.protocol(),
            closed = conn.is_closed(),
            "connection removed from selection"
        );
        self.reindex();
        Some(conn)
    }

    /// Leaves the queue; a slot handed over meanwhile is passed to the next waiter (or given
    /// back). Returns the outcome (a late hand-off or failure the caller may still use) and a
    /// waker to wake.
    pub(crate) fn cancel(&mut self, key: WaiterKey) -> Cancelled<C> {
        self.queue.cancel(key)
    }

    /// Stops handing out slots: every waiter fails with `PoolClosed`; the connections are
    /// returned so the caller can wait for their streams and then drop them.
    pub(crate) fn close(&mut self) -> (Vec<Arc<C>>, Vec<Waker>) {
        self.closed = true;
        let conns = std::mem::take(&mut self.conns);
        self.free.clear();
        for conn in &conns {
            conn.slot().set_position(NOT_LISTED);
            conn.slot().set_indexed(false);
            conn.note(PoolEvent::Closed);
        }
        (conns, self.queue.fail_all(&Error::PoolClosed))
    }

    /// The number of connections open to the origin.
    pub(crate) fn open(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests;
