//! HTTP/2 connection coalescing (RFC 9113 §9.1.1), the manager's part: finding another
//! origin whose connection may carry a request, and leasing a slot there. Opt-in
//! ([`PoolConfig::http2_coalescing`](crate::PoolConfig::http2_coalescing)); the per-origin
//! state and the test a connection must pass are in `origin_pool/coalesce.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tracing::debug;

use super::ConnectionPoolManager;
use crate::lease::Lease;
use crate::origin::Scheme;
use crate::origin_pool::OriginPool;

type Coalesced<'a> = Pin<Box<dyn Future<Output = Option<Lease>> + Send + 'a>>;

impl ConnectionPoolManager {
    /// A lease for `pool`'s origin on another origin's HTTP/2 connection, when coalescing is
    /// on, the origin has no connection or dial of its own, and a connection qualifies;
    /// `None` otherwise, and the caller acquires on the origin itself. Boxed, and only built
    /// when coalescing is on, so the common path's futures do not carry it.
    pub(crate) fn coalesced_lease<'a>(
        &'a self,
        pool: &'a Arc<OriginPool>,
        urgency: u8,
    ) -> Option<Coalesced<'a>> {
        if !self.config().http2_coalescing
            || pool.origin().scheme() != Scheme::Https
            // Only direct origins share connections: one never crosses routes.
            || pool.is_tunnelled()
            || pool.has_own_connections()
        {
            return None;
        }
        Some(Box::pin(async move {
            let (target, _) = match pool.coalesce_target() {
                Some(known) => known,
                None => self.find_coalesce_target(pool).await?,
            };
            let lease = target.acquire(None, urgency, None).await.ok()?;
            if !pool.admits_coalesced(lease.conn()) {
                // Dropping the lease gives the slot back; the origin dials its own.
                return None;
            }
            self.inner.ctx.counters.leases_coalesced.add(1);
            debug!(
                origin = %pool.origin(),
                onto = %target.origin(),
                conn_id = lease.conn().id,
                "coalesced lease"
            );
            Some(lease.into_coalesced())
        }))
    }

    /// Resolves `pool`'s host and looks for an open connection of another origin that can
    /// serve it; remembers the origin found.
    async fn find_coalesce_target(
        &self,
        pool: &Arc<OriginPool>,
    ) -> Option<(Arc<OriginPool>, Vec<std::net::IpAddr>)> {
        let origin = pool.origin();
        // Bounded as a dial's lookup is; the origin's own dial reports a failure.
        let lookup = self.inner.ctx.connector.resolve(origin);
        let ips: Vec<_> = match tokio::time::timeout(self.config().connect_timeout, lookup).await {
            Ok(Ok(addrs)) => addrs.iter().map(|a| a.ip()).collect(),
            Ok(Err(_)) | Err(_) => return None,
        };
        let target = self.inner.origin_pools().into_iter().find(|other| {
            other.origin() != origin
                && !pool.coalescing_refused(other.origin())
                && other.can_serve(origin, &ips)
        })?;
        pool.set_coalesce_target(&target, ips.clone());
        Some((target, ips))
    }
}
