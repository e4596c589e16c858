//! One request/response exchange on a leased slot: HTTP/2 through h2 from the caller's task,
//! HTTP/1.1 through hyper.
//!
//! HTTP/2 costs the caller's task no channel, no oneshot and no spawned task: [`start`] sends
//! the request head with `SendRequest::send_request` right away (END_STREAM on the HEADERS
//! when the body is empty), and the returned [`Exchange`] future writes a body through a
//! [`Pipe`] while it waits for the response head. Only a body still streaming when the
//! response head arrives (a gRPC client stream, a large upload) moves to a task of its own.
//!
//! The future is small on purpose (tens of bytes, the rare parts boxed): a request future is
//! moved whenever the task that awaits it is built or polled, and a few kilobytes of future
//! showed up as ~10% of the client's CPU in `memmove`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use tracing::trace;

use crate::body::Body;
use crate::connection::{Connection, Wire};
use crate::early_data::{self, NoEarlyData};
use crate::error::TimeoutKind;
use crate::error::{Error, shared};
use crate::lease::LeaseRef;
use crate::origin::Scheme;
use crate::outgoing::{OutBody, Outgoing, Pipe, PipeError};
use crate::timeouts::{Deadline, PhaseClock, RequestLimits};

mod failure;
mod h1;

pub(crate) use failure::{Evidence, SendFailure};

use failure::H2Failure;
use h1::send_h1;

type BoxedExchange = Pin<Box<dyn Future<Output = Result<Response<Body>, SendFailure>> + Send>>;

/// A request on its way: the response head is awaited, the body (if any) is being written.
pub(crate) struct Exchange {
    state: State,
}

enum State {
    H2(Box<H2Exchange>),
    /// HTTP/2 with an empty body, the hot path: nothing to pipe, unboxed. `replay_head` is
    /// the head kept for a retry, if any.
    H2Bare {
        response: h2::client::ResponseFuture,
        lease: Option<LeaseRef>,
        replay_head: Option<http::request::Parts>,
        sent_before: u64,
        limits: RequestLimits,
        /// The response head's deadline, filed with the connection's driver (see
        /// `connection/head_watch.rs`): no timer of its own.
        ticket: Option<u64>,
    },
    H1(BoxedExchange),
    /// HTTP/2 on a connection still in TLS early data, for a request that must not go early:
    /// sent once the handshake completed (see `crate::early_data`).
    AfterHandshake(BoxedExchange),
    /// Failed before anything was awaited.
    Failed(Option<SendFailure>),
}

/// The parts of an HTTP/2 exchange that only some requests need.
struct H2Exchange {
    response: h2::client::ResponseFuture,
    lease: Option<LeaseRef>,
    pipe: Option<Pipe>,
    pipe_error: Option<PipeError>,
    /// What a retry needs: the head, and the body when the pool holds it in full.
    replay: Option<Outgoing>,
    /// Requests sent on the connection before this one.
    sent_before: u64,
    limits: RequestLimits,
    /// The response head's clock, started once the body is written (and, while it is being
    /// written, the whole request's deadline).
    clock: PhaseClock,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange")
    }
}

/// Sends `request` on `lease`'s connection; the returned future resolves to the response
/// head. The lease moves into the response body.
///
/// With `replayable`, what is needed to send the request again is kept (a copy of the head,
/// and the body's held frames) so a failure that proves the request unprocessed comes back
/// with it; without, nothing is copied.
///
/// `limits` are the request's own deadlines (its `Timeouts` extension, when the whole
/// request must be over); the connection's defaults fill in the rest.
pub(crate) fn start(
    lease: LeaseRef,
    request: Outgoing,
    replayable: bool,
    limits: RequestLimits,
) -> Exchange {
    // The connection is borrowed from the lease, not cloned: every request on a connection
    // shares its reference count, so each clone is a write to a line both workers want.
    let conn = lease.conn();
    trace!(conn_id = conn.id, origin = %conn.origin, uri = %request.head.uri, "sending");
    let sent_before = conn.record_request();
    let state = match &conn.wire {
        Wire::H2 { sender, .. } => {
            // A fresh clone has no stream pending open, so `ready()` would only repeat the
            // connection-error check that `send_request` makes itself (h2
            // `Streams::send_request`).
            let sender = sender.clone();
            // One branch on an `Option` for a connection that never was in early data.
            match conn.early_handshake() {
                None => start_h2(sender, lease, request, replayable, sent_before, limits),
                Some(handshake) if early_data::replay_safe(&request) => {
                    let handshake = Arc::clone(handshake);
                    let state = start_h2(sender, lease, request, replayable, sent_before, limits);
                    // The request is in h2's hands: the ClientHello may go, and it with it.
                    handshake.release();
                    state
                }
                Some(handshake) => {
                    let handshake = Arc::clone(handshake);
                    handshake.release();
                    State::AfterHandshake(Box::pin(async move {
                        handshake.completed().await;
                        let state =
                            start_h2(sender, lease, request, replayable, sent_before, limits);
                        Exchange { state }.await
                    }))
                }
            }
        }
        Wire::H1(_) => State::H1(Box::pin(send_h1(lease, request, limits))),
    };
    Exchange { state }
}

fn start_h2(
    mut sender: h2::client::SendRequest<Bytes>,
    lease: LeaseRef,
    request: Outgoing,
    replayable: bool,
    sent_before: u64,
    limits: RequestLimits,
) -> State {
    let Outgoing { head, body } = request;
    // What a retry needs, copied before h2 consumes the head: the head for any request that
    // never got a stream; the body too when the pool holds it in full.
    let head_copy = replayable.then(|| head.clone());
    let end_of_stream = matches!(body, OutBody::Empty);
    let opened = sender.send_request(Request::from_parts(head, ()), end_of_stream);
    drop(sender);
    let (response, send_stream) = match opened {
        Ok(pair) => pair,
        Err(e) => {
            // No stream id was assigned: nothing reached the server. A GOAWAY received or a
            // closed connection is why; either way this connection takes no more streams.
            if sent_before == 0 {
                // Refused its very first request: a failed dial unless it served something.
                lease.conn().note_first_request_refused();
            }
            if e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR) {
                // The server's graceful GOAWAY met a request: ended in good order, in use.
                lease.conn().note_peer_ended();
                lease.conn().note_ended_in_use();
            }
            let error = classify_h2(lease.conn(), e, true);
            if matches!(error, Error::Protocol { .. }) {
                // An h2c server that does not speak HTTP/2: another connection would fail
                // the same way, and the retry would only meet the backoff.
                return State::Failed(Some(SendFailure::fatal(error)));
            }
            let replay = head_copy.map(|head| Box::new(Outgoing { head, body }));
            return State::Failed(Some(SendFailure::never_sent(error, replay)));
        }
    };
    if end_of_stream {
        let conn = lease.conn();
        let head = limits
            .resolve(conn.timeouts)
            .deadline(TimeoutKind::ResponseHead, Instant::now());
        let ticket = match &conn.wire {
            Wire::H2 { head_watch, .. } => Some(head_watch.file(head.at, send_stream)),
            // Not reached: only HTTP/2 connections start here.
            Wire::H1(_) => None,
        };
        return State::H2Bare {
            response,
            lease: Some(lease),
            replay_head: head_copy,
            sent_before,
            limits,
            ticket,
        };
    }
    let replay = head_copy.and_then(|head| body.replay_copy().map(|body| Outgoing { head, body }));
    let pipe = Pipe::new(body, send_stream, limits.resolve(lease.conn().timeouts));
    State::H2(Box::new(H2Exchange {
        response,
        lease: Some(lease),
        pipe: Some(pipe),
        pipe_error: None,
        replay,
        sent_before,
        limits,
        clock: PhaseClock::default(),
    }))
}

impl Future for Exchange {
    type Output = Result<Response<Body>, SendFailure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            State::H2Bare {
                response,
                lease,
                replay_head,
                sent_before,
                limits,
                ticket,
            } => {
                let result = std::task::ready!(Pin::new(response).poll(cx));
                let Some(lease) = lease.take() else {
                    return Poll::Ready(Err(polled_after_completion()));
                };
                if let Some(ticket) = ticket.take()
                    && !withdraw(lease.conn(), ticket)
                {
                    // The driver reset the stream at the deadline.
                    let error = limits
                        .resolve(lease.conn().timeouts)
                        .head_timeout(&lease.conn().origin, Instant::now());
                    trace!(conn_id = lease.conn().id, "response head timed out");
                    drop(result);
                    drop(lease);
                    this.state = State::Failed(None);
                    return Poll::Ready(Err(SendFailure::fatal(error)));
                }
                let replay = replay_head.take().map(|head| Outgoing {
                    head,
                    body: OutBody::Empty,
                });
                Poll::Ready(finish_h2(
                    lease,
                    result,
                    None,
                    replay,
                    *sent_before,
                    std::mem::take(limits),
                ))
            }
            State::H2(exchange) => {
                let exchange = &mut **exchange;
                if let Some(pipe) = exchange.pipe.as_mut() {
                    match Pin::new(pipe).poll(cx) {
                        Poll::Pending => {}
                        Poll::Ready(Ok(())) => {
                            exchange.pipe = None;
                            // Sent in full: the response head's clock starts now.
                            exchange.clock.progress();
                        }
                        Poll::Ready(Err(PipeError::Timeout(deadline))) => {
                            // The pipe reset the stream.
                            return Poll::Ready(Err(this.time_out(deadline)));
                        }
                        Poll::Ready(Err(e)) => {
                            exchange.pipe = None;
                            exchange.pipe_error = Some(e);
                        }
                    }
                }
                let result = match Pin::new(&mut exchange.response).poll(cx) {
                    Poll::Ready(result) => result,
                    Poll::Pending => {
                        let Some(lease) = exchange.lease.as_ref() else {
                            return Poll::Ready(Err(polled_after_completion()));
                        };
                        let limits = exchange.limits.resolve(lease.conn().timeouts);
                        let waited = if exchange.pipe.is_some() {
                            // Still writing: the pipe keeps the write deadline; only the
                            // whole request's applies here.
                            exchange.clock.poll_end(&limits, cx)
                        } else {
                            exchange
                                .clock
                                .poll_wait(&limits, TimeoutKind::ResponseHead, cx)
                        };
                        let deadline = std::task::ready!(waited);
                        return Poll::Ready(Err(this.time_out(deadline)));
                    }
                };
                let Some(mut lease) = exchange.lease.take() else {
                    return Poll::Ready(Err(polled_after_completion()));
                };
                let upload = match exchange.pipe.take() {
                    Some(pipe) if result.is_ok() => {
                        // The server answered before the request body ended (a gRPC stream, an
                        // early response to an upload): the body streams on from its own task,
                        // which holds the slot with the response body and stops (resetting
                        // the stream) once the response ends or is dropped, so no stream
                        // outlives its slot.
                        let (stop, stopped) = tokio::sync::oneshot::channel();
                        tokio::spawn(finish_pipe(pipe, stopped, lease.share()));
                        Some(stop)
                    }
                    _ => None,
                };
                let finished = finish_h2(
                    lease,
                    result,
                    exchange.pipe_error.take(),
                    exchange.replay.take(),
                    exchange.sent_before,
                    std::mem::take(&mut exchange.limits),
                );
                Poll::Ready(finished.map(|response| match upload {
                    Some(stop) => response.map(|body| body.with_upload(stop)),
                    None => response,
                }))
            }
            State::H1(future) | State::AfterHandshake(future) => future.as_mut().poll(cx),
            State::Failed(failure) => match failure.take() {
                Some(failure) => Poll::Ready(Err(failure)),
                None => Poll::Ready(Err(polled_after_completion())),
            },
        }
    }
}

/// Withdraws a response-head deadline filed with `conn`'s driver; false when it had expired.
fn withdraw(conn: &Connection, ticket: u64) -> bool {
    match &conn.wire {
        Wire::H2 { head_watch, .. } => head_watch.withdraw(ticket),
        Wire::H1(_) => true,
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // A request dropped before its head came: its deadline leaves the driver's watch
        // (with the stream's send half, which it held).
        if let State::H2Bare {
            lease: Some(lease),
            ticket: Some(ticket),
            ..
        } = &self.state
        {
            withdraw(lease.conn(), *ticket);
        }
    }
}

impl Exchange {
    /// Ends an HTTP/2 exchange with a body with `deadline`'s timeout: drops the response
    /// future and the pipe (h2 resets the stream with CANCEL) before the lease, so the slot
    /// is free only once the stream is closed. (A bare request's head deadline is its
    /// connection driver's: `connection/head_watch.rs`.)
    fn time_out(&mut self, deadline: Deadline) -> SendFailure {
        let conn = match &self.state {
            State::H2(exchange) => exchange.lease.as_ref().map(|l| Arc::clone(l.conn())),
            State::H2Bare { .. } | State::H1(_) | State::AfterHandshake(_) | State::Failed(_) => {
                None
            }
        };
        self.state = State::Failed(None);
        match conn {
            Some(conn) => {
                trace!(conn_id = conn.id, origin = %conn.origin, kind = %deadline.kind, "timed out");
                SendFailure::fatal(deadline.error(&conn.origin))
            }
            None => polled_after_completion(),
        }
    }
}

/// The error for a future polled again after it completed (a caller bug; not a panic).
fn polled_after_completion() -> SendFailure {
    SendFailure::fatal(Error::PoolClosed)
}

/// Writes the rest of a request body after the response head came, until it ends, fails,
/// or the response is over (`stopped`: its body ended or was dropped), when the stream is
/// reset. `_lease` holds the slot until then.
async fn finish_pipe(
    mut pipe: Pipe,
    stopped: tokio::sync::oneshot::Receiver<()>,
    _lease: LeaseRef,
) {
    let outcome = tokio::select! {
        outcome = &mut pipe => outcome,
        _ = stopped => {
            pipe.reset(h2::Reason::CANCEL);
            trace!("response over before the request body: stream reset");
            return;
        }
    };
    match outcome {
        Ok(()) => {}
        Err(PipeError::Body(e)) => {
            trace!(error = %e, "request body failed after the response head");
        }
        Err(PipeError::Stream(e)) => {
            trace!(error = %e, "request stream ended after the response head");
        }
        Err(PipeError::Timeout(deadline)) => {
            trace!(kind = %deadline.kind, "request body timed out after the response head");
        }
    }
}

/// Turns h2's response (or error) into the pool's.
fn finish_h2(
    lease: LeaseRef,
    result: Result<Response<h2::RecvStream>, h2::Error>,
    pipe_error: Option<PipeError>,
    replay: Option<Outgoing>,
    sent_before: u64,
    limits: RequestLimits,
) -> Result<Response<Body>, SendFailure> {
    match result {
        Ok(response) => {
            let conn = lease.conn();
            conn.record_response();
            let replay = match replay {
                Some(mut replay)
                    if response.status().as_u16() == TOO_EARLY && conn.dialed_into_early_data() =>
                {
                    // Not processed (RFC 8470 §5.2: a server answers 425 only to a request it
                    // got as early data, which only such a connection sends; the connection,
                    // not the request, carries the mark, to keep the request future small).
                    // `crate::retry` sends it again, and the mark on the request keeps it out
                    // of early data on whatever connection takes it.
                    replay.head.extensions.insert(NoEarlyData);
                    return Err(SendFailure::too_early(conn, replay));
                }
                other => other,
            };
            if response.status() == http::StatusCode::MISDIRECTED_REQUEST
                && let Some(replay) = replay
                && !conn.origin.matches_uri(&replay.head.uri)
            {
                // Not processed (RFC 9110 §15.5.20); `crate::retry` sends it again on the
                // request's own origin.
                return Err(SendFailure::misdirected(conn, replay));
            }
            let (mut parts, recv) = response.into_parts();
            parts.extensions.insert(lease.connection_info());
            let body = Body::h2(recv, &parts.headers, lease, limits);
            Ok(Response::from_parts(parts, body))
        }
        Err(e) => {
            let conn = Arc::clone(lease.conn());
            if let Some(PipeError::Body(cause)) = pipe_error {
                drop(lease);
                // Our own body failed and we reset the stream: report the body's error.
                return Err(SendFailure::fatal(conn.failure(false, BodyError(cause))));
            }
            let seen = H2Failure::of(&e);
            if seen.rotated {
                conn.record_rotation_failure();
            }
            let error = classify_h2(&conn, e, false);
            let failure = SendFailure::h2_stream(&conn, error, &seen, replay, sent_before + 1);
            // Given back only now that the failure is classified: a connection whose first
            // request its GOAWAY refused is a failed dial before its replacement is planned
            // (`OriginPool::plan_after_verdict` waits for this).
            drop(lease);
            Err(failure)
        }
    }
}

/// `425 Too Early` (RFC 8470; `http` has no constant for it).
const TOO_EARLY: u16 = 425;

/// A request body's own error, kept as the cause of [`Error::Request`].
#[derive(Debug)]
struct BodyError(crate::error::BoxError);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body failed: {}", self.0)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Maps an h2 error to the pool's, and takes the connection out of selection when the error
/// is the connection's (`unusable`: it refused to open a stream at all).
fn classify_h2(conn: &Arc<Connection>, error: h2::Error, unusable: bool) -> Error {
    let h2c = conn.origin.scheme() == Scheme::Http;
    if h2c && conn.peer_limit().is_none() {
        // Over TLS, ALPN proved the server speaks HTTP/2. With prior knowledge nothing did,
        // and a connection that fails before the SETTINGS frame every HTTP/2 server sends
        // first is most likely an HTTP/1.1 server closing on the preface.
        conn.close_and_report();
        return Error::Protocol {
            origin: conn.origin.clone(),
            reason: format!(
                "h2c connection {} failed before the peer's HTTP/2 SETTINGS arrived: \
                 the server may not speak HTTP/2 with prior knowledge",
                conn.id
            ),
            source: Some(shared(error)),
        };
    }
    let connection_level = unusable || crate::connection::h2_error_ends_connection(&error);
    if connection_level {
        conn.close_and_report();
    }
    conn.failure(connection_level, error)
}

/// The error for a request refused because the connection had already closed.
pub(super) fn closed_error(conn: &Connection) -> Error {
    conn.failure(
        true,
        std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "connection closed before the request was sent",
        ),
    )
}
