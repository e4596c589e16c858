//! The background sweep: one task per pool closes idle connections, restores warm minimums,
//! publishes per-origin gauges, and forgets origins vacant for `idle_timeout`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tracing::debug;

use super::{ConnectionPoolManager, PoolInner};
use crate::metrics;
use crate::origin::Origin;

impl ConnectionPoolManager {
    /// Starts the idle sweep on first use (a pool may be built outside a runtime). The task
    /// holds a `Weak` and ends when the pool is dropped or shut down.
    pub(super) fn ensure_maintenance(&self) {
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
                let origins = inner.origin_pools();
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

/// How often per-origin gauges go to the `metrics` facade: often enough for a scrape
/// interval, rarely enough that snapshots cost nothing measurable.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

/// A quarter of the idle timeout, between 10 ms and 1 s: idle connections close within
/// 25% of their deadline, and a default pool wakes once a second.
fn maintenance_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
