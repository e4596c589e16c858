//! One pooled connection: its sender, its limits and state, and the task that drives it.
//!
//! # States
//!
//! A connection is **Open** (takes new streams while `active < stream_limit()`), then
//! **Draining** (past its lifetime or request budget: finishes its streams, takes no new ones;
//! it leaves the origin's table when the last one ends), and finally **Closed** (its driver
//! ended: the peer closed, a GOAWAY, a PING timeout, an I/O error, or the pool let go). A
//! closed connection is never handed out again; streams already on it finish or fail.
//!
//! # HTTP/2
//!
//! Driven through the `h2` crate directly: requests are sent from the caller's task (see
//! `exchange.rs`), and one task per connection polls `h2::client::Connection`, reads the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` after every poll, and sends keep-alive PINGs (`ping.rs`).
//! The peer's limit is *provisional* until its first SETTINGS frame arrives: h2 is given an
//! initial value no SETTINGS frame can carry ([`PROVISIONAL`]), and while it is seen the pool
//! places one stream on the connection, so a cold burst never overruns a small server limit.
//!
//! # HTTP/1.1
//!
//! hyper's `client::conn::http1`, one request at a time: the driver publishes after each poll
//! whether hyper's dispatcher wants the next request, and the connection counts as free only
//! then.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tracing::{Instrument, debug, debug_span};

use crate::config::PoolConfig;
use crate::connector::Dialed;
use crate::counters::PoolCounters;
use crate::error::{Error, shared};
use crate::origin::Origin;
use crate::outgoing::OutBody;
use crate::ping::{DataRecorder, PingEvent, Pinger};
use crate::protocol::Protocol;
use crate::request_budget::RequestBudget;
use crate::slot::SlotCell;
use crate::stats::ConnectionStats;

/// The initial `max_send_streams` given to h2: larger than any `u32` a SETTINGS frame can
/// carry on 64-bit targets, and not `usize::MAX`, which h2 uses for "SETTINGS without
/// MAX_CONCURRENT_STREAMS" (unlimited; h2 `Counts::apply_remote_settings`). Seeing it means
/// "no SETTINGS yet".
pub(crate) const PROVISIONAL: usize = usize::MAX - 1;

/// Streams the pool places on a connection whose peer sent SETTINGS without
/// `SETTINGS_MAX_CONCURRENT_STREAMS` (unlimited per RFC 9113 §6.5.2): Go's default for the
/// same case. `max_streams_per_connection` lowers it.
const UNLIMITED_PEER_STREAMS: usize = 1000;

/// How a connection sends requests.
pub(crate) enum Sender {
    /// Cloned per request (a handle on h2's shared stream state).
    H2(h2::client::SendRequest<Bytes>),
    /// HTTP/1.1 needs `&mut`. A plain mutex, held only for non-blocking calls (`poll_ready`,
    /// `is_ready`, enqueueing a request), so the driver can always read readiness.
    H1(std::sync::Mutex<http1::SendRequest<OutBody>>),
}

/// What a connection tells its origin. Implemented by the origin pool; the connection holds
/// it weakly, so a dropped pool is not kept alive by its connections.
pub(crate) trait SlotEvents: Send + Sync {
    /// A lease on `conn` ended: its slot is free (or, if someone waits, theirs).
    fn released(self: Arc<Self>, conn: &Arc<Connection>);
    /// A slot of `conn` was given back without the origin's lock, and the origin must catch
    /// up (see `Connection::release`).
    fn settle(self: Arc<Self>, conn: &Arc<Connection>);
    /// `conn` may take more streams than before (the peer raised its limit, an HTTP/1.1
    /// dispatcher became ready).
    fn capacity_grew(self: Arc<Self>, conn: &Arc<Connection>);
    /// `conn` takes no new streams any more (closed, GOAWAY, evicted).
    fn closed(self: Arc<Self>, conn: &Arc<Connection>);
}

/// A pooled connection. Shared by the origin's table, every lease on it and, weakly, its
/// driver task.
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) origin: Origin,
    pub(crate) protocol: Protocol,
    pub(crate) sender: Sender,
    pub(crate) slot: SlotCell,
    /// Configured per-connection stream cap (`usize::MAX` when unset).
    cap: usize,
    /// Published by the driver; [`PROVISIONAL`] until the peer's SETTINGS arrive.
    peer_max_streams: AtomicUsize,
    closed: AtomicBool,
    /// Rotation: no new streams; leaves the table once its streams finish.
    draining: AtomicBool,
    /// `max_requests_per_connection`.
    max_leases: Option<u64>,
    /// The origin's learned request budget (see `request_budget.rs`).
    budget: Arc<RequestBudget>,
    /// Responses (heads) received: requests the server served.
    responses: AtomicU64,
    /// Requests failed by the server's graceful GOAWAY: the connection was rotated under them.
    rotation_failures: AtomicU64,
    /// Creation + `max_connection_lifetime`.
    retire_at: Option<Instant>,
    /// HTTP/1.1 only. Held (read) while a request is handed to hyper, and (write) while the
    /// driver drops hyper's dispatch task: a request enqueued concurrently with that drop
    /// could otherwise stay in hyper's channel unanswered for as long as a handle keeps the
    /// sender alive (seen under connection kills).
    pub(crate) send_gate: std::sync::RwLock<()>,
    /// HTTP/1.1 only: readiness as last seen by the driver.
    h1_ready: AtomicBool,
    /// HTTP/1.1 only: hyper's sender closed, as last seen by the driver (read without
    /// locking the sender, which the driver holds after every poll).
    h1_closed: AtomicBool,
    leases: AtomicU64,
    requests: AtomicU64,
    /// The lowest send ordinal (1-based) of a request the server's GOAWAY refused above its
    /// last-stream-id; `u64::MAX` while none was. The server's budget for this connection
    /// ended before it.
    refused_from: AtomicU64,
    created: Instant,
    /// Nanoseconds after `created` at which the last lease ended.
    idle_since: AtomicU64,
    /// HTTP/2 with the adaptive window: where bodies report received DATA.
    pub(crate) data_recorder: Option<DataRecorder>,
    events: Weak<dyn SlotEvents>,
    /// The origin's waiting count, for releases that need no lock (see `release`).
    waiting: Arc<AtomicUsize>,
    pub(crate) counters: Arc<PoolCounters>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .field("protocol", &self.protocol)
            .field("active", &self.slot.active())
            .field("limit", &self.stream_limit())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    /// The last reference goes once the pool has let go and every request on the connection
    /// has settled: the moment its served and failed counts are final, which is what the
    /// request-budget learner needs.
    fn drop(&mut self) {
        if self.rotation_failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        let served = self.responses.load(Ordering::Relaxed);
        if let Some(budget) = self.budget.observe_rotation(served) {
            debug!(
                conn_id = self.id,
                origin = %self.origin,
                budget,
                "learned the server's per-connection request limit; rotating before it"
            );
        }
    }
}

/// What the origin pool hands in when establishing a connection.
pub(crate) struct ConnectionParams<'a> {
    pub(crate) id: u64,
    pub(crate) origin: &'a Origin,
    pub(crate) config: &'a PoolConfig,
    pub(crate) events: Weak<dyn SlotEvents>,
    /// The origin's waiting count, published by its wait queue.
    pub(crate) waiting: Arc<AtomicUsize>,
    pub(crate) counters: Arc<PoolCounters>,
    pub(crate) budget: Arc<RequestBudget>,
}

impl Connection {
    /// Runs the HTTP handshake over a dialed stream and spawns the driver task.
    pub(crate) async fn establish(
        dialed: Dialed,
        params: ConnectionParams<'_>,
    ) -> Result<Arc<Connection>, Error> {
        let ConnectionParams {
            id,
            origin,
            config,
            events,
            waiting,
            counters,
            budget,
        } = params;
        let make = |sender, data_recorder| Connection {
            id,
            origin: origin.clone(),
            protocol: dialed.protocol,
            sender,
            slot: SlotCell::default(),
            cap: config.max_streams_per_connection.unwrap_or(usize::MAX),
            peer_max_streams: AtomicUsize::new(PROVISIONAL),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            max_leases: config.max_requests_per_connection,
            budget: Arc::clone(&budget),
            responses: AtomicU64::new(0),
            rotation_failures: AtomicU64::new(0),
            retire_at: config
                .max_connection_lifetime
                .map(|lifetime| Instant::now() + lifetime),
            send_gate: std::sync::RwLock::new(()),
            h1_ready: AtomicBool::new(false),
            h1_closed: AtomicBool::new(false),
            leases: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refused_from: AtomicU64::new(u64::MAX),
            created: Instant::now(),
            idle_since: AtomicU64::new(0),
            data_recorder,
            events: events.clone(),
            waiting: Arc::clone(&waiting),
            counters: Arc::clone(&counters),
        };

        match dialed.protocol {
            Protocol::Http2 => {
                let mut builder = h2::client::Builder::new();
                let (stream_window, conn_window) = if config.http2_adaptive_window {
                    // BDP estimation starts from the protocol's default window and grows it.
                    (MIN_WINDOW, MIN_WINDOW)
                } else {
                    (
                        config.http2_initial_stream_window_size,
                        config.http2_initial_connection_window_size,
                    )
                };
                builder
                    .initial_max_send_streams(PROVISIONAL)
                    .initial_window_size(stream_window)
                    .initial_connection_window_size(conn_window)
                    .max_send_buffer_size(config.http2_max_send_buf_size)
                    .max_header_list_size(config.http2_max_header_list_size)
                    .enable_push(false);
                let (sender, mut h2_conn) =
                    builder
                        .handshake(dialed.stream)
                        .await
                        .map_err(|e| Error::Protocol {
                            origin: origin.clone(),
                            reason: "h2 handshake failed".to_owned(),
                            source: Some(shared(e)),
                        })?;
                let pinger = h2_conn.ping_pong().and_then(|ping_pong| {
                    Pinger::new(
                        ping_pong,
                        config
                            .http2_keep_alive_interval
                            .map(|interval| (interval, config.http2_keep_alive_timeout)),
                        config.http2_adaptive_window.then_some(MIN_WINDOW),
                    )
                });
                let (pinger, recorder) = match pinger {
                    Some((pinger, recorder)) => (Some(pinger), recorder),
                    None => (None, None),
                };
                let conn = Arc::new(make(Sender::H2(sender), recorder));
                spawn_h2_driver(h2_conn, pinger, &conn, counters);
                Ok(conn)
            }
            Protocol::Http1 => {
                let (sender, driver) = http1::Builder::new()
                    .handshake(TokioIo::new(dialed.stream))
                    .await
                    .map_err(|e| Error::Protocol {
                        origin: origin.clone(),
                        reason: "http/1.1 handshake failed".to_owned(),
                        source: Some(shared(e)),
                    })?;
                let conn = Arc::new(make(Sender::H1(std::sync::Mutex::new(sender)), None));
                // HTTP/1.1 has no SETTINGS: one request at a time, known from the start.
                conn.peer_max_streams.store(1, Ordering::Relaxed);
                spawn_h1_driver(driver, &conn, counters);
                Ok(conn)
            }
        }
    }

    /// Streams this connection may carry now: `min(peer limit, cap)`, 1 while provisional.
    pub(crate) fn stream_limit(&self) -> usize {
        match self.peer_limit() {
            None => 1,
            Some(peer) => peer.min(self.cap),
        }
    }

    /// The peer's effective limit once its SETTINGS arrived; `None` before.
    pub(crate) fn peer_limit(&self) -> Option<usize> {
        match self.peer_max_streams.load(Ordering::Acquire) {
            PROVISIONAL => None,
            usize::MAX => Some(UNLIMITED_PEER_STREAMS),
            n => Some(n),
        }
    }

    /// The limit the origin can plan with for another connection like this one.
    pub(crate) fn planned_limit(&self) -> Option<usize> {
        self.peer_limit().map(|p| p.min(self.cap))
    }

    /// Open, not rotating out, and (HTTP/1.1) done with the previous exchange.
    pub(crate) fn accepts_streams(&self) -> bool {
        !self.is_closed() && !self.is_draining() && !self.h1_busy()
    }

    /// Rotating out: past its lifetime or its request budget. Its streams finish; it takes
    /// no new ones.
    pub(crate) fn is_draining(&self) -> bool {
        if self.draining.load(Ordering::Acquire) {
            return true;
        }
        if self.retire_at.is_some_and(|at| Instant::now() >= at) {
            self.draining.store(true, Ordering::Release);
            return true;
        }
        false
    }

    /// When the connection will start draining by age, if it will.
    pub(crate) fn retire_at(&self) -> Option<Instant> {
        self.retire_at
    }

    /// An HTTP/1.1 connection is busy until hyper's dispatcher is ready for the next
    /// request, which is after the previous response body was read off the socket; leasing it
    /// earlier would make the next request wait behind a body its caller may never read.
    fn h1_busy(&self) -> bool {
        match &self.sender {
            Sender::H2(_) => false,
            Sender::H1(_) => !self.h1_ready.load(Ordering::SeqCst),
        }
    }

    /// Marks an HTTP/1.1 connection busy: called when a request is handed to hyper, so the
    /// readiness flag never lags behind a dispatch the driver has not polled yet.
    pub(crate) fn mark_h1_busy(&self) {
        self.h1_ready.store(false, Ordering::SeqCst);
    }

    /// Closed by the driver ending, by the pool, by a failed send, or (HTTP/1.1) as hyper's
    /// sender reported after the driver's last poll. h2 has no "closed" query.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.h1_closed.load(Ordering::Acquire)
    }

    /// Marks the connection unusable for new streams; existing ones finish.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Marks the connection unusable and tells the origin, so it leaves the table (and waiters
    /// get a replacement) now rather than at the next sweep.
    pub(crate) fn close_and_report(self: &Arc<Self>) {
        if !self.closed.swap(true, Ordering::AcqRel)
            && let Some(events) = self.events.upgrade()
        {
            events.closed(self);
        }
    }

    /// Called by the origin's table, under its lock, when it has just counted a slot as
    /// taken on this connection: counts the lease and starts draining when the request
    /// budget is spent.
    pub(crate) fn on_leased(&self) {
        let before = self.leases.fetch_add(1, Ordering::Relaxed);
        if before > 0 {
            self.counters.leases_reused.add(1);
        }
        if self.request_budget().is_some_and(|max| before + 1 >= max) {
            debug!(conn_id = self.id, origin = %self.origin, "request budget spent; draining");
            self.draining.store(true, Ordering::Release);
        }
        self.counters.handles_outstanding.increment();
    }

    /// Called by the origin's table, under its lock, when a slot on this connection was
    /// given back (and not handed straight to a waiter).
    pub(crate) fn on_idle_slot(&self) {
        if self.slot.active() == 0 {
            self.idle_since
                .store(nanos_since(self.created), Ordering::Relaxed);
        }
    }

    /// Gives a lease's slot back. Called from `Lease::drop`: must not panic.
    ///
    /// When nobody waits and the connection stays in the origin's free index, giving the slot
    /// back changes nothing the origin's table decides on, so it takes no lock (and does not
    /// touch the origin at all). Both conditions are checked again after giving back (`SeqCst`,
    /// against an acquirer queueing and the table's index updates; see `slot.rs`): if either
    /// changed meanwhile, the origin settles under its lock. Otherwise the release goes
    /// through the origin, which hands the slot straight to the longest waiter.
    pub(crate) fn release(this: &Arc<Connection>) {
        this.counters.handles_outstanding.decrement();
        let slot = &this.slot;
        if this.h1_busy() && !this.is_draining() {
            // HTTP/1.1 with the response not yet finished on the wire: the slot is no use to
            // anyone until hyper's dispatcher is ready, and the driver offers it then. If the
            // dispatcher turned ready just before the slot came back, its offer may have
            // missed it: checked after giving back (`SeqCst`, as the driver sets the flag and
            // then offers).
            slot.give_back();
            this.on_idle_slot();
            if this.h1_busy() {
                return;
            }
            if let Some(events) = this.events.upgrade() {
                events.settle(this);
            }
            return;
        }
        if this.waiting.load(Ordering::SeqCst) == 0 && slot.indexed() && !this.is_draining() {
            slot.give_back();
            this.on_idle_slot();
            if slot.indexed() && this.waiting.load(Ordering::SeqCst) == 0 {
                return;
            }
            if let Some(events) = this.events.upgrade() {
                events.settle(this);
            }
            return;
        }
        match this.events.upgrade() {
            Some(events) => events.released(this),
            // The pool is gone: nobody waits, nothing to hand over; keep the count right.
            None => {
                this.slot.give_back();
            }
        }
    }

    /// Requests this connection may carry: the configured budget or the learned one, the
    /// smaller.
    fn request_budget(&self) -> Option<u64> {
        match (self.max_leases, self.budget.learned()) {
            (Some(configured), Some(learned)) => Some(configured.min(learned)),
            (configured, learned) => configured.or(learned),
        }
    }

    /// True when the budget (possibly learned while the connection was in use) is spent.
    pub(crate) fn budget_spent(&self) -> bool {
        self.request_budget()
            .is_some_and(|max| self.leases.load(Ordering::Relaxed) >= max)
    }

    /// Starts draining: no new streams, close once the last one ends.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// A response head arrived.
    pub(crate) fn record_response(&self) {
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    /// A request failed because the server rotated the connection (graceful GOAWAY).
    pub(crate) fn record_rotation_failure(&self) {
        self.rotation_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Leases handed out on this connection so far.
    pub(crate) fn leases(&self) -> u64 {
        self.leases.load(Ordering::Relaxed)
    }

    /// The server's GOAWAY refused the request sent `ordinal`-th (from 1) on this connection.
    pub(crate) fn note_refused(&self, ordinal: u64) {
        self.refused_from.fetch_min(ordinal, Ordering::Relaxed);
    }

    /// The lowest send ordinal a GOAWAY refused on this connection, if any did. Every request
    /// above the last-stream-id fails at the same moment; read late, this is the server's
    /// budget for the connection plus one.
    pub(crate) fn refused_from(&self) -> Option<u64> {
        match self.refused_from.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// Requests sent on this connection so far.
    pub(crate) fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counts a request sent; returns how many were sent on this connection before it.
    pub(crate) fn record_request(&self) -> u64 {
        self.counters.requests_sent.add(1);
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// How long the connection has had no active stream; `None` while busy.
    pub(crate) fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.slot.active() > 0 {
            return None;
        }
        let since = Duration::from_nanos(self.idle_since.load(Ordering::Relaxed));
        Some(now.saturating_duration_since(self.created + since))
    }

    pub(crate) fn snapshot(&self, now: Instant) -> ConnectionStats {
        ConnectionStats {
            id: self.id,
            protocol: self.protocol,
            active_streams: self.slot.active(),
            max_streams: self.stream_limit(),
            peer_settings_received: self.peer_limit().is_some(),
            draining: self.is_draining(),
            leases: self.leases.load(Ordering::Relaxed),
            requests_served: self.requests.load(Ordering::Relaxed),
            age: now.saturating_duration_since(self.created),
            idle_for: self.idle_for(now),
        }
    }

    /// Stores the peer's current limit; a raised (or first) limit offers the new slots.
    fn publish_peer_max_streams(self: &Arc<Self>, value: usize) {
        let previous = self.peer_max_streams.swap(value, Ordering::AcqRel);
        if previous == value {
            return;
        }
        debug!(
            conn_id = self.id,
            origin = %self.origin,
            max_streams = value,
            "peer SETTINGS_MAX_CONCURRENT_STREAMS"
        );
        if (previous == PROVISIONAL || value > previous)
            && let Some(events) = self.events.upgrade()
        {
            events.capacity_grew(self);
        }
    }

    /// Called by the HTTP/1.1 driver after each poll: publishes whether hyper's dispatcher
    /// wants a request, and offers the connection when it has just started to.
    fn publish_h1_readiness(self: &Arc<Self>) {
        let (ready, closed) = match &self.sender {
            Sender::H2(_) => return,
            Sender::H1(m) => {
                let sender = m.lock().unwrap_or_else(|p| p.into_inner());
                (sender.is_ready(), sender.is_closed())
            }
        };
        self.h1_closed.store(closed, Ordering::Release);
        let was_ready = self.h1_ready.swap(ready, Ordering::SeqCst);
        if ready
            && !was_ready
            && let Some(events) = self.events.upgrade()
        {
            events.capacity_grew(self);
        }
    }
}

/// The smallest window HTTP/2 starts with (RFC 9113 §6.9.2), where BDP estimation begins.
const MIN_WINDOW: u32 = 65_535;

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Why a driver stopped.
enum DriverEnd {
    /// The connection ended (gracefully, or with this error).
    Finished(Result<(), String>),
    /// The keep-alive PING went unanswered.
    KeepAliveTimedOut,
}

/// Polls the h2 connection to completion, publishing the peer's stream limit after every poll
/// and running keep-alive and BDP PINGs. Holds only a `Weak` to the connection: the
/// `SendRequest` inside it must drop when the pool lets go, or h2 would keep the socket open.
fn spawn_h2_driver<T>(
    mut h2_conn: h2::client::Connection<T, Bytes>,
    mut pinger: Option<Pinger>,
    conn: &Arc<Connection>,
    counters: Arc<PoolCounters>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let span = driver_span(conn);
    let weak = Arc::downgrade(conn);
    let task = async move {
        let opened = Instant::now();
        let mut published = PROVISIONAL;
        let mut deferred = false;
        let end = poll_fn(|cx| {
            if !std::mem::replace(&mut deferred, true) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            deferred = false;
            if let Poll::Ready(result) = Pin::new(&mut h2_conn).poll(cx) {
                return Poll::Ready(DriverEnd::Finished(result.map_err(|e| e.to_string())));
            }
            // SETTINGS are applied inside that poll; a change is seen here at once.
            let limit = h2_conn.max_concurrent_send_streams();
            if limit != published {
                published = limit;
                if let Some(conn) = weak.upgrade() {
                    conn.publish_peer_max_streams(limit);
                }
            }
            if let Some(pinger) = &mut pinger {
                while let Poll::Ready(event) = pinger.poll(cx) {
                    match event {
                        PingEvent::WindowUpdate(window) => {
                            h2_conn.set_target_window_size(window);
                            // Only fails for a window above 2^31 - 1, which BDP never picks.
                            let _ = h2_conn.set_initial_window_size(window);
                        }
                        PingEvent::KeepAliveTimedOut => {
                            return Poll::Ready(DriverEnd::KeepAliveTimedOut);
                        }
                    }
                }
            }
            Poll::Pending
        })
        .await;
        // Dropping h2's connection fails every stream still open on it.
        drop(h2_conn);
        finish_driver(&weak, opened, &counters, end);
    };
    tokio::spawn(task.instrument(span));
}

/// Drives hyper's HTTP/1.1 dispatcher, publishing its readiness after every poll.
fn spawn_h1_driver<T>(
    driver: http1::Connection<T, OutBody>,
    conn: &Arc<Connection>,
    counters: Arc<PoolCounters>,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let span = driver_span(conn);
    let weak = Arc::downgrade(conn);
    let task = async move {
        let opened = Instant::now();
        let mut driver = driver;
        let end = poll_fn(|cx| {
            let poll = Pin::new(&mut driver).poll(cx);
            if let Some(conn) = weak.upgrade() {
                conn.publish_h1_readiness();
            }
            poll.map(|result| DriverEnd::Finished(result.map_err(|e| e.to_string())))
        })
        .await;
        // Drop hyper's dispatch task (and with it the request channel, whose drop fails every
        // queued request with the request handed back) with the send gate shut.
        match weak.upgrade() {
            Some(conn) => {
                let _gate = conn.send_gate.write().unwrap_or_else(|p| p.into_inner());
                conn.mark_closed();
                drop(driver);
            }
            None => drop(driver),
        }
        finish_driver(&weak, opened, &counters, end);
    };
    tokio::spawn(task.instrument(span));
}

fn driver_span(conn: &Connection) -> tracing::Span {
    debug_span!(
        "connection",
        conn_id = conn.id,
        origin = %conn.origin,
        protocol = %conn.protocol
    )
}

/// Marks the connection closed, reports it to the origin, and records its lifetime.
fn finish_driver(
    weak: &Weak<Connection>,
    opened: Instant,
    counters: &PoolCounters,
    end: DriverEnd,
) {
    if let Some(conn) = weak.upgrade() {
        conn.close_and_report();
    }
    let lifetime = opened.elapsed();
    counters.record_connection_closed(lifetime);
    match end {
        DriverEnd::Finished(Ok(())) => debug!(?lifetime, "connection closed"),
        // A reset, a protocol error, the peer gone: the connection is out of selection from
        // here on, and its in-flight requests failed with this error.
        DriverEnd::Finished(Err(error)) => {
            debug!(?lifetime, error = %error, "connection evicted after an error");
        }
        DriverEnd::KeepAliveTimedOut => {
            debug!(?lifetime, "connection evicted: keep-alive PING unanswered");
        }
    }
}
