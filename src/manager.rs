//! The pool: origins to connections, warm-up, acquisition, stats and shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use tracing::{Instrument, debug, debug_span};

use crate::body::Body;
use crate::config::{Cleartext, PoolConfig};
use crate::connector::Connector;
use crate::error::{BoxError, Error};
use crate::exchange::{self, SendFailure};
use crate::handle::StreamHandle;
use crate::into_origin::IntoOrigin;
use crate::lease::{Lease, LeaseRef};
use crate::metrics;
use crate::origin::{Origin, Scheme};
use crate::origin_pool::{OriginPool, PoolContext, RetryTarget, SEND_ORDER_SLACK};
use crate::outgoing::{self, Outgoing};
use crate::prewarm::HostWarmup;
use crate::priority::Priority;
use crate::stats::PoolStats;

/// A pool of warm, multiplexed HTTPS connections, keyed by origin.
///
/// Cloning is cheap and clones share the pool. Build one with
/// [`ConnectionPoolManager::builder`] or use the process-wide [`ConnectionPoolManager::global`].
/// All methods need a Tokio runtime (connections are driven by spawned tasks).
///
/// When the last clone is dropped, the background maintenance task ends; connections close
/// once their in-flight streams finish. Call [`shutdown`](Self::shutdown) to close
/// deliberately.
#[derive(Clone)]
pub struct ConnectionPoolManager {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    ctx: Arc<PoolContext>,
    origins: RwLock<HashMap<Origin, Arc<OriginPool>>>,
    closed: AtomicBool,
    maintenance_started: AtomicBool,
}

impl std::fmt::Debug for ConnectionPoolManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPoolManager")
            .field("config", &self.inner.ctx.config)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

static GLOBAL: LazyLock<ConnectionPoolManager> = LazyLock::new(|| {
    // A constant configuration (checked by `global_pool_has_default_config`) and the
    // compiled-in Mozilla roots: no input reaches this.
    #[allow(clippy::expect_used)]
    ConnectionPoolManager::from_config(PoolConfig::default())
        .expect("the default pool configuration is valid")
});

impl ConnectionPoolManager {
    /// The process-wide pool with the default configuration, created on first use.
    ///
    /// Its connections are driven by tasks on the runtime that first opened them; use it from
    /// one long-lived runtime (not from per-test runtimes, whose shutdown kills those tasks).
    pub fn global() -> &'static ConnectionPoolManager {
        &GLOBAL
    }

    pub(crate) fn from_config(config: PoolConfig) -> Result<ConnectionPoolManager, Error> {
        config.validate()?;
        let connector = Connector::new(&config)?;
        Ok(ConnectionPoolManager::with_connector(config, connector))
    }

    fn with_connector(config: PoolConfig, connector: Connector) -> ConnectionPoolManager {
        ConnectionPoolManager {
            inner: Arc::new(PoolInner {
                ctx: Arc::new(PoolContext::new(config, connector)),
                origins: RwLock::new(HashMap::new()),
                closed: AtomicBool::new(false),
                maintenance_started: AtomicBool::new(false),
            }),
        }
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.ctx.config
    }

    /// Connects every listed host concurrently, up to `min_connections_per_origin`
    /// connections each (at least one), and keeps that many open from then on.
    ///
    /// Hosts are `https://host[:port]` URLs or bare `host[:port]`. The call takes about as
    /// long as the slowest host, not the sum. One host failing does not fail the others:
    /// each gets its own [`HostWarmup`], in the order given.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops waiting; dials already started finish in the background and
    /// their connections join the pool.
    pub async fn prewarm_hosts<S: AsRef<str>>(&self, hosts: &[S]) -> Vec<HostWarmup> {
        self.ensure_maintenance();
        let warm_min = self.config().min_connections_per_origin;
        let tasks: Vec<_> = hosts
            .iter()
            .map(|host| {
                let input = host.as_ref().to_owned();
                let pool = self.clone();
                let span = debug_span!("prewarm", host = %input);
                tokio::spawn(
                    async move {
                        let result = match input.parse::<Origin>() {
                            Ok(origin) => pool.origin_pool(&origin)?.prewarm(warm_min).await,
                            Err(error) => Err(error),
                        };
                        Ok::<_, Error>(result)
                    }
                    .instrument(span),
                )
            })
            .collect();
        let mut reports = Vec::with_capacity(tasks.len());
        for (task, host) in tasks.into_iter().zip(hosts) {
            let result = match task.await {
                Ok(Ok(result)) => result,
                Ok(Err(error)) => Err(error),
                // Only a runtime shutting down cancels the task.
                Err(_) => Err(Error::PoolClosed),
            };
            reports.push(HostWarmup {
                input: host.as_ref().to_owned(),
                result,
            });
        }
        reports
    }

    /// Leases one stream slot on a connection to `origin`, opening a connection only when
    /// the scale-up rule says demand needs one, and waiting in a bounded FIFO queue when the
    /// origin is at `max_connections_per_origin`.
    ///
    /// `origin` is an [`Origin`], a URL (`"https://api.example"`) or a bare `host[:port]`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidUrl`] / [`Error::UnsupportedScheme`] for a bad origin.
    /// - [`Error::PoolExhausted`] at once when `max_waiters_per_origin` acquirers are already
    ///   waiting.
    /// - [`Error::Timeout`] with [`TimeoutKind::Acquire`](crate::TimeoutKind::Acquire) after
    ///   `acquire_timeout`.
    /// - The dial's error (DNS, refused, TLS, handshake timeout, …) when the dial this
    ///   acquirer waited for failed and no other connection can serve it.
    /// - [`Error::PoolClosed`] after [`shutdown`](Self::shutdown).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future leaves the queue and takes no slot. A dial it started
    /// continues, and its connection joins the pool.
    pub async fn acquire(&self, origin: impl IntoOrigin) -> Result<StreamHandle, Error> {
        // Not a call to `acquire_with_priority`: one future fewer in the hot path.
        let origin = match origin.into_origin() {
            Ok(origin) => origin,
            Err(error) => {
                self.count_failed_acquire();
                return Err(error);
            }
        };
        let (_, lease) = self
            .acquire_lease(&origin, Priority::DEFAULT_URGENCY)
            .await?;
        Ok(StreamHandle::new(lease))
    }

    /// [`acquire`](Self::acquire) at `priority`: when the origin's slots are all taken,
    /// waiters are served by urgency (0 first), FIFO within one, and one that has waited
    /// longer than [`priority_aging`](PoolConfig::priority_aging) as urgency 0. The
    /// priority only orders the wait; to tell the server too, set it on the request as well
    /// (see [`Priority`]).
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](Self::acquire).
    pub async fn acquire_with_priority(
        &self,
        origin: impl IntoOrigin,
        priority: Priority,
    ) -> Result<StreamHandle, Error> {
        let origin = match origin.into_origin() {
            Ok(origin) => origin,
            Err(error) => {
                self.count_failed_acquire();
                return Err(error);
            }
        };
        let (_, lease) = self.acquire_lease(&origin, priority.urgency()).await?;
        Ok(StreamHandle::new(lease))
    }

    /// Leases a slot on `origin`, returning the origin's pool too (for retries).
    pub(crate) async fn acquire_lease(
        &self,
        origin: &Origin,
        urgency: u8,
    ) -> Result<(Arc<OriginPool>, Lease), Error> {
        self.ensure_maintenance();
        let pool = match self.origin_pool(origin) {
            Ok(pool) => pool,
            Err(error) => {
                self.count_failed_acquire();
                return Err(error);
            }
        };
        match pool.acquire(None, urgency).await {
            Ok(lease) => Ok((pool, lease)),
            Err(error) => {
                self.count_failed_acquire();
                Err(error)
            }
        }
    }

    fn count_failed_acquire(&self) {
        self.inner.ctx.counters.acquires_failed.add(1);
    }

    pub(crate) fn count_failed_request(&self) {
        self.inner.ctx.counters.requests_failed.add(1);
    }

    /// Acquires a slot on the request URI's origin and sends the request on it.
    ///
    /// The slot stays leased until the response [`Body`] ends (or is dropped): a response
    /// still streaming keeps its slot, so the pool opens another connection rather than
    /// queueing new requests behind it.
    ///
    /// A request that provably never reached the server is sent again on another connection,
    /// at most [`max_unprocessed_retries`](PoolConfig::max_unprocessed_retries) times, and
    /// counted in [`PoolStats::requests_retried`]: its stream was never opened, the peer
    /// refused it with REFUSED_STREAM, or the server's GOAWAY failed it above the
    /// last-stream-id (HTTP/2); hyper handed it back unsent (HTTP/1.1). The body must be one
    /// the pool still holds: empty, or ready in full when sent and at most 64 KiB (a
    /// `String`, `Bytes`, `Full` or `Empty` body is). Nothing else is retried.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] if the URI is not absolute, then as
    /// [`acquire`](Self::acquire) and [`StreamHandle::send`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the request (HTTP/2 resets the stream) and frees its slot.
    pub async fn request<B>(&self, request: Request<B>) -> Result<Response<Body>, Error>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // Written without nested async blocks: each would keep its own copy of the request in
        // the future, which is moved on every await of it.
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
        let lease = pool.acquire(None, urgency).await.map_err(|e| {
            self.count_failed_acquire();
            fail(e)
        })?;
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
    /// another connection (the rule lives in `retry.rs`). Failures are not counted here;
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
            } = failure;
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

    /// A snapshot of every origin and connection, and the pool's totals. The numbers are read
    /// one by one while the pool runs: not a consistent cut.
    pub fn stats(&self) -> PoolStats {
        let now = Instant::now();
        let origins: Vec<Arc<OriginPool>> = self
            .inner
            .origins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let counters = &self.inner.ctx.counters;
        PoolStats {
            origins: origins.iter().map(|o| o.snapshot(now)).collect(),
            connections_opened: counters.connections_opened.get(),
            connections_closed: counters.connections_closed.get(),
            connects_failed: counters.connects_failed.get(),
            acquires_succeeded: counters.acquires_succeeded.get(),
            acquires_failed: counters.acquires_failed.get(),
            leases_reused: counters.leases_reused.get(),
            handles_outstanding: counters.handles_outstanding.get(),
            requests_sent: counters.requests_sent.get(),
            requests_failed: counters.requests_failed.get(),
            requests_retried: counters.requests_retried.get(),
            acquire_latency: counters.acquire_latency(),
            time_in_queue: counters.time_in_queue(),
            time_in_queue_by_urgency: counters.time_in_queue_by_urgency(),
        }
    }

    /// Stops handing out slots, wakes every waiter with [`Error::PoolClosed`], waits for all
    /// leased streams to be released, and closes every connection. Later calls to `acquire`
    /// fail with [`Error::PoolClosed`].
    ///
    /// # Cancel safety
    ///
    /// The pool is closed as soon as this is first polled; dropping the future only stops
    /// waiting for in-flight streams, which still finish.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let origins: Vec<Arc<OriginPool>> = self
            .inner
            .origins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let draining: Vec<_> = origins.iter().map(|o| (o, o.close())).collect();
        for (origin, conns) in &draining {
            origin.drained(conns).await;
        }
        debug!("pool shut down");
        // `draining` drops here: the last references to the connections go, and each driver
        // closes its socket.
    }

    /// Refuses an `http://` origin unless cleartext is enabled.
    pub(crate) fn check_cleartext(&self, origin: &Origin) -> Result<(), Error> {
        if origin.scheme() == Scheme::Http && self.config().cleartext == Cleartext::Disabled {
            return Err(Error::CleartextDisabled {
                origin: origin.clone(),
            });
        }
        Ok(())
    }

    /// The pool of the origin an absolute `uri` names. With a handful of origins (the usual
    /// case) they are compared with the URI directly, which saves building an `Origin` (a
    /// lower-cased copy of the host) on every request; otherwise through the map.
    fn origin_pool_for_uri(&self, uri: &http::Uri) -> Result<Arc<OriginPool>, Error> {
        const SCAN: usize = 8;
        if !self.inner.closed.load(Ordering::Acquire) {
            let origins = self.inner.origins.read().unwrap_or_else(|p| p.into_inner());
            if origins.len() <= SCAN
                && let Some(pool) = origins.values().find(|p| p.origin().matches_uri(uri))
            {
                return Ok(Arc::clone(pool));
            }
        }
        self.origin_pool(&Origin::try_from(uri)?)
    }

    fn origin_pool(&self, origin: &Origin) -> Result<Arc<OriginPool>, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::PoolClosed);
        }
        self.check_cleartext(origin)?;
        if let Some(pool) = self
            .inner
            .origins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
        {
            return Ok(Arc::clone(pool));
        }
        let mut origins = self
            .inner
            .origins
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let pool = origins.entry(origin.clone()).or_insert_with(|| {
            Arc::new(OriginPool::new(origin.clone(), Arc::clone(&self.inner.ctx)))
        });
        Ok(Arc::clone(pool))
    }

    /// Starts the idle sweep on first use (a pool may be built outside a runtime). The task
    /// holds a `Weak` and ends when the pool is dropped or shut down.
    fn ensure_maintenance(&self) {
        if self.inner.maintenance_started.load(Ordering::Relaxed)
            || self.inner.maintenance_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let weak: Weak<PoolInner> = Arc::downgrade(&self.inner);
        let config = self.config();
        let shortest = config
            .max_connection_lifetime
            .unwrap_or(Duration::MAX)
            .min(config.idle_timeout)
            .min(config.h1_idle_timeout);
        let period = maintenance_period(shortest);
        tokio::spawn(async move {
            let mut next_gauges = Instant::now();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let origins: Vec<Arc<OriginPool>> = inner
                    .origins
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .cloned()
                    .collect();
                drop(inner);
                let now = Instant::now();
                let mut vacant = Vec::new();
                for origin in origins {
                    if origin.maintain(now) {
                        vacant.push(origin.origin().clone());
                    }
                    if metrics::ENABLED && now >= next_gauges {
                        metrics::publish_origin(&origin.snapshot(now).gauges());
                    }
                }
                if now >= next_gauges {
                    next_gauges = now + GAUGE_PERIOD;
                }
                if !vacant.is_empty() {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.forget_vacant(&vacant, now);
                }
            }
        });
    }
}

impl PoolInner {
    /// Drops the origins in `candidates` that are still vacant and that nobody holds: under
    /// the map's write lock a count of one (the map's own) means no acquire, dial or service
    /// has the origin, and none can get it before it is gone. Their next request starts
    /// afresh, as the first one did.
    fn forget_vacant(&self, candidates: &[Origin], now: Instant) {
        let mut origins = self.origins.write().unwrap_or_else(|p| p.into_inner());
        for origin in candidates {
            if origins
                .get(origin)
                .is_some_and(|pool| Arc::strong_count(pool) == 1 && pool.is_vacant(now))
            {
                debug!(origin = %origin, "forgetting an origin vacant for idle_timeout");
                origins.remove(origin);
            }
        }
        // A burst of one-off hosts must not leave its table behind either.
        if origins.capacity() > 4 * origins.len().max(16) {
            origins.shrink_to_fit();
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

/// How often per-origin gauges go to the `metrics` facade: often enough for a scrape
/// interval, rarely enough that snapshots cost nothing measurable.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

/// A quarter of the idle timeout, between 10 ms and 1 s: idle connections close within
/// 25% of their deadline, and a default pool wakes once a second.
fn maintenance_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + 'static>() {}

    /// The pool, its handles and its errors cross threads.
    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<ConnectionPoolManager>();
        assert_send_sync::<StreamHandle>();
        assert_send_sync::<Error>();
        assert_send_sync::<PoolStats>();
    }

    /// The global pool exists with the default configuration.
    #[test]
    fn global_pool_has_default_config() {
        assert_eq!(
            ConnectionPoolManager::global().config(),
            &PoolConfig::default()
        );
    }
}
