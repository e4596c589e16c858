//! Sending a request on a leased slot, and sending it again on another connection when the
//! server provably never processed it (the rule itself is in [`crate::retry`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tracing::debug;

use super::ConnectionPoolManager;
use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::exchange::{self, SendFailure};
use crate::lease::{Lease, LeaseRef};
use crate::origin_pool::{OriginPool, RetryTarget, SEND_ORDER_SLACK};
use crate::outgoing::{self, Outgoing};
use crate::priority::Priority;

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
            let fail = |error: Error| {
                self.count_failed_request();
                error
            };
            self.ensure_maintenance();
            let pool = match self.origin_pool_for_uri(request.uri()) {
                Ok(pool) => pool,
                // A URI that names no origin is the request's fault, not an acquire's.
                Err(e @ (Error::InvalidUrl { .. } | Error::UnsupportedScheme { .. })) => {
                    return Err(fail(e));
                }
                Err(e) => {
                    self.count_failed_acquire();
                    return Err(fail(e));
                }
            };
            let urgency = request
                .extensions()
                .get::<Priority>()
                .map_or(Priority::DEFAULT_URGENCY, Priority::urgency);
            let coalesced = match self.coalesced_lease(&pool, urgency) {
                Some(coalescing) => coalescing.await,
                None => None,
            };
            let lease = match coalesced {
                Some(lease) => lease,
                None => pool.acquire(None, urgency).await.map_err(|e| {
                    self.count_failed_acquire();
                    fail(e)
                })?,
            };
            let retries = self.config().max_unprocessed_retries;
            let (mut exchange, sent_on) = self
                .dispatch(&pool, lease, request, retries)
                .map_err(fail)?;
            let failure = match (&mut exchange).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            self.after_failure(&pool, failure, sent_on, retries)
                .await
                .map_err(fail)
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
    ) -> Result<(exchange::Exchange, u64), Error>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request = outgoing::prepare(pool.origin(), lease.conn().protocol, request)?;
        let sent_on = lease.conn().id;
        Ok((
            exchange::start(LeaseRef::Owned(lease), request, retries > 0),
            sent_on,
        ))
    }

    /// Awaits the response; a failure that proves the request unprocessed sends it again on
    /// another connection (the rule lives in `crate::retry`). Failures are not counted here;
    /// callers count them once.
    pub(crate) async fn complete(
        &self,
        pool: &Arc<OriginPool>,
        mut exchange: exchange::Exchange,
        sent_on: u64,
        retries: usize,
    ) -> Result<Response<Body>, Error> {
        let failure = match (&mut exchange).await {
            Ok(response) => return Ok(response),
            Err(failure) => failure,
        };
        // The rare path, boxed (and built in a plain function) so that nothing of it is laid
        // out in the common path's future.
        self.after_failure(pool, failure, sent_on, retries).await
    }

    fn after_failure<'a>(
        &'a self,
        pool: &'a Arc<OriginPool>,
        failure: SendFailure,
        sent_on: u64,
        retries: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + 'a>> {
        if retries > 0 && failure.replay.is_some() {
            Box::pin(self.retry(pool, failure, sent_on, retries))
        } else {
            Box::pin(std::future::ready(Err(failure.error)))
        }
    }

    /// Sends a request that provably never reached the server again, on another connection:
    /// up to `retries` times after a refusal or a GOAWAY above the last-stream-id, and up to
    /// [`NEVER_OPENED_RETRIES`] more times when a connection refused to open the stream at
    /// all (it had already been told to go away or had closed, which is no sign the request
    /// itself will keep failing; the pool drops that connection at once).
    async fn retry(
        &self,
        pool: &Arc<OriginPool>,
        mut failure: SendFailure,
        mut failed_on: u64,
        mut retries_left: usize,
    ) -> Result<Response<Body>, Error> {
        let origin = pool.origin();
        let mut never_opened_left = NEVER_OPENED_RETRIES;
        loop {
            let SendFailure {
                error,
                replay,
                never_opened,
                refused_on,
                misdirected_on,
            } = failure;
            if let Some(other) = &misdirected_on {
                // Sent again below on this origin's own connection, never on `other` again.
                pool.refuse_coalescing(other);
            }
            let Some(unprocessed) = replay else {
                return Err(error);
            };
            if never_opened && never_opened_left > 0 {
                never_opened_left -= 1;
            } else if retries_left > 0 {
                retries_left -= 1;
            } else {
                debug!(
                    origin = %origin,
                    conn_id = failed_on,
                    error = %error,
                    "not retrying again: the request's retries are spent"
                );
                return Err(error);
            }
            self.inner.ctx.counters.requests_retried.add(1);
            debug!(
                origin = %origin,
                conn_id = failed_on,
                error = %error,
                "retrying a request the server never processed"
            );
            // A request a rotation refused goes where it will be among the requests that
            // connection's server took (all but the first refused), read as late as possible:
            // every request above the last-stream-id fails at once, but their tasks notice one
            // by one.
            let within = || {
                refused_on
                    .as_ref()
                    .and_then(|c| c.refused_from())
                    .map(|n| n.saturating_sub(1).max(1 + SEND_ORDER_SLACK))
            };
            if refused_on.is_some() {
                // The other requests the same GOAWAY refused were woken with this one; let
                // them note their (possibly lower) send ordinals first.
                tokio::task::yield_now().await;
            }
            let mut target = RetryTarget {
                exclude: failed_on,
                within_first: within(),
            };
            // A retry is served ahead of every urgency (see `RetryTarget`); its own urgency
            // only files its time in queue.
            let urgency = unprocessed
                .head
                .extensions
                .get::<Priority>()
                .map_or(Priority::DEFAULT_URGENCY, Priority::urgency);
            let mut rejected = 0;
            let lease = loop {
                let lease = match pool.acquire(Some(target), urgency).await {
                    Ok(lease) => lease,
                    Err(error) => {
                        self.count_failed_acquire();
                        return Err(error);
                    }
                };
                // Admitted when it was handed the slot; other requests may have gone out on
                // the connection since. Checked again right before sending (no await between
                // here and the send), so a retry never goes out where it would be refused again.
                let conn = lease.conn();
                if rejected < MAX_PLACEMENT_REJECTIONS {
                    target.within_first = within();
                }
                if target.admits(conn.id, conn.requests_sent()) {
                    break lease;
                }
                target.exclude = conn.id;
                rejected += 1;
                if rejected >= MAX_PLACEMENT_REJECTIONS {
                    // Fresh connections keep filling up before this retry runs (or none can be
                    // added): take what there is.
                    target.within_first = None;
                }
            };
            failed_on = lease.conn().id;
            // Shaped for the failed connection's protocol; reshape for this one.
            let Outgoing { head, body } = *unprocessed;
            let request = outgoing::shape(origin, lease.conn().protocol, head, body)?;
            match exchange::start(LeaseRef::Owned(lease), request, true).await {
                Ok(response) => return Ok(response),
                Err(next) => failure = next,
            }
        }
    }
}

/// Re-sends of a request whose stream a connection refused to open at all, on top of
/// `max_unprocessed_retries`: such a failure costs no round trip and removes that connection,
/// so under a GOAWAY storm a request may meet several already-rotated connections in a row.
/// Bounded all the same, so nothing can loop.
const NEVER_OPENED_RETRIES: usize = 8;

/// Slots a retry may turn down (the connection had sent too many requests by the time the
/// retry could use its slot) before it takes whatever slot comes.
const MAX_PLACEMENT_REJECTIONS: usize = 4;
