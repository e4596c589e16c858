//! The idle sweep: connections that closed, drained, idled past the timeout or beyond the
//! idle cap leave the origin, never below its warm minimum; a forecast that an idle connection
//! outlived is refuted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::OriginState;
use crate::config::PoolConfig;
use crate::origin_pool::IN_USE_WITHIN;
use crate::origin_pool::pooled::{PoolEvent, Pooled};
use crate::protocol::Protocol;

impl<C: Pooled> OriginState<C> {
    /// Drops connections that can no longer take streams: closed ones, and drained ones whose
    /// last stream has finished. Returns them to drop outside the lock.
    pub(crate) fn prune(&mut self) -> Vec<Arc<C>> {
        let mut gone = Vec::new();
        let mut position = 0;
        while position < self.conns.len() {
            let conn = &self.conns[position];
            let retired = conn.is_draining() && conn.slot().active() == 0;
            if conn.is_closed() || retired {
                gone.extend(self.remove_at(position));
            } else {
                position += 1;
            }
        }
        gone
    }

    /// Removes connections idle too long or beyond the idle cap, never going below the warm
    /// minimum or what recent demand needs; returns them (and any pruned) to drop outside
    /// the lock.
    pub(crate) fn sweep_idle(&mut self, config: &PoolConfig, now: Instant) -> Vec<Arc<C>> {
        let mut removed = self.prune();
        // A server whose budget the forecast was would have ended a connection past it
        // within a round trip or two of its last request (what `IN_USE_WITHIN` allows).
        for conn in &self.conns {
            if conn.past_forecast() && conn.idle_for(now).is_some_and(|idle| idle >= IN_USE_WITHIN)
            {
                conn.note(PoolEvent::ForecastRefuted);
            }
        }
        let mut idle: Vec<(Duration, u64)> = self
            .conns
            .iter()
            .filter_map(|c| c.idle_for(now).map(|d| (d, c.id())))
            .collect();
        // Longest idle first.
        idle.sort_by_key(|&(idle_for, _)| std::cmp::Reverse(idle_for));
        let (idle_timeout, max_idle) = match self.protocol {
            Some(Protocol::Http1) => (config.h1_idle_timeout, config.h1_max_idle),
            _ => (config.idle_timeout, config.max_idle_connections_per_origin),
        };
        let mut excess_idle = idle.len().saturating_sub(max_idle);
        let mut removable = self.serving().saturating_sub(self.keep_floor(config, now));
        for (idle_for, id) in idle {
            if removable == 0 {
                break;
            }
            if idle_for >= idle_timeout || excess_idle > 0 {
                if let Some(position) = self.conns.iter().position(|c| c.id() == id)
                    && let Some(conn) = self.remove_at(position)
                {
                    conn.note(PoolEvent::Closed);
                    removed.push(conn);
                }
                removable -= 1;
                excess_idle = excess_idle.saturating_sub(1);
            }
        }
        removed
    }
}
