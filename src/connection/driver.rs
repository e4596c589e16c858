//! The task that drives one connection: polls h2's connection (publishing the peer's stream
//! limit after every poll, running keep-alive and BDP PINGs) or hyper's HTTP/1.1 dispatcher
//! (publishing its readiness), and reports the connection closed when it ends.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::client::conn::http1;
use tracing::{Instrument, debug, debug_span};

use super::head_watch::HeadWatch;
use super::{Connection, PROVISIONAL, Wire};
use crate::counters::PoolCounters;
use crate::otel::OriginTelemetry;
use crate::outgoing::OutBody;
use crate::ping::{PingEvent, Pinger};
use crate::protocol::Protocol;

impl Connection {
    /// Stores the peer's current limit; a raised (or first) limit offers the new slots.
    fn publish_peer_max_streams(self: &Arc<Self>, value: usize) {
        let previous = self.peer_max_streams.swap(value, Ordering::AcqRel);
        if previous == value {
            return;
        }
        if previous == PROVISIONAL {
            self.settings_at
                .store(super::nanos_since(self.created), Ordering::Relaxed);
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
        let Wire::H1(h1) = &self.wire else {
            return;
        };
        let (ready, closed) = {
            let sender = h1.sender();
            (sender.is_ready(), sender.is_closed())
        };
        let was_ready = h1.publish(ready, closed);
        if ready
            && !was_ready
            && let Some(events) = self.events.upgrade()
        {
            events.capacity_grew(self);
        }
    }
}

/// The driver's one timer for its connection's response-head deadlines.
#[derive(Default)]
struct HeadTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    armed_at: Option<Instant>,
}

impl HeadTimer {
    /// Keeps the timer at the watch's earliest deadline; when it passes, expires what is
    /// due. True when streams were reset.
    fn poll_expired(&mut self, watch: &HeadWatch, cx: &mut Context<'_>) -> bool {
        let mut reset_any = false;
        while let Some(at) = watch.earliest() {
            if self.armed_at != Some(at) {
                let target = tokio::time::Instant::from_std(at);
                match &mut self.sleep {
                    Some(sleep) => sleep.as_mut().reset(target),
                    None => self.sleep = Some(Box::pin(tokio::time::sleep_until(target))),
                }
                self.armed_at = Some(at);
            }
            let Some(sleep) = &mut self.sleep else {
                break;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                break;
            }
            reset_any |= watch.expire(Instant::now()) > 0;
            self.armed_at = None;
            if watch.earliest() == Some(at) {
                // Nothing moved the deadline (a clock that reads earlier than the timer's):
                // wait for the next poll rather than spin.
                break;
            }
        }
        reset_any
    }
}

/// Why a driver stopped.
enum DriverEnd {
    /// The connection ended (gracefully, or with this error).
    Finished(Result<(), String>),
    /// The keep-alive PING went unanswered.
    KeepAliveTimedOut,
    /// An exchange timed out mid-message; the connection was dropped.
    Discarded,
}

/// Polls the h2 connection to completion, publishing the peer's stream limit after every poll
/// and running keep-alive and BDP PINGs. Holds only a `Weak` to the connection: the
/// `SendRequest` inside it must drop when the pool lets go, or h2 would keep the socket open.
pub(super) fn spawn_h2_driver<T>(
    mut h2_conn: h2::client::Connection<T, Bytes>,
    mut pinger: Option<Pinger>,
    conn: &Arc<Connection>,
    counters: Arc<PoolCounters>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let span = driver_span(conn);
    let weak = Arc::downgrade(conn);
    let lifetime = LifetimeRecord::of(conn, counters);
    let head_watch = match &conn.wire {
        Wire::H2 { head_watch, .. } => Some(Arc::clone(head_watch)),
        Wire::H1(_) => None,
    };
    let task = async move {
        let opened = Instant::now();
        let mut published = PROVISIONAL;
        let mut deferred = false;
        let mut heads = HeadTimer::default();
        let end = poll_fn(|cx| {
            if !std::mem::replace(&mut deferred, true) {
                if let Some(watch) = &head_watch {
                    watch.set_driver(cx.waker());
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            deferred = false;
            if let Poll::Ready(result) = Pin::new(&mut h2_conn).poll(cx) {
                return Poll::Ready(DriverEnd::Finished(result.map_err(|e| e.to_string())));
            }
            if let Some(watch) = &head_watch
                && heads.poll_expired(watch, cx)
            {
                // Resets were queued: poll h2 again to send them.
                cx.waker().wake_by_ref();
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
                        PingEvent::WindowUpdate { stream, connection } => {
                            h2_conn.set_target_window_size(connection);
                            // Only fails for a window above 2^31 - 1, which BDP never picks.
                            let _ = h2_conn.set_initial_window_size(stream);
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
        finish_driver(&weak, opened, &lifetime, end);
    };
    tokio::spawn(task.instrument(span));
}

/// Drives hyper's HTTP/1.1 dispatcher, publishing its readiness after every poll.
pub(super) fn spawn_h1_driver<T>(
    driver: http1::Connection<T, OutBody>,
    conn: &Arc<Connection>,
    counters: Arc<PoolCounters>,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let span = driver_span(conn);
    let weak = Arc::downgrade(conn);
    let lifetime = LifetimeRecord::of(conn, counters);
    let discard = match &conn.wire {
        Wire::H1(h1) => Some(Arc::clone(&h1.discard)),
        Wire::H2 { .. } => None,
    };
    let task = async move {
        let opened = Instant::now();
        let mut driver = driver;
        let run = poll_fn(|cx| {
            let poll = Pin::new(&mut driver).poll(cx);
            if let Some(conn) = weak.upgrade() {
                conn.publish_h1_readiness();
            }
            poll.map(|result| DriverEnd::Finished(result.map_err(|e| e.to_string())))
        });
        let end = match &discard {
            Some(discard) => tokio::select! {
                end = run => end,
                () = discard.notified() => DriverEnd::Discarded,
            },
            None => run.await,
        };
        // Drop hyper's dispatch task (and with it the request channel, whose drop fails every
        // queued request with the request handed back) with the send gate shut.
        match weak.upgrade() {
            Some(conn) => {
                let _gate = match &conn.wire {
                    Wire::H1(h1) => Some(h1.send_gate.write().unwrap_or_else(|p| p.into_inner())),
                    Wire::H2 { .. } => None,
                };
                conn.mark_closed();
                drop(driver);
            }
            None => drop(driver),
        }
        finish_driver(&weak, opened, &lifetime, end);
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

/// Where a driver records its connection's end: the driver holds the connection only
/// weakly, and it may be gone by then.
struct LifetimeRecord {
    counters: Arc<PoolCounters>,
    telemetry: Arc<OriginTelemetry>,
    protocol: Protocol,
}

impl LifetimeRecord {
    fn of(conn: &Connection, counters: Arc<PoolCounters>) -> LifetimeRecord {
        LifetimeRecord {
            counters,
            telemetry: Arc::clone(&conn.telemetry),
            protocol: conn.protocol,
        }
    }
}

/// Marks the connection closed, reports it to the origin, and records its lifetime.
fn finish_driver(
    weak: &Weak<Connection>,
    opened: Instant,
    record: &LifetimeRecord,
    end: DriverEnd,
) {
    if let Some(conn) = weak.upgrade() {
        if matches!(end, DriverEnd::Finished(Ok(()))) {
            // Ended cleanly while the pool still held it: the server's doing (the pool's own
            // rotations and idle closes let go first, and the driver then finds no connection).
            conn.note_peer_ended();
        }
        conn.close_and_report();
    }
    let lifetime = opened.elapsed();
    record.counters.record_connection_closed();
    record
        .telemetry
        .record_connection(record.protocol, lifetime);
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
        DriverEnd::Discarded => {
            debug!(
                ?lifetime,
                "connection discarded: an exchange on it timed out"
            );
        }
    }
}
