//! Sending a request on a leased slot; what happens when it fails (sent again on another
//! connection when the server provably never processed it) is [`crate::retry`]'s.

use std::future::Future;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tracing::Instrument;

use super::ConnectionPoolManager;
use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::exchange;
use crate::lease::{Lease, LeaseRef};
use crate::origin_pool::OriginPool;
use crate::otel::{self, RequestClock};
use crate::outgoing;
use crate::priority::Priority;
use crate::protocol::Protocol;
use crate::retry;
use crate::timeouts::{RequestLimits, Timeouts};

impl ConnectionPoolManager {
    /// Acquires a slot on the request URI's origin and sends the request on it.
    ///
    /// The slot stays leased until the response [`Body`] ends (or is dropped): a response
    /// still streaming keeps its slot, so the pool opens another connection rather than
    /// queueing new requests behind it.
    ///
    /// A request that provably never reached the server is sent again on another connection,
    /// at most [`max_unprocessed_retries`](crate::PoolConfig::max_unprocessed_retries) times, and
    /// counted in [`PoolStats::requests_retried`](crate::PoolStats::requests_retried): its stream was never opened, the peer
    /// refused it with REFUSED_STREAM, or the server's GOAWAY failed it above the
    /// last-stream-id (HTTP/2); hyper handed it back unsent (HTTP/1.1). The body must be one
    /// the pool still holds: empty, or ready in full when sent and at most 64 KiB (a
    /// `String`, `Bytes`, `Full` or `Empty` body is). Nothing else is retried.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] if the URI is not absolute, then as
    /// [`acquire`](Self::acquire) and [`StreamHandle::send`](crate::StreamHandle::send).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the request (HTTP/2 resets the stream) and frees its slot.
    // Not an `async fn`: see the comment on the body.
    #[allow(clippy::manual_async_fn)]
    pub fn request<B>(
        &self,
        request: Request<B>,
    ) -> impl Future<Output = Result<Response<Body>, Error>> + Send + '_
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // One async block rather than an `async fn`: an `async fn` keeps its arguments twice in
        // its future (the argument, and the binding its body moves it into), and the request
        // is most of the future, which is moved whenever the task that awaits it is. Nested
        // async blocks would each keep a copy too.
        async move {
            // The request's span: disabled, and so a few checks, when nobody listens at debug.
            // It is entered while the request acquires (the pool's events there, and the dial
            // it may start, belong to it) and while it is re-sent, not around the whole
            // future: wrapping that would move the whole future once more per request.
            let span = otel::span::for_uri(request.method(), request.uri());
            let clock = RequestClock::start(request.method());
            self.ensure_maintenance();
            let pool = match self.origin_pool_for_uri(request.uri()) {
                Ok(pool) => pool,
                // A URI that names no origin is the request's fault, not an acquire's.
                Err(e @ (Error::InvalidUrl { .. } | Error::UnsupportedScheme { .. })) => {
                    otel::span::record_error(&span, &e);
                    self.count_failed_request();
                    return Err(e);
                }
                Err(e) => {
                    self.count_failed_acquire();
                    otel::span::record_error(&span, &e);
                    self.count_failed_request();
                    return Err(e);
                }
            };
            // Every later failure is recorded on the origin's histogram, with the protocol
            // of the connection leased (if any), and counted once.
            let fail = |error: Error, leased_on: Option<Protocol>| {
                clock.finish_error(pool.telemetry(), &error, leased_on);
                otel::span::record_error(&span, &error);
                self.count_failed_request();
                error
            };
            let urgency = request
                .extensions()
                .get::<Priority>()
                .map_or(Priority::DEFAULT_URGENCY, Priority::urgency);
            let limits = self.request_limits(&request);
            // Pinned where it is, and instrumented by reference: wrapping the future itself
            // would move (copy) it into the wrapper on every request.
            let lease = {
                let acquiring = std::pin::pin!(self.lease(&pool, urgency, &limits));
                match acquiring.instrument(span.clone()).await {
                    Ok(lease) => lease,
                    Err(e) => return Err(fail(e, None)),
                }
            };
            let protocol = lease.conn().protocol;
            let retries = self.config().max_unprocessed_retries;
            let (mut exchange, sent_on) =
                match self.dispatch(&pool, lease, request, retries, limits.clone()) {
                    Ok(dispatched) => dispatched,
                    Err(e) => return Err(fail(e, Some(protocol))),
                };
            otel::span::record_connection(&span, sent_on);
            // The response is recorded where it is returned: carried through a shared
            // `Result` it would be moved (copied) once more on the hot path.
            let failure = match (&mut exchange).await {
                Ok(response) => {
                    clock.finish_response(pool.telemetry(), &response);
                    otel::span::record_response(&span, &response);
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            let resending = retry::after_failure(&pool, failure, sent_on, retries, limits);
            match resending.instrument(span.clone()).await {
                Ok(response) => {
                    clock.finish_response(pool.telemetry(), &response);
                    otel::span::record_response(&span, &response);
                    Ok(response)
                }
                Err(e) => Err(fail(e, Some(protocol))),
            }
        }
    }

    /// Shapes `request` for `lease`'s connection and starts sending it; returns the exchange
    /// and the connection it went out on. Synchronous, so the caller's future holds only the
    /// small [`Exchange`](exchange::Exchange), not the request.
    pub(crate) fn dispatch<B>(
        &self,
        pool: &OriginPool,
        lease: Lease,
        request: Request<B>,
        retries: usize,
        limits: RequestLimits,
    ) -> Result<(exchange::Exchange, u64), Error>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request = outgoing::prepare(pool.origin(), lease.conn().protocol, request)?;
        let sent_on = lease.conn().id;
        Ok((
            exchange::start(LeaseRef::Owned(lease), request, retries > 0, limits),
            sent_on,
        ))
    }

    /// `request`'s own deadlines: its [`Timeouts`] extension and the pool's
    /// `request_timeout`, counted from now (nothing, and no clock read, without either).
    pub(crate) fn request_limits<B>(&self, request: &Request<B>) -> RequestLimits {
        RequestLimits::new(
            request.extensions().get::<Timeouts>(),
            self.config().request_timeout,
        )
    }
}
