//! The pool: origins to connections, warm-up, acquisition (one core, [`lease`]), stats and
//! shutdown. Sending a request is in [`request`] (re-sending one the server never processed is
//! [`crate::retry`]'s); the background sweep in [`maintenance`].
//!
//! [`lease`]: ConnectionPoolManager::lease

mod coalesce;
mod maintenance;
mod request;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tracing::{Instrument, debug, debug_span};

use crate::config::PoolConfig;
use crate::connector::{Connector, cleartext_protocol};
use crate::error::{Error, TimeoutKind};
use crate::handle::StreamHandle;
use crate::into_origin::IntoOrigin;
use crate::lease::Lease;
use crate::origin::Origin;
use crate::origin_pool::{OriginPool, PoolContext};
use crate::prewarm::HostWarmup;
use crate::priority::Priority;
use crate::resolver::SharedResolver;
use crate::stats::PoolStats;
use crate::timeouts::RequestLimits;

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

impl PoolInner {
    /// The origins' pools, copied out of the map so no lock is held while they are used.
    fn origin_pools(&self) -> Vec<Arc<OriginPool>> {
        self.origins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

impl std::fmt::Debug for ConnectionPoolManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPoolManager")
            .field("config", &self.inner.ctx.config)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The global pool's default configuration needs compiled-in roots and a crypto provider;
/// without them there is no `global()` (a compile error, not a panic on first use).
#[cfg(all(feature = "webpki-roots", any(feature = "ring", feature = "aws-lc-rs")))]
static GLOBAL: std::sync::LazyLock<ConnectionPoolManager> = std::sync::LazyLock::new(|| {
    // A constant configuration (checked by `global_pool_has_default_config`) and the
    // compiled-in Mozilla roots: no input reaches this.
    #[allow(clippy::expect_used)]
    ConnectionPoolManager::from_parts(PoolConfig::default(), SharedResolver::default())
        .expect("the default pool configuration is valid")
});

impl ConnectionPoolManager {
    /// The process-wide pool with the default configuration, created on first use.
    ///
    /// Its connections are driven by tasks on the runtime that first opened them; use it from
    /// one long-lived runtime (not from per-test runtimes, whose shutdown kills those tasks).
    ///
    /// Available with the `webpki-roots` feature and a crypto provider feature (`ring` or
    /// `aws-lc-rs`), as in the defaults: its configuration trusts the Mozilla roots.
    #[cfg(all(feature = "webpki-roots", any(feature = "ring", feature = "aws-lc-rs")))]
    pub fn global() -> &'static ConnectionPoolManager {
        &GLOBAL
    }

    pub(crate) fn from_parts(
        config: PoolConfig,
        resolver: SharedResolver,
    ) -> Result<ConnectionPoolManager, Error> {
        config.validate()?;
        let connector = Connector::new(&config, resolver)?;
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
        let origin = origin
            .into_origin()
            .inspect_err(|_| self.count_failed_acquire())?;
        self.acquire_handle(origin, Priority::DEFAULT_URGENCY).await
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
        let origin = origin
            .into_origin()
            .inspect_err(|_| self.count_failed_acquire())?;
        self.acquire_handle(origin, priority.urgency()).await
    }

    /// `acquire` and `acquire_with_priority`: a handle on a leased slot.
    async fn acquire_handle(&self, origin: Origin, urgency: u8) -> Result<StreamHandle, Error> {
        let pool = self.pool_for(&origin)?;
        let lease = self
            .lease(&pool, urgency, &RequestLimits::default())
            .await?;
        Ok(self.handle(lease, &pool))
    }

    /// [`lease`](Self::lease) on `origin`, returning its pool too (for retries): the tower
    /// service's acquire.
    pub(crate) async fn acquire_lease(
        &self,
        origin: &Origin,
        urgency: u8,
        limits: &RequestLimits,
    ) -> Result<(Arc<OriginPool>, Lease), Error> {
        let pool = self.pool_for(origin)?;
        let lease = self.lease(&pool, urgency, limits).await?;
        Ok((pool, lease))
    }

    /// `origin`'s pool, made on first use; a failure counted as a failed acquire.
    pub(crate) fn pool_for(&self, origin: &Origin) -> Result<Arc<OriginPool>, Error> {
        self.ensure_maintenance();
        self.origin_pool(origin)
            .inspect_err(|_| self.count_failed_acquire())
    }

    /// The acquire core every path goes through (`request`, `acquire`, the tower service): a
    /// slot on `pool`'s origin, or on a connection that origin may coalesce onto. A failure is
    /// counted once, here. An acquire cut short by the whole request's deadline (`limits`)
    /// fails as [`TimeoutKind::Request`].
    pub(crate) async fn lease(
        &self,
        pool: &Arc<OriginPool>,
        urgency: u8,
        limits: &RequestLimits,
    ) -> Result<Lease, Error> {
        let coalesced = match self.coalesced_lease(pool, urgency) {
            Some(coalescing) => coalescing.await,
            None => None,
        };
        if let Some(lease) = coalesced {
            return Ok(lease);
        }
        pool.acquire(None, urgency, limits.end_at())
            .await
            .map_err(|error| match (error, limits.end()) {
                (
                    Error::Timeout {
                        origin,
                        kind: TimeoutKind::Acquire,
                        ..
                    },
                    Some((at, after)),
                ) if Instant::now() >= at => Error::Timeout {
                    origin,
                    kind: TimeoutKind::Request,
                    after,
                },
                (error, _) => error,
            })
            .inspect_err(|_| self.count_failed_acquire())
    }

    /// The handle for a lease acquired on `pool`'s origin. Only with coalescing on can the
    /// lease be on another origin's connection, so only then are the origins compared.
    fn handle(&self, lease: Lease, pool: &OriginPool) -> StreamHandle {
        let origin = pool.origin();
        let coalesced_for = (self.config().http2_coalescing && lease.conn().origin != *origin)
            .then(|| (origin.clone(), Arc::clone(pool.telemetry())));
        StreamHandle::new(lease, coalesced_for)
    }

    fn count_failed_acquire(&self) {
        self.inner.ctx.counters.acquires_failed.add(1);
    }

    pub(crate) fn count_failed_request(&self) {
        self.inner.ctx.counters.requests_failed.add(1);
    }

    /// A snapshot of every origin and connection, and the pool's totals. The numbers are read
    /// one by one while the pool runs: not a consistent cut.
    pub fn stats(&self) -> PoolStats {
        let now = Instant::now();
        let origins = self.inner.origin_pools();
        let counters = &self.inner.ctx.counters;
        PoolStats {
            origins: origins.iter().map(|o| o.snapshot(now)).collect(),
            connections_opened: counters.connections_opened.get(),
            connections_closed: counters.connections_closed.get(),
            connects_failed: counters.connects_failed.get(),
            acquires_succeeded: counters.acquires_succeeded.get(),
            acquires_failed: counters.acquires_failed.get(),
            leases_reused: counters.leases_reused.get(),
            leases_coalesced: counters.leases_coalesced.get(),
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
        let origins = self.inner.origin_pools();
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
        cleartext_protocol(self.config().cleartext, origin).map(drop)
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
    #[cfg(all(feature = "webpki-roots", any(feature = "ring", feature = "aws-lc-rs")))]
    #[test]
    fn global_pool_has_default_config() {
        assert_eq!(
            ConnectionPoolManager::global().config(),
            &PoolConfig::default()
        );
    }
}
