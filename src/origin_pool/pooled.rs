//! What the origin's state needs of a connection, so that selection, hand-off, scale-up and
//! the idle sweep run over fakes in unit tests (as hyper-util's `Poolable` lets its pool).

use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::protocol::Protocol;
use crate::slot::SlotCell;

/// What the origin's state needs of a connection. [`Connection`]
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
    /// Rotating out (lifetime, request budget): takes no new streams.
    fn is_draining(&self) -> bool;
    fn retire_at(&self) -> Option<Instant>;
    /// Its end is in sight and a replacement was planned for it: not lasting capacity.
    fn replacement_asked(&self) -> bool;
    fn idle_for(&self, now: Instant) -> Option<Duration>;
    /// Requests (leases) it has carried.
    fn leases(&self) -> u64;
    /// It has carried as many requests as the server ended the last connection after, a
    /// count not yet confirmed as a budget: a newcomer's pick takes it only when no other
    /// connection has a free slot. (A slot it frees while requests wait goes to them: with
    /// waiters, no other connection has room.)
    fn past_forecast(&self) -> bool;
    /// Requests sent on it.
    fn requests_sent(&self) -> u64;
    /// The one way the origin's state tells a connection what it did with it; everything
    /// above is a query and changes nothing. `ForecastRefuted` forgets the origin's forecast.
    fn note(&self, event: PoolEvent);
}

/// What the origin's state did with a connection, under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolEvent {
    /// A slot was just counted as taken (lease and budget bookkeeping).
    Leased,
    /// A slot was just given back and not handed over.
    SlotIdle,
    /// Taken out of service (swept, failed to become ready): takes no new streams.
    Closed,
    /// Past its forecast, it sat idle for `IN_USE_WITHIN` and the server did not end it: the
    /// forecast was wrong (a deploy's GOAWAY, not a budget), and the connection lasts.
    ForecastRefuted,
}

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
    fn replacement_asked(&self) -> bool {
        Connection::replacement_asked(self)
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
    fn past_forecast(&self) -> bool {
        Connection::past_forecast(self)
    }
    fn note(&self, event: PoolEvent) {
        match event {
            PoolEvent::Leased => self.on_leased(),
            PoolEvent::SlotIdle => self.on_idle_slot(),
            PoolEvent::Closed => self.mark_closed(),
            PoolEvent::ForecastRefuted => self.refute_forecast(),
        }
    }
}
