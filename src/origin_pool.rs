//! One origin's connections: selection, scale-up, single-flight dials, the wait queue, and
//! the idle sweep.
//!
//! Decisions are plain methods on [`OriginState`] taken under its mutex and returning *what
//! to do* (how many dials to start, which connections to close); the caller drops the guard
//! and then does the I/O. The scale-up rule itself ([`dials_needed`]) is a pure function.
//!
//! # Scale-up (the Envoy / Jetty / gRPC A105 rule)
//!
//! Connection k+1 is dialed only when waiting demand exceeds the free stream slots plus the
//! capacity of dials already in flight, up to `max_connections_per_origin`. Until a
//! connection to the origin has received the peer's SETTINGS, the capacity of a dial is
//! unknown, so at most one dial is in flight: a thundering herd on a cold origin shares it
//! and then scales by the stream math (as Go, .NET and ztunnel do).

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use tracing::{Instrument, debug, debug_span};

use crate::config::{PoolConfig, SelectionPolicy};
use crate::connection::{Connection, ConnectionParams, Protocol};
use crate::connector::Connector;
use crate::error::{Error, TimeoutKind};
use crate::handle::StreamHandle;
use crate::origin::Origin;
use crate::prewarm::WarmedOrigin;
use crate::request_budget::RequestBudget;
use crate::stats::{OriginStats, PoolCounters};

/// What every origin pool shares: configuration, the dialer and the counters.
#[derive(Debug)]
pub(crate) struct PoolContext {
    pub(crate) config: PoolConfig,
    pub(crate) connector: Connector,
    pub(crate) counters: Arc<PoolCounters>,
    next_connection_id: AtomicU64,
}

impl PoolContext {
    pub(crate) fn new(config: PoolConfig, connector: Connector) -> PoolContext {
        PoolContext {
            config,
            connector,
            counters: Arc::new(PoolCounters::new()),
            next_connection_id: AtomicU64::new(1),
        }
    }
}

/// The pool of one origin.
#[derive(Debug)]
pub(crate) struct OriginPool {
    origin: Origin,
    ctx: Arc<PoolContext>,
    state: Mutex<OriginState>,
    /// Woken by a freed slot (one waiter), a new connection, a raised peer limit, a closed
    /// connection or a failed dial (all waiters).
    slot_freed: Arc<Notify>,
    /// The server's per-connection request limit, once learned.
    budget: Arc<RequestBudget>,
}

/// The mutable part of an origin pool. Only touched under the mutex.
#[derive(Debug, Default)]
pub(crate) struct OriginState {
    /// Open connections, oldest first.
    conns: Vec<Arc<Connection>>,
    /// Dials in flight.
    dialing: usize,
    /// Acquirers waiting for a slot.
    waiting: usize,
    /// Connections kept open by the sweep; raised by prewarm.
    warm_min: usize,
    /// Failed dials so far; a waiter fails with `last_failure` if one failed while it waited
    /// and nothing else can serve it.
    failures: u64,
    last_failure: Option<Error>,
    /// Dials failed in a row, and when the sweep may next try to restore the warm minimum:
    /// a host that is down is retried with exponential backoff, not every tick.
    failures_in_row: u32,
    replenish_after: Option<Instant>,
    /// The last peer stream limit seen on this origin: what a new dial is planned to carry.
    planned_streams: Option<usize>,
    /// What the origin's server negotiated last: HTTP/1.1 origins use the `h1_*` limits.
    protocol: Option<Protocol>,
    closed: bool,
}

/// What a dial produced, for prewarm reports.
struct DialReport {
    protocol: crate::connection::Protocol,
    tcp_time: Duration,
    tls_time: Duration,
}

/// How long an HTTP/1.1 connection released with its response body still finishing is
/// expected back before a waiting acquirer dials another (see `OriginState::h1_finishing`).
/// hyper's dispatcher turns ready microseconds after the body is read, but only once its task
/// runs again, which on a loaded runtime can take tens of milliseconds. A body nobody reads
/// costs the next acquirer this much before it dials.
const H1_REUSE_GRACE: Duration = Duration::from_millis(250);

/// Wait before the sweep re-dials a warm origin after `failures` failed dials in a row:
/// 100 ms doubling to at most 30 s.
fn replenish_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(9);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(Duration::from_secs(30))
}

/// How many new dials waiting demand justifies.
///
/// `demand`: acquirers without a slot. `free`: free slots on open connections (after the fill
/// ratio). `dialing`: dials in flight. `per_dial`: slots a new connection is expected to bring,
/// `None` while no SETTINGS have been seen on the origin. `open`: open connections.
pub(crate) fn dials_needed(
    demand: usize,
    free: usize,
    dialing: usize,
    per_dial: Option<usize>,
    open: usize,
    max: usize,
) -> usize {
    let room = max.saturating_sub(open + dialing);
    let Some(per_dial) = per_dial else {
        // Capacity unknown: one dial at a time, and none while a connection is still waiting
        // for its peer's SETTINGS (it will tell us how many streams it takes).
        return usize::from(demand > free && dialing == 0 && open == 0 && room > 0);
    };
    let per_dial = per_dial.max(1);
    let supply = free.saturating_add(dialing.saturating_mul(per_dial));
    if demand <= supply {
        return 0;
    }
    (demand - supply).div_ceil(per_dial).min(room)
}

impl OriginState {
    /// Drops connections that can no longer take streams: closed ones (driver ended, GOAWAY,
    /// PING timeout, request error) and rotated ones whose last stream has finished (their
    /// driver then closes them gracefully).
    fn prune_closed(&mut self) {
        self.conns.retain(|c| {
            let keep = !c.is_closed() && !c.is_retired();
            if !keep {
                debug!(
                    conn_id = c.id,
                    origin = %c.origin,
                    protocol = %c.protocol,
                    closed = c.is_closed(),
                    "connection removed from selection"
                );
            }
            keep
        });
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

    /// Leases a slot on a connection chosen by `policy`.
    fn pick(&mut self, policy: SelectionPolicy, exclude: Option<u64>) -> Option<Arc<Connection>> {
        let allowed = |c: &&Arc<Connection>| Some(c.id) != exclude;
        let mut free = self
            .conns
            .iter()
            .filter(allowed)
            .filter(|c| c.free_slots() > 0);
        let best = if self.protocol == Some(Protocol::Http1) {
            // HTTP/1.1 keep-alive: LIFO, the most recently used idle connection first (the
            // warmest, least likely to have been closed by the server meanwhile).
            let now = Instant::now();
            free.min_by_key(|c| c.idle_for(now).unwrap_or(Duration::MAX))
        } else {
            match policy {
                // Oldest first: a hot connection stays hot, spare ones go idle and close.
                SelectionPolicy::Pack => free.next(),
                SelectionPolicy::LeastLoaded => free.min_by_key(|c| c.active()),
            }
        };
        if let Some(conn) = best
            && conn.try_lease()
        {
            return Some(Arc::clone(conn));
        }
        // The chosen connection closed in between: first fit among the others.
        self.conns
            .iter()
            .filter(allowed)
            .find(|c| c.try_lease())
            .cloned()
    }

    /// Free slots counted for scale-up: a connection counts as full once the fill ratio of
    /// its slots is in use. A connection still waiting for its peer's SETTINGS counts with the
    /// limit its siblings have shown (`assumed`), like a dial in flight: otherwise each new
    /// connection would look full at one stream and the herd would dial again.
    fn free_for_scaling(
        &self,
        fill_ratio: f64,
        assumed: Option<usize>,
        exclude: Option<u64>,
    ) -> usize {
        self.conns
            .iter()
            .filter(|c| Some(c.id) != exclude && c.accepts_streams())
            .map(|c| {
                let limit = match c.peer_limit() {
                    Some(_) => c.stream_limit(),
                    None => assumed.unwrap_or(1),
                };
                // Truncation is intended: 0.75 of 10 slots is 7 usable before scaling.
                let usable = ((limit as f64) * fill_ratio).floor().max(1.0) as usize;
                usable.min(limit).saturating_sub(c.active())
            })
            .sum()
    }

    /// HTTP/1.1 connections whose handle was just dropped but whose dispatcher has not yet
    /// reported ready: the response body is being finished. Counted as supply for
    /// [`H1_REUSE_GRACE`] after release so a sequential caller reuses its connection instead
    /// of racing it with a new dial; returns their count and when the grace ends.
    fn h1_finishing(&self, now: Instant, exclude: Option<u64>) -> (usize, Option<Instant>) {
        let mut count = 0;
        let mut ends: Option<Instant> = None;
        for c in &self.conns {
            if Some(c.id) == exclude || c.protocol != Protocol::Http1 || c.is_closed() {
                continue;
            }
            if c.accepts_streams() {
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

    /// Reserves dials for the current demand; returns how many to start, and when to look
    /// again even without a wake-up (the end of an HTTP/1.1 reuse grace).
    ///
    /// `exclude`: a connection the acquirer may not use; its free slots do not count.
    fn plan_dials(
        &mut self,
        config: &PoolConfig,
        exclude: Option<u64>,
        now: Instant,
    ) -> (usize, Option<Instant>) {
        self.refresh_planned_streams();
        let (finishing, recheck) = self.h1_finishing(now, exclude);
        let free = self.free_for_scaling(config.scale_up_fill_ratio, self.planned_streams, exclude);
        let n = dials_needed(
            self.waiting,
            free + finishing,
            self.dialing,
            self.planned_streams,
            self.serving(),
            self.max_connections(config),
        );
        if n > 0 {
            debug!(
                dials = n,
                waiting = self.waiting,
                free,
                finishing,
                dialing = self.dialing,
                open = self.conns.len(),
                "scaling up"
            );
        }
        self.dialing += n;
        (n, recheck)
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
    fn plan_replenish(&mut self, now: Instant, lead: Duration) -> usize {
        if self.replenish_after.is_some_and(|t| now < t) {
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
    /// minimum; returns them so the caller drops them outside the lock.
    fn sweep_idle(&mut self, config: &PoolConfig, now: Instant) -> Vec<Arc<Connection>> {
        self.prune_closed();
        let mut idle: Vec<(Duration, usize)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.idle_for(now).map(|d| (d, i)))
            .collect();
        // Longest idle first.
        idle.sort_by_key(|&(idle_for, _)| std::cmp::Reverse(idle_for));
        let (idle_timeout, max_idle) = match self.protocol {
            Some(Protocol::Http1) => (config.h1_idle_timeout, config.h1_max_idle),
            _ => (config.idle_timeout, config.max_idle_connections_per_origin),
        };
        let mut excess_idle = idle.len().saturating_sub(max_idle);
        let mut removable = self.serving().saturating_sub(self.warm_min);
        let mut remove = Vec::new();
        for (idle_for, index) in idle {
            if removable == 0 {
                break;
            }
            if idle_for >= idle_timeout || excess_idle > 0 {
                remove.push(index);
                removable -= 1;
                excess_idle = excess_idle.saturating_sub(1);
            }
        }
        remove.sort_unstable_by(|a, b| b.cmp(a));
        remove
            .into_iter()
            .map(|i| {
                let conn = self.conns.remove(i);
                conn.mark_closed();
                conn
            })
            .collect()
    }
}

impl OriginPool {
    pub(crate) fn new(origin: Origin, ctx: Arc<PoolContext>) -> OriginPool {
        let budget = Arc::new(RequestBudget::new(ctx.config.learn_request_budget));
        OriginPool {
            budget,
            origin,
            ctx,
            state: Mutex::new(OriginState::default()),
            slot_freed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OriginState> {
        // Nothing under this lock can panic midway through a change; a poisoned lock still
        // holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases a stream slot, dialing or waiting as the scale-up rule says.
    ///
    /// `exclude` names a connection not to use (the one a retried request failed on).
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        exclude: Option<u64>,
    ) -> Result<StreamHandle, Error> {
        let config = &self.ctx.config;
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + config.acquire_timeout);
        // Set once this acquirer joins the queue; its Drop leaves the queue (cancel safety).
        let mut queued: Option<QueueSlot<'_>> = None;
        let mut failures_seen: Option<u64> = None;
        // Fast path: a free slot and nobody queued ahead. No wake-up registration needed.
        {
            let mut st = self.lock();
            if st.closed {
                return Err(Error::PoolClosed);
            }
            if st.waiting == 0
                && let Some(conn) = st.pick(config.selection_policy, exclude)
            {
                drop(st);
                return Ok(self.leased(conn, started, None));
            }
        }
        loop {
            // Register for wake-ups before looking, so a slot freed in between is not missed.
            let mut notified = pin!(self.slot_freed.notified());
            notified.as_mut().enable();
            let (dials, recheck) = {
                let mut st = self.lock();
                if st.closed {
                    return Err(Error::PoolClosed);
                }
                // FIFO: a newcomer does not take a slot ahead of acquirers already queued.
                // (A freed slot wakes the longest waiter; letting newcomers barge in starved
                // waiters under closed-loop load: p99 in the hundreds of ms.)
                let may_take = queued.is_some() || st.waiting == 0;
                if may_take && let Some(conn) = st.pick(config.selection_policy, exclude) {
                    // Leave the queue under the same lock that took the slot: an acquirer
                    // counted as both served and waiting would make others over-dial.
                    let waited = queued.as_mut().map(|q| {
                        q.leave(&mut st);
                        q.since.elapsed()
                    });
                    drop(st);
                    drop(queued);
                    return Ok(self.leased(conn, started, waited));
                }
                st.prune_closed();
                let failures_at_start = *failures_seen.get_or_insert(st.failures);
                if queued.is_none() {
                    if st.waiting >= config.max_waiters_per_origin {
                        return Err(Error::PoolExhausted {
                            origin: self.origin.clone(),
                            waiters: st.waiting,
                        });
                    }
                    st.waiting += 1;
                    queued = Some(QueueSlot {
                        pool: self,
                        since: Instant::now(),
                        left: false,
                    });
                }
                if st.failures > failures_at_start
                    && st.dialing == 0
                    && st.conns.is_empty()
                    && let Some(error) = st.last_failure.clone()
                {
                    return Err(error);
                }
                // A retried acquirer that may not use a connection with a free slot passes
                // its wake-up on, so the slot does not sit idle while others sleep.
                if exclude
                    .is_some_and(|id| st.conns.iter().any(|c| c.id == id && c.free_slots() > 0))
                {
                    self.slot_freed.notify_one();
                }
                st.plan_dials(config, exclude, Instant::now())
            };
            for _ in 0..dials {
                self.spawn_dial(None);
            }
            let wake_by = recheck
                .map(tokio::time::Instant::from_std)
                .map_or(deadline, |r| r.min(deadline));
            if tokio::time::timeout_at(wake_by, notified).await.is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return Err(Error::Timeout {
                    origin: self.origin.clone(),
                    kind: TimeoutKind::Acquire,
                    after: config.acquire_timeout,
                });
            }
        }
    }

    /// Records a successful acquire and wraps the leased slot.
    fn leased(
        &self,
        conn: Arc<Connection>,
        started: Instant,
        waited: Option<Duration>,
    ) -> StreamHandle {
        self.ctx.counters.record_acquire(started.elapsed(), waited);
        if conn.leases() > 1 {
            debug!(
                origin = %self.origin,
                conn_id = conn.id,
                protocol = %conn.protocol,
                "reusing pooled connection"
            );
        } else {
            debug!(
                origin = %self.origin,
                conn_id = conn.id,
                protocol = %conn.protocol,
                "first stream on new connection"
            );
        }
        StreamHandle::from_lease(conn)
    }

    /// Opens connections up to `target` (at least one) and keeps `warm_min` of them open.
    pub(crate) async fn prewarm(self: &Arc<Self>, warm_min: usize) -> Result<WarmedOrigin, Error> {
        let started = Instant::now();
        let target = warm_min.max(1);
        let dials = {
            let mut st = self.lock();
            if st.closed {
                return Err(Error::PoolClosed);
            }
            st.prune_closed();
            st.warm_min = st.warm_min.max(warm_min);
            let n = target.saturating_sub(st.conns.len() + st.dialing);
            st.dialing += n;
            n
        };
        let receivers: Vec<_> = (0..dials)
            .map(|_| {
                let (tx, rx) = oneshot::channel();
                self.spawn_dial(Some(tx));
                rx
            })
            .collect();
        let mut first_report = None;
        let mut first_error = None;
        let (mut opened, mut failed) = (0, 0);
        for rx in receivers {
            match rx.await {
                Ok(Ok(report)) => {
                    opened += 1;
                    first_report.get_or_insert(report);
                }
                Ok(Err(error)) => {
                    failed += 1;
                    first_error.get_or_insert(error);
                }
                // The dial task was cancelled (runtime shutting down).
                Err(_) => {
                    failed += 1;
                    first_error.get_or_insert(Error::PoolClosed);
                }
            }
        }
        let connections = {
            let mut st = self.lock();
            st.prune_closed();
            st.conns.len()
        };
        if connections == 0
            && let Some(error) = first_error
        {
            return Err(error);
        }
        Ok(WarmedOrigin {
            origin: self.origin.clone(),
            connections,
            opened,
            failed,
            protocol: first_report.as_ref().map(|r| r.protocol),
            tcp_connect: first_report.as_ref().map(|r| r.tcp_time),
            tls_handshake: first_report.as_ref().map(|r| r.tls_time),
            elapsed: started.elapsed(),
        })
    }

    /// Starts one dial (already counted in `dialing`) as its own task, so an acquirer that
    /// gives up does not abort a connection others are waiting for.
    fn spawn_dial(self: &Arc<Self>, report: Option<oneshot::Sender<Result<DialReport, Error>>>) {
        let pool = Arc::clone(self);
        let span = debug_span!("dial", origin = %self.origin);
        tokio::spawn(
            async move {
                let result = pool.dial().await;
                let outcome = {
                    let mut st = pool.lock();
                    st.dialing = st.dialing.saturating_sub(1);
                    match result {
                        Ok((conn, dial_report)) => {
                            pool.ctx.counters.connections_opened.add(1);
                            st.failures_in_row = 0;
                            st.replenish_after = None;
                            if st.closed {
                                conn.mark_closed();
                            } else {
                                if let Some(limit) = conn.planned_limit() {
                                    st.planned_streams = Some(limit);
                                }
                                st.protocol = Some(conn.protocol);
                                st.conns.push(conn);
                            }
                            Ok(dial_report)
                        }
                        Err(error) => {
                            pool.ctx.counters.connects_failed.add(1);
                            st.failures += 1;
                            st.last_failure = Some(error.clone());
                            st.failures_in_row = st.failures_in_row.saturating_add(1);
                            st.replenish_after =
                                Some(Instant::now() + replenish_backoff(st.failures_in_row));
                            Err(error)
                        }
                    }
                };
                pool.slot_freed.notify_waiters();
                if let Err(error) = &outcome {
                    debug!(error = %error, "dial failed");
                }
                if let Some(tx) = report {
                    // The prewarm caller may have gone; the connection stays pooled anyway.
                    let _ = tx.send(outcome);
                }
            }
            .instrument(span),
        );
    }

    async fn dial(&self) -> Result<(Arc<Connection>, DialReport), Error> {
        let dialed = self.ctx.connector.dial(&self.origin).await?;
        let report = DialReport {
            protocol: dialed.protocol,
            tcp_time: dialed.tcp_time,
            tls_time: dialed.tls_time,
        };
        let id = self.ctx.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let handshake = Connection::establish(
            dialed,
            ConnectionParams {
                id,
                origin: &self.origin,
                config: &self.ctx.config,
                slot_freed: Arc::clone(&self.slot_freed),
                counters: Arc::clone(&self.ctx.counters),
                budget: Arc::clone(&self.budget),
            },
        );
        let conn = tokio::time::timeout(self.ctx.config.tls_handshake_timeout, handshake)
            .await
            .map_err(|_| Error::Timeout {
                origin: self.origin.clone(),
                kind: TimeoutKind::TlsHandshake,
                after: self.ctx.config.tls_handshake_timeout,
            })??;
        debug!(conn_id = id, protocol = %report.protocol, "connection established");
        Ok((conn, report))
    }

    /// Closes idle connections past their time and restores the warm minimum.
    pub(crate) fn maintain(self: &Arc<Self>, now: Instant) {
        let (closed, dials) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            let closed = st.sweep_idle(&self.ctx.config, now);
            let lead = self
                .ctx
                .config
                .max_connection_lifetime
                .map_or(Duration::ZERO, |l| (l / 4).min(Duration::from_secs(5)));
            (closed, st.plan_replenish(now, lead))
        };
        for conn in &closed {
            debug!(origin = %self.origin, conn_id = conn.id, "closing idle connection");
        }
        // Dropping the last Arc drops hyper's SendRequest; the driver then closes the socket.
        drop(closed);
        for _ in 0..dials {
            self.spawn_dial(None);
        }
    }

    /// Stops handing out slots, fails every waiter with `PoolClosed`, and returns the
    /// connections so the caller can wait for their streams to finish.
    pub(crate) fn close(&self) -> Vec<Arc<Connection>> {
        let conns = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.conns)
        };
        for conn in &conns {
            conn.mark_closed();
        }
        self.slot_freed.notify_waiters();
        conns
    }

    /// Waits until none of `conns` has an active stream.
    pub(crate) async fn drained(&self, conns: &[Arc<Connection>]) {
        loop {
            let mut notified = pin!(self.slot_freed.notified());
            notified.as_mut().enable();
            if conns.iter().all(|c| c.active() == 0) {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn snapshot(&self, now: Instant) -> OriginStats {
        let st = self.lock();
        OriginStats {
            origin: self.origin.clone(),
            connections: st
                .conns
                .iter()
                .filter(|c| !c.is_closed())
                .map(|c| c.snapshot(now))
                .collect(),
            connecting: st.dialing,
            waiters: st.waiting,
            warm_minimum: st.warm_min,
            learned_request_budget: self.budget.learned(),
        }
    }
}

/// An acquirer's place in the wait queue; leaving (success, error or cancellation) gives it
/// back.
struct QueueSlot<'a> {
    pool: &'a OriginPool,
    since: Instant,
    left: bool,
}

impl QueueSlot<'_> {
    /// Leaves the queue under a lock the caller already holds.
    fn leave(&mut self, st: &mut OriginState) {
        if !self.left {
            st.waiting = st.waiting.saturating_sub(1);
            self.left = true;
        }
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        if !self.left {
            let mut st = self.pool.lock();
            st.waiting = st.waiting.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dials_needed;

    /// With no SETTINGS seen yet, a herd of any size starts exactly one dial.
    #[test]
    fn cold_origin_dials_once_whatever_the_demand() {
        assert_eq!(dials_needed(1000, 0, 0, None, 0, 8), 1);
        assert_eq!(dials_needed(1000, 0, 1, None, 0, 8), 0);
        // A connection whose SETTINGS are pending is not joined by a second dial.
        assert_eq!(dials_needed(1000, 0, 0, None, 1, 8), 0);
    }

    /// Once the per-connection limit is known, dials cover the unmet demand, capped.
    #[test]
    fn known_limit_dials_for_unmet_demand_up_to_the_cap() {
        // 64 waiting, 8 per connection, one connection full: 7 more, room for 7.
        assert_eq!(dials_needed(64, 0, 0, Some(8), 1, 8), 7);
        // Dials in flight count as supply.
        assert_eq!(dials_needed(64, 0, 7, Some(8), 1, 8), 0);
        // Capped by max connections.
        assert_eq!(dials_needed(64, 0, 0, Some(8), 1, 2), 1);
        // Enough free slots: nothing.
        assert_eq!(dials_needed(10, 10, 0, Some(8), 2, 8), 0);
        // 150 waiting on a 250-stream server: one connection is plenty.
        assert_eq!(dials_needed(149, 249, 0, Some(250), 1, 4), 0);
    }

    /// Partial demand rounds up to a whole connection.
    #[test]
    fn partial_demand_rounds_up() {
        assert_eq!(dials_needed(9, 0, 0, Some(8), 1, 8), 2);
        assert_eq!(dials_needed(1, 0, 0, Some(8), 1, 8), 1);
    }
}
