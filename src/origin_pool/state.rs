//! One origin's decision state: its connections, which of them have free slots, who waits,
//! what is being dialed. Plain data under the origin's mutex.
//!
//! Every method decides and returns *what to do* (wakers to wake, dials to start, connections
//! to drop); the caller drops the guard first and then acts, so no I/O, wake-up or drop of a
//! connection happens under the lock. The state is generic over [`Pooled`] so that unit tests
//! drive selection, hand-off and scale-up with fake connections.

use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use tracing::debug;

use super::scale::{dials_needed, replenish_backoff};
use super::selection::{Candidate, FreeSet, Pick, choose};
use super::wait_queue::{Aging, Cancelled, RetryTarget, WaitQueue, WaiterKey};
use crate::config::{PoolConfig, SelectionPolicy};
use crate::error::Error;
use crate::protocol::Protocol;
use crate::slot::{NOT_LISTED, SlotCell};

/// What the origin's state needs of a connection. [`Connection`](crate::connection::Connection)
/// implements it; tests use fakes.
pub(crate) trait Pooled: Send + Sync + 'static {
    fn id(&self) -> u64;
    fn slot(&self) -> &SlotCell;
    fn protocol(&self) -> Protocol;
    /// Streams it may carry now.
    fn stream_limit(&self) -> usize;
    /// The peer's limit (capped) once its SETTINGS arrived.
    fn planned_limit(&self) -> Option<usize>;
    /// Open, not draining, (HTTP/1.1) ready for a request.
    fn accepts_streams(&self) -> bool;
    fn is_closed(&self) -> bool;
    fn is_draining(&self) -> bool;
    fn retire_at(&self) -> Option<Instant>;
    fn idle_for(&self, now: Instant) -> Option<Duration>;
    /// Requests (leases) it has carried.
    fn leases(&self) -> u64;
    /// Requests sent on it.
    fn requests_sent(&self) -> u64;
    /// A slot was just counted as taken (lease and budget bookkeeping).
    fn on_leased(&self);
    /// A slot was just given back and not handed over.
    fn on_idle_slot(&self);
    /// The request budget is spent: it should drain.
    fn budget_spent(&self) -> bool;
    fn start_draining(&self);
    fn mark_closed(&self);
}

/// How long an HTTP/1.1 connection released with its response body still finishing is
/// expected back before a waiting acquirer dials another (see [`OriginState::h1_finishing`]).
/// hyper's dispatcher turns ready microseconds after the body is read, but only once its task
/// runs again, which on a loaded runtime can take tens of milliseconds.
const H1_REUSE_GRACE: Duration = Duration::from_millis(250);

/// Dials to start, and when to plan again even if nothing else happens (the end of an
/// HTTP/1.1 reuse grace).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DialPlan {
    pub(crate) dials: usize,
    pub(crate) recheck_at: Option<Instant>,
}

/// What a release decided.
#[derive(Debug)]
pub(crate) struct Released<C> {
    /// The waiter the slot was handed to.
    pub(crate) waker: Option<Waker>,
    /// A drained connection whose last stream this was: it leaves the table, and dropping it
    /// (outside the lock) lets its driver close the socket.
    pub(crate) retired: Option<Arc<C>>,
}

/// The mutable part of an origin pool.
#[derive(Debug)]
pub(crate) struct OriginState<C> {
    /// Open connections, oldest first; `conns[i].slot().position() == i`.
    conns: Vec<Arc<C>>,
    free: FreeSet,
    pub(crate) queue: WaitQueue<C>,
    /// Dials in flight.
    pub(crate) dialing: usize,
    /// Connections kept open by the sweep; raised by prewarm.
    pub(crate) warm_min: usize,
    /// Dials failed in a row, and when the sweep may next try to restore the warm minimum:
    /// a host that is down is retried with exponential backoff, not every tick.
    failures_in_row: u32,
    replenish_after: Option<Instant>,
    /// The last peer stream limit seen on this origin: what a new dial is planned to carry.
    planned_streams: Option<usize>,
    /// What the origin's server negotiated last: HTTP/1.1 origins use the `h1_*` limits.
    protocol: Option<Protocol>,
    /// A replan is already scheduled for the end of an HTTP/1.1 reuse grace.
    pub(crate) recheck_scheduled: bool,
    /// The origin's acquire-deadline timer is running.
    pub(crate) expiry_running: bool,
    /// That timer's task, aborted when the origin is dropped: it may sleep until a deadline
    /// `acquire_timeout` away after its waiters left.
    pub(crate) expiry_task: Option<tokio::task::AbortHandle>,
    /// When a waiter is served as urgency 0 (`PoolConfig::priority_aging`).
    pub(crate) aging: Aging,
    /// Since when the origin has had nothing (see [`OriginState::vacant_since`]).
    vacant_since: Option<Instant>,
    pub(crate) closed: bool,
}

impl<C> Default for OriginState<C> {
    fn default() -> Self {
        OriginState {
            conns: Vec::new(),
            free: FreeSet::default(),
            queue: WaitQueue::default(),
            dialing: 0,
            warm_min: 0,
            failures_in_row: 0,
            replenish_after: None,
            planned_streams: None,
            protocol: None,
            recheck_scheduled: false,
            expiry_running: false,
            expiry_task: None,
            aging: Aging::default(),
            vacant_since: None,
            closed: false,
        }
    }
}

impl<C: Pooled> OriginState<C> {
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
            && self.warm_min == 0;
        if !vacant {
            self.vacant_since = None;
            return None;
        }
        Some(*self.vacant_since.get_or_insert(now))
    }

    /// True when `conn` can take one more stream now. A connection whose (possibly just
    /// learned) request budget is spent starts draining here.
    fn has_free_slot(conn: &C) -> bool {
        if conn.budget_spent() {
            conn.start_draining();
            return false;
        }
        conn.accepts_streams() && conn.slot().active() < conn.stream_limit()
    }

    fn listed(&self, conn: &Arc<C>) -> Option<usize> {
        let position = conn.slot().position();
        (position != NOT_LISTED
            && self
                .conns
                .get(position)
                .is_some_and(|c| Arc::ptr_eq(c, conn)))
        .then_some(position)
    }

    /// Takes a slot on a connection chosen by `policy`, if one is free. A retry takes the
    /// freshest connection its [`RetryTarget`] admits instead (see [`Pick::Freshest`]).
    pub(crate) fn try_take(
        &mut self,
        policy: SelectionPolicy,
        retry: Option<RetryTarget>,
    ) -> Option<Arc<C>> {
        let mut saw_stale = false;
        let chosen = {
            let conns = &self.conns;
            let candidates = self.free.iter().filter_map(|position| {
                let Some(conn) = conns.get(position) else {
                    saw_stale = true;
                    return None;
                };
                if !Self::has_free_slot(conn) {
                    saw_stale = true;
                    return None;
                }
                retry
                    .is_none_or(|r| r.admits(conn.id(), conn.requests_sent()))
                    .then(|| Candidate {
                        position,
                        active: conn.slot().active(),
                        leases: conn.leases(),
                    })
            });
            let pick = match retry {
                Some(_) => Pick::Freshest,
                None => Pick::Policy(policy),
            };
            choose(pick, candidates)
        };
        if saw_stale {
            self.drop_stale();
        }
        let position = chosen?;
        let conn = Arc::clone(&self.conns[position]);
        self.take_on(position, &conn);
        Some(conn)
    }

    /// Removes positions whose connection has no free slot any more (it filled up without a
    /// pick noticing, closed, or started draining).
    fn drop_stale(&mut self) {
        let stale: Vec<usize> = self
            .free
            .iter()
            .filter(|&p| self.conns.get(p).is_none_or(|c| !Self::has_free_slot(c)))
            .collect();
        for position in stale {
            if let Some(conn) = self.conns.get(position).cloned() {
                self.unindex(position, &conn);
            } else {
                self.free.remove(position);
            }
        }
    }

    /// Puts the connection at `position` in the free index.
    fn index(&mut self, position: usize, conn: &C) {
        self.free.insert(position);
        conn.slot().set_indexed(true);
    }

    /// Takes the connection at `position` out of the free index. A release may have given a
    /// slot back without the lock just before the flag went down; it checks the flag after
    /// giving back, and this checks the count after lowering the flag (both `SeqCst`), so one
    /// of the two always sees the other and the slot is never lost from view.
    fn unindex(&mut self, position: usize, conn: &C) {
        self.free.remove(position);
        conn.slot().set_indexed(false);
        if Self::has_free_slot(conn) {
            self.index(position, conn);
        }
    }

    /// Counts a slot as taken on the connection at `position`.
    fn take_on(&mut self, position: usize, conn: &Arc<C>) {
        conn.slot().take();
        conn.on_leased();
        if !Self::has_free_slot(conn) {
            self.unindex(position, conn);
        }
    }

    /// A lease on `conn` ended. Hands the slot to the longest waiter that may use it, or
    /// gives it back; a drained connection whose last stream this was leaves the table.
    pub(crate) fn release(&mut self, conn: &Arc<C>) -> Released<C> {
        let Some(position) = self.listed(conn) else {
            // Already out of the table (closed, swept, pool shut down): just count.
            conn.slot().give_back();
            conn.on_idle_slot();
            return Released {
                waker: None,
                retired: None,
            };
        };
        // The slot can move straight on if the connection still takes streams and the peer
        // has not lowered its limit below what is in use.
        let still_usable = !conn.budget_spent()
            && conn.accepts_streams()
            && conn.slot().active() <= conn.stream_limit();
        if still_usable
            && let Some(waker) =
                self.queue
                    .hand_to_next(conn.id(), conn.requests_sent(), conn, self.aging)
        {
            conn.on_leased();
            return Released {
                waker: Some(waker),
                retired: None,
            };
        }
        let remaining = conn.slot().give_back();
        conn.on_idle_slot();
        if remaining == 0 && conn.is_draining() {
            return Released {
                waker: None,
                retired: self.remove_at(position),
            };
        }
        if Self::has_free_slot(conn) {
            self.index(position, conn);
        }
        Released {
            waker: None,
            retired: None,
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
                    conn.on_leased();
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
    pub(crate) fn add(&mut self, conn: Arc<C>) -> Vec<Waker> {
        self.failures_in_row = 0;
        self.replenish_after = None;
        if let Some(limit) = conn.planned_limit() {
            self.planned_streams = Some(limit);
        }
        self.protocol = Some(conn.protocol());
        conn.slot().set_position(self.conns.len());
        self.conns.push(Arc::clone(&conn));
        self.offer(&conn)
    }

    /// A dial failed. When nothing else can serve the waiters (no connection, no other dial),
    /// they fail with its error; otherwise they keep waiting for the capacity there is.
    pub(crate) fn dial_failed(&mut self, error: &Error, now: Instant) -> Vec<Waker> {
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        self.replenish_after = Some(now + replenish_backoff(self.failures_in_row));
        if self.dialing == 0 && self.conns.is_empty() {
            self.queue.fail_all(error)
        } else {
            Vec::new()
        }
    }

    /// `conn` takes no new streams: it leaves the table. Returns it if it was listed.
    pub(crate) fn remove(&mut self, conn: &Arc<C>) -> Option<Arc<C>> {
        let position = self.listed(conn)?;
        self.remove_at(position)
    }

    fn remove_at(&mut self, position: usize) -> Option<Arc<C>> {
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

    /// Positions shifted: renumber, and rebuild the free index.
    fn reindex(&mut self) {
        self.free.clear();
        for (position, conn) in self.conns.iter().enumerate() {
            conn.slot().set_position(position);
            conn.slot().set_indexed(false);
            if Self::has_free_slot(conn) {
                self.free.insert(position);
                conn.slot().set_indexed(true);
            }
        }
    }

    /// Drops connections that can no longer take streams: closed ones, and drained ones whose
    /// last stream has finished. Returns them to drop outside the lock.
    pub(crate) fn prune(&mut self) -> Vec<Arc<C>> {
        let mut gone = Vec::new();
        let mut position = 0;
        while position < self.conns.len() {
            let conn = &self.conns[position];
            let retired = conn.is_draining() && conn.slot().active() == 0;
            if conn.is_closed() || retired {
                gone.extend(self.remove_at(position));
            } else {
                position += 1;
            }
        }
        gone
    }

    /// Leaves the queue; a slot handed over meanwhile is passed to the next waiter (or given
    /// back). Returns the outcome (a late hand-off or failure the caller may still use) and a
    /// waker to wake.
    pub(crate) fn cancel(&mut self, key: WaiterKey) -> Cancelled<C> {
        self.queue.cancel(key)
    }

    /// Connections that count toward the origin's shape: open and not rotating out.
    fn serving(&self) -> usize {
        self.conns.iter().filter(|c| !c.is_draining()).count()
    }

    fn refresh_planned_streams(&mut self) {
        if let Some(limit) = self.conns.iter().rev().find_map(|c| c.planned_limit()) {
            self.planned_streams = Some(limit);
        }
    }

    /// Free slots counted for scale-up: a connection counts as full once the fill ratio of
    /// its slots is in use. A connection still waiting for its peer's SETTINGS counts with the
    /// limit its siblings have shown (`assumed`), like a dial in flight: otherwise each new
    /// connection would look full at one stream and the herd would dial again.
    fn free_for_scaling(
        &self,
        fill_ratio: f64,
        assumed: Option<usize>,
        retry: Option<RetryTarget>,
    ) -> usize {
        self.conns
            .iter()
            .filter(|c| {
                c.accepts_streams() && retry.is_none_or(|r| r.admits(c.id(), c.requests_sent()))
            })
            .map(|c| {
                let limit = match c.planned_limit() {
                    Some(_) => c.stream_limit(),
                    None => assumed.unwrap_or(1),
                };
                // Truncation is intended: 0.75 of 10 slots is 7 usable before scaling.
                let usable = ((limit as f64) * fill_ratio).floor().max(1.0) as usize;
                usable.min(limit).saturating_sub(c.slot().active())
            })
            .sum()
    }

    /// HTTP/1.1 connections whose last lease just ended but whose dispatcher has not yet
    /// reported ready: the response body is being finished. Counted as supply for
    /// [`H1_REUSE_GRACE`] so a sequential caller reuses its connection instead of racing it
    /// with a new dial; returns their count and when the grace ends.
    fn h1_finishing(&self, now: Instant, retry: Option<RetryTarget>) -> (usize, Option<Instant>) {
        let mut count = 0;
        let mut ends: Option<Instant> = None;
        for c in &self.conns {
            if retry.is_some_and(|r| r.exclude == c.id())
                || c.protocol() != Protocol::Http1
                || c.is_closed()
                || c.accepts_streams()
            {
                continue;
            }
            if let Some(idle) = c.idle_for(now)
                && idle < H1_REUSE_GRACE
            {
                count += 1;
                let end = now + (H1_REUSE_GRACE - idle);
                ends = Some(ends.map_or(end, |e| e.min(end)));
            }
        }
        (count, ends)
    }

    /// Reserves dials for the current waiting demand.
    ///
    /// `retry`: where the newest acquirer may go; free slots elsewhere do not count for it.
    pub(crate) fn plan_dials(
        &mut self,
        config: &PoolConfig,
        retry: Option<RetryTarget>,
        now: Instant,
    ) -> DialPlan {
        if self.closed || self.queue.waiting() == 0 {
            return DialPlan::default();
        }
        let serving = self.serving();
        let max = self.max_connections(config);
        let stranded = self.stranded_retries();
        if serving + self.dialing >= max {
            // No room for another dial, whatever the demand. Retries waiting for a fresh
            // connection that cannot come take what there is.
            if stranded && self.dialing == 0 {
                self.queue.relax_retries();
            }
            return DialPlan::default();
        }
        self.refresh_planned_streams();
        let (finishing, recheck_at) = self.h1_finishing(now, retry);
        let free = self.free_for_scaling(config.scale_up_fill_ratio, self.planned_streams, retry);
        let mut dials = dials_needed(
            self.queue.waiting(),
            free + finishing,
            self.dialing,
            self.planned_streams,
            serving,
            max,
        );
        if stranded && dials == 0 && self.dialing == 0 {
            // A retry no open connection admits: a fresh connection is where it goes.
            dials = 1;
        }
        if dials > 0 {
            debug!(
                dials,
                waiting = self.queue.waiting(),
                free,
                finishing,
                dialing = self.dialing,
                open = self.conns.len(),
                "scaling up"
            );
        }
        self.dialing += dials;
        DialPlan {
            dials,
            recheck_at: if self.queue.waiting() > 0 {
                recheck_at
            } else {
                None
            },
        }
    }

    /// True when a retry waits that no open connection accepting streams admits.
    fn stranded_retries(&self) -> bool {
        self.queue.waiting_retries().any(|r| {
            !self
                .conns
                .iter()
                .any(|c| c.accepts_streams() && r.admits(c.id(), c.requests_sent()))
        })
    }

    /// The connection cap for this origin: `h1_max_connections` once it is known to speak
    /// HTTP/1.1.
    fn max_connections(&self, config: &PoolConfig) -> usize {
        match self.protocol {
            Some(Protocol::Http1) => config.h1_max_connections,
            _ => config.max_connections_per_origin,
        }
    }

    /// Dials needed to restore the warm minimum.
    ///
    /// A connection within `lead` of its lifetime no longer counts, so its replacement is
    /// dialed while it still serves: rotation leaves no cold gap.
    pub(crate) fn plan_replenish(&mut self, now: Instant, lead: Duration) -> usize {
        if self.closed || self.replenish_after.is_some_and(|t| now < t) {
            return 0;
        }
        let healthy = self
            .conns
            .iter()
            .filter(|c| !c.is_draining() && c.retire_at().is_none_or(|at| at > now + lead))
            .count();
        let n = self.warm_min.saturating_sub(healthy + self.dialing);
        self.dialing += n;
        n
    }

    /// Removes connections idle too long or beyond the idle cap, never going below the warm
    /// minimum; returns them (and any pruned) to drop outside the lock.
    pub(crate) fn sweep_idle(&mut self, config: &PoolConfig, now: Instant) -> Vec<Arc<C>> {
        let mut removed = self.prune();
        let mut idle: Vec<(Duration, u64)> = self
            .conns
            .iter()
            .filter_map(|c| c.idle_for(now).map(|d| (d, c.id())))
            .collect();
        // Longest idle first.
        idle.sort_by_key(|&(idle_for, _)| std::cmp::Reverse(idle_for));
        let (idle_timeout, max_idle) = match self.protocol {
            Some(Protocol::Http1) => (config.h1_idle_timeout, config.h1_max_idle),
            _ => (config.idle_timeout, config.max_idle_connections_per_origin),
        };
        let mut excess_idle = idle.len().saturating_sub(max_idle);
        let mut removable = self.serving().saturating_sub(self.warm_min);
        for (idle_for, id) in idle {
            if removable == 0 {
                break;
            }
            if idle_for >= idle_timeout || excess_idle > 0 {
                if let Some(position) = self.conns.iter().position(|c| c.id() == id)
                    && let Some(conn) = self.remove_at(position)
                {
                    conn.mark_closed();
                    removed.push(conn);
                }
                removable -= 1;
                excess_idle = excess_idle.saturating_sub(1);
            }
        }
        removed
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
            conn.mark_closed();
        }
        (conns, self.queue.fail_all(&Error::PoolClosed))
    }

    /// The number of connections open to the origin.
    pub(crate) fn open(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::Poll;

    use super::*;

    /// A connection without a socket: a limit, flags and a slot cell.
    #[derive(Debug, Default)]
    struct Fake {
        id: u64,
        slot: SlotCell,
        limit: AtomicUsize,
        closed: AtomicBool,
        draining: AtomicBool,
    }

    impl Fake {
        fn new(id: u64, limit: usize) -> Arc<Fake> {
            Arc::new(Fake {
                id,
                limit: AtomicUsize::new(limit),
                ..Fake::default()
            })
        }
    }

    impl Pooled for Fake {
        fn id(&self) -> u64 {
            self.id
        }
        fn slot(&self) -> &SlotCell {
            &self.slot
        }
        fn protocol(&self) -> Protocol {
            Protocol::Http2
        }
        fn stream_limit(&self) -> usize {
            self.limit.load(Ordering::Relaxed)
        }
        fn planned_limit(&self) -> Option<usize> {
            Some(self.stream_limit())
        }
        fn accepts_streams(&self) -> bool {
            !self.closed.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed)
        }
        fn is_closed(&self) -> bool {
            self.closed.load(Ordering::Relaxed)
        }
        fn is_draining(&self) -> bool {
            self.draining.load(Ordering::Relaxed)
        }
        fn retire_at(&self) -> Option<Instant> {
            None
        }
        fn idle_for(&self, _: Instant) -> Option<Duration> {
            (self.slot.active() == 0).then_some(Duration::ZERO)
        }
        fn leases(&self) -> u64 {
            0
        }
        fn requests_sent(&self) -> u64 {
            0
        }
        fn on_leased(&self) {}
        fn on_idle_slot(&self) {}
        fn budget_spent(&self) -> bool {
            false
        }
        fn start_draining(&self) {
            self.draining.store(true, Ordering::Relaxed);
        }
        fn mark_closed(&self) {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    fn waker() -> Waker {
        Waker::noop().clone()
    }

    fn state_with(conns: &[Arc<Fake>]) -> OriginState<Fake> {
        let mut st = OriginState::default();
        for c in conns {
            st.add(Arc::clone(c));
        }
        st
    }

    /// Pack fills the oldest connection before touching the next.
    #[test]
    fn pack_fills_the_oldest_connection_first() {
        let (a, b) = (Fake::new(1, 2), Fake::new(2, 2));
        let mut st = state_with(&[a.clone(), b.clone()]);
        let picks: Vec<u64> = (0..4)
            .map(|_| st.try_take(SelectionPolicy::Pack, None).expect("slot").id)
            .collect();
        assert_eq!(picks, vec![1, 1, 2, 2]);
        assert!(st.try_take(SelectionPolicy::Pack, None).is_none());
        // A freed slot on the older one is found first again.
        st.release(&a);
        assert_eq!(
            st.try_take(SelectionPolicy::Pack, None).map(|c| c.id),
            Some(1)
        );
    }

    /// Least-loaded alternates between equally loaded connections.
    #[test]
    fn least_loaded_spreads() {
        let (a, b) = (Fake::new(1, 4), Fake::new(2, 4));
        let mut st = state_with(&[a, b]);
        let picks: Vec<u64> = (0..4)
            .map(|_| {
                st.try_take(SelectionPolicy::LeastLoaded, None)
                    .expect("slot")
                    .id
            })
            .collect();
        assert_eq!(picks, vec![1, 2, 1, 2]);
    }

    /// A released slot goes straight to the first waiter, still counted as leased.
    #[test]
    fn release_hands_the_slot_to_the_longest_waiter() {
        let a = Fake::new(1, 1);
        let mut st = state_with(std::slice::from_ref(&a));
        assert!(st.try_take(SelectionPolicy::Pack, None).is_some());
        let first = st.queue.push(None, 3, Instant::now(), waker());
        let second = st.queue.push(None, 3, Instant::now(), waker());
        let released = st.release(&a);
        assert!(released.waker.is_some());
        assert_eq!(a.slot.active(), 1, "the slot moved, it was not freed");
        assert!(matches!(st.queue.poll(first, &waker()), Poll::Ready(Ok(_))));
        assert!(st.queue.poll(second, &waker()).is_pending());
        assert_eq!(st.queue.waiting(), 1);
    }

    /// A waiter cancelled after being handed a slot passes it on (tested through the queue
    /// and `release`, as the origin pool does).
    #[test]
    fn a_handed_slot_of_a_cancelled_waiter_is_passed_on() {
        let a = Fake::new(1, 1);
        let mut st = state_with(std::slice::from_ref(&a));
        st.try_take(SelectionPolicy::Pack, None);
        let first = st.queue.push(None, 3, Instant::now(), waker());
        let second = st.queue.push(None, 3, Instant::now(), waker());
        st.release(&a);
        match st.cancel(first) {
            Cancelled::Handed(conn) => {
                st.release(&conn);
            }
            _ => panic!("the first waiter had been handed the slot"),
        }
        assert!(matches!(
            st.queue.poll(second, &waker()),
            Poll::Ready(Ok(_))
        ));
        assert_eq!(a.slot.active(), 1);
        st.release(&a);
        assert_eq!(a.slot.active(), 0, "no slot leaked");
    }

    /// A raised peer limit hands the new slots to waiters at once.
    #[test]
    fn a_raised_limit_serves_waiters() {
        let a = Fake::new(1, 1);
        let mut st = state_with(std::slice::from_ref(&a));
        st.try_take(SelectionPolicy::Pack, None);
        let keys: Vec<_> = (0..3)
            .map(|_| st.queue.push(None, 3, Instant::now(), waker()))
            .collect();
        a.limit.store(3, Ordering::Relaxed);
        assert_eq!(st.offer(&a).len(), 2);
        assert_eq!(a.slot.active(), 3);
        assert_eq!(st.queue.waiting(), 1);
        assert!(st.queue.poll(keys[2], &waker()).is_pending());
    }

    /// A connection that closed is skipped at pick time and leaves the table on removal.
    #[test]
    fn closed_connections_are_not_picked() {
        let (a, b) = (Fake::new(1, 2), Fake::new(2, 2));
        let mut st = state_with(&[a.clone(), b.clone()]);
        a.mark_closed();
        assert_eq!(
            st.try_take(SelectionPolicy::Pack, None).map(|c| c.id),
            Some(2)
        );
        assert!(st.remove(&a).is_some());
        assert_eq!(b.slot.position(), 0);
        assert_eq!(a.slot.position(), NOT_LISTED);
        st.release(&b);
        assert_eq!(b.slot.active(), 0);
    }

    /// A drained connection leaves the table with its last stream.
    #[test]
    fn a_draining_connection_retires_with_its_last_stream() {
        let a = Fake::new(1, 2);
        let mut st = state_with(std::slice::from_ref(&a));
        st.try_take(SelectionPolicy::Pack, None);
        a.start_draining();
        let released = st.release(&a);
        assert!(released.retired.is_some());
        assert_eq!(st.open(), 0);
    }

    /// Scale-up counts waiters as demand and stops at the cap.
    #[test]
    fn waiters_are_the_demand_for_dials() {
        let a = Fake::new(1, 4);
        let mut st = state_with(std::slice::from_ref(&a));
        for _ in 0..4 {
            st.try_take(SelectionPolicy::Pack, None);
        }
        for _ in 0..9 {
            st.queue.push(None, 3, Instant::now(), waker());
        }
        let config = PoolConfig::default(); // at most 4 connections
        let plan = st.plan_dials(&config, None, Instant::now());
        assert_eq!(plan.dials, 3);
        assert_eq!(st.plan_dials(&config, None, Instant::now()).dials, 0);
    }
}
