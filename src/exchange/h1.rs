//! An HTTP/1.1 exchange through hyper's `client::conn::http1`: wait for the dispatcher to
//! want a request, send it under the connection's send gate, and tell a request hyper handed
//! back unsent (safe to send again) from one that may have reached the server.

use std::future::Future;

use http::{Request, Response};

use super::{SendFailure, closed_error};
use crate::body::Body;
use crate::connection::Wire;
use crate::error::Error;
use crate::error::TimeoutKind;
use crate::lease::LeaseRef;
use crate::outgoing::{OutBody, Outgoing};
use crate::timeouts::RequestLimits;

/// Sends `request` and waits for its response head, at most `response_head_timeout` from the
/// moment hyper takes it. hyper writes the request body itself, so over HTTP/1.1 that
/// deadline covers the body's writing too (`write_timeout` is HTTP/2's). On timeout the
/// connection is discarded: hyper's exchange cannot be abandoned halfway.
pub(super) fn send_h1(
    lease: LeaseRef,
    request: Outgoing,
    limits: RequestLimits,
) -> impl Future<Output = Result<Response<Body>, SendFailure>> + Send {
    // Made into hyper's request here, outside the future: an `async fn` would keep both the
    // argument and the request made from it in its state, and each is moved with the future.
    let request = Request::from_parts(request.head, request.body);
    async move {
        // Borrowed from the lease, as for HTTP/2: no second reference to the connection.
        let conn = lease.conn();
        let Wire::H1(h1) = &conn.wire else {
            return Err(unsent(closed_error(conn), request));
        };
        // Wait for hyper's dispatcher to want the next request.
        if let Err(e) = std::future::poll_fn(|cx| h1.sender().poll_ready(cx)).await {
            // Nothing was written: the connection died before taking the request.
            conn.close_and_report();
            return Err(unsent(conn.failure(true, e), request));
        }
        let in_flight = {
            let _gate = h1.send_gate.read().unwrap_or_else(|p| p.into_inner());
            if conn.is_closed() {
                return Err(unsent(closed_error(conn), request));
            }
            h1.mark_busy();
            h1.sender().try_send_request(request)
        };
        let deadline = limits
            .resolve(conn.timeouts)
            .deadline(TimeoutKind::ResponseHead, std::time::Instant::now());
        let outcome = tokio::time::timeout_at(deadline.at.into(), in_flight).await;
        let Ok(outcome) = outcome else {
            // The request may have reached the server: not retried.
            conn.discard();
            return Err(SendFailure::fatal(deadline.error(&conn.origin)));
        };
        match outcome {
            Ok(response) => {
                conn.record_response();
                let (mut parts, incoming) = response.into_parts();
                parts.extensions.insert(lease.connection_info());
                Ok(Response::from_parts(
                    parts,
                    Body::h1(incoming, lease, limits),
                ))
            }
            Err(mut e) => {
                let unsent = e.take_message();
                let error = e.into_error();
                // An HTTP/1.1 connection whose exchange failed is not reused either way.
                conn.close_and_report();
                // A user error is our side failing (the request body, a malformed head).
                let error = conn.failure(!error.is_user(), error);
                Err(match unsent {
                    // hyper handed it back: it never reached the server.
                    Some(request) => SendFailure::never_sent(error, Some(into_outgoing(request))),
                    None => SendFailure::fatal(error),
                })
            }
        }
    }
}

/// A request that never left the client: `error`, with the request to send again.
fn unsent(error: Error, request: Request<OutBody>) -> SendFailure {
    SendFailure::never_sent(error, Some(into_outgoing(request)))
}

fn into_outgoing(request: Request<OutBody>) -> Box<Outgoing> {
    let (head, body) = request.into_parts();
    Box::new(Outgoing { head, body })
}
