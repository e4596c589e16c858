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
//! `crate::exchange`), and one task per connection polls `h2::client::Connection`, reads the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` after every poll, and sends keep-alive PINGs (`crate::ping`).
//! The peer's limit is *provisional* until its first SETTINGS frame arrives: h2 is given an
//! initial value no SETTINGS frame can carry ([`PROVISIONAL`]), and while it is seen the pool
//! places one stream on the connection, so a cold burst never overruns a small server limit.
//!
//! # HTTP/1.1
//!
//! hyper's `client::conn::http1`, one request at a time: the driver publishes after each poll
//! whether hyper's dispatcher wants the next request, and the connection counts as free only
//! then.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tracing::debug;

use crate::config::PoolConfig;
use crate::connection_info::ConnectionInfo;
use crate::counters::PoolCounters;
use crate::early_data::EarlyHandshake;
use crate::error::{Error, shared};
use crate::origin::Origin;
use crate::otel::OriginTelemetry;
use crate::ping::DataRecorder;
use crate::protocol::Protocol;
use crate::request_budget::RequestBudget;
use crate::slot::SlotCell;
use crate::stats::ConnectionStats;
use crate::timeouts::PhaseTimeouts;

mod driver;
mod ending;
mod establish;
mod head_watch;
mod wire;

pub(crate) use wire::Wire;

/// The initial `max_send_streams` given to h2: larger than any `u32` a SETTINGS frame can
/// carry on 64-bit targets, and not `usize::MAX`, which h2 uses for "SETTINGS without
/// MAX_CONCURRENT_STREAMS" (unlimited; h2 `Counts::apply_remote_settings`). Seeing it means
/// "no SETTINGS yet".
pub(crate) const PROVISIONAL: usize = usize::MAX - 1;

/// Streams the pool places on a connection whose peer sent SETTINGS without
/// `SETTINGS_MAX_CONCURRENT_STREAMS` (unlimited per RFC 9113 §6.5.2): Go's default for the
/// same case. `max_streams_per_connection` lowers it.
const UNLIMITED_PEER_STREAMS: usize = 1000;

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
    /// A connection received its first response: the origin's dials succeed.
    fn first_response(self: Arc<Self>);
    /// The server ended `conn` without processing anything on it (its GOAWAY refused the
    /// first request, or it wanted a client certificate): a failed dial.
    fn served_nothing(self: Arc<Self>, conn: &Connection);
}

/// A pooled connection. Shared by the origin's table, every lease on it and, weakly, its
/// driver task.
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) origin: Origin,
    pub(crate) protocol: Protocol,
    /// The address the socket is connected to (the proxy's, when tunnelled).
    pub(crate) peer: std::net::SocketAddr,
    /// What every response on it carries (addresses, TLS, proxy), built once.
    info: ConnectionInfo,
    /// The server's end-entity certificate, kept only for HTTP/2 coalescing.
    pub(crate) end_entity: Option<pki_types::CertificateDer<'static>>,
    /// How long the dial's TCP connect (DNS included) and TLS handshake took.
    dial_times: (Duration, Duration),
    /// Nanoseconds after `created` at which the peer's first SETTINGS arrived (`u64::MAX`
    /// before): the last part of the dial, after which the connection takes all its streams.
    settings_at: AtomicU64,
    /// How it sends, and what only its protocol has.
    pub(crate) wire: Wire,
    pub(crate) slot: SlotCell,
    /// Configured per-connection stream cap (`usize::MAX` when unset).
    cap: usize,
    /// The pool's deadlines for the phases of a request after acquire.
    pub(crate) timeouts: PhaseTimeouts,
    /// Published by the driver; [`PROVISIONAL`] until the peer's SETTINGS arrive.
    peer_max_streams: AtomicUsize,
    closed: AtomicBool,
    /// Set when the lease that spends the request budget is taken: `is_draining` then
    /// reads one flag instead of the budget.
    draining: AtomicBool,
    /// `max_requests_per_connection`.
    max_leases: Option<u64>,
    /// The origin's learned request budget (see `request_budget.rs`).
    budget: Arc<RequestBudget>,
    /// Responses (heads) received: requests the server served.
    responses: AtomicU64,
    /// Requests failed by the server's graceful GOAWAY: the connection was rotated under them.
    rotation_failures: AtomicU64,
    /// The server ended it in good order: a graceful GOAWAY stopped a stream, or its driver
    /// finished cleanly while the pool still held it.
    peer_ended: AtomicBool,
    /// ...and it was in use then: its served count tells the server's budget (read when the
    /// last request on it settled, see `Drop`).
    ended_in_use: AtomicBool,
    /// Counted as a failed dial already (see `claim_dial_failure`).
    dial_failure_claimed: AtomicBool,
    /// The server refused the connection for want of a client certificate: its TLS 1.3
    /// `certificate_required` alert came after the handshake and ended the connection. Set by
    /// the transport when it reads the alert (h2 keeps only the text of an I/O error), so
    /// requests that find the connection closed, and the failed dial it counts as, report
    /// [`Error::ClientCertificateRequired`] rather than a bare close.
    client_certificate_required: Arc<AtomicBool>,
    /// Its TLS handshake, when the connection was dialed into TLS 1.3 early data: requests
    /// that are not replay-safe wait for it (see `crate::early_data`). `None` otherwise, so a
    /// connection that never was in early data costs a request no atomic load.
    early_data: Option<Arc<EarlyHandshake>>,
    /// Creation + `max_connection_lifetime`.
    retire_at: Option<Instant>,
    /// Nanoseconds after `created` of the first lease (`u64::MAX` before it): from then on
    /// the connection spends its request budget at the rate the replacement plan reads.
    first_lease_at: AtomicU64,
    /// Its end is in sight and the origin was asked for a replacement (see
    /// [`Connection::replacement_due`]); asked once.
    replacement_asked: AtomicBool,
    leases: AtomicU64,
    requests: AtomicU64,
    /// The lowest send ordinal (1-based) of a request the server's GOAWAY refused above its
    /// last-stream-id; `u64::MAX` while none was. The server's budget for this connection
    /// ended before it.
    refused_from: AtomicU64,
    created: Instant,
    /// Nanoseconds after `created` at which the last lease ended.
    idle_since: AtomicU64,
    events: Weak<dyn SlotEvents>,
    /// The origin's waiting count, for releases that need no lock (see `release`).
    waiting: Arc<AtomicUsize>,
    pub(crate) counters: Arc<PoolCounters>,
    /// The origin's OpenTelemetry histograms (its lifetime goes there when it closes).
    pub(crate) telemetry: Arc<OriginTelemetry>,
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
    pub(crate) telemetry: Arc<OriginTelemetry>,
}

impl Connection {
    /// Lets a handshake held for the first request go on (see `EarlyHandshake`): for a
    /// connection dialed with nobody waiting for it.
    pub(crate) fn release_early_data(&self) {
        if let Some(early) = &self.early_data {
            early.release();
        }
    }

    /// The connection was dialed into TLS 1.3 early data (whether or not it is over).
    pub(crate) fn dialed_into_early_data(&self) -> bool {
        self.early_data.is_some()
    }

    /// The connection's TLS handshake while it is still under way with requests going as
    /// early data; `None` once it ended (or when there was no early data).
    pub(crate) fn early_handshake(&self) -> Option<&Arc<EarlyHandshake>> {
        self.early_data
            .as_ref()
            .filter(|handshake| handshake.is_pending())
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

    /// Rotating out: its request budget (possibly learned while it was in use) spent, past
    /// its lifetime, or told to. Its streams finish; it takes no new ones. A reading only:
    /// each of the three only ever turns true (a learned budget only goes down), so no
    /// caller needs to record what it saw.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
            || self.budget_spent()
            || self.retire_at.is_some_and(|at| Instant::now() >= at)
    }

    /// When the connection will start draining by age, if it will.
    pub(crate) fn retire_at(&self) -> Option<Instant> {
        self.retire_at
    }

    /// An HTTP/1.1 connection is busy until hyper's dispatcher is ready for the next
    /// request, which is after the previous response body was read off the socket; leasing it
    /// earlier would make the next request wait behind a body its caller may never read.
    fn h1_busy(&self) -> bool {
        match &self.wire {
            Wire::H2 { .. } => false,
            Wire::H1(h1) => h1.is_busy(),
        }
    }

    /// HTTP/2 with the adaptive window: where bodies report received DATA.
    pub(crate) fn data_recorder(&self) -> Option<&DataRecorder> {
        match &self.wire {
            Wire::H2 { data_recorder, .. } => data_recorder.as_ref(),
            Wire::H1(_) => None,
        }
    }

    /// Closed by the driver ending, by the pool, by a failed send, or (HTTP/1.1) as hyper's
    /// sender reported after the driver's last poll. h2 has no "closed" query.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || matches!(&self.wire, Wire::H1(h1) if h1.is_closed())
    }

    /// Marks the connection unusable for new streams; existing ones finish.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Takes the connection out of service at once, mid-exchange: an HTTP/1.1 connection whose
    /// exchange timed out cannot carry another request, and its driver stops reading.
    pub(crate) fn discard(self: &Arc<Self>) {
        self.close_and_report();
        if let Wire::H1(h1) = &self.wire {
            h1.discard.notify_one();
        }
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
        } else {
            self.first_lease_at
                .store(nanos_since(self.created), Ordering::Relaxed);
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
    /// against an acquirer queueing and the table's index updates; see `crate::slot`): if either
    /// changed meanwhile, the origin settles under its lock. Otherwise the release goes
    /// through the origin, which hands the slot straight to the longest waiter.
    pub(crate) fn release(this: &Arc<Connection>) {
        this.counters.handles_outstanding.decrement();
        if let Some(early) = &this.early_data {
            // A lease given back unused must not leave the handshake held.
            early.release();
        }
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

    /// The pool's error for a request that failed on this connection: the server refused the
    /// connection for want of a client certificate ([`Error::ClientCertificateRequired`]; in
    /// TLS 1.3 that alert comes after the handshake), the connection failed under it
    /// ([`Error::ConnectionClosed`]) or only the request's stream did ([`Error::Request`]).
    pub(crate) fn failure<E>(&self, connection_level: bool, source: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if self.client_certificate_required.load(Ordering::Acquire)
            || crate::transport::client_certificate_required(&source)
        {
            return Error::ClientCertificateRequired {
                origin: self.origin.clone(),
                source: shared(source),
            };
        }
        let (origin, connection_id, source) = (self.origin.clone(), self.id, shared(source));
        if connection_level {
            Error::ConnectionClosed {
                origin,
                connection_id,
                source,
            }
        } else {
            Error::Request {
                origin,
                connection_id,
                source,
            }
        }
    }

    /// True when the connection tunnels through a proxy.
    pub(crate) fn is_tunnelled(&self) -> bool {
        self.info.proxy().is_some()
    }

    /// The info a response on this connection carries; `coalesced` when the request was
    /// another origin's.
    pub(crate) fn info_for_response(&self, coalesced: bool) -> ConnectionInfo {
        self.info.for_response(coalesced)
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
            peer_addr: self.peer,
            proxy: self.info.proxy().cloned(),
            local_addr: self.info.local_addr(),
            tls_version: self.info.tls_version(),
            tls_resumed: self.info.tls_resumed(),
            tcp_connect: self.dial_times.0,
            tls_handshake: self.dial_times.1,
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
}

fn nanos_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// True when an h2 error ends the whole connection rather than one stream: a GOAWAY (either
/// side's) or I/O.
pub(crate) fn h2_error_ends_connection(error: &h2::Error) -> bool {
    error.is_go_away() || error.is_io()
}

// ---- impl Connection: accounting ----
// What a connection has carried (leases, requests, responses, requests a GOAWAY refused), its
// request budget, and learning the server's per-connection limit when it ends.

impl Connection {
    /// Requests this connection may carry: the configured budget or the learned one, the
    /// smaller.
    fn request_budget(&self) -> Option<u64> {
        match (self.max_leases, self.budget.learned()) {
            (Some(configured), Some(learned)) => Some(configured.min(learned)),
            (configured, learned) => configured.or(learned),
        }
    }

    /// True when the budget (possibly learned while the connection was in use) is spent.
    fn budget_spent(&self) -> bool {
        self.request_budget()
            .is_some_and(|max| self.leases.load(Ordering::Relaxed) >= max)
    }

    /// A response head arrived.
    pub(crate) fn record_response(&self) {
        if self.responses.fetch_add(1, Ordering::Relaxed) == 0
            && let Some(events) = self.events.upgrade()
        {
            events.first_response();
        }
    }

    /// Responses (heads) received on it.
    pub(crate) fn responses(&self) -> u64 {
        self.responses.load(Ordering::Relaxed)
    }

    /// How long it has been open.
    pub(crate) fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// A request failed because the server rotated the connection (graceful GOAWAY).
    pub(crate) fn record_rotation_failure(&self) {
        self.rotation_failures.fetch_add(1, Ordering::Relaxed);
        self.note_peer_ended();
    }

    /// The server ended the connection in good order (a graceful GOAWAY, a clean close).
    pub(crate) fn note_peer_ended(&self) {
        self.peer_ended.store(true, Ordering::Relaxed);
    }

    /// The server ended the connection in good order (see [`note_peer_ended`](Self::note_peer_ended)).
    pub(crate) fn peer_ended(&self) -> bool {
        self.peer_ended.load(Ordering::Relaxed)
    }

    /// The server ended this connection in good order while it was in use: once its last
    /// request settles, its served count is an observation of the server's budget (see
    /// `request_budget.rs`).
    pub(crate) fn note_ended_in_use(&self) {
        self.ended_in_use.store(true, Ordering::Relaxed);
    }

    /// Leases handed out on this connection so far.
    pub(crate) fn leases(&self) -> u64 {
        self.leases.load(Ordering::Relaxed)
    }

    /// The server's GOAWAY refused the request sent `ordinal`-th (from 1) on this connection.
    /// When that was its first request, and nothing was served on it, the server processed
    /// nothing on this connection: the origin counts it as a failed dial.
    pub(crate) fn note_refused(&self, ordinal: u64) {
        self.refused_from.fetch_min(ordinal, Ordering::Relaxed);
        if ordinal == 1 {
            self.note_first_request_refused();
        }
    }

    /// The connection's first request was refused, by its GOAWAY or because the stream could
    /// not even be opened: unless something was served on it, the server processed nothing
    /// here, and the origin counts a failed dial (once per connection).
    pub(crate) fn note_first_request_refused(&self) {
        if self.responses() == 0
            && self.claim_dial_failure()
            && let Some(events) = self.events.upgrade()
        {
            events.served_nothing(self);
        }
    }

    /// The server refused this connection for want of a client certificate: the error for
    /// the dial it counts as failed, or `None` when that was not why it ended.
    pub(crate) fn client_certificate_refusal(&self) -> Option<Error> {
        self.client_certificate_required
            .load(Ordering::Acquire)
            .then(|| Error::ClientCertificateRequired {
                origin: self.origin.clone(),
                source: shared(std::io::Error::other(
                    "the connection was ended by the server's certificate_required alert",
                )),
            })
    }

    /// True the first time it is called: the connection counts as a failed dial once, whichever
    /// sign of it comes first (its first request refused, or its end before any request).
    pub(crate) fn claim_dial_failure(&self) -> bool {
        !self.dial_failure_claimed.swap(true, Ordering::Relaxed)
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
}

impl Drop for Connection {
    /// The last reference goes once the pool has let go and every request on the connection
    /// has settled: the moment its served and failed counts are final, which is what the
    /// request-budget learner needs.
    fn drop(&mut self) {
        if self.rotation_failures.load(Ordering::Relaxed) == 0
            && !self.ended_in_use.load(Ordering::Relaxed)
        {
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
