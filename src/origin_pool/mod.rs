//! One origin's pool.
//!
//! The decisions live in plain data under the pool's mutex, generic over [`pooled::Pooled`]
//! so unit tests drive them with fake connections: [`state`] (the connections and their
//! lifecycle, with its parts in child files: which connection takes the next stream, how many
//! dials waiting demand justifies, which idle connections leave; its fields are private to
//! it) and [`wait_queue`] (who waits, in what order, and the direct hand-off). The I/O they call for
//! is done after the lock is dropped, here and in [`acquire`] (leasing a slot, the acquire
//! deadline) and [`dialing`] (dials as tasks of their own, prewarm).

mod acquire;
mod backoff;
mod coalesce;
mod demand;
mod dialing;
mod free_set;
mod pooled;
mod reserved_dials;
mod retry_target;
mod state;
mod wait_queue;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::debug;

use crate::config::PoolConfig;
use crate::connection::{Connection, SlotEvents};
use crate::connector::Connector;
use crate::counters::PoolCounters;
use crate::early_data::HandshakeCounts;
use crate::error::Error;
use crate::origin::Origin;
use crate::otel::OriginTelemetry;
use crate::protocol::Protocol;
use crate::proxy::Route;
use crate::request_budget::RequestBudget;
use crate::stats::OriginStats;

use reserved_dials::ReservedDials;
use state::DialPlan;
use state::OriginState;
use wait_queue::Aging;

pub(crate) use retry_target::{RetryTarget, SEND_ORDER_SLACK};

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
    /// Direct or through the proxy: decided once, when the pool is made (see `proxy/`), and
    /// taken by every connection dialed here.
    route: Route,
    ctx: Arc<PoolContext>,
    state: Mutex<OriginState<Connection>>,
    /// The server's per-connection request limit, once learned.
    budget: Arc<RequestBudget>,
    /// Woken by releases after shutdown, for `drained`.
    drained: Notify,
    /// The queue's waiting count, read by releases without the lock.
    waiting: Arc<AtomicUsize>,
    /// TLS handshakes of this origin's dials, full and resumed, and their early data's fate
    /// (shared with the connections still in early data, which count theirs when it ends).
    handshakes: Arc<HandshakeCounts>,
    /// The origin's last completed handshake chose HTTP/2: the protocol a dial may send as
    /// TLS early data before the server's ALPN answer (see `crate::early_data`).
    spoke_h2: AtomicBool,
    /// Dials started so far: the next one starts its address race at this index, so the
    /// origin's connections spread over its addresses.
    dials_started: AtomicUsize,
    /// Which other origin's HTTP/2 connections this one's requests may use.
    coalescing: Mutex<coalesce::Coalescing>,
    /// The origin's OpenTelemetry histograms, shared with its connections.
    telemetry: Arc<OriginTelemetry>,
}

impl Drop for OriginPool {
    fn drop(&mut self) {
        // The timer holds the pool weakly, but its sleep would keep the task (and the pool's
        // allocation) until the deadline.
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = st.take_expiry_task() {
            task.abort();
        }
    }
}

impl OriginPool {
    pub(crate) fn new(origin: Origin, ctx: Arc<PoolContext>) -> OriginPool {
        let state = OriginState::new(
            Aging::new(ctx.config.priority_aging, ctx.config.acquire_timeout),
            demand::DemandWindow::new(ctx.config.demand_window),
        );
        OriginPool {
            route: ctx.connector.route(&origin),
            budget: Arc::new(RequestBudget::new(ctx.config.learn_request_budget)),
            telemetry: Arc::new(OriginTelemetry::new(&origin)),
            origin,
            ctx,
            waiting: state.queue().hint(),
            state: Mutex::new(state),
            drained: Notify::new(),
            handshakes: Arc::default(),
            spoke_h2: AtomicBool::new(false),
            dials_started: AtomicUsize::new(0),
            coalescing: Mutex::default(),
        }
    }

    /// The origin this pool serves.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// True when this origin's connections go through a proxy's tunnel.
    pub(crate) fn is_tunnelled(&self) -> bool {
        self.route.proxy().is_some()
    }

    /// The origin's OpenTelemetry histograms.
    pub(crate) fn telemetry(&self) -> &Arc<OriginTelemetry> {
        &self.telemetry
    }

    /// The pool-wide counters.
    pub(crate) fn counters(&self) -> &PoolCounters {
        &self.ctx.counters
    }

    fn lock(&self) -> MutexGuard<'_, OriginState<Connection>> {
        // Nothing under this lock can panic midway through a change; a poisoned lock still
        // holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes idle connections past their time, restores the warm minimum, and (a safety
    /// net) offers free slots to waiters and dials for waiting demand.
    ///
    /// Returns true when the origin has been vacant (no connection, dial, waiter or warm
    /// minimum) for `idle_timeout`: the manager may forget it.
    pub(crate) fn maintain(self: &Arc<Self>, now: Instant) -> bool {
        let (closed, replenish, wakers, plan) = {
            let mut st = self.lock();
            if st.is_closed() {
                return false;
            }
            st.record_demand(now);
            let closed = st.sweep_idle(&self.ctx.config, now);
            let lead = self
                .ctx
                .config
                .max_connection_lifetime
                .map_or(Duration::ZERO, |l| (l / 4).min(Duration::from_secs(5)));
            let replenish = st.plan_replenish(&self.ctx.config, now, lead);
            let (wakers, plan) = if st.queue().waiting() > 0 {
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
        let replenish = DialPlan {
            dials: replenish,
            recheck_at: None,
        };
        self.carry_out(wakers, replenish);
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
        let mut st = self.lock();
        OriginStats {
            origin: self.origin.clone(),
            connections: st
                .connections()
                .iter()
                .filter(|c| !c.is_closed())
                .map(|c| c.snapshot(now))
                .collect(),
            connecting: st.dialing(),
            waiters: st.queue().waiting(),
            warm_minimum: st.warm_min(),
            recent_peak_demand: st.peak_demand(now),
            learned_request_budget: self.budget.learned(),
            tls_full_handshakes: self.handshakes.full.load(Ordering::Relaxed),
            tls_resumed_handshakes: self.handshakes.resumed.load(Ordering::Relaxed),
            early_data_accepted: self.handshakes.early_data_accepted.load(Ordering::Relaxed),
            early_data_rejected: self.handshakes.early_data_rejected.load(Ordering::Relaxed),
            dial_failures_in_row: st.dial_failures_in_row(),
            telemetry: self.telemetry.snapshot(),
        }
    }
}

impl OriginPool {
    /// Why a connection that served nothing counts as a failed dial.
    fn served_nothing_error(&self, conn: &Connection) -> Error {
        if let Some(refusal) = conn.client_certificate_refusal() {
            return refusal;
        }
        let conn_id = conn.id;
        Error::Protocol {
            origin: self.origin.clone(),
            reason: format!(
                "connection {conn_id} was ended by the server before it processed any request \
                 (GOAWAY or close right after the handshake)"
            ),
            source: None,
        }
    }

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

/// A connection the server ends this soon after its handshake without serving a response
/// counts as a failed dial (see `backoff.rs`); one that lived longer was most likely closed
/// for being idle, which is no sign of a failing server.
const PROBATION: Duration = Duration::from_secs(10);

/// A connection that carried a stream this recently when the server ended it was in use: it
/// gets a replacement at once. One idle longer (a server's idle timeout) does not. One idle
/// this long past its forecast end, and not ended, refutes the forecast (`sweep.rs`).
pub(crate) const IN_USE_WITHIN: Duration = Duration::from_secs(1);

/// `conn` left the table, ended by the server or an error (`not_a_failed_dial`: it did not
/// count as a failed dial). If it served and was in use, its replacement is dialed now rather
/// than when the next request finds nothing (`OriginState::plan_replacement`), and an end in
/// good order is an observation of the server's budget (see `request_budget.rs`). Called when
/// it closed or, if it was closed before its first response was read, once that was settled.
fn replace_ended(
    st: &mut OriginState<Connection>,
    conn: &Connection,
    not_a_failed_dial: bool,
    now: Instant,
) -> ReservedDials {
    let in_use = not_a_failed_dial
        && conn.responses() > 0
        && (conn.slot.active() > 0 || conn.idle_for(now).is_some_and(|idle| idle < IN_USE_WITHIN));
    if !in_use {
        return ReservedDials::default();
    }
    // In use within `IN_USE_WITHIN`: a server's budget GOAWAY ends a connection a round trip
    // or two after its last response (hyper's graceful shutdown waits for a PING), while idle
    // timeouts are far longer (nginx 75 s). A server idling connections out in under a second
    // under steady traffic would be taken for a budget: rotations off the request path, never
    // failures.
    if conn.peer_ended() {
        conn.note_ended_in_use();
    }
    if conn.replacement_asked() {
        return ReservedDials::default();
    }
    st.plan_replacement(conn, now)
}

// ===== impl SlotEvents =====

impl SlotEvents for OriginPool {
    fn released(self: Arc<Self>, conn: &Arc<Connection>) {
        let (released, closed, plan) = {
            let mut st = self.lock();
            let released = st.release(conn);
            // The last request of a connection awaiting its verdict was classified.
            let plan = if released.replan {
                let now = Instant::now();
                let replacement = replace_ended(&mut st, conn, true, now);
                let mut plan = st.plan_dials(&self.ctx.config, None, now);
                plan.dials.merge(replacement);
                plan
            } else {
                DialPlan::default()
            };
            (released, st.is_closed(), plan)
        };
        self.finish_release(released, closed);
        self.start(plan);
    }

    fn settle(self: Arc<Self>, conn: &Arc<Connection>) {
        let ((wakers, retired), closed) = {
            let mut st = self.lock();
            (st.settle(conn), st.is_closed())
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
        self.carry_out(wakers, plan);
    }

    fn closed(self: Arc<Self>, conn: &Arc<Connection>) {
        // Ended by the server (or a failed keep-alive) soon after its handshake, before any
        // request went out on it: a GOAWAY right after SETTINGS, a close. That dial failed.
        // (One that carried requests is judged by them: see `served_nothing`.)
        let failed_dial = (conn.responses() == 0
            && conn.requests_sent() == 0
            && conn.age() < PROBATION
            && conn.claim_dial_failure())
        .then(|| self.served_nothing_error(conn));
        let (removed, wakers, plan) = {
            let mut st = self.lock();
            let removed = st.remove(conn);
            let now = Instant::now();
            let wakers = match &failed_dial {
                Some(error) => st.dial_failed(error, now, &self.ctx.config),
                None => Vec::new(),
            };
            // Waiters may now need a replacement. When an HTTP/2 connection served nothing
            // but carried requests, their callers are just now learning whether its GOAWAY
            // refused them (then it is a failed dial, see `served_nothing`, and the
            // replacement waits for the backoff): the plan is made when the last of them
            // gives its slot back, which comes after its classification (`release`).
            let undecided = conn.protocol == Protocol::Http2
                && conn.responses() == 0
                && conn.requests_sent() > 0
                && conn.age() < PROBATION
                && st.await_verdict(conn);
            let plan = if undecided {
                DialPlan::default()
            } else {
                let replacement = replace_ended(&mut st, conn, failed_dial.is_none(), now);
                let mut plan = st.plan_dials(&self.ctx.config, None, now);
                plan.dials.merge(replacement);
                plan
            };
            (removed, wakers, plan)
        };
        drop(removed);
        if let Some(error) = &failed_dial {
            debug!(conn_id = conn.id, error = %error, "a failed dial");
        }
        self.carry_out(wakers, plan);
    }

    fn served_nothing(self: Arc<Self>, conn: &Connection) {
        let error = self.served_nothing_error(conn);
        debug!(conn_id = conn.id, error = %error, "a failed dial");
        let wakers = self
            .lock()
            .dial_failed(&error, Instant::now(), &self.ctx.config);
        self.carry_out(wakers, DialPlan::default());
    }

    fn first_response(self: Arc<Self>) {
        self.lock().served();
    }
}
