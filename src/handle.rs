//! Stream handles: the lease of one stream slot on one pooled connection, for callers that
//! want to choose when to send.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tracing::Instrument;

use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::exchange;
use crate::lease::{Lease, LeaseRef};
use crate::origin::Origin;
use crate::otel::{self, OriginTelemetry, RequestClock};
use crate::outgoing;
use crate::protocol::Protocol;
use crate::timeouts::{RequestLimits, Timeouts};

/// A leased stream slot on a pooled connection, from
/// [`ConnectionPoolManager::acquire`](crate::ConnectionPoolManager::acquire).
///
/// Send requests with [`send`](StreamHandle::send). The slot is freed when the handle **and**
/// the bodies of the responses it received are all gone: a response body keeps the slot while
/// it streams, even after the handle is dropped (see [`Body`]). Send one request at a time and
/// read (or drop) each body before the next: a second send while an earlier body still streams
/// puts two streams on one slot (h2 still never exceeds the server's limit; it queues).
///
/// Holding a handle that has not sent costs no heap; the first `send` allocates the small
/// shared lease its bodies hold.
#[must_use = "a handle holds a stream slot until dropped"]
pub struct StreamHandle {
    /// Owned until the first send shares it with a body.
    lease: LeaseRef,
    /// The origin acquired and its OpenTelemetry histograms, when the slot is on another
    /// origin's connection (HTTP/2 coalescing); `None` when it is the connection's own.
    coalesced_for: Option<(Origin, Arc<OriginTelemetry>)>,
}

impl std::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conn = self.conn();
        f.debug_struct("StreamHandle")
            .field("connection_id", &conn.id)
            .field("origin", self.origin())
            .field("protocol", &conn.protocol)
            .finish()
    }
}

impl StreamHandle {
    /// `coalesced_for`: the origin acquired (and its histograms), when the lease is on another
    /// origin's connection.
    pub(crate) fn new(
        lease: Lease,
        coalesced_for: Option<(Origin, Arc<OriginTelemetry>)>,
    ) -> StreamHandle {
        // A handle may sit unused for a while: a handshake held for its first request (see
        // `crate::early_data`) goes on now, so it cannot outlive its deadline waiting for it.
        lease.conn().release_early_data();
        StreamHandle {
            lease: LeaseRef::Owned(lease),
            coalesced_for,
        }
    }

    fn conn(&self) -> &Arc<crate::connection::Connection> {
        self.lease.conn()
    }

    /// The pool's id of the connection this slot is on (as in stats and `tracing` events).
    pub fn connection_id(&self) -> u64 {
        self.conn().id
    }

    /// The connection's negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.conn().protocol
    }

    /// The origin this handle was acquired for: requests sent on it must name it. It is the
    /// connection's own origin unless the slot is on another origin's connection (see
    /// [`PoolConfig::http2_coalescing`](crate::PoolConfig::http2_coalescing)).
    pub fn origin(&self) -> &Origin {
        self.coalesced_for
            .as_ref()
            .map_or(&self.conn().origin, |(origin, _)| origin)
    }

    /// Sends a request on this slot and waits for the response head.
    ///
    /// The URI may be absolute (it must then name this handle's origin) or just a path
    /// (`/v1/items`): the origin is filled in. The HTTP version is set to the connection's.
    /// Any body whose data is [`Bytes`] works (`String`, `Full<Bytes>`, `Empty<Bytes>`, a
    /// stream, …).
    ///
    /// A handle is bound to its connection, so `send` never retries; use
    /// [`ConnectionPoolManager::request`](crate::ConnectionPoolManager::request) for the safe
    /// retry on another connection.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRequest`] if the URI names another origin or the method is CONNECT;
    ///   nothing was sent.
    /// - [`Error::ConnectionClosed`] if the connection failed or closed (including a server's
    ///   GOAWAY).
    /// - [`Error::Request`] for stream-level failures (peer reset, request body error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the request (HTTP/2 resets the stream with CANCEL); the
    /// slot stays leased until the handle itself is dropped.
    pub async fn send<B>(&mut self, request: Request<B>) -> Result<Response<Body>, Error>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let counters = Arc::clone(&self.conn().counters);
        let clock = RequestClock::start(request.method());
        let span = otel::span::for_origin(request.method(), self.origin(), request.uri());
        let protocol = self.protocol();
        let conn_id = self.connection_id();
        otel::span::record_connection(&span, conn_id);
        // Pinned where it is and instrumented by reference, as in `request`: wrapping the
        // future itself would move (copy) it into the wrapper on every request.
        let result = {
            let sending = std::pin::pin!(async {
                let limits = RequestLimits::new(
                    request.extensions().get::<Timeouts>(),
                    self.conn().timeouts.request,
                );
                let request = outgoing::prepare(self.origin(), self.protocol(), request)?;
                let lease = self.lease.share();
                exchange::start(lease, request, false, limits)
                    .await
                    .map_err(exchange::SendFailure::into_error)
            });
            sending.instrument(span.clone()).await
        };
        otel::span::record_outcome(&span, &result);
        let telemetry = match &self.coalesced_for {
            Some((_, telemetry)) => telemetry,
            None => &self.conn().telemetry,
        };
        clock.finish(telemetry, &result, Some(protocol));
        if result.is_err() {
            counters.requests_failed.add(1);
        }
        result
    }
}
