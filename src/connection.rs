//! One pooled connection: its hyper handle, its stream-slot accounting, and its driver task.
//!
//! The pool counts its own stream leases because hyper's HTTP/2 `SendRequest::is_ready()`
//! only means "not closed": requests past the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` would
//! queue invisibly inside h2. A connection therefore takes a new lease only while
//! `active < min(peer limit, configured cap)`.
//!
//! The peer's limit is read from the connection driver
//! (`hyper::client::conn::http2::Connection::current_max_send_streams`) by a thin wrapper
//! future that publishes it into an atomic after every poll. The limit is *provisional* until
//! the peer's first SETTINGS frame arrives; to tell "not arrived" from "arrived", hyper is
//! given an initial value no SETTINGS frame can carry ([`PROVISIONAL`]). While provisional the
//! pool places one stream on the connection, so a cold burst never overruns a small server
//! limit (which the server would answer with REFUSED_STREAM).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::Notify;
use tracing::{Instrument, debug, debug_span};

use crate::config::PoolConfig;
use crate::connector::Dialed;
use crate::error::{BoxError, Error, shared};
use crate::origin::Origin;
use crate::request_budget::RequestBudget;
use crate::stats::{ConnectionStats, PoolCounters};

/// The body type every pooled connection is typed over; callers' bodies are boxed into it.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// The initial `max_send_streams` given to hyper: larger than any `u32` a SETTINGS frame can
/// carry on 64-bit targets, and not `usize::MAX`, which h2 uses for "SETTINGS without
/// MAX_CONCURRENT_STREAMS" (unlimited). Seeing it means "no SETTINGS yet".
pub(crate) const PROVISIONAL: usize = usize::MAX - 1;

/// Streams the pool places on a connection whose peer sent SETTINGS without
/// `SETTINGS_MAX_CONCURRENT_STREAMS` (unlimited per RFC 9113 §6.5.2): Go's default for the
/// same case. `max_streams_per_connection` lowers it.
const UNLIMITED_PEER_STREAMS: usize = 1000;

/// The negotiated HTTP version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// HTTP/1.1: one request at a time per connection.
    Http1,
    /// HTTP/2: many concurrent streams per connection.
    Http2,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 => "h2",
        })
    }
}

pub(crate) enum Sender {
    /// Cloned per request: an HTTP/2 `SendRequest` is a cheap channel handle.
    H2(http2::SendRequest<RequestBody>),
    /// HTTP/1.1 needs `&mut`. A plain mutex, held only for non-blocking calls (`poll_ready`,
    /// `is_ready`, enqueueing a request), so the driver can always read readiness.
    H1(std::sync::Mutex<http1::SendRequest<RequestBody>>),
}

/// A pooled connection. Shared by the origin's list and every [`StreamHandle`] leased on it.
///
/// [`StreamHandle`]: crate::StreamHandle
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) origin: Origin,
    pub(crate) protocol: Protocol,
    pub(crate) sender: Sender,
    /// Configured per-connection stream cap (`usize::MAX` when unset).
    cap: usize,
    active: AtomicUsize,
    /// Published by the driver; [`PROVISIONAL`] until the peer's SETTINGS arrive.
    peer_max_streams: AtomicUsize,
    closed: AtomicBool,
    /// Rotation: no new streams; removed from the pool once its streams finish.
    draining: AtomicBool,
    /// `max_requests_per_connection`.
    max_leases: Option<u64>,
    /// The origin's learned request budget (see `request_budget.rs`).
    budget: Arc<RequestBudget>,
    /// Responses (heads) received: requests the server served.
    responses: AtomicU64,
    /// Requests failed by the server's graceful GOAWAY: the connection was rotated under
    /// them.
    rotation_failures: AtomicU64,
    /// Creation + `max_connection_lifetime`.
    retire_at: Option<Instant>,
    /// Held (read) while a request is handed to hyper, and (write) while the driver drops
    /// hyper's dispatch task; see `spawn_driver`.
    pub(crate) send_gate: std::sync::RwLock<()>,
    /// HTTP/1.1 only: readiness as last seen by the driver, to wake waiters on the change.
    h1_ready: AtomicBool,
    leases: AtomicU64,
    requests: AtomicU64,
    created: Instant,
    /// Nanoseconds after `created` at which `active` last fell to zero.
    idle_since: AtomicU64,
    /// The origin's wake-up: a freed slot or a raised limit lets a waiter in.
    pub(crate) slot_freed: Arc<Notify>,
    pub(crate) counters: Arc<PoolCounters>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("origin", &self.origin)
            .field("protocol", &self.protocol)
            .field("active", &self.active.load(Ordering::Relaxed))
            .field("limit", &self.stream_limit())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    /// The last reference goes once the pool has let go and every request on the connection
    /// has settled: the moment its served and failed counts are final.
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
    pub(crate) slot_freed: Arc<Notify>,
    pub(crate) counters: Arc<PoolCounters>,
    pub(crate) budget: Arc<RequestBudget>,
}

impl Connection {
    /// Runs the HTTP handshake over a dialed TLS stream and spawns the driver task.
    pub(crate) async fn establish(
        dialed: Dialed,
        params: ConnectionParams<'_>,
    ) -> Result<Arc<Connection>, Error> {
        let ConnectionParams {
            id,
            origin,
            config,
            slot_freed,
            counters,
            budget,
        } = params;
        let io = TokioIo::new(dialed.stream);
        let protocol_error = |e: hyper::Error| Error::Protocol {
            origin: origin.clone(),
            reason: format!("{} handshake failed", dialed.protocol),
            source: Some(shared(e)),
        };
        let make = |sender| {
            Arc::new(Connection {
                id,
                origin: origin.clone(),
                protocol: dialed.protocol,
                sender,
                cap: config.max_streams_per_connection.unwrap_or(usize::MAX),
                active: AtomicUsize::new(0),
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
                leases: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                created: Instant::now(),
                idle_since: AtomicU64::new(0),
                slot_freed: slot_freed.clone(),
                counters: counters.clone(),
            })
        };

        match dialed.protocol {
            Protocol::Http2 => {
                let mut builder = http2::Builder::new(TokioExecutor::new());
                builder
                    .timer(TokioTimer::new())
                    .initial_max_send_streams(PROVISIONAL)
                    .initial_stream_window_size(config.http2_initial_stream_window_size)
                    .initial_connection_window_size(config.http2_initial_connection_window_size)
                    .adaptive_window(config.http2_adaptive_window)
                    .keep_alive_interval(config.http2_keep_alive_interval)
                    .keep_alive_timeout(config.http2_keep_alive_timeout)
                    .keep_alive_while_idle(true);
                let (sender, driver) = builder.handshake(io).await.map_err(protocol_error)?;
                let conn = make(Sender::H2(sender));
                spawn_h2_driver(driver, &conn, slot_freed, counters);
                Ok(conn)
            }
            Protocol::Http1 => {
                let (sender, driver) = http1::Builder::new()
                    .handshake(io)
                    .await
                    .map_err(protocol_error)?;
                let conn = make(Sender::H1(std::sync::Mutex::new(sender)));
                // HTTP/1.1 has no SETTINGS: one request at a time, known from the start.
                conn.peer_max_streams.store(1, Ordering::Relaxed);
                spawn_driver(driver, &conn, slot_freed, counters, |_, conn| {
                    conn.publish_h1_readiness();
                    None
                });
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

    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    pub(crate) fn free_slots(&self) -> usize {
        if !self.accepts_streams() {
            return 0;
        }
        self.stream_limit().saturating_sub(self.active())
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

    /// Draining and without streams: ready to be dropped from the pool.
    pub(crate) fn is_retired(&self) -> bool {
        self.is_draining() && self.active() == 0
    }

    /// When the connection will start draining by age, if it will.
    pub(crate) fn retire_at(&self) -> Option<Instant> {
        self.retire_at
    }

    /// An HTTP/1.1 connection is busy until the previous response body has been read off the
    /// socket, even after its handle is dropped; leasing it then would make the next request
    /// wait behind a body its caller may never read.
    ///
    /// Read from the flag the driver publishes after every poll (and the sender clears when it
    /// hands over a request), so every check in one decision sees the same answer.
    fn h1_busy(&self) -> bool {
        match &self.sender {
            Sender::H2(_) => false,
            Sender::H1(_) => !self.h1_ready.load(Ordering::Acquire),
        }
    }

    /// Marks an HTTP/1.1 connection busy: called when a request is handed to hyper, so the
    /// readiness flag never lags behind a dispatch the driver has not polled yet.
    pub(crate) fn mark_h1_busy(&self) {
        self.h1_ready.store(false, Ordering::Release);
    }

    /// Called by the HTTP/1.1 driver after each poll: publishes whether hyper's dispatcher
    /// wants a request, and wakes the waiters when it has just started to.
    fn publish_h1_readiness(&self) {
        let ready = match &self.sender {
            Sender::H2(_) => return,
            Sender::H1(m) => m.lock().unwrap_or_else(|p| p.into_inner()).is_ready(),
        };
        let was_ready = self.h1_ready.swap(ready, Ordering::AcqRel);
        if ready && !was_ready {
            self.slot_freed.notify_waiters();
        }
    }

    /// Closed by the driver ending, by us, or as hyper sees it.
    pub(crate) fn is_closed(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        match &self.sender {
            Sender::H2(s) => s.is_closed(),
            // A locked sender is in use, hence not known to be closed; an unlocked one can be
            // asked. (The driver also marks the connection closed when hyper's dispatcher ends.)
            Sender::H1(m) => m.lock().unwrap_or_else(|p| p.into_inner()).is_closed(),
        }
    }

    /// Marks the connection unusable for new streams; existing ones finish.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Takes one stream slot if one is free. Lock-free: handles give slots back without the
    /// origin lock.
    pub(crate) fn try_lease(&self) -> bool {
        if !self.accepts_streams() {
            return false;
        }
        // A budget learned while the connection was in use may already be spent.
        let budget = self.request_budget();
        if budget.is_some_and(|max| self.leases.load(Ordering::Relaxed) >= max) {
            self.draining.store(true, Ordering::Release);
            return false;
        }
        let limit = self.stream_limit();
        let mut current = self.active.load(Ordering::Acquire);
        loop {
            if current >= limit {
                return false;
            }
            match self.active.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        let before = self.leases.fetch_add(1, Ordering::Relaxed);
        if before > 0 {
            self.counters.leases_reused.add(1);
        }
        if budget.is_some_and(|max| before + 1 >= max) {
            debug!(conn_id = self.id, origin = %self.origin, "request budget spent; draining");
            self.draining.store(true, Ordering::Release);
        }
        self.counters.handles_outstanding.increment();
        true
    }

    /// Gives a slot back and wakes one waiter. Called from `StreamHandle::drop`: must not
    /// panic.
    pub(crate) fn release(&self) {
        let before = self.active.fetch_sub(1, Ordering::AcqRel);
        if before == 1 {
            self.idle_since
                .store(nanos_since(self.created), Ordering::Relaxed);
        }
        self.counters.handles_outstanding.decrement();
        self.slot_freed.notify_one();
    }

    /// Requests this connection may carry: the configured budget or the learned one, the
    /// smaller.
    fn request_budget(&self) -> Option<u64> {
        match (self.max_leases, self.budget.learned()) {
            (Some(configured), Some(learned)) => Some(configured.min(learned)),
            (configured, learned) => configured.or(learned),
        }
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

    pub(crate) fn record_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.requests_sent.add(1);
    }

    /// How long the connection has had no active stream; `None` while busy.
    pub(crate) fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.active() > 0 {
            return None;
        }
        let since = Duration::from_nanos(self.idle_since.load(Ordering::Relaxed));
        Some(now.saturating_duration_since(self.created + since))
    }

    pub(crate) fn snapshot(&self, now: Instant) -> ConnectionStats {
        ConnectionStats {
            id: self.id,
            protocol: self.protocol,
            active_streams: self.active(),
            max_streams: self.stream_limit(),
            peer_settings_received: self.peer_limit().is_some(),
            draining: self.is_draining(),
            leases: self.leases.load(Ordering::Relaxed),
            requests_served: self.requests.load(Ordering::Relaxed),
            age: now.saturating_duration_since(self.created),
            idle_for: self.idle_for(now),
        }
    }

    /// Stores the peer's current limit; a raised (or first) limit wakes every waiter.
    fn publish_peer_max_streams(&self, value: usize) {
        let previous = self.peer_max_streams.swap(value, Ordering::AcqRel);
        if previous != value {
            debug!(
                conn_id = self.id,
                origin = %self.origin,
                max_streams = value,
                "peer SETTINGS_MAX_CONCURRENT_STREAMS"
            );
            if previous == PROVISIONAL || value > previous {
                self.slot_freed.notify_waiters();
            }
        }
    }
}

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// How often the driver re-reads the peer's stream limit while its first SETTINGS frame is
/// awaited, and afterwards. hyper runs the h2 connection in a task of its own and wakes the
/// dispatch future we hold only for new requests, so a SETTINGS frame would otherwise be seen
/// only at the next request.
const SETTINGS_CHECK_PROVISIONAL: Duration = Duration::from_millis(1);
const SETTINGS_CHECK_ESTABLISHED: Duration = Duration::from_millis(100);

fn spawn_h2_driver<T>(
    driver: http2::Connection<T, RequestBody, TokioExecutor>,
    conn: &Arc<Connection>,
    slot_freed: Arc<Notify>,
    counters: Arc<PoolCounters>,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    spawn_driver(driver, conn, slot_freed, counters, |driver, conn| {
        conn.publish_peer_max_streams(driver.current_max_send_streams());
        Some(if conn.peer_limit().is_some() {
            SETTINGS_CHECK_ESTABLISHED
        } else {
            SETTINGS_CHECK_PROVISIONAL
        })
    });
}

/// Drives a hyper connection to completion. After each poll `observe` may read the driver
/// (the HTTP/2 wrapper publishes the peer's stream limit there) and ask to be called again
/// after a delay even if the connection has no work. The task holds only a `Weak` to the
/// connection: the `SendRequest` inside it must drop when the pool lets go, or hyper would
/// keep the socket open forever. Events inside carry the connection's id, origin and protocol
/// from the task's span.
fn spawn_driver<D, O>(
    driver: D,
    conn: &Arc<Connection>,
    slot_freed: Arc<Notify>,
    counters: Arc<PoolCounters>,
    observe: O,
) where
    D: Future<Output = Result<(), hyper::Error>> + Send + 'static,
    O: Fn(&D, &Connection) -> Option<Duration> + Send + Sync + 'static,
{
    let opened = Instant::now();
    let span = debug_span!(
        "connection",
        conn_id = conn.id,
        origin = %conn.origin,
        protocol = %conn.protocol
    );
    let conn = Arc::downgrade(conn);
    let task = async move {
        let mut driver = Box::pin(driver);
        let mut recheck = pin!(tokio::time::sleep(SETTINGS_CHECK_PROVISIONAL));
        let result = poll_fn(|cx| {
            let poll = driver.as_mut().poll(cx);
            if poll.is_pending()
                && let Some(conn) = conn.upgrade()
                && let Some(delay) = observe(&driver, &conn)
                && recheck.as_mut().poll(cx).is_ready()
            {
                recheck.as_mut().reset(tokio::time::Instant::now() + delay);
                // Registers the waker for the new deadline.
                let _ = recheck.as_mut().poll(cx);
            }
            poll
        })
        .await;
        // Drop hyper's dispatch task (and with it the request channel, whose drop fails every
        // queued request with the request handed back) with the send gate shut: a request
        // enqueued concurrently with that drop could otherwise stay in the channel, unanswered,
        // for as long as a handle keeps the sender alive (seen under connection kills).
        match conn.upgrade() {
            Some(conn) => {
                let _gate = conn.send_gate.write().unwrap_or_else(|p| p.into_inner());
                conn.mark_closed();
                drop(driver);
            }
            None => drop(driver),
        }
        let lifetime = opened.elapsed();
        counters.record_connection_closed(lifetime);
        match result {
            Ok(()) => debug!(?lifetime, "connection closed"),
            // A PING timeout, a reset, a protocol error: the connection is out of selection
            // from here on, and its in-flight requests have failed with this error.
            Err(error) => debug!(?lifetime, error = %error, "connection evicted after an error"),
        }
        // Waiters may now need a replacement connection.
        slot_freed.notify_waiters();
    };
    tokio::spawn(task.instrument(span));
}
