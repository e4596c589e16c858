//! One origin's pool: acquiring a slot (at once, or by waiting for a hand-off), dialing,
//! warming, the maintenance sweep, and shutdown.
//!
//! The decisions live in [`state`] (plain data under this pool's mutex, unit-tested with fake
//! connections); this file does the I/O they call for, after dropping the lock: spawning dials,
//! waking waiters, dropping connections.

mod scale;
mod selection;
mod state;
mod wait_queue;

use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use tracing::{Instrument, debug, debug_span};

use crate::config::PoolConfig;
use crate::connection::{Connection, ConnectionParams, SlotEvents};
use crate::connector::Connector;
use crate::counters::{FAST_ACQUIRE_SAMPLING, PoolCounters};
use crate::error::{Error, TimeoutKind};
use crate::lease::Lease;
use crate::origin::Origin;
use crate::prewarm::WarmedOrigin;
use crate::protocol::Protocol;
use crate::request_budget::RequestBudget;
use crate::slot::SlotCell;
use crate::stats::OriginStats;

thread_local! {
    /// Acquires on this thread, for sampling the latency of those that do not wait.
    static FAST_SAMPLE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

use state::{DialPlan, OriginState, Pooled};
use wait_queue::{Aging, Cancelled, WaiterKey};

pub(crate) use wait_queue::{RetryTarget, SEND_ORDER_SLACK};

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
    state: Mutex<OriginState<Connection>>,
    /// The server's per-connection request limit, once learned.
    budget: Arc<RequestBudget>,
    /// Woken by releases after shutdown, for `drained`.
    drained: Notify,
    /// The queue's waiting count, read by releases without the lock.
    waiting: Arc<AtomicUsize>,
}

impl Drop for OriginPool {
    fn drop(&mut self) {
        // The timer holds the pool weakly, but its sleep would keep the task (and the pool's
        // allocation) until the deadline.
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = st.expiry_task.take() {
            task.abort();
        }
    }
}

/// What a dial produced, for prewarm reports.
struct DialReport {
    protocol: Protocol,
    tcp_time: Duration,
    tls_time: Duration,
}

impl OriginPool {
    pub(crate) fn new(origin: Origin, ctx: Arc<PoolContext>) -> OriginPool {
        let mut state = OriginState::default();
        state.aging = Aging::new(ctx.config.priority_aging, ctx.config.acquire_timeout);
        OriginPool {
            budget: Arc::new(RequestBudget::new(ctx.config.learn_request_budget)),
            origin,
            ctx,
            waiting: state.queue.hint(),
            state: Mutex::new(state),
            drained: Notify::new(),
        }
    }

    /// The origin this pool serves.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    fn lock(&self) -> MutexGuard<'_, OriginState<Connection>> {
        // Nothing under this lock can panic midway through a change; a poisoned lock still
        // holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases a stream slot: at once when one is free and nobody waits, otherwise by waiting
    /// in the queue's order (retries, then by urgency, FIFO within one) until a freed slot
    /// is handed over, dialing as the scale-up rule says.
    ///
    /// `retry` is set for a retried request: where it may go (see [`RetryTarget`]).
    /// `urgency` orders waiters (see [`Priority`](crate::Priority)).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the queue; a slot handed over in the meantime goes to the
    /// next waiter. Dials it started continue and their connections join the pool.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        retry: Option<RetryTarget>,
        urgency: u8,
    ) -> Result<Lease, Error> {
        let config = &self.ctx.config;
        // Fast acquires are timed one in FAST_ACQUIRE_SAMPLING (see `record_fast_acquire`).
        let sampled = FAST_SAMPLE.with(|n| {
            let next = n.get().wrapping_add(1);
            n.set(next);
            next % FAST_ACQUIRE_SAMPLING == 0
        });
        let fast_started = sampled.then(Instant::now);
        // The task's waker, so a waiter is queued and registered under one lock.
        let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let (key, plan, start_expiry, handed, started) = {
            let mut st = self.lock();
            if st.closed {
                return Err(Error::PoolClosed);
            }
            // FIFO: a newcomer takes a free slot only when nobody is queued ahead of it. A
            // retry was sent before anyone now waiting, so it does not queue behind them.
            if (st.queue.waiting() == 0 || retry.is_some())
                && let Some(conn) = st.try_take(config.selection_policy, retry)
            {
                drop(st);
                self.ctx
                    .counters
                    .record_fast_acquire(fast_started.map(|t| t.elapsed()));
                return Ok(self.leased(conn));
            }
            if st.queue.waiting() >= config.max_waiters_per_origin {
                return Err(Error::PoolExhausted {
                    origin: self.origin.clone(),
                    waiters: st.queue.waiting(),
                });
            }
            let started = fast_started.unwrap_or_else(Instant::now);
            let deadline = started + config.acquire_timeout;
            let key = st.queue.push(retry, urgency, deadline, waker);
            // A slot given back without the lock while this acquirer was deciding to wait
            // is offered now (see `released`); it may even be this acquirer's.
            let handed = st.offer_indexed();
            if let Some(outcome) = st.queue.take_outcome(key) {
                drop(st);
                handed.into_iter().for_each(Waker::wake);
                return outcome.map(|conn| {
                    self.ctx
                        .counters
                        .record_queued_acquire(started.elapsed(), urgency);
                    self.leased(conn)
                });
            }
            let expiry = !std::mem::replace(&mut st.expiry_running, true);
            (
                key,
                st.plan_dials(config, retry, started),
                expiry,
                handed,
                started,
            )
        };
        handed.into_iter().for_each(Waker::wake);
        let mut waiting = Waiting {
            pool: self,
            key: Some(key),
        };
        self.start(plan);
        if start_expiry {
            self.spawn_expiry();
        }
        // The waker is already registered by the push above: the first poll has nothing to
        // look at. The deadline is the origin's expiry timer's job (see `spawn_expiry`).
        let mut registered = true;
        let conn = poll_fn(|cx| {
            if std::mem::take(&mut registered) {
                return Poll::Pending;
            }
            waiting.poll(cx.waker())
        })
        .await?;
        self.ctx
            .counters
            .record_queued_acquire(started.elapsed(), urgency);
        Ok(self.leased(conn))
    }

    /// Runs the origin's one acquire-deadline timer while anyone waits: sleeps until the front
    /// waiter's deadline (FIFO: the earliest), fails the expired with a timeout, repeats. Holds
    /// the pool weakly.
    fn spawn_expiry(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                let next = {
                    let Some(pool) = pool.upgrade() else { return };
                    let mut st = pool.lock();
                    match st.queue.next_deadline() {
                        Some(deadline) => deadline,
                        None => {
                            st.expiry_running = false;
                            return;
                        }
                    }
                };
                tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
                let Some(pool) = pool.upgrade() else { return };
                let timeout = || Error::Timeout {
                    origin: pool.origin.clone(),
                    kind: TimeoutKind::Acquire,
                    after: pool.ctx.config.acquire_timeout,
                };
                let wakers = pool.lock().queue.expire(Instant::now(), timeout);
                wakers.into_iter().for_each(Waker::wake);
            }
        });
        self.lock().expiry_task = Some(task.abort_handle());
    }

    /// Wraps a leased slot (the acquire is already counted).
    fn leased(&self, conn: Arc<Connection>) -> Lease {
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
        Lease::new(conn)
    }

    /// Spawns the planned dials, and a replan at the end of an HTTP/1.1 reuse grace.
    fn start(self: &Arc<Self>, plan: DialPlan) {
        for _ in 0..plan.dials {
            self.spawn_dial(None);
        }
        let Some(at) = plan.recheck_at else {
            return;
        };
        {
            let mut st = self.lock();
            if std::mem::replace(&mut st.recheck_scheduled, true) {
                return;
            }
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            if let Some(pool) = pool.upgrade() {
                let plan = {
                    let mut st = pool.lock();
                    st.recheck_scheduled = false;
                    st.plan_dials(&pool.ctx.config, None, Instant::now())
                };
                pool.start(plan);
            }
        });
    }

    /// Opens connections up to `warm_min` (at least one) and keeps that many open.
    pub(crate) async fn prewarm(self: &Arc<Self>, warm_min: usize) -> Result<WarmedOrigin, Error> {
        let started = Instant::now();
        let target = warm_min.max(1);
        let (dials, pruned) = {
            let mut st = self.lock();
            if st.closed {
                return Err(Error::PoolClosed);
            }
            let pruned = st.prune();
            st.warm_min = st.warm_min.max(warm_min);
            let n = target.saturating_sub(st.open() + st.dialing);
            st.dialing += n;
            (n, pruned)
        };
        drop(pruned);
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
        let (connections, pruned) = {
            let mut st = self.lock();
            let pruned = st.prune();
            (st.open(), pruned)
        };
        drop(pruned);
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
                let (outcome, wakers, late, plan) = {
                    let mut st = pool.lock();
                    st.dialing = st.dialing.saturating_sub(1);
                    match result {
                        Ok((conn, dial_report)) => {
                            pool.ctx.counters.connections_opened.add(1);
                            if st.closed {
                                conn.mark_closed();
                                (Ok(dial_report), Vec::new(), Some(conn), DialPlan::default())
                            } else {
                                let wakers = st.add(conn);
                                // Waiters this connection cannot serve may need more.
                                let plan = st.plan_dials(&pool.ctx.config, None, Instant::now());
                                (Ok(dial_report), wakers, None, plan)
                            }
                        }
                        Err(error) => {
                            pool.ctx.counters.connects_failed.add(1);
                            let wakers = st.dial_failed(&error, Instant::now());
                            (Err(error), wakers, None, DialPlan::default())
                        }
                    }
                };
                drop(late);
                wakers.into_iter().for_each(Waker::wake);
                pool.start(plan);
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

    async fn dial(self: &Arc<Self>) -> Result<(Arc<Connection>, DialReport), Error> {
        let dialed = self.ctx.connector.dial(&self.origin).await?;
        let report = DialReport {
            protocol: dialed.protocol,
            tcp_time: dialed.tcp_time,
            tls_time: dialed.tls_time,
        };
        let id = self.ctx.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let events: Weak<dyn SlotEvents> = Arc::downgrade(self) as Weak<OriginPool>;
        let handshake = Connection::establish(
            dialed,
            ConnectionParams {
                id,
                origin: &self.origin,
                config: &self.ctx.config,
                events,
                waiting: Arc::clone(&self.waiting),
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

    /// Closes idle connections past their time, restores the warm minimum, and (a safety
    /// net) offers free slots to waiters and dials for waiting demand.
    ///
    /// Returns true when the origin has been vacant (no connection, dial, waiter or warm
    /// minimum) for `idle_timeout`: the manager may forget it.
    pub(crate) fn maintain(self: &Arc<Self>, now: Instant) -> bool {
        let (closed, replenish, wakers, plan) = {
            let mut st = self.lock();
            if st.closed {
                return false;
            }
            let closed = st.sweep_idle(&self.ctx.config, now);
            let lead = self
                .ctx
                .config
                .max_connection_lifetime
                .map_or(Duration::ZERO, |l| (l / 4).min(Duration::from_secs(5)));
            let replenish = st.plan_replenish(now, lead);
            let (wakers, plan) = if st.queue.waiting() > 0 {
                (st.offer_all(), st.plan_dials(&self.ctx.config, None, now))
            } else {
                (Vec::new(), DialPlan::default())
            };
            (closed, replenish, wakers, plan)
        };
        let idle_timeout = self.ctx.config.idle_timeout;
        for conn in &closed {
            debug!(origin = %self.origin, conn_id = conn.id, "closing idle connection");
        }
        // Dropping the last Arc drops h2's SendRequest; the driver then closes the socket.
        drop(closed);
        wakers.into_iter().for_each(Waker::wake);
        for _ in 0..replenish {
            self.spawn_dial(None);
        }
        self.start(plan);
        self.lock()
            .vacant_since(now)
            .is_some_and(|since| now.saturating_duration_since(since) >= idle_timeout)
    }

    /// True when nothing is left in the origin, checked under its lock (see
    /// [`maintain`](Self::maintain)).
    pub(crate) fn is_vacant(&self, now: Instant) -> bool {
        self.lock().vacant_since(now).is_some()
    }

    /// Stops handing out slots, fails every waiter with `PoolClosed`, and returns the
    /// connections so the caller can wait for their streams to finish.
    pub(crate) fn close(&self) -> Vec<Arc<Connection>> {
        let (conns, wakers) = self.lock().close();
        wakers.into_iter().for_each(Waker::wake);
        conns
    }

    /// Waits until none of `conns` has an active stream.
    pub(crate) async fn drained(&self, conns: &[Arc<Connection>]) {
        loop {
            let mut notified = pin!(self.drained.notified());
            notified.as_mut().enable();
            if conns.iter().all(|c| c.slot.active() == 0) {
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
                .connections()
                .iter()
                .filter(|c| !c.is_closed())
                .map(|c| c.snapshot(now))
                .collect(),
            connecting: st.dialing,
            waiters: st.queue.waiting(),
            warm_minimum: st.warm_min,
            learned_request_budget: self.budget.learned(),
        }
    }
}

impl OriginPool {
    /// After a release decided under the lock: wake the waiter handed the slot, drop a
    /// retired connection, tell `drained` after shutdown.
    fn finish_release(&self, released: state::Released<Connection>, closed: bool) {
        if let Some(waker) = released.waker {
            waker.wake();
        }
        drop(released.retired);
        if closed {
            self.drained.notify_waiters();
        }
    }
}

// ===== impl SlotEvents =====

impl SlotEvents for OriginPool {
    fn released(self: Arc<Self>, conn: &Arc<Connection>) {
        let (released, closed) = {
            let mut st = self.lock();
            let released = st.release(conn);
            (released, st.closed)
        };
        self.finish_release(released, closed);
    }

    fn settle(self: Arc<Self>, conn: &Arc<Connection>) {
        let ((wakers, retired), closed) = {
            let mut st = self.lock();
            (st.settle(conn), st.closed)
        };
        wakers.into_iter().for_each(Waker::wake);
        drop(retired);
        if closed {
            self.drained.notify_waiters();
        }
    }

    fn capacity_grew(self: Arc<Self>, conn: &Arc<Connection>) {
        let (wakers, plan) = {
            let mut st = self.lock();
            let wakers = st.offer(conn);
            // A first SETTINGS frame tells how many streams a connection takes: waiters it
            // cannot serve get their dials now.
            let plan = st.plan_dials(&self.ctx.config, None, Instant::now());
            (wakers, plan)
        };
        wakers.into_iter().for_each(Waker::wake);
        self.start(plan);
    }

    fn closed(self: Arc<Self>, conn: &Arc<Connection>) {
        let (removed, plan) = {
            let mut st = self.lock();
            let removed = st.remove(conn);
            // Waiters may now need a replacement.
            let plan = st.plan_dials(&self.ctx.config, None, Instant::now());
            (removed, plan)
        };
        drop(removed);
        self.start(plan);
    }
}

// ===== impl Pooled for Connection =====

impl Pooled for Connection {
    fn id(&self) -> u64 {
        self.id
    }
    fn slot(&self) -> &SlotCell {
        &self.slot
    }
    fn protocol(&self) -> Protocol {
        self.protocol
    }
    fn stream_limit(&self) -> usize {
        Connection::stream_limit(self)
    }
    fn planned_limit(&self) -> Option<usize> {
        Connection::planned_limit(self)
    }
    fn accepts_streams(&self) -> bool {
        Connection::accepts_streams(self)
    }
    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }
    fn is_draining(&self) -> bool {
        Connection::is_draining(self)
    }
    fn retire_at(&self) -> Option<Instant> {
        Connection::retire_at(self)
    }
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        Connection::idle_for(self, now)
    }
    fn leases(&self) -> u64 {
        Connection::leases(self)
    }
    fn requests_sent(&self) -> u64 {
        Connection::requests_sent(self)
    }
    fn on_leased(&self) {
        Connection::on_leased(self)
    }
    fn on_idle_slot(&self) {
        Connection::on_idle_slot(self)
    }
    fn budget_spent(&self) -> bool {
        Connection::budget_spent(self)
    }
    fn start_draining(&self) {
        Connection::start_draining(self)
    }
    fn mark_closed(&self) {
        Connection::mark_closed(self)
    }
}

// ===== Waiting =====

/// An acquirer's place in the queue. Dropping it before the outcome was taken leaves the
/// queue; a slot handed over in the meantime is passed to the next waiter.
struct Waiting<'a> {
    pool: &'a Arc<OriginPool>,
    /// `None` once the outcome was taken.
    key: Option<WaiterKey>,
}

impl Waiting<'_> {
    /// The outcome if the waiter has one.
    fn poll(&mut self, waker: &Waker) -> Poll<Result<Arc<Connection>, Error>> {
        let Some(key) = self.key else {
            return Poll::Ready(Err(Error::PoolClosed));
        };
        let outcome = self.pool.lock().queue.poll(key, waker);
        if outcome.is_ready() {
            self.key = None;
        }
        outcome
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let (released, passed) = {
            let mut st = self.pool.lock();
            match st.cancel(key) {
                // Handed a slot it will never use: pass it on as a release would.
                Cancelled::Handed(conn) => (Some(st.release(&conn)), Some(conn)),
                _ => (None, None),
            }
        };
        if let Some(released) = released {
            if let Some(waker) = released.waker {
                waker.wake();
            }
            drop(released.retired);
        }
        // The handed slot was counted as a lease (`on_leased`); its release above balances
        // the connection's own books. The outstanding-handles gauge counted it too.
        if let Some(conn) = passed {
            conn.counters.handles_outstanding.decrement();
        }
    }
}
