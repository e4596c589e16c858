//! The pool as a `tower::Service`, bound to one origin.
//!
//! [`PoolService`] leases its stream slot in `poll_ready` (so a caller that respects readiness
//! sees the pool's backpressure: a full origin keeps the service pending, a full wait queue
//! makes it fail) and moves the slot into the response future in `call`, as tower's
//! concurrency limit moves its permit; the response [`Body`] carries it on to the end of the
//! stream, so a gRPC server stream holds its slot as long as it runs. Clones share the pool;
//! each clone holds at most one unused slot at a time.
//!
//! The service is typed by its request body, as hyper-util's `Client<C, B>` is: a service that
//! took every body type would leave `ServiceExt::ready` nothing to infer its request type from
//! (`pool.service(origin)?.ready().await` needed a turbofish). [`PoolService::for_body`]
//! re-types a service for another body.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tracing::Instrument;

use crate::body::Body;
use crate::error::{BoxError, Error};
use crate::lease::Lease;
use crate::manager::ConnectionPoolManager;
use crate::origin::Origin;
use crate::origin_pool::OriginPool;
use crate::otel::{self, RequestClock};
use crate::priority::Priority;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A `tower::Service<http::Request<B>>` sending every request to one origin through the pool.
///
/// Create it with [`ConnectionPoolManager::service`], which infers `B` from the requests the
/// service is called with (the default, [`Full<Bytes>`](http_body_util::Full), only matters
/// where the type is written out). Requests may carry a path-only URI (`/v1/items`) or an
/// absolute URI on the service's origin.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use tower::{Service, ServiceExt};
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let pool = https_pool::ConnectionPoolManager::builder().build()?;
/// let mut svc = pool.service("https://api.example.com")?;
/// let request = http::Request::get("/v1/items").body(Empty::<Bytes>::new())?;
/// let response = svc.ready().await?.call(request).await?;
/// # let _ = response;
/// # Ok(())
/// # }
/// ```
///
/// # Readiness and timeouts
///
/// By default `poll_ready` leases the slot, so readiness is the pool's backpressure. tower's
/// `Timeout` starts its clock in `call`, so the wait for that slot is outside it (bounded by
/// the pool's `acquire_timeout`). [`PoolService::acquire_in_call`] moves the wait into the
/// response future, as hyper-util's `Client` checks out its connection there: a `Timeout`
/// around the service then counts it, and a request it abandons leaves the wait queue.
pub struct PoolService<B = http_body_util::Full<Bytes>> {
    pool: ConnectionPoolManager,
    origin: Origin,
    /// The priority slots are leased at (readiness comes before the request).
    priority: Priority,
    /// The slot is leased by `call`'s future, and `poll_ready` is always ready.
    acquire_in_call: bool,
    state: ReadyState,
    /// The request body type. The service holds no `B`: `fn(B)` keeps its auto traits (`Send`)
    /// independent of `B`.
    body: PhantomData<fn(B)>,
}

type Leased = (Arc<OriginPool>, Lease);

enum ReadyState {
    Idle,
    Acquiring(BoxFuture<Result<Leased, Error>>),
    Ready(Leased),
}

impl<B> std::fmt::Debug for PoolService<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            ReadyState::Idle => "idle",
            ReadyState::Acquiring(_) => "acquiring",
            ReadyState::Ready(_) => "ready",
        };
        f.debug_struct("PoolService")
            .field("origin", &self.origin)
            .field("priority", &self.priority)
            .field("acquire_in_call", &self.acquire_in_call)
            .field("state", &state)
            .finish()
    }
}

impl<B> Clone for PoolService<B> {
    /// A clone shares the pool and origin but not the slot: it starts unready.
    fn clone(&self) -> Self {
        self.clone_for_body()
    }
}

impl<B> PoolService<B> {
    pub(crate) fn new(pool: ConnectionPoolManager, origin: Origin) -> PoolService<B> {
        PoolService {
            pool,
            origin,
            priority: Priority::default(),
            acquire_in_call: false,
            state: ReadyState::Idle,
            body: PhantomData,
        }
    }

    /// A service on the same pool, origin and settings for requests with bodies of type
    /// `B2`: one pool service can feed differently typed stacks (a tonic client and a plain
    /// HTTP one, say). The new service starts unready; a slot this one holds stays with it.
    #[must_use]
    pub fn for_body<B2>(&self) -> PoolService<B2> {
        self.clone_for_body()
    }

    fn clone_for_body<B2>(&self) -> PoolService<B2> {
        PoolService {
            pool: self.pool.clone(),
            origin: self.origin.clone(),
            priority: self.priority,
            acquire_in_call: self.acquire_in_call,
            state: ReadyState::Idle,
            body: PhantomData,
        }
    }

    /// The same service with the slot leased by `call`'s response future instead of by
    /// `poll_ready`, which is then always ready. A `tower::timeout::Timeout` around the
    /// service then counts the wait for a slot, and dropping the response future (the timeout
    /// firing) takes the request out of the pool's wait queue. Readiness no longer reflects a
    /// full origin: bound how many calls wait with a `ConcurrencyLimit` in front, or rely on
    /// the pool's own bounded queue ([`Error::PoolExhausted`]).
    #[must_use]
    pub fn acquire_in_call(mut self) -> PoolService<B> {
        self.acquire_in_call = true;
        self
    }

    /// The same service with its slots leased at `priority`, and its requests sent with it
    /// when they carry none of their own (see [`Priority`]). The slot is taken in `poll_ready`,
    /// before the request is known, so the service's priority is what orders the wait: give
    /// urgent calls (health checks, user-facing ones) a service of their own.
    #[must_use]
    pub fn with_priority(mut self, priority: Priority) -> PoolService<B> {
        self.priority = priority;
        self
    }

    /// The origin every request goes to.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl<B> tower_service::Service<Request<B>> for PoolService<B>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = BoxFuture<Result<Response<Body>, Error>>;

    /// Leases a stream slot. Pending while the origin is at its connection and stream limits;
    /// an error when the acquire fails (wait queue full, timeout, dial failure, pool closed).
    /// Always ready with [`PoolService::acquire_in_call`].
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.acquire_in_call {
            return Poll::Ready(Ok(()));
        }
        loop {
            match &mut self.state {
                ReadyState::Ready(_) => return Poll::Ready(Ok(())),
                ReadyState::Idle => {
                    let pool = self.pool.clone();
                    let origin = self.origin.clone();
                    let urgency = self.priority.urgency();
                    self.state = ReadyState::Acquiring(Box::pin(async move {
                        pool.acquire_lease(
                            &origin,
                            urgency,
                            &crate::timeouts::RequestLimits::default(),
                        )
                        .await
                    }));
                }
                ReadyState::Acquiring(acquiring) => {
                    let result = match acquiring.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result,
                    };
                    match result {
                        Ok(leased) => self.state = ReadyState::Ready(leased),
                        Err(error) => {
                            self.state = ReadyState::Idle;
                            return Poll::Ready(Err(error));
                        }
                    }
                }
            }
        }
    }

    /// Sends `request` on the slot leased by `poll_ready`; the response [`Body`] holds the
    /// slot until the stream ends. A request that provably never reached the server is sent
    /// again on another connection, as [`ConnectionPoolManager::request`] does. Calling
    /// without readiness acquires first.
    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if self.priority != Priority::default() && request.extensions().get::<Priority>().is_none()
        {
            request.extensions_mut().insert(self.priority);
        }
        let urgency = self.priority.urgency();
        let leased = match std::mem::replace(&mut self.state, ReadyState::Idle) {
            ReadyState::Ready(leased) => Some(leased),
            _ => None,
        };
        let pool = self.pool.clone();
        let origin = self.origin.clone();
        // Counted from the call: an acquire made by `poll_ready` before it is tower's wait.
        let limits = pool.request_limits(&request);
        let clock = RequestClock::start(request.method());
        let span = otel::span::for_origin(request.method(), &origin, request.uri());
        let outcome_span = span.clone();
        Box::pin(async move {
            let result = async {
                let (origin_pool, lease) = match leased {
                    Some(leased) => leased,
                    // Acquired here (`acquire_in_call`, or no `poll_ready`): its failure is the
                    // request's, recorded on the origin's duration histogram like any other.
                    None => {
                        let origin_pool = pool.pool_for(&origin)?;
                        match pool.lease(&origin_pool, urgency, &limits).await {
                            Ok(lease) => (origin_pool, lease),
                            Err(error) => {
                                clock.finish_error(origin_pool.telemetry(), &error, None);
                                return Err(error);
                            }
                        }
                    }
                };
                let protocol = lease.conn().protocol;
                let retries = pool.config().max_unprocessed_retries;
                let result =
                    match pool.dispatch(&origin_pool, lease, request, retries, limits.clone()) {
                        Ok((exchange, sent_on)) => {
                            otel::span::record_connection(&outcome_span, sent_on);
                            crate::retry::complete(&origin_pool, exchange, sent_on, retries, limits)
                                .await
                        }
                        Err(error) => Err(error),
                    };
                clock.finish(origin_pool.telemetry(), &result, Some(protocol));
                result
            }
            .instrument(span)
            .await;
            otel::span::record_outcome(&outcome_span, &result);
            if result.is_err() {
                pool.count_failed_request();
            }
            result
        })
    }
}

impl ConnectionPoolManager {
    /// A `tower::Service` sending requests to `origin` through this pool, for request bodies
    /// of type `B` (inferred from the calls; a tonic client makes it `tonic::body::Body`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] or [`Error::UnsupportedScheme`] for a bad origin;
    /// [`Error::CleartextDisabled`] for an `http://` origin the configuration does not allow.
    pub fn service<B>(
        &self,
        origin: impl crate::into_origin::IntoOrigin,
    ) -> Result<PoolService<B>, Error> {
        let origin = origin.into_origin()?;
        self.check_cleartext(&origin)?;
        Ok(PoolService::new(self.clone(), origin))
    }
}
