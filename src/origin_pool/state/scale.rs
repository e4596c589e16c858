//! Scale-up: how many connections waiting demand justifies (the Envoy / Jetty / gRPC A105
//! rule), and how soon a warm origin whose host is down is dialed again.
//!
//! Connection k+1 is dialed only when waiting demand exceeds the free stream slots plus the
//! capacity of dials already in flight, up to the origin's connection cap. Until a connection
//! to the origin has received the peer's SETTINGS, the capacity of a dial is unknown, so at
//! most one dial is in flight: a thundering herd on a cold origin shares it and then scales by
//! the stream math (as Go, .NET and ztunnel do).

use std::task::Waker;
use std::time::{Duration, Instant};

use tracing::debug;

use super::OriginState;
use crate::config::PoolConfig;
use crate::error::Error;
use crate::origin_pool::RetryTarget;
use crate::origin_pool::demand::connections_for;
use crate::origin_pool::pooled::Pooled;
use crate::origin_pool::reserved_dials::ReservedDials;
use crate::protocol::Protocol;

/// How many new dials waiting demand justifies.
///
/// `demand`: acquirers without a slot. `free`: free slots on open connections (after the fill
/// ratio). `dialing`: dials in flight. `per_dial`: slots a new connection is expected to bring,
/// `None` while no SETTINGS have been seen on the origin. `open`: connections serving.
pub(crate) fn dials_needed(
    demand: usize,
    free: usize,
    dialing: usize,
    per_dial: Option<usize>,
    open: usize,
    max: usize,
) -> usize {
    let room = max.saturating_sub(open + dialing);
    let Some(per_dial) = per_dial else {
        // Capacity unknown: one dial at a time, and none while a connection is still waiting
        // for its peer's SETTINGS (it will tell us how many streams it takes).
        return usize::from(demand > free && dialing == 0 && open == 0 && room > 0);
    };
    let per_dial = per_dial.max(1);
    let supply = free.saturating_add(dialing.saturating_mul(per_dial));
    if demand <= supply {
        return 0;
    }
    (demand - supply).div_ceil(per_dial).min(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With no SETTINGS seen yet, a herd of any size starts exactly one dial.
    #[test]
    fn cold_origin_dials_once_whatever_the_demand() {
        assert_eq!(dials_needed(1000, 0, 0, None, 0, 8), 1);
        assert_eq!(dials_needed(1000, 0, 1, None, 0, 8), 0);
        // A connection whose SETTINGS are pending is not joined by a second dial.
        assert_eq!(dials_needed(1000, 0, 0, None, 1, 8), 0);
    }

    /// Once the per-connection limit is known, dials cover the unmet demand, capped.
    #[test]
    fn known_limit_dials_for_unmet_demand_up_to_the_cap() {
        // 64 waiting, 8 per connection, one connection full: 7 more, room for 7.
        assert_eq!(dials_needed(64, 0, 0, Some(8), 1, 8), 7);
        // Dials in flight count as supply.
        assert_eq!(dials_needed(64, 0, 7, Some(8), 1, 8), 0);
        // Capped by max connections.
        assert_eq!(dials_needed(64, 0, 0, Some(8), 1, 2), 1);
        // Enough free slots: nothing.
        assert_eq!(dials_needed(10, 10, 0, Some(8), 2, 8), 0);
        // 150 waiting on a 250-stream server: one connection is plenty.
        assert_eq!(dials_needed(149, 249, 0, Some(250), 1, 4), 0);
    }

    /// Partial demand rounds up to a whole connection.
    #[test]
    fn partial_demand_rounds_up() {
        assert_eq!(dials_needed(9, 0, 0, Some(8), 1, 8), 2);
        assert_eq!(dials_needed(1, 0, 0, Some(8), 1, 8), 1);
    }
}

/// How long an HTTP/1.1 connection released with its response body still finishing is
/// expected back before a waiting acquirer dials another (see [`OriginState::h1_finishing`]).
/// hyper's dispatcher turns ready microseconds after the body is read, but only once its task
/// runs again, which on a loaded runtime can take tens of milliseconds.
const H1_REUSE_GRACE: Duration = Duration::from_millis(250);

/// Dials to start, and when to plan again even if nothing else happens (the end of an
/// HTTP/1.1 reuse grace).
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "planned dials are counted until started"]
pub(crate) struct DialPlan {
    pub(crate) dials: ReservedDials,
    pub(crate) recheck_at: Option<Instant>,
}

/// Dial planning over the origin's state: free slots against waiting demand.
impl<C: Pooled> OriginState<C> {
    /// Connections that count toward the origin's shape: open and not rotating out.
    pub(super) fn serving(&self) -> usize {
        self.conns.iter().filter(|c| !c.is_draining()).count()
    }

    fn refresh_planned_streams(&mut self) {
        if let Some(limit) = self.conns.iter().rev().find_map(|c| c.planned_limit()) {
            self.planned_streams = Some(limit);
        }
    }

    /// Free slots counted for scale-up: a connection counts as full once the fill ratio of
    /// its slots is in use. A connection still waiting for its peer's SETTINGS counts with the
    /// limit its siblings have shown (`assumed`), like a dial in flight: otherwise each new
    /// connection would look full at one stream and the herd would dial again.
    fn free_for_scaling(
        &self,
        fill_ratio: f64,
        assumed: Option<usize>,
        retry: Option<RetryTarget>,
    ) -> usize {
        self.conns
            .iter()
            .filter(|c| {
                c.accepts_streams() && retry.is_none_or(|r| r.admits(c.id(), c.requests_sent()))
            })
            .map(|c| {
                let limit = match c.planned_limit() {
                    Some(_) => c.stream_limit(),
                    None => assumed.unwrap_or(1),
                };
                // Truncation is intended: 0.75 of 10 slots is 7 usable before scaling.
                let usable = ((limit as f64) * fill_ratio).floor().max(1.0) as usize;
                usable.min(limit).saturating_sub(c.slot().active())
            })
            .sum()
    }

    /// HTTP/1.1 connections whose last lease just ended but whose dispatcher has not yet
    /// reported ready: the response body is being finished. Counted as supply for
    /// [`H1_REUSE_GRACE`] so a sequential caller reuses its connection instead of racing it
    /// with a new dial; returns their count and when the grace ends.
    fn h1_finishing(&self, now: Instant, retry: Option<RetryTarget>) -> (usize, Option<Instant>) {
        let mut count = 0;
        let mut ends: Option<Instant> = None;
        for c in &self.conns {
            if retry.is_some_and(|r| r.exclude == c.id())
                || c.protocol() != Protocol::Http1
                || c.is_closed()
                || c.accepts_streams()
            {
                continue;
            }
            if let Some(idle) = c.idle_for(now)
                && idle < H1_REUSE_GRACE
            {
                count += 1;
                let end = now + (H1_REUSE_GRACE - idle);
                ends = Some(ends.map_or(end, |e| e.min(end)));
            }
        }
        (count, ends)
    }

    /// Reserves dials for the current waiting demand.
    ///
    /// `retry`: where the newest acquirer may go; free slots elsewhere do not count for it.
    pub(crate) fn plan_dials(
        &mut self,
        config: &PoolConfig,
        retry: Option<RetryTarget>,
        now: Instant,
    ) -> DialPlan {
        if self.closed || self.queue.waiting() == 0 {
            return DialPlan::default();
        }
        self.record_demand(now);
        if let Some(at) = self.backoff.next_dial_at(now) {
            // Backing off: the waiters keep what there is, and the plan is made again when
            // the next dial is due.
            return DialPlan {
                dials: ReservedDials::default(),
                recheck_at: Some(at),
            };
        }
        let serving = self.serving();
        let max = self.max_connections(config);
        let stranded = self.stranded_retries();
        if serving + self.dialing() >= max {
            // No room for another dial, whatever the demand. Retries waiting for a fresh
            // connection that cannot come take what there is.
            if stranded && self.dialing() == 0 {
                self.queue.relax_retries();
            }
            return DialPlan::default();
        }
        self.refresh_planned_streams();
        let (finishing, recheck_at) = self.h1_finishing(now, retry);
        let free = self.free_for_scaling(config.scale_up_fill_ratio, self.planned_streams, retry);
        let mut dials = dials_needed(
            self.queue.waiting(),
            free + finishing,
            self.dialing(),
            self.planned_streams,
            serving,
            max,
        );
        if stranded && dials == 0 && self.dialing() == 0 {
            // A retry no open connection admits: a fresh connection is where it goes.
            dials = 1;
        }
        // Dial ahead to what recent peaks needed rather than one exhaustion at a time.
        let floor = self.keep_floor(config, now).min(max);
        dials = dials.max(floor.saturating_sub(serving + self.dialing()));
        if dials > 0 {
            debug!(
                dials,
                waiting = self.queue.waiting(),
                free,
                finishing,
                dialing = self.dialing(),
                open = self.conns.len(),
                "scaling up"
            );
        }
        DialPlan {
            dials: self.reserve_dials(dials),
            recheck_at: if self.queue.waiting() > 0 {
                recheck_at
            } else {
                None
            },
        }
    }

    /// True when a retry waits that no open connection accepting streams admits.
    fn stranded_retries(&self) -> bool {
        self.queue.waiting_retries().any(|r| {
            !self
                .conns
                .iter()
                .any(|c| c.accepts_streams() && r.admits(c.id(), c.requests_sent()))
        })
    }

    /// The connection cap for this origin: `h1_max_connections` once it is known to speak
    /// HTTP/1.1.
    fn max_connections(&self, config: &PoolConfig) -> usize {
        match self.protocol {
            Some(Protocol::Http1) => config.h1_max_connections,
            _ => config.max_connections_per_origin,
        }
    }

    /// Connections the origin keeps: its warm minimum, or what its recent peak demand needs
    /// (`PoolConfig::demand_window`), whichever is more.
    pub(crate) fn keep_floor(&mut self, config: &PoolConfig, now: Instant) -> usize {
        let peak = self.demand.peak(now);
        let max = self.max_connections(config);
        let needed = connections_for(peak, self.planned_streams, config.scale_up_fill_ratio, max);
        self.warm_min.max(needed)
    }

    /// Notes the demand now: streams in use plus acquirers waiting.
    pub(crate) fn record_demand(&mut self, now: Instant) {
        if !self.demand.enabled() {
            return;
        }
        let active: usize = self.conns.iter().map(|c| c.slot().active()).sum();
        self.demand.record(now, active + self.queue.waiting());
    }

    /// Dials needed to restore the warm minimum, or the connections recent demand needs.
    ///
    /// A connection within `lead` of its lifetime no longer counts, so its replacement is
    /// dialed while it still serves: rotation leaves no cold gap.
    pub(crate) fn plan_replenish(
        &mut self,
        config: &PoolConfig,
        now: Instant,
        lead: Duration,
    ) -> ReservedDials {
        if self.closed || !self.backoff.allows_dial(now) {
            return ReservedDials::default();
        }
        let healthy = self
            .conns
            .iter()
            .filter(|c| {
                !c.is_draining()
                    && !c.replacement_asked()
                    && c.retire_at().is_none_or(|at| at > now + lead)
            })
            .count();
        let n = self
            .keep_floor(config, now)
            .saturating_sub(healthy + self.dialing());
        self.reserve_dials(n)
    }

    /// A connection's end is in sight (`ending`: its request budget runs out within its
    /// replacement's dial time; see `connection/ending.rs`) or came early (a server's GOAWAY):
    /// dials one replacement unless the other connections that will last, and the dials in
    /// flight, have room for the streams it carries now (at least one). The replacement may
    /// take the origin one above its connection cap until the old one has drained.
    pub(crate) fn plan_replacement(&mut self, ending: &C, now: Instant) -> ReservedDials {
        if self.closed || !self.backoff.allows_dial(now) {
            return ReservedDials::default();
        }
        let carried = ending.slot().active().max(1);
        let lasting_free: usize = self
            .conns
            .iter()
            .filter(|c| c.id() != ending.id() && c.accepts_streams() && !c.replacement_asked())
            .map(|c| c.stream_limit().saturating_sub(c.slot().active()))
            .sum();
        let per_dial = self.planned_streams.unwrap_or(1).max(1);
        let supply = lasting_free.saturating_add(self.dialing().saturating_mul(per_dial));
        if carried <= supply {
            return ReservedDials::default();
        }
        debug!(
            conn_id = ending.id(),
            carried,
            lasting_free,
            dialing = self.dialing(),
            "dialing a replacement ahead of a connection's end"
        );
        self.reserve_dials(1)
    }

    /// A dial failed. When nothing else can serve the waiters (no connection, no other dial),
    /// they fail with its error; otherwise they keep waiting for the capacity there is.
    /// Either way the origin backs off before its next dial.
    pub(crate) fn dial_failed(
        &mut self,
        error: &Error,
        now: Instant,
        config: &PoolConfig,
    ) -> Vec<Waker> {
        self.backoff.failed(error, now, config);
        if self.dialing() == 0 && self.conns.is_empty() {
            self.queue.fail_all(error)
        } else {
            Vec::new()
        }
    }
}
